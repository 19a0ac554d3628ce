/**
 * Runtime snapshots
 * (docs/architecture.md#snapshots-and-restore): `auto` snapshots taken by a scheduled job, `pre_ai` snapshots
 * requested from inside a tenant database before a destructive AI operation, and their retention.
 *
 * `pre_ai` from the tenant database: the tenant database cannot write into the registry database,
 * so the schema `loomworks_snapshot` (installed in every tenant database by provisioning, step
 * `snapshot-api`) offers `loomworks_snapshot.request(kind, note)`: a SECURITY DEFINER function,
 * owned by the NOLOGIN role `loomworks_snapshot_owner`, that creates the restore point and records
 * `(id, lsn, restore_point, created_at, kind, note)` in `loomworks_snapshot.requested`.
 * {@link syncRequestedSnapshots} moves those into the registry and deletes them locally.
 *
 * Privileges, per tenant database: PUBLIC has nothing on the schema, table or function; the tenant
 * role (the database owner) has USAGE on the schema, EXECUTE on `request` and SELECT on
 * `requested`; the owner role has EXECUTE on `pg_catalog.pg_create_restore_point(text)` (granted in
 * that database) and owns the rest. The owner role can log in nowhere, has no members, belongs to no
 * role and has no attributes; the installer refuses to go on if any of that is not so. The function
 * accepts only kind `pre_ai`, bounds the note and the number of unsynced requests, and runs with
 * `search_path = pg_catalog, pg_temp`, so a tenant cannot make it run code of its own.
 *
 * Retention ({@link pruneSnapshots}): per tenant, runtime snapshots (auto + pre_ai) older than
 * `maxAgeDays` (default 30) are forgotten, then all but the newest `maxSnapshots` (the tenant's
 * registry `limits.maxSnapshots`). Manual snapshots (declared in the stack, one Snapshot resource
 * each) are never pruned and are not counted: the configuration already bounds their number by
 * `maxSnapshots` on its own, and they are removed only by removing them from the stack. Then the
 * tenant's retired files (lib/filestore/retired.ts) that no snapshot and no point of the recovery
 * window can need any more are removed ({@link pruneRetiredFiles}).
 *
 * The scheduled job `node bin/infra/ops/jobs.js snapshot-auto --state-dir D` runs it.
 */
import type { Client } from "pg";
import { withClient } from "../pg/client";
import { SNAPSHOT_OWNER_ROLE } from "../pg/ownerRole";
import type { PgBackRestTarget } from "../pg/pgbackrest";
import { installSqlModules, renderSqlModule, type SqlModule } from "../sql/modules";
import { ensureRegistry, registryDsn, servedTenants } from "../registry/registry";
import { dsnWithDatabase } from "../pg/dsn";
import { pruneRetired, retiredHorizon } from "../filestore/retired";
import {
  RUNTIME_KINDS,
  createSnapshot,
  forgetSnapshotsOn,
  recordSnapshot,
  restorePointName,
  type Log,
  type SnapshotInfo,
  type SnapshotKind,
  type SnapshotState,
} from "./snapshot";

export const SNAPSHOT_API_SCHEMA = "loomworks_snapshot";
export { SNAPSHOT_OWNER_ROLE };
/** v2: pre_ai restore points counted per UTC day and limited (loomworks_quota.take_pre_ai_snapshot). */
export const SNAPSHOT_API_VERSION = 2;
/** Unsynced requests a tenant database may hold; `request` refuses more. */
export const MAX_PENDING_REQUESTS = 1000;
/** Longest note `request` accepts. */
export const MAX_NOTE_LENGTH = 1000;
export const DEFAULT_MAX_AGE_DAYS = 30;
/** Used when a tenant's registry limits lack `maxSnapshots` (the basic tier's value). */
export const DEFAULT_MAX_SNAPSHOTS = 20;
/** A runtime snapshot still `pending` after this long was left by a crash: pruned. */
export const PENDING_GRACE_MS = 10 * 60_000;
/** Advisory lock key (per tenant database) serializing installations of the API. */
const INSTALL_LOCK_KEY = 7_314_205_201;

