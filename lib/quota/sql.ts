/**
 * Tenant quotas inside each tenant database (docs/architecture.md#quotas;
 * docs/configuration.md#sql-api): the schema `loomworks_quota` (its SQL in sql/quota/), owned by the
 * inert NOLOGIN role `loomworks_guard_owner` (lib/pg/ownerRole.ts), holding
 *
 *  - `limits`: one row, the tenant's effective limits, written by the platform ({@link writeQuotaLimits})
 *    on provisioning and on every `pulumi up` that changes them;
 *  - `storage`: one row, the last measurement of the scheduled storage check (lib/quota/storage.ts);
 *  - `events`: the history (limits changed, storage warning / read-only / writable);
 *  - the AI-operation counter: a SEQUENCE whose value is `utc_day_number << 32 | count`. A sequence
 *    is atomic and non-transactional, so concurrent AI transactions (Odoo runs REPEATABLE READ)
 *    never wait for each other or fail to serialize on a hot counter row; the day is part of the
 *    value, so "reset at midnight UTC" needs no job. {@link QUOTA_SCHEMA}.take_ai_operation() is
 *    called by `loomworks_undo.begin_operation` (same owner role), never by the tenant directly;
 *  - the user limit: the row trigger `loomworks_quota_users` on `public.res_users` refusing a row
 *    that becomes an active internal user (`active AND NOT share`) beyond `max_users`;
 *  - `status()`, `remaining_user_slots()`, `ai_operations_today()`: what the tenant role may call.
 *
 * Counter semantics (documented for operators in docs/operations/quotas.md): every call of
 * take_ai_operation() counts, including refused attempts and calls whose transaction later rolls
 * back (a sequence is not transactional). After a server crash the counter may jump ahead by up to
 * 32 (PostgreSQL WAL-logs sequence values in batches of 32 and recovers to the end of the batch): it
 * can over-count, never under-count.
 *
 * Privileges: PUBLIC gets nothing; the tenant role (the database owner) gets USAGE on the schema and
 * EXECUTE on the three tenant-facing functions only: it cannot read or write the tables, call
 * take_ai_operation, or drop the schema (it owns neither). Every function is SECURITY DEFINER with
 * `search_path = pg_catalog, pg_temp` and qualifies every name, so a tenant cannot make it run code
 * of its own. The tenant role owns `public.res_users` (Odoo must own its tables); the DDL guards
 * (loomworks_undo's, and loomworks_quota_ddl here) refuse dropping, disabling or replacing the
 * platform's triggers, tables inheriting from res_users, and new permanent tables while read-only;
 * the users are counted with row_security off. Read-only for storage is enforced by the platform's
 * statement trigger on every table (apply_read_only), not only by the database default
 * (v2; docs/operations/security.md).
 */
import type { Client } from "pg";
import { quoteIdent } from "../pg/client";
import { GUARD_OWNER_ROLE, SNAPSHOT_OWNER_ROLE } from "../pg/ownerRole";
import { installSqlModules, renderSqlModule, versionCommentPrefix, type SqlModule } from "../sql/modules";
import { GUARD_SQLSTATES } from "../sql/sqlstates";

export const QUOTA_SCHEMA = "loomworks_quota";
export const QUOTA_API_VERSION = 3;
/** SQLSTATE of "user limit reached" (the res_users trigger). */
export const USER_LIMIT_SQLSTATE = GUARD_SQLSTATES.userLimit;
/** SQLSTATE of "daily AI-operation limit reached" (take_ai_operation). */
export const AI_LIMIT_SQLSTATE = GUARD_SQLSTATES.aiLimit;
/** SQLSTATE of "a table may not inherit from res_users" (the DDL guard). */
export const USER_TABLE_INHERITANCE_SQLSTATE = GUARD_SQLSTATES.userTableInheritance;
/** SQLSTATE of "daily pre_ai restore point limit reached" (take_pre_ai_snapshot). */
export const PRE_AI_LIMIT_SQLSTATE = GUARD_SQLSTATES.preAiLimit;
/** The statement trigger on every user table while the tenant is read-only for storage. */
export const READ_ONLY_TRIGGER = "loomworks_quota_read_only";
/** The pre_ai restore point counter sequence (same encoding as the AI-operation counter). */
export const PRE_AI_COUNTER_SEQUENCE = "pre_ai_snapshots";
/** The row trigger on public.res_users. */
export const USERS_TRIGGER = "loomworks_quota_users";
/** The AI-operation counter sequence (in {@link QUOTA_SCHEMA}). */
export const AI_COUNTER_SEQUENCE = "ai_operations";
/** Bits of the counter value holding the count; the UTC day number sits above them. */
export const AI_COUNT_BITS = 32;
/** Advisory lock key (per tenant database) serializing installations of the quota API. */
const INSTALL_LOCK_KEY = 7_314_205_401;
/** Advisory lock key (per tenant database, session level, held for microseconds): the counter's day rollover. */
export const AI_ROLLOVER_LOCK_KEY = 7_314_205_402;
/** Advisory lock key of the pre_ai counter's day rollover. */
const PRE_AI_ROLLOVER_LOCK_KEY = 7_314_205_404;

