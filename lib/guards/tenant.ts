/**
 * The guards of one tenant database as a lifecycle (the TenantGuards provider is a thin shell over
 * this): install or upgrade the APIs, write the tenant's limits, read what is there for drift,
 * remove. A suspended or archived tenant's database refuses connections; it is opened for the
 * duration (its role is NOLOGIN meanwhile, so nobody else gets in).
 */
import type { Client } from "pg";
import { withClient } from "../pg/client";
import { writeQuotaLimits } from "../quota/sql";
import { withDatabase } from "../pg/database";
import { DEFAULT_EXCLUDED_TABLES } from "../undo/sql";
import { servedTenants } from "../registry/registry";
import { dsnWithDatabase } from "../pg/dsn";
import {
  GUARDS_VERSION,
  installGuards,
  pruneUndoLog,
  readGuards,
  removeGuards,
  type GuardsStatus,
} from "./install";
import { forwardTo } from "../pulumi/forward";
import type * as GuardsProvider from "./provider";

export interface TenantGuardsSpec {
  subdomain: string;
  database: string;
  tier: string;
  limits: { maxUsers: number; maxStorageGb: number; maxAiOperationsDaily: number; maxSnapshots?: number };
  /** Stack exclusion patterns (platform.undo.excludeTables). */
  excludeTables: readonly string[];
}

export interface TenantGuardsState {
  /** Installed versions (GUARDS_VERSION when current); "" when the database is missing. */
  version: string;
  capturedTables: number;
  /** User tables (not excluded) without capture: drift. */
  uncapturedTables: number;
  /** Stack exclusion patterns found in the database (the built-in ones left out). */
  excludeTables: string[];
  /** The limits stored in the database, in stack terms (absent when no limits row). */
  limits?: { maxUsers: number; maxStorageGb: number; maxAiOperationsDaily: number };
  /** null: the database has no res_users table. */
  userLimitTrigger: boolean | null;
  databaseExists: boolean;
}

export type Log = (message: string) => void;
const noLog: Log = () => undefined;
const GIB = 1024 ** 3;

async function databaseExists(admin: Client, database: string): Promise<boolean> {
  const r = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
  return (r.rowCount ?? 0) > 0;
}

async function stateOf(db: Client, status: GuardsStatus): Promise<TenantGuardsState> {
  let limits: TenantGuardsState["limits"];
  if (status.versions.quota > 0) {
    const r = await db.query<{ u: number; s: string; a: number }>(
      "SELECT max_users AS u, max_storage_bytes::text AS s, max_ai_operations_daily AS a FROM loomworks_quota.limits LIMIT 1",
    );
    if (r.rows[0]) {
      limits = {
        maxUsers: r.rows[0].u,
        maxStorageGb: Math.round((Number(r.rows[0].s) / GIB) * 1e9) / 1e9,
        maxAiOperationsDaily: r.rows[0].a,
      };
    }
  }
  const builtin = new Set(DEFAULT_EXCLUDED_TABLES);
  return {
    version: status.version,
    capturedTables: status.capturedTables,
    uncapturedTables: status.uncapturedTables.length,
    excludeTables: status.excludedTables.filter((p) => !builtin.has(p)),
    ...(limits ? { limits } : {}),
    userLimitTrigger: status.userLimitTrigger,
    databaseExists: true,
  };
}

/** Installs or upgrades the guards and writes the limits; returns what is then in place. */
export async function ensureTenantGuards(
  adminDsn: string,
  spec: TenantGuardsSpec,
  log: Log = noLog,
): Promise<TenantGuardsState> {
  return withClient(adminDsn, (admin) =>
    withDatabase(admin, adminDsn, spec.database, async (db) => {
      const before = await readGuards(db);
      const status = await installGuards(db, { excludeTables: spec.excludeTables });
      if (before.version !== status.version) {
        log(
          `${spec.subdomain}: guards ${before.current ? "checked" : `${before.version} → ${status.version}`}`,
        );
      }
      if (status.uncapturedTables.length > 0) {
        throw new Error(
          `tenant "${spec.subdomain}": capture could not be attached to ${status.uncapturedTables.join(", ")}`,
        );
      }
      const w = await writeQuotaLimits(db, {
        subdomain: spec.subdomain,
        tier: spec.tier,
        limits: spec.limits,
      });
      if (w.changed) log(`${spec.subdomain}: limits written (${JSON.stringify(spec.limits)})`);
      return stateOf(db, status);
    }),
  );
}

/** What is installed in the tenant database (never changes anything). */
export async function readTenantGuards(adminDsn: string, database: string): Promise<TenantGuardsState> {
  return withClient(adminDsn, async (admin) => {
    if (!(await databaseExists(admin, database))) {
      return {
        version: "",
        capturedTables: 0,
        uncapturedTables: 0,
        excludeTables: [],
        userLimitTrigger: null,
        databaseExists: false,
      };
    }
    return withDatabase(admin, adminDsn, database, async (db) => stateOf(db, await readGuards(db)));
  });
}

/** Removes the undo and quota APIs from the tenant database (nothing to do when it is gone). */
export async function removeTenantGuards(
  adminDsn: string,
  database: string,
  log: Log = noLog,
): Promise<void> {
  await withClient(adminDsn, async (admin) => {
    if (!(await databaseExists(admin, database))) return;
    await withDatabase(admin, adminDsn, database, (db) => removeGuards(db));
    log(`${database}: guards removed`);
  });
}

export { GUARDS_VERSION };

/**
 * Prunes the undo log of every active tenant not under maintenance: ended operations older than
 * `retentionDays` and their captured changes. Returns per tenant how many operations were forgotten
 * (or the error; the others still run).
 */
export async function pruneUndoLogs(
  adminDsn: string,
  retentionDays: number,
  log: Log = noLog,
): Promise<Array<{ subdomain: string; pruned: number; error?: string }>> {
  const tenants = await servedTenants(adminDsn);
  const out: Array<{ subdomain: string; pruned: number; error?: string }> = [];
  for (const t of tenants) {
    try {
      const pruned = await withClient(dsnWithDatabase(adminDsn, t.database_name), (db) =>
        pruneUndoLog(db, retentionDays),
      );
      if (pruned > 0)
        log(`${t.subdomain}: forgot ${pruned} undo operation(s) older than ${retentionDays} days`);
      out.push({ subdomain: t.subdomain, pruned });
    } catch (err) {
      out.push({ subdomain: t.subdomain, pruned: 0, error: (err as Error).message });
    }
  }
  return out;
}

// ---- Kept for the providers in existing stacks' state (lib/pulumi/forward.ts); the code is in ./provider.
const guardsProvider = (): typeof GuardsProvider => require("./provider") as typeof GuardsProvider;
export const diffGuards = forwardTo(guardsProvider, "diffGuards");