const noLog: Log = () => undefined;

// ---------------------------------------------------------------------------------------------
// The SQL API inside each tenant database
// ---------------------------------------------------------------------------------------------

/**
 * The snapshot API as an SQL module (sql/snapshot/; one transaction, run by a superuser connected to
 * the tenant database).
 */
export const SNAPSHOT_API: SqlModule = {
  name: "snapshot",
  schema: SNAPSHOT_API_SCHEMA,
  version: SNAPSHOT_API_VERSION,
  owner: SNAPSHOT_OWNER_ROLE,
  lockKey: INSTALL_LOCK_KEY,
  definitions: ["api.sql"],
  grants: ["grants.sql"],
  values: { max_note_length: MAX_NOTE_LENGTH, max_pending_requests: MAX_PENDING_REQUESTS },
};

/** The installation script of {@link SNAPSHOT_API} (without its advisory lock, which the installer takes). */
export function snapshotApiSql(): string {
  return renderSqlModule(SNAPSHOT_API);
}

/**
 * Installs (or repairs) the snapshot API in the database `client` is connected to, as a superuser.
 * Idempotent; safe to run concurrently in one or many tenant databases.
 */
export async function installSnapshotApi(client: Client): Promise<void> {
  await installSqlModules(client, [SNAPSHOT_API], { readWrite: false });
}

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

/** `20260101t101500z`: a compact UTC time for runtime snapshot names. */
export function compactTime(d: Date): string {
  return d
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "z")
    .toLowerCase();
}

/** Name of an auto snapshot: `auto-<compact time>`. */
export function autoSnapshotName(now: Date): string {
  return `auto-${compactTime(now)}`;
}

/** Name of a synced pre_ai snapshot: `pre-ai-<compact time>`, then `: <note>` (at most 200 characters). */
export function preAiSnapshotName(createdAt: Date, note: string | null): string {
  const base = `pre-ai-${compactTime(createdAt)}`;
  const text = (note ?? "").replace(/\s+/g, " ").trim();
  return text ? `${base}: ${text.slice(0, 200)}` : base;
}

/** A tenant's runtime snapshot limit from its registry limits. */
export function maxSnapshotsFrom(limits: Record<string, unknown> | null | undefined): number {
  const v = limits?.maxSnapshots;
  return typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : DEFAULT_MAX_SNAPSHOTS;
}

export interface PruneCandidate {
  id: string;
  kind: SnapshotKind;
  state: SnapshotState;
  createdAt: Date;
}

export interface PruneRules {
  maxSnapshots: number;
  maxAgeDays: number;
  now: Date;
  /** Pending rows younger than this are in the making: kept, not counted. */
  pendingGraceMs?: number;
}

/**
 * Which snapshots retention removes: runtime ones only (manual snapshots are never selected and
 * never counted): leftovers of crashes (pending beyond the grace period, or half-forgotten), ready
 * ones older than `maxAgeDays`, then all but the newest `maxSnapshots` of the rest.
 */
export function selectSnapshotsToPrune(rows: readonly PruneCandidate[], rules: PruneRules): string[] {
  const grace = rules.pendingGraceMs ?? PENDING_GRACE_MS;
  const now = rules.now.getTime();
  const oldest = now - rules.maxAgeDays * 86_400_000;
  const prune: string[] = [];
  const kept: PruneCandidate[] = [];
  for (const r of rows) {
    if (!RUNTIME_KINDS.includes(r.kind)) continue;
    if (r.state === "pending") {
      if (now - r.createdAt.getTime() > grace) prune.push(r.id);
      continue;
    }
    if (r.state !== "ready" || r.createdAt.getTime() < oldest) prune.push(r.id);
    else kept.push(r);
  }
  kept.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1));
  for (const r of kept.slice(Math.max(0, rules.maxSnapshots))) prune.push(r.id);
  return prune;
}

// ---------------------------------------------------------------------------------------------
// Sync, prune, auto
// ---------------------------------------------------------------------------------------------

export interface RuntimeSnapshotOptions {
  filestoreRoot: string;
  snapshotRoot: string;
  pgbackrest?: PgBackRestTarget;
}