const MS_PER_DAY = 86_400_000;
const COUNT_MASK = (1n << BigInt(AI_COUNT_BITS)) - 1n;
const GIB = 1024 ** 3;

// ---------------------------------------------------------------------------------------------
// Pure helpers (the same arithmetic as sql/quota/counters.sql; unit-tested)
// ---------------------------------------------------------------------------------------------

/** Days since 1970-01-01 in UTC. */
export function utcDayNumber(at: Date): number {
  return Math.floor(at.getTime() / MS_PER_DAY);
}

/** The counter's sequence value for `count` operations on UTC day `day`. */
export function encodeAiCounter(day: number, count: number): bigint {
  if (!Number.isInteger(day) || day < 0) throw new Error(`invalid day number ${day}`);
  if (!Number.isInteger(count) || count < 0 || BigInt(count) > COUNT_MASK)
    throw new Error(`invalid count ${count}`);
  return (BigInt(day) << BigInt(AI_COUNT_BITS)) | BigInt(count);
}

/** The day number and count of a counter sequence value. */
export function decodeAiCounter(value: bigint | string | number): { day: number; count: number } {
  const v = BigInt(value);
  if (v < 0n) throw new Error(`invalid counter value ${value}`);
  return { day: Number(v >> BigInt(AI_COUNT_BITS)), count: Number(v & COUNT_MASK) };
}

/** When the daily AI-operation count next resets: the next midnight UTC after `at`. */
export function aiResetTime(at: Date): Date {
  return new Date((utcDayNumber(at) + 1) * MS_PER_DAY);
}

/** `limits.maxStorageGb` (GiB, may be fractional) in bytes: round(gb × 1024³). */
export function storageGbToBytes(gb: number): number {
  if (!Number.isFinite(gb) || gb <= 0) throw new Error(`maxStorageGb must be a positive number (got ${gb})`);
  const bytes = Math.round(gb * GIB);
  if (!Number.isSafeInteger(bytes)) throw new Error(`maxStorageGb ${gb} is too large`);
  return Math.max(bytes, 1);
}

// ---------------------------------------------------------------------------------------------
// The installation script
// ---------------------------------------------------------------------------------------------

/** SQL expression: the installed API version (0 when the schema is new or has no version comment). */
export const INSTALLED_VERSION_SQL = `coalesce(substring(obj_description(to_regnamespace('${QUOTA_SCHEMA}'), 'pg_namespace') FROM '^${versionCommentPrefix("quota")}([0-9]+)$')::integer, 0)`;

/** SQL expression: today's UTC day number, from the clock (not the transaction start). */
const TODAY_SQL = "floor(extract(epoch FROM clock_timestamp()) / 86400)::bigint";

/**
 * The quota API as an SQL module (sql/quota/). Its script is idempotent: run it inside ONE
 * transaction (READ WRITE: the database may be read-only for storage), as a superuser connected to
 * the tenant database. Re-running it converges: tables and the sequences are created when missing
 * (their data kept), functions and the trigger replaced, ownership and grants re-applied. It refuses
 * to run over a newer installed version; a database installed before a version is migrated
 * (sql/quota/tables.sql).
 */
