/**
 * The scheduled storage check (docs/architecture.md#quotas): for every active tenant not under maintenance,
 * measure its storage, record it in `loomworks_quota.storage` and enforce the limit.
 *
 * Measure = `pg_database_size()` (the undo log included: the tenant's writes grow it) + the tenant's
 * filestore (`<filestoreRoot>/<database>`, apparent file sizes, hard links within it counted once).
 * The undo log's size is recorded apart (`undo_log_bytes`) for people to read.
 *
 * States against `limits.max_storage_bytes`: `ok` below 80 %, `warning` from 80 %, `read_only` from
 * 100 %. Read-only = the platform's statement trigger on every tenant table refusing INSERT and
 * UPDATE whatever the session's settings (loomworks_quota.apply_read_only; the tenant can neither
 * drop, disable nor replace it) plus `ALTER DATABASE <db> SET default_transaction_read_only = on`
 * and `loomworks.read_only_reason` (the clear text the ERP can show), then the database's other
 * sessions are terminated so they reconnect read-only. Back under 100 % (usage freed or the limit
 * raised) both settings are RESET and sessions terminated so they reconnect writable. The reason
 * setting marks the read-only state as the platform's: a `default_transaction_read_only` set by an
 * operator without it is left alone.
 *
 * Events (`loomworks_quota.events`) are recorded on transitions only: `storage_warning` (ok →
 * warning), `storage_ok` (warning → ok), `storage_read_only` (→ read_only; again, with `repaired`,
 * when the setting had been removed while still over the limit), `storage_writable` (read_only →
 * below 100 %). Each run converges; a crash at any point is finished by the next run. The job
 * connects as a superuser through withClient (the platform session: search_path, timeouts and
 * read-only pinned at connection start, so no setting of the tenant's makes it fail); every name in
 * its SQL is schema-qualified; its writes use READ WRITE transactions (the database may be read-only).
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { quoteIdent, quoteLiteral, withClient } from "../pg/client";
import { filestorePath } from "../pg/names";
import { servedTenants } from "../registry/registry";
import { dsnWithDatabase } from "../pg/dsn";
import { terminateSessions } from "../pg/sessions";
import { QUOTA_SCHEMA } from "./sql";

export type Log = (message: string) => void;
export type StorageState = "ok" | "warning" | "read_only";

export const DEFAULT_WARNING_PERCENT = 80;
/** The custom setting carrying the read-only reason (database level). */
export const READ_ONLY_REASON_SETTING = "loomworks.read_only_reason";
/** Schema whose tables are the undo log (counted against the tenant; its size is also recorded apart). */
export const UNDO_SCHEMA = "loomworks_undo";
/** Advisory lock key (per tenant database, transaction level) serializing storage checks. */
const CHECK_LOCK_KEY = 7_314_205_403;

const noLog: Log = () => undefined;

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

/** The state a measure puts a tenant in (`ok` when there is no limit). */
export function storageState(
  bytes: number,
  maxBytes: number | null,
  warningPercent = DEFAULT_WARNING_PERCENT,
): StorageState {
  if (maxBytes === null || maxBytes <= 0) return "ok";
  if (bytes >= maxBytes) return "read_only";
  if (bytes * 100 >= maxBytes * warningPercent) return "warning";
  return "ok";
}

/** Percent of the limit used, 2 decimals (null without a limit). */
export function storagePercent(bytes: number, maxBytes: number | null): number | null {
  if (maxBytes === null || maxBytes <= 0) return null;
  return Math.round((bytes * 10_000) / maxBytes) / 100;
}

/** The events a transition records (none when the state stays). */
export function storageEvents(previous: StorageState | null, next: StorageState): string[] {
  const prev = previous ?? "ok";
  if (prev === next) return [];
  if (next === "read_only") return ["storage_read_only"];
  if (prev === "read_only") return ["storage_writable"];
  return next === "warning" ? ["storage_warning"] : ["storage_ok"];
}

/** Bytes for people: `812 bytes`, `3.5 KB`, `5.21 GB` (binary units, as limits.maxStorageGb). */
export function formatBytes(n: number): string {
  const units: Array<[number, string]> = [
    [1024 ** 4, "TB"],
    [1024 ** 3, "GB"],
    [1024 ** 2, "MB"],
    [1024, "KB"],
  ];
  for (const [size, unit] of units) {
    if (n >= size) return `${Number((n / size).toFixed(2))} ${unit}`;
  }
  return `${n} bytes`;
}