interface RequestedRow {
  id: string;
  kind: SnapshotKind;
  note: string | null;
  lsn: string;
  wal_file: string;
  restore_point: string;
  created_at: Date;
}

/**
 * Moves the snapshots requested inside a tenant database into the registry and deletes them
 * there. Installs the API when the database lacks it (tenants provisioned
 * before it existed). Rerunnable after a crash at any point: ids already in the registry are only
 * deleted locally.
 */
export async function syncRequestedSnapshots(
  adminDsn: string,
  subdomain: string,
  database: string,
  opts: RuntimeSnapshotOptions,
  log: Log = noLog,
): Promise<SnapshotInfo[]> {
  await ensureRegistry(adminDsn);
  return withClient(dsnWithDatabase(adminDsn, database), async (db) => {
    const present = await db.query<{ ok: boolean }>(
      "SELECT pg_catalog.to_regclass('loomworks_snapshot.requested') IS NOT NULL AS ok",
    );
    if (!present.rows[0].ok) {
      log(`${subdomain}: installing the snapshot API in ${database}`);
      await installSnapshotApi(db);
      return [];
    }
    await db.query("BEGIN");
    try {
      const req = await db.query<RequestedRow>(
        `SELECT id::text AS id, kind, note, lsn::text AS lsn, pg_catalog.pg_walfile_name(lsn) AS wal_file, restore_point, created_at
         FROM loomworks_snapshot.requested ORDER BY lsn FOR UPDATE SKIP LOCKED`,
      );
      if (req.rows.length === 0) {
        await db.query("COMMIT");
        return [];
      }
      const size = await db.query<{ n: string }>(
        "SELECT pg_catalog.pg_database_size(pg_catalog.current_database())::text AS n",
      );
      const synced = await withClient(registryDsn(adminDsn), async (reg) => {
        const known = await reg.query<{ id: string }>(
          "SELECT id::text AS id FROM snapshots WHERE id = ANY($1::uuid[])",
          [req.rows.map((r) => r.id)],
        );
        const have = new Set(known.rows.map((r) => r.id));
        const out: SnapshotInfo[] = [];
        for (const r of req.rows) {
          if (have.has(r.id)) continue;
          out.push(
            await recordSnapshot(reg, {
              id: r.id,
              subdomain,
              database,
              name: preAiSnapshotName(r.created_at, r.note),
              kind: r.kind,
              lsn: r.lsn,
              walFile: r.wal_file,
              restorePoint: r.restore_point,
              createdAt: r.created_at,
              databaseBytes: Number(size.rows[0].n),
              ...(opts.pgbackrest ? { pgbackrest: opts.pgbackrest } : {}),
            }),
          );
        }
        return out;
      });
      await db.query("DELETE FROM loomworks_snapshot.requested WHERE id = ANY($1::uuid[])", [
        req.rows.map((r) => r.id),
      ]);
      await db.query("COMMIT");
      if (synced.length > 0) log(`${subdomain}: synced ${synced.length} requested snapshot(s)`);
      return synced;
    } catch (err) {
      await db.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  });
}

export interface PruneOptions {
  /** Default: the tenant's registry `limits.maxSnapshots`. */
  maxSnapshots?: number;
  maxAgeDays?: number;
  now?: Date;
}

/** Applies retention to a tenant's runtime snapshots; returns the ids forgotten. */
export async function pruneSnapshots(
  adminDsn: string,
  subdomain: string,
  opts: PruneOptions = {},
  log: Log = noLog,
): Promise<string[]> {
  await ensureRegistry(adminDsn);
  return withClient(registryDsn(adminDsn), async (reg) => {
    let max = opts.maxSnapshots;
    if (max === undefined) {
      const t = await reg.query<{ limits: Record<string, unknown> }>(
        "SELECT limits FROM tenants WHERE subdomain = $1",
        [subdomain],
      );
      max = maxSnapshotsFrom(t.rows[0]?.limits);
    }
    const rows = await reg.query<{ id: string; kind: SnapshotKind; state: SnapshotState; created_at: Date }>(
      `SELECT id::text AS id, kind, state, created_at FROM snapshots
       WHERE subdomain = $1 AND kind <> 'manual'`,
      [subdomain],
    );
    const ids = selectSnapshotsToPrune(
      rows.rows.map((r) => ({ id: r.id, kind: r.kind, state: r.state, createdAt: r.created_at })),
      { maxSnapshots: max, maxAgeDays: opts.maxAgeDays ?? DEFAULT_MAX_AGE_DAYS, now: opts.now ?? new Date() },
    );
    const gone = await forgetSnapshotsOn(reg, ids);
    if (gone.length > 0) log(`${subdomain}: pruned ${gone.length} runtime snapshot(s)`);
    return gone;
  });
}

/**
 * Removes the tenant's retired files that no restore can need: those retired before its oldest
 * snapshot and before the start of the oldest backup (lib/filestore/retired.ts). Returns the
 * retirement times (ms) of the batches removed; none when the horizon is unknown.
 */
export async function pruneRetiredFiles(
  adminDsn: string,
  subdomain: string,
  database: string,
  filestoreRoot: string,
  log: Log = noLog,
): Promise<number[]> {
  if (!filestoreRoot) return [];
  await ensureRegistry(adminDsn);
  const horizon = await withClient(registryDsn(adminDsn), (reg) => retiredHorizon(reg, subdomain));
  if (!horizon) return [];
  const removed = await pruneRetired(filestoreRoot, database, horizon);
  if (removed.length > 0) {
    log(
      `${subdomain}: removed ${removed.length} batch(es) of retired files (before ${horizon.toISOString()})`,
    );
  }
  return removed;
}

export interface AutoSnapshotOptions extends RuntimeSnapshotOptions {
  maxAgeDays?: number;
  /** Only these tenants (default: every active tenant). */
  subdomains?: readonly string[];
}

export interface AutoSnapshotResult {
  subdomain: string;
  /** pre_ai requests moved into the registry first. */
  synced: SnapshotInfo[];
  snapshot?: SnapshotInfo;
  pruned: string[];
  /** Retirement times (ms) of the retired-file batches removed. */
  retiredPruned: number[];
  /** Set when this tenant failed (the others still ran). */
  error?: string;
}

/**
 * The scheduled job: for every active tenant not under maintenance, sync its requested snapshots,
 * take one `auto` snapshot, then prune. A failing tenant is reported and the next one runs.
 */
export async function takeAutoSnapshots(
  adminDsn: string,
  opts: AutoSnapshotOptions,
  log: Log = noLog,
): Promise<AutoSnapshotResult[]> {
  const tenants = await servedTenants(adminDsn, opts.subdomains);
  const results: AutoSnapshotResult[] = [];
  for (const t of tenants) {
    const result: AutoSnapshotResult = { subdomain: t.subdomain, synced: [], pruned: [], retiredPruned: [] };
    try {
      result.synced = await syncRequestedSnapshots(adminDsn, t.subdomain, t.database_name, opts, log);
      const now = new Date();
      result.snapshot = await createSnapshot(
        adminDsn,
        {
          subdomain: t.subdomain,
          database: t.database_name,
          name: autoSnapshotName(now),
          kind: "auto",
          filestoreRoot: opts.filestoreRoot,
          snapshotRoot: opts.snapshotRoot,
          ...(opts.pgbackrest ? { pgbackrest: opts.pgbackrest } : {}),
        },
        log,
      );
      result.pruned = await pruneSnapshots(
        adminDsn,
        t.subdomain,
        opts.maxAgeDays !== undefined ? { maxAgeDays: opts.maxAgeDays } : {},
        log,
      );
      result.retiredPruned = await pruneRetiredFiles(
        adminDsn,
        t.subdomain,
        t.database_name,
        opts.filestoreRoot,
        log,
      );
    } catch (err) {
      result.error = (err as Error).message;
      log(`${t.subdomain}: auto snapshot failed: ${result.error}`);
    }
    results.push(result);
  }
  return results;
}

/** The restore point name `request` gives a snapshot id in `database` (same rule as the SQL). */
export function requestedRestorePointName(database: string, id: string): string {
  return restorePointName(database, id);
}
