/**
 * The platform's guards inside a tenant (or template) database: the snapshot API
 * (lib/snapshot/runtime.ts), the quota API (lib/quota/sql.ts) and the undo API (lib/undo/sql.ts),
 * SQL modules (sql/, lib/sql/modules.ts) installed, upgraded and removed together, in one
 * transaction each, by a superuser connection.
 *
 * Versions: each API records its version in its schema's COMMENT. Installing over an older version
 * upgrades it in place (the scripts are idempotent and version-gated); a database carrying a newer
 * version than this program is refused (a downgrade could drop what the newer one relies on).
 */
import type { Client } from "pg";
import { QUOTA_API, QUOTA_API_VERSION, QUOTA_SCHEMA, USERS_TRIGGER } from "../quota/sql";
import { SNAPSHOT_API, SNAPSHOT_API_SCHEMA, SNAPSHOT_API_VERSION } from "../snapshot/runtime";
import { inInstallTransaction, type SqlModuleInstaller } from "../sql/modules";
import {
  CAPTURE_TRIGGER,
  DEFAULT_EXCLUDED_TABLES,
  HSTORE_SCHEMA_SQL,
  UNDO_API_VERSION,
  UNDO_SCHEMA,
  undoApiModule,
} from "../undo/sql";

/** One string naming every API version: a change of it is a change of the guards (provider diffs). */
export const GUARDS_VERSION = `snapshot v${SNAPSHOT_API_VERSION}, quota v${QUOTA_API_VERSION}, undo v${UNDO_API_VERSION}`;
/** Advisory lock (per database) serializing installs and removals. */
const GUARDS_LOCK_KEY = 7_314_205_301;

export interface GuardsOptions {
  /** Table name patterns excluded from capture besides DEFAULT_EXCLUDED_TABLES (stack config). */
  excludeTables?: readonly string[];
}

export interface GuardsStatus {
  /** Versions found in the database (0: not installed). */
  versions: { snapshot: number; quota: number; undo: number };
  /** Every API present at this program's version. */
  current: boolean;
  /** The version string of what is installed (GUARDS_VERSION when current). */
  version: string;
  /** User tables (not excluded) that lack capture. */
  uncapturedTables: string[];
  capturedTables: number;
  /** The effective exclusion patterns stored in the database. */
  excludedTables: string[];
  /** The user-limit trigger on res_users is present (null: the database has no res_users table). */
  userLimitTrigger: boolean | null;
  eventTriggers: string[];
}

function schemaVersionSql(schema: string): string {
  return `coalesce(substring(pg_catalog.obj_description(pg_catalog.to_regnamespace('${schema}'), 'pg_namespace') FROM 'v([0-9]+)$')::integer, 0)`;
}

async function installedVersions(db: Client): Promise<GuardsStatus["versions"]> {
  const r = await db.query<{ snapshot: number; quota: number; undo: number }>(
    `SELECT ${schemaVersionSql(SNAPSHOT_API_SCHEMA)} AS snapshot, ${schemaVersionSql(QUOTA_SCHEMA)} AS quota,
            ${schemaVersionSql(UNDO_SCHEMA)} AS undo`,
  );
  return r.rows[0];
}

/** Stack patterns plus the built-in ones, deduplicated, in a stable order. */
export function effectiveExclusions(stack: readonly string[] = []): { pattern: string; source: string }[] {
  const out = new Map<string, string>();
  for (const p of DEFAULT_EXCLUDED_TABLES) out.set(p, "builtin");
  for (const p of stack) if (!out.has(p)) out.set(p, "stack");
  return [...out.entries()].map(([pattern, source]) => ({ pattern, source }));
}

/** One transaction holding the guards' lock: installs and removals of one database run one at a time. */
function inGuardsTransaction<T>(db: Client, body: (modules: SqlModuleInstaller) => Promise<T>): Promise<T> {
  return inInstallTransaction(db, { lockKey: GUARDS_LOCK_KEY }, body);
}

/**
 * Installs or upgrades the guards in the database `db` is connected to (as a superuser), sets the
 * exclusion list and attaches capture to every user table. Idempotent and cheap when current.
 */