export const QUOTA_API: SqlModule = {
  name: "quota",
  schema: QUOTA_SCHEMA,
  version: QUOTA_API_VERSION,
  owner: GUARD_OWNER_ROLE,
  lockKey: INSTALL_LOCK_KEY,
  definitions: ["tables.sql", "counters.sql", "users.sql", "read-only.sql", "status.sql"],
  grants: ["grants.sql"],
  removal: ["remove.sql"],
  values: {
    installed_version: INSTALLED_VERSION_SQL,
    today: TODAY_SQL,
    count_bits: AI_COUNT_BITS,
    count_mask: COUNT_MASK.toString(),
    ai_counter_sequence: AI_COUNTER_SEQUENCE,
    pre_ai_counter_sequence: PRE_AI_COUNTER_SEQUENCE,
    ai_rollover_lock: AI_ROLLOVER_LOCK_KEY,
    pre_ai_rollover_lock: PRE_AI_ROLLOVER_LOCK_KEY,
    read_only_trigger: READ_ONLY_TRIGGER,
    users_trigger: USERS_TRIGGER,
    snapshot_owner: quoteIdent(SNAPSHOT_OWNER_ROLE),
    snapshot_owner_name: SNAPSHOT_OWNER_ROLE,
  },
};

/** The installation script of {@link QUOTA_API} (without its advisory lock, which the installer takes). */
export function quotaApiSql(): string {
  return renderSqlModule(QUOTA_API);
}

/**
 * Installs (or repairs) the quota API in the database `db` is connected to, as a superuser, in one
 * READ WRITE transaction. The guard installer installs it with the other APIs; this is the
 * stand-alone form (tests, repairs).
 */
export async function installQuotaApi(db: Client): Promise<void> {
  await installSqlModules(db, [QUOTA_API]);
}

// ---------------------------------------------------------------------------------------------
// Limits and status
// ---------------------------------------------------------------------------------------------

export interface QuotaLimitsInput {
  subdomain: string;
  tier: string;
  limits: { maxUsers: number; maxStorageGb: number; maxAiOperationsDaily: number; maxSnapshots?: number };
}

/** The `limits` row for a tenant's effective limits (maxSnapshots is enforced by snapshot retention, not here). */
export interface QuotaLimitsRow {
  tenant: string;
  tier: string;
  maxUsers: number;
  maxStorageBytes: number;
  maxAiOperationsDaily: number;
  /** pre_ai restore points per UTC day: the tier's maxSnapshots (null: maxAiOperationsDaily applies). */
  maxPreAiSnapshotsDaily: number | null;
}

const MAX_INT4 = 2_147_483_647;

function countLimit(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > MAX_INT4)
    throw new Error(`limits.${name} must be an integer from 0 to ${MAX_INT4} (got ${v})`);
  return v;
}

/** Validates and converts limits into the row {@link writeQuotaLimits} stores. */
export function quotaLimitsRow(v: QuotaLimitsInput): QuotaLimitsRow {
  if (!v.subdomain) throw new Error("writeQuotaLimits: subdomain is required");
  if (!v.tier) throw new Error("writeQuotaLimits: tier is required");
  return {
    tenant: v.subdomain,
    tier: v.tier,
    maxUsers: countLimit("maxUsers", v.limits.maxUsers),
    maxStorageBytes: storageGbToBytes(v.limits.maxStorageGb),
    maxAiOperationsDaily: countLimit("maxAiOperationsDaily", v.limits.maxAiOperationsDaily),
    maxPreAiSnapshotsDaily:
      v.limits.maxSnapshots === undefined ? null : countLimit("maxSnapshots", v.limits.maxSnapshots),
  };
}

function limitsJson(r: QuotaLimitsRow): Record<string, unknown> {
  return {
    tenant: r.tenant,
    tier: r.tier,
    max_users: r.maxUsers,
    max_storage_bytes: r.maxStorageBytes,
    max_ai_operations_daily: r.maxAiOperationsDaily,
    max_pre_ai_snapshots_daily: r.maxPreAiSnapshotsDaily,
  };
}

/**
 * Writes the tenant's effective limits into `loomworks_quota.limits` (insert or update in place) and
 * records a `limits_changed` event when anything changed. `db`: a superuser connection to the tenant
 * database (READ WRITE transaction: the database may be read-only for storage). Takes effect at
 * once for users and AI operations; storage is re-evaluated by the next check.
 */