/** The text of `loomworks.read_only_reason`. */
export function readOnlyReason(bytes: number, maxBytes: number, tier: string): string {
  return (
    `storage limit reached: ${formatBytes(bytes)} of ${formatBytes(maxBytes)} used ` +
    `(tier ${tier}, limits.maxStorageGb); writes are refused until usage is back under the limit ` +
    `or the limit is raised`
  );
}

// ---------------------------------------------------------------------------------------------
// Measuring
// ---------------------------------------------------------------------------------------------

/** Sum of the sizes of the regular files under `dir` (symlinks not followed; a missing dir is 0). */
export async function directoryBytes(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (d: string): Promise<void> => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await fs.readdir(d, { withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || (code === "ENOTDIR" && d !== dir)) return;
      throw err;
    }
    const subdirs: string[] = [];
    await Promise.all(
      entries.map(async (e) => {
        const p = path.join(d, e.name);
        if (e.isDirectory()) subdirs.push(p);
        else if (e.isFile()) {
          const st = await fs.lstat(p).catch((err: NodeJS.ErrnoException) => {
            if (err.code === "ENOENT") return undefined; // removed meanwhile
            throw err;
          });
          if (!st?.isFile()) return;
          if (st.nlink > 1) {
            const key = `${st.dev}:${st.ino}`;
            if (seen.has(key)) return;
            seen.add(key);
          }
          total += st.size;
        }
      }),
    );
    for (const s of subdirs) await walk(s);
  };
  await walk(dir);
  return total;
}

// ---------------------------------------------------------------------------------------------
// The check
// ---------------------------------------------------------------------------------------------

export interface StorageTarget {
  subdomain: string;
  database: string;
  /** The tenant's own filestore directory (`<filestoreRoot>/<database>`). */
  filestoreDir: string;
}

export interface StorageCheckOptions {
  /** The check's time (default: now). */
  now?: Date;
  /** Warning threshold (default 80). */
  warningPercent?: number;
}

export interface StorageCheckResult {
  subdomain: string;
  database: string;
  databaseBytes?: number;
  filestoreBytes?: number;
  undoLogBytes?: number;
  /** The measure: database (undo log included) + filestore. */
  bytes?: number;
  /** null: no limits written for this tenant. */
  maxBytes?: number | null;
  percent?: number | null;
  state?: StorageState;
  previousState?: StorageState | null;
  /** Events recorded by this run. */
  events?: string[];
  /** The database's read-only settings were changed (and its other sessions terminated). */
  settingsChanged?: boolean;
  terminatedSessions?: number;
  /** Tables the read-only trigger was put on or taken off by this run. */
  readOnlyTriggersChanged?: number;
  /** Set when this tenant failed (checkStorage only; the others still ran). */
  error?: string;
  /**
   * Set when the check failed: whether the catalog shows the platform's read-only setting on the
   * database (unset when that could not be read either).
   */
  readOnly?: boolean;
}

interface DbSettings {
  readOnly: boolean;
  reason: string | undefined;
}

function truthy(v: string | undefined): boolean {
  return v !== undefined && ["on", "true", "yes", "1"].includes(v.toLowerCase());
}

async function databaseSettings(db: Client, database: string): Promise<DbSettings> {
  const r = await db.query<{ cfg: string }>(
    `SELECT c AS cfg FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase,
            pg_catalog.unnest(s.setconfig) c
     WHERE d.datname = $1 AND s.setrole = 0`,
    [database],
  );
  const map = new Map<string, string>();
  for (const { cfg } of r.rows) {
    const i = cfg.indexOf("=");
    if (i > 0) map.set(cfg.slice(0, i), cfg.slice(i + 1));
  }
  return {
    readOnly: truthy(map.get("default_transaction_read_only")),
    reason: map.get(READ_ONLY_REASON_SETTING),
  };
}

/** Whether the database carries the platform's read-only settings (read from the catalog only). */
async function platformReadOnly(adminDsn: string, database: string): Promise<boolean> {
  return withClient(adminDsn, async (db) => {
    const s = await databaseSettings(db, database);
    return s.readOnly && s.reason !== undefined;
  });
}

/** Terminates the database's other client sessions (they reconnect with the new defaults). */
const terminateClientSessions = (db: Client, database: string): Promise<number> =>
  terminateSessions(db, { database, clientBackendsOnly: true, waitMs: 5000 });

/** How often applyReadOnlyTriggers tries before giving up (sessions terminated between tries). */
const READ_ONLY_ATTEMPTS = 3;

/**
 * Puts the platform's read-only trigger on every tenant table (or takes it off), in its own
 * transaction. A tenant transaction holding a table's lock would make it wait: after lock_timeout
 * the database's sessions are terminated and it tries again. Returns the tables changed.
 */