export async function installGuards(db: Client, opts: GuardsOptions = {}): Promise<GuardsStatus> {
  await inGuardsTransaction(db, async (modules) => {
    const have = await installedVersions(db);
    const newer = (
      [
        ["snapshot", SNAPSHOT_API_VERSION],
        ["quota", QUOTA_API_VERSION],
        ["undo", UNDO_API_VERSION],
      ] as const
    ).filter(([k, v]) => have[k] > v);
    if (newer.length > 0) {
      const db_ = (await db.query<{ d: string }>("SELECT pg_catalog.current_database() AS d")).rows[0].d;
      throw new Error(
        `database "${db_}" has ${newer.map(([k]) => `the ${k} API v${have[k]}`).join(", ")}, newer than this ` +
          `program's (${GUARDS_VERSION}); refusing to downgrade: run a newer version of the platform`,
      );
    }
    await modules.install(SNAPSHOT_API);
    await modules.install(QUOTA_API);
    // hstore (contrib) holds the captured rows; an installation the database already has is used.
    const hstore = await db.query<{ schema: string }>(HSTORE_SCHEMA_SQL);
    await modules.install(undoApiModule(hstore.rows[0]?.schema ?? UNDO_SCHEMA));
    const exclusions = effectiveExclusions(opts.excludeTables);
    await db.query(`DELETE FROM ${UNDO_SCHEMA}.excluded_tables`);
    // Multi-argument UNNEST is FROM-clause syntax, not a function: it cannot be qualified.
    await db.query(
      `INSERT INTO ${UNDO_SCHEMA}.excluded_tables (pattern, source)
       SELECT * FROM unnest($1::text[], $2::text[])`,
      [exclusions.map((e) => e.pattern), exclusions.map((e) => e.source)],
    );
    await db.query(`SELECT ${UNDO_SCHEMA}.attach_all()`);
  });
  return readGuards(db);
}

/** What is installed (never changes anything). */
export async function readGuards(db: Client): Promise<GuardsStatus> {
  const versions = await installedVersions(db);
  const current =
    versions.snapshot === SNAPSHOT_API_VERSION &&
    versions.quota === QUOTA_API_VERSION &&
    versions.undo === UNDO_API_VERSION;
  let uncaptured: string[] = [];
  let captured = 0;
  let excluded: string[] = [];
  if (versions.undo > 0) {
    const r = await db.query<{ name: string; captured: boolean }>(
      `SELECT c.oid::regclass::text AS name,
              EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = $1 AND t.tgenabled = 'O') AS captured
       FROM pg_class c
       WHERE ${UNDO_SCHEMA}.is_user_table(c.oid) AND NOT ${UNDO_SCHEMA}.is_excluded(c.oid)
       ORDER BY 1`,
      [CAPTURE_TRIGGER],
    );
    uncaptured = r.rows.filter((x) => !x.captured).map((x) => x.name);
    captured = r.rows.length - uncaptured.length;
    const e = await db.query<{ pattern: string }>(
      `SELECT pattern FROM ${UNDO_SCHEMA}.excluded_tables ORDER BY pattern`,
    );
    excluded = e.rows.map((x) => x.pattern);
  }
  const users = await db.query<{ ok: boolean | null }>(
    `SELECT CASE WHEN pg_catalog.to_regclass('public.res_users') IS NOT NULL THEN
              EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                      WHERE tgname = $1 AND tgrelid = pg_catalog.to_regclass('public.res_users')) END AS ok`,
    [USERS_TRIGGER],
  );
  const events = await db.query<{ evtname: string }>(
    "SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'loomworks\\_%' AND evtenabled <> 'D' ORDER BY 1",
  );
  return {
    versions,
    current,
    version: `snapshot v${versions.snapshot}, quota v${versions.quota}, undo v${versions.undo}`,
    uncapturedTables: uncaptured,
    capturedTables: captured,
    excludedTables: excluded,
    userLimitTrigger: users.rows[0].ok,
    eventTriggers: events.rows.map((x) => x.evtname),
  };
}

/**
 * Removes the undo and quota APIs (capture triggers, event triggers, the user-limit trigger, both
 * schemas with their logs and counters). The snapshot API stays: restores and the registry's
 * snapshots rely on it.
 */
export async function removeGuards(db: Client): Promise<void> {
  await inGuardsTransaction(db, async (modules) => {
    await modules.remove(undoApiModule());
    await modules.remove(QUOTA_API);
  });
}

/** Forgets ended operations older than `retentionDays` and their captured changes; returns how many. */
export async function pruneUndoLog(db: Client, retentionDays: number): Promise<number> {
  if (!Number.isInteger(retentionDays) || retentionDays < 1) {
    throw new Error(`undo retention must be a whole number of days >= 1, got ${retentionDays}`);
  }
  const present = await db.query<{ ok: boolean }>(
    `SELECT pg_catalog.to_regprocedure('${UNDO_SCHEMA}.prune(interval)') IS NOT NULL AS ok`,
  );
  if (!present.rows[0].ok) return 0;
  await db.query("BEGIN READ WRITE");
  try {
    const r = await db.query<{ n: number }>(
      `SELECT ${UNDO_SCHEMA}.prune(pg_catalog.make_interval(days => $1)) AS n`,
      [retentionDays],
    );
    await db.query("COMMIT");
    return r.rows[0].n;
  } catch (err) {
    await db.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}