export async function writeQuotaLimits(db: Client, v: QuotaLimitsInput): Promise<{ changed: boolean }> {
  const row = quotaLimitsRow(v);
  await db.query("BEGIN READ WRITE");
  try {
    const present = await db.query<{ ok: boolean }>(
      `SELECT to_regclass('${QUOTA_SCHEMA}.limits') IS NOT NULL AS ok`,
    );
    if (!present.rows[0].ok) {
      throw new Error(
        `tenant "${row.tenant}": the quota API (schema ${QUOTA_SCHEMA}) is not installed in this database; install the tenant guards first`,
      );
    }
    const cur = await db.query<{
      tenant: string;
      tier: string;
      max_users: number;
      max_storage_bytes: string;
      max_ai_operations_daily: number;
      max_pre_ai_snapshots_daily: number | null;
    }>(
      `SELECT tenant, tier, max_users, max_storage_bytes::text AS max_storage_bytes, max_ai_operations_daily,
              max_pre_ai_snapshots_daily
       FROM ${QUOTA_SCHEMA}.limits FOR UPDATE`,
    );
    const old = cur.rows[0];
    const before: QuotaLimitsRow | undefined = old && {
      tenant: old.tenant,
      tier: old.tier,
      maxUsers: old.max_users,
      maxStorageBytes: Number(old.max_storage_bytes),
      maxAiOperationsDaily: old.max_ai_operations_daily,
      maxPreAiSnapshotsDaily: old.max_pre_ai_snapshots_daily,
    };
    const same =
      before !== undefined &&
      before.tenant === row.tenant &&
      before.tier === row.tier &&
      before.maxUsers === row.maxUsers &&
      before.maxStorageBytes === row.maxStorageBytes &&
      before.maxAiOperationsDaily === row.maxAiOperationsDaily &&
      before.maxPreAiSnapshotsDaily === row.maxPreAiSnapshotsDaily;
    if (same) {
      await db.query("COMMIT");
      return { changed: false };
    }
    await db.query(
      `INSERT INTO ${QUOTA_SCHEMA}.limits AS l
           (singleton, tenant, tier, max_users, max_storage_bytes, max_ai_operations_daily,
            max_pre_ai_snapshots_daily, updated_at)
       VALUES (true, $1, $2, $3, $4, $5, $6, clock_timestamp())
       ON CONFLICT (singleton) DO UPDATE SET
           tenant = EXCLUDED.tenant, tier = EXCLUDED.tier, max_users = EXCLUDED.max_users,
           max_storage_bytes = EXCLUDED.max_storage_bytes,
           max_ai_operations_daily = EXCLUDED.max_ai_operations_daily,
           max_pre_ai_snapshots_daily = EXCLUDED.max_pre_ai_snapshots_daily, updated_at = EXCLUDED.updated_at`,
      [
        row.tenant,
        row.tier,
        row.maxUsers,
        row.maxStorageBytes,
        row.maxAiOperationsDaily,
        row.maxPreAiSnapshotsDaily,
      ],
    );
    await db.query(`INSERT INTO ${QUOTA_SCHEMA}.events (kind, detail) VALUES ('limits_changed', $1::jsonb)`, [
      JSON.stringify({ from: before ? limitsJson(before) : null, to: limitsJson(row) }),
    ]);
    await db.query("COMMIT");
    return { changed: true };
  } catch (err) {
    await db.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/** `loomworks_quota.status()` (docs/configuration.md#sql-api), typed. Limits are null until written. */
export interface QuotaStatus {
  tenant: string | null;
  tier: string | null;
  users: { used: number; max: number | null; remaining: number | null };
  storage: {
    /** The last check's measure (null before the first check). */
    bytes: number | null;
    max_bytes: number | null;
    percent: number | null;
    /** The database's `default_transaction_read_only` setting is on. */
    read_only: boolean;
    state: "ok" | "warning" | "read_only" | null;
    /** ISO time (UTC) of the last check. */
    checked_at: string | null;
    /** `loomworks.read_only_reason` while read-only. */
    reason: string | null;
  };
  ai_operations: { today: number; max: number | null; resets_at: string };
}

/** Calls `loomworks_quota.status()` on `db` (any role allowed to). */
export async function readQuotaStatus(db: Client): Promise<QuotaStatus> {
  const r = await db.query<{ s: QuotaStatus }>(`SELECT ${QUOTA_SCHEMA}.status() AS s`);
  return r.rows[0].s;
}