async function applyReadOnlyTriggers(db: Client, database: string, readOnly: boolean): Promise<number> {
  const present = await db.query<{ ok: boolean }>(
    `SELECT pg_catalog.to_regprocedure('${QUOTA_SCHEMA}.apply_read_only(boolean)') IS NOT NULL AS ok`,
  );
  if (!present.rows[0].ok) return 0;
  for (let attempt = 1; ; attempt++) {
    await db.query("BEGIN READ WRITE");
    try {
      await db.query("SET LOCAL lock_timeout = '5s'");
      await db.query("SELECT pg_catalog.pg_advisory_xact_lock($1)", [CHECK_LOCK_KEY]);
      const r = await db.query<{ n: number }>(`SELECT ${QUOTA_SCHEMA}.apply_read_only($1) AS n`, [readOnly]);
      await db.query("COMMIT");
      return r.rows[0].n;
    } catch (err) {
      await db.query("ROLLBACK").catch(() => undefined);
      if ((err as { code?: string }).code !== "55P03" || attempt >= READ_ONLY_ATTEMPTS) throw err;
      await terminateClientSessions(db, database);
    }
  }
}

/**
 * Checks one tenant: measures, records and enforces (see the module comment). Throws on failure
 * (the quota API missing, the database unreachable, ...).
 */
export async function checkTenantStorage(
  adminDsn: string,
  target: StorageTarget,
  opts: StorageCheckOptions = {},
  log: Log = noLog,
): Promise<StorageCheckResult> {
  const now = opts.now ?? new Date();
  const warningPercent = opts.warningPercent ?? DEFAULT_WARNING_PERCENT;
  const { subdomain, database } = target;
  const filestoreBytes = await directoryBytes(target.filestoreDir);
  return withClient(dsnWithDatabase(adminDsn, database), async (db) => {
    const present = await db.query<{ ok: boolean }>(
      `SELECT pg_catalog.to_regclass('${QUOTA_SCHEMA}.storage') IS NOT NULL AS ok`,
    );
    if (!present.rows[0].ok) {
      throw new Error(
        `the quota API (schema ${QUOTA_SCHEMA}) is not installed in database "${database}"; run pulumi up to install the tenant guards`,
      );
    }
    let result: StorageCheckResult;
    let settingsChanged = false;
    await db.query("BEGIN READ WRITE");
    try {
      await db.query("SELECT pg_catalog.pg_advisory_xact_lock($1)", [CHECK_LOCK_KEY]);
      const sizes = await db.query<{ database_bytes: string; undo_bytes: string }>(
        `SELECT pg_catalog.pg_database_size(pg_catalog.current_database())::text AS database_bytes,
                coalesce((SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(c.oid)) FROM pg_catalog.pg_class c
                          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                          WHERE n.nspname = $1 AND c.relkind IN ('r', 'm')), 0)::text AS undo_bytes`,
        [UNDO_SCHEMA],
      );
      const databaseBytes = Number(sizes.rows[0].database_bytes);
      const undoLogBytes = Number(sizes.rows[0].undo_bytes);
      const bytes = databaseBytes + filestoreBytes;

      const lim = await db.query<{ tenant: string; tier: string; max_storage_bytes: string }>(
        `SELECT tenant, tier, max_storage_bytes::text AS max_storage_bytes FROM ${QUOTA_SCHEMA}.limits`,
      );
      const maxBytes = lim.rows[0] ? Number(lim.rows[0].max_storage_bytes) : null;
      const tier = lim.rows[0]?.tier ?? "?";
      const prev = await db.query<{ state: StorageState; state_since: Date }>(
        `SELECT state, state_since FROM ${QUOTA_SCHEMA}.storage FOR UPDATE`,
      );
      const previousState = prev.rows[0]?.state ?? null;
      const state = storageState(bytes, maxBytes, warningPercent);
      const percent = storagePercent(bytes, maxBytes);
      const reason =
        state === "read_only" && maxBytes !== null ? readOnlyReason(bytes, maxBytes, tier) : null;
      const detail = { bytes, max_bytes: maxBytes, percent, from: previousState, to: state };

      // Enforcement: make the database's settings match the state.
      const current = await databaseSettings(db, database);
      const events = storageEvents(previousState, state);
      const dbName = quoteIdent(database);
      if (state === "read_only") {
        if (!current.readOnly || current.reason !== reason) {
          await db.query(
            `ALTER DATABASE ${dbName} SET ${READ_ONLY_REASON_SETTING} = ${quoteLiteral(reason ?? "")}`,
          );
          if (!current.readOnly) {
            await db.query(`ALTER DATABASE ${dbName} SET default_transaction_read_only = on`);
            settingsChanged = true;
            // Still over the limit, but someone had switched read-only off: record the repair.
            if (events.length === 0) events.push("storage_read_only");
          }
        }
      } else if (current.reason !== undefined) {
        await db.query(`ALTER DATABASE ${dbName} RESET default_transaction_read_only`);
        await db.query(`ALTER DATABASE ${dbName} RESET ${READ_ONLY_REASON_SETTING}`);
        settingsChanged = true;
      } else if (current.readOnly) {
        log(
          `${subdomain}: default_transaction_read_only is on without a storage reason: left alone (not the quota check's)`,
        );
      }

      const stateSince = previousState === state && prev.rows[0] ? prev.rows[0].state_since : now;
      await db.query(
        `INSERT INTO ${QUOTA_SCHEMA}.storage AS s (singleton, database_bytes, filestore_bytes, undo_log_bytes, bytes,
                                               max_bytes, percent, state, reason, checked_at, state_since)
         VALUES (true, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (singleton) DO UPDATE SET
             database_bytes = EXCLUDED.database_bytes, filestore_bytes = EXCLUDED.filestore_bytes,
             undo_log_bytes = EXCLUDED.undo_log_bytes, bytes = EXCLUDED.bytes, max_bytes = EXCLUDED.max_bytes,
             percent = EXCLUDED.percent, state = EXCLUDED.state, reason = EXCLUDED.reason,
             checked_at = EXCLUDED.checked_at, state_since = EXCLUDED.state_since`,
        [
          databaseBytes,
          filestoreBytes,
          undoLogBytes,
          bytes,
          maxBytes,
          percent,
          state,
          reason,
          now,
          stateSince,
        ],
      );
      for (const kind of events) {
        const repaired = previousState === state;
        await db.query(`INSERT INTO ${QUOTA_SCHEMA}.events (at, kind, detail) VALUES ($1, $2, $3::jsonb)`, [
          now,
          kind,
          JSON.stringify({
            ...detail,
            ...(reason ? { reason } : {}),
            ...(repaired ? { repaired: true } : {}),
          }),
        ]);
      }
      await db.query("COMMIT");
      result = {
        subdomain,
        database,
        databaseBytes,
        filestoreBytes,
        undoLogBytes,
        bytes,
        maxBytes,
        percent,
        state,
        previousState,
        events,
        settingsChanged,
        terminatedSessions: 0,
      };
    } catch (err) {
      await db.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
    result.readOnlyTriggersChanged = await applyReadOnlyTriggers(db, database, result.state === "read_only");
    if (settingsChanged) {
      result.terminatedSessions = await terminateClientSessions(db, database);
      log(
        `${subdomain}: storage ${result.state === "read_only" ? "read-only" : "writable again"} ` +
          `(${formatBytes(result.bytes ?? 0)}${result.maxBytes ? ` of ${formatBytes(result.maxBytes)}` : ""}); ` +
          `${result.terminatedSessions} session(s) terminated to reconnect`,
      );
    }
    for (const e of result.events ?? [])
      if (e !== "storage_read_only" && e !== "storage_writable")
        log(`${subdomain}: ${e} (${result.percent ?? "?"} %)`);
    return result;
  });
}

export interface CheckStorageOptions extends StorageCheckOptions {
  /** Directory holding one filestore directory per tenant database. */
  filestoreRoot: string;
  /** Only these tenants (default: every active tenant not under maintenance). */
  subdomains?: readonly string[];
}

/**
 * The scheduled job: checks every active tenant not under maintenance, in subdomain order. A
 * failing tenant is reported in its result (`error`) and the others still run.
 */
export async function checkStorage(
  adminDsn: string,
  opts: CheckStorageOptions,
  log: Log = noLog,
): Promise<StorageCheckResult[]> {
  const tenants = await servedTenants(adminDsn, opts.subdomains);
  const checkOpts: StorageCheckOptions = {
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.warningPercent !== undefined ? { warningPercent: opts.warningPercent } : {}),
  };
  const results: StorageCheckResult[] = [];
  for (const t of tenants) {
    try {
      const filestoreDir = filestorePath(opts.filestoreRoot, t.database_name);
      results.push(
        await checkTenantStorage(
          adminDsn,
          { subdomain: t.subdomain, database: t.database_name, filestoreDir },
          checkOpts,
          log,
        ),
      );
    } catch (err) {
      const error = (err as Error).message;
      log(`${t.subdomain}: storage check failed: ${error}`);
      const readOnly = await platformReadOnly(adminDsn, t.database_name).catch(() => undefined);
      results.push({
        subdomain: t.subdomain,
        database: t.database_name,
        error,
        ...(readOnly === undefined ? {} : { readOnly }),
      });
    }
  }
  return results;
}
