/**
 * Tenant quotas inside each tenant database (docs/architecture.md#quotas;
 * docs/configuration.md#sql-api): the schema `loomworks_quota`, owned by the inert NOLOGIN role
 * `loomworks_guard_owner` (lib/pg/ownerRole.ts), holding
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
import { GUARD_OWNER_ROLE, SNAPSHOT_OWNER_ROLE, TENANT_ROLE_SQL, inertOwnerRoleSql } from "../pg/ownerRole";

export const QUOTA_SCHEMA = "loomworks_quota";
export const QUOTA_API_VERSION = 2;
/** SQLSTATE of "user limit reached" (the res_users trigger). */
export const USER_LIMIT_SQLSTATE = "LWU01";
/** SQLSTATE of "daily AI-operation limit reached" (take_ai_operation). */
export const AI_LIMIT_SQLSTATE = "LWA01";
/** SQLSTATE of "a table may not inherit from res_users" (the DDL guard). */
export const USER_TABLE_INHERITANCE_SQLSTATE = "LWU02";
/** SQLSTATE of "daily pre_ai restore point limit reached" (take_pre_ai_snapshot). */
export const PRE_AI_LIMIT_SQLSTATE = "LWS01";
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
// Pure helpers (the same arithmetic as the SQL below; unit-tested)
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

const owner = quoteIdent(GUARD_OWNER_ROLE);
const schema = quoteIdent(QUOTA_SCHEMA);
const seq = `${schema}.${quoteIdent(AI_COUNTER_SEQUENCE)}`;
const preAiSeq = `${schema}.${quoteIdent(PRE_AI_COUNTER_SEQUENCE)}`;
const SCHEMA_COMMENT_PREFIX = "loomworks quota api v";

/** SQL expression: the installed API version (0 when the schema is new or has no version comment). */
export const INSTALLED_VERSION_SQL = `coalesce(substring(obj_description(to_regnamespace('${QUOTA_SCHEMA}'), 'pg_namespace') FROM '^${SCHEMA_COMMENT_PREFIX}([0-9]+)$')::integer, 0)`;

/** SQL expression: today's UTC day number, from the clock (not the transaction start). */
const TODAY_SQL = "floor(extract(epoch FROM clock_timestamp()) / 86400)::bigint";

/** A schema change from the previous version to `version`, run once on databases installed before it. */
export interface QuotaMigration {
  version: number;
  /** Statements run (by EXECUTE, in order) inside the installer's transaction. */
  statements: readonly string[];
}

/**
 * Migrations of installed databases, in ascending version order. Version 1 is the baseline (the
 * CREATE ... IF NOT EXISTS statements below); a later version appends `{ version: 2, statements }`
 * here and bumps {@link QUOTA_API_VERSION}.
 */
export const QUOTA_MIGRATIONS: readonly QuotaMigration[] = [
  {
    // v2: pre_ai restore points are counted per UTC day against their own limit (the tier's maxSnapshots).
    version: 2,
    statements: [
      `ALTER TABLE ${QUOTA_SCHEMA}.limits ADD COLUMN IF NOT EXISTS max_pre_ai_snapshots_daily integer CHECK (max_pre_ai_snapshots_daily >= 0)`,
    ],
  },
];

/** A DO block running `m` only on databases whose installed version is older than `m.version`. */
export function migrationSql(m: QuotaMigration): string {
  if (!Number.isInteger(m.version) || m.version < 2) throw new Error(`migration version ${m.version} < 2`);
  const body = m.statements.map((s) => `        EXECUTE ${dollarQuote(s)};`).join("\n");
  return `
DO $migrate$
BEGIN
    IF ${INSTALLED_VERSION_SQL} < ${m.version} THEN
${body}
    END IF;
END
$migrate$;
`;
}

function dollarQuote(text: string): string {
  let tag = "$q$";
  for (let i = 0; text.includes(tag); i++) tag = `$q${i}$`;
  return `${tag}${text}${tag}`;
}

/**
 * The idempotent installation script. Run it inside ONE transaction (READ WRITE: the database may
 * be read-only for storage), as a superuser connected to the tenant database, after
 * `inertOwnerRoleSql(GUARD_OWNER_ROLE, ...)`. Re-running it converges: tables and the sequence are
 * created when missing (their data kept), functions and the trigger replaced, ownership and grants
 * re-applied. It refuses to run over a newer installed version.
 */
export function quotaApiSql(): string {
  return `
SELECT pg_advisory_xact_lock(${INSTALL_LOCK_KEY});

CREATE SCHEMA IF NOT EXISTS ${schema} AUTHORIZATION ${owner};

DO $version$
DECLARE
    installed integer := ${INSTALLED_VERSION_SQL};
BEGIN
    IF installed > ${QUOTA_API_VERSION} THEN
        RAISE EXCEPTION 'quota API version % is installed in database %; this program installs version ${QUOTA_API_VERSION}', installed, current_database()
            USING HINT = 'refusing to downgrade: run the newer program';
    END IF;
END
$version$;

ALTER SCHEMA ${schema} OWNER TO ${owner};
REVOKE ALL ON SCHEMA ${schema} FROM PUBLIC;

-- v1 baseline ------------------------------------------------------------------------------------

CREATE TABLE IF NOT EXISTS ${schema}.limits (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    tenant text NOT NULL,
    tier text NOT NULL,
    max_users integer NOT NULL CHECK (max_users >= 0),
    max_storage_bytes bigint NOT NULL CHECK (max_storage_bytes > 0),
    max_ai_operations_daily integer NOT NULL CHECK (max_ai_operations_daily >= 0),
    max_pre_ai_snapshots_daily integer CHECK (max_pre_ai_snapshots_daily >= 0),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS ${schema}.storage (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    database_bytes bigint NOT NULL,
    filestore_bytes bigint NOT NULL,
    undo_log_bytes bigint NOT NULL,
    bytes bigint NOT NULL,
    max_bytes bigint,
    percent numeric,
    state text NOT NULL CHECK (state IN ('ok', 'warning', 'read_only')),
    reason text,
    checked_at timestamptz NOT NULL,
    state_since timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS ${schema}.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS events_at_idx ON ${schema}.events (at);

-- value = utc_day_number << ${AI_COUNT_BITS} | count. CACHE 1: every nextval is seen by the next one, in any session.
CREATE SEQUENCE IF NOT EXISTS ${seq} AS bigint MINVALUE 0 START WITH 0 CACHE 1 NO CYCLE;
CREATE SEQUENCE IF NOT EXISTS ${preAiSeq} AS bigint MINVALUE 0 START WITH 0 CACHE 1 NO CYCLE;

${QUOTA_MIGRATIONS.map(migrationSql).join("\n")}
-- Ownership and privileges (every run) -------------------------------------------------------------

ALTER TABLE ${schema}.limits OWNER TO ${owner};
ALTER TABLE ${schema}.storage OWNER TO ${owner};
ALTER TABLE ${schema}.events OWNER TO ${owner};
ALTER SEQUENCE ${seq} OWNER TO ${owner};
ALTER SEQUENCE ${preAiSeq} OWNER TO ${owner};
REVOKE ALL ON TABLE ${schema}.limits, ${schema}.storage, ${schema}.events FROM PUBLIC;
REVOKE ALL ON SEQUENCE ${seq}, ${preAiSeq} FROM PUBLIC;

-- Functions ------------------------------------------------------------------------------------

-- Counts one AI operation for today (UTC) and returns today's count; over the daily limit it raises
-- SQLSTATE LWA01. Not for the tenant: loomworks_undo.begin_operation (same owner) calls it.
-- Every call counts: refused attempts and calls whose transaction rolls back too (a sequence is not
-- transactional). After a server crash the count may jump ahead by up to 32 (sequences are
-- WAL-logged in batches): it never under-counts. No limits row: no limit.
-- The next value of a daily counter sequence (utc_day << ${AI_COUNT_BITS} | count): today's count + 1.
CREATE OR REPLACE FUNCTION ${schema}.next_in_day(counter regclass, rollover_lock bigint)
RETURNS bigint
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    today bigint := ${TODAY_SQL};
    v bigint := nextval(counter);
BEGIN
    IF (v >> ${AI_COUNT_BITS}) < today THEN
        -- First call of a new day (or of all time): roll the counter over to today. A session-level
        -- lock (not a transaction-level one: the caller's transaction may run for minutes), taken and
        -- released right here; under it, nextval again: when another session has rolled over
        -- meanwhile that value is today's and is ours, else today's count starts at 1 with us.
        -- Calls that raced past the first nextval with yesterday's value all come here and queue.
        BEGIN
            PERFORM pg_advisory_lock(rollover_lock);
            v := nextval(counter);
            IF (v >> ${AI_COUNT_BITS}) < today THEN
                v := (today << ${AI_COUNT_BITS}) | 1;
                PERFORM setval(counter, v, true);
            END IF;
            PERFORM pg_advisory_unlock(rollover_lock);
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            -- never leave the session holding the lock (a warning if it was not taken yet)
            PERFORM pg_advisory_unlock(rollover_lock);
            RAISE;
        END;
    END IF;
    RETURN v;
END
$fn$;
ALTER FUNCTION ${schema}.next_in_day(regclass, bigint) OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.next_in_day(regclass, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION ${schema}.take_ai_operation()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v bigint := ${schema}.next_in_day('${QUOTA_SCHEMA}.${AI_COUNTER_SEQUENCE}'::regclass, ${AI_ROLLOVER_LOCK_KEY});
    n bigint;
    lim record;
    resets timestamptz;
BEGIN
    n := v & ${COUNT_MASK};
    SELECT l.tenant, l.tier, l.max_ai_operations_daily INTO lim FROM ${schema}.limits l;
    IF FOUND AND n > lim.max_ai_operations_daily THEN
        resets := to_timestamp(((v >> ${AI_COUNT_BITS}) + 1) * 86400);
        RAISE EXCEPTION 'daily AI-operation limit reached: % of % operations used today (UTC); the limit resets at % (tier %, limits.maxAiOperationsDaily)',
                lim.max_ai_operations_daily, lim.max_ai_operations_daily,
                to_char(resets AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', lim.tier
            USING ERRCODE = '${AI_LIMIT_SQLSTATE}',
                  DETAIL = format('tenant %s: this was attempt %s today; refused attempts count too', lim.tenant, n),
                  HINT = 'wait for the reset, or ask the platform team to raise limits.maxAiOperationsDaily for this tenant';
    END IF;
    RETURN n::integer;
END
$fn$;
ALTER FUNCTION ${schema}.take_ai_operation() OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.take_ai_operation() FROM PUBLIC;
COMMENT ON FUNCTION ${schema}.take_ai_operation() IS
    'Counts one AI operation for today (UTC) and returns the count; raises LWA01 over limits.maxAiOperationsDaily. Called by loomworks_undo.begin_operation.';

-- Counts one pre_ai restore point for today (UTC); over the daily limit (limits.max_pre_ai_snapshots_daily,
-- the tier's maxSnapshots; without it maxAiOperationsDaily) it raises SQLSTATE ${PRE_AI_LIMIT_SQLSTATE}. Called by
-- loomworks_snapshot.request (its owner role may execute it), never by the tenant directly. Same
-- counter semantics as take_ai_operation: every attempt counts.
CREATE OR REPLACE FUNCTION ${schema}.take_pre_ai_snapshot()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v bigint := ${schema}.next_in_day('${QUOTA_SCHEMA}.${PRE_AI_COUNTER_SEQUENCE}'::regclass, ${PRE_AI_ROLLOVER_LOCK_KEY});
    n bigint := v & ${COUNT_MASK};
    lim record;
BEGIN
    SELECT l.tenant, l.tier, coalesce(l.max_pre_ai_snapshots_daily, l.max_ai_operations_daily) AS max_daily
      INTO lim FROM ${schema}.limits l;
    IF FOUND AND n > lim.max_daily THEN
        RAISE EXCEPTION 'daily pre_ai restore point limit reached: % of % used today (UTC); the limit resets at % (tier %, limits.maxSnapshots)',
                lim.max_daily, lim.max_daily,
                to_char(to_timestamp(((v >> ${AI_COUNT_BITS}) + 1) * 86400) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', lim.tier
            USING ERRCODE = '${PRE_AI_LIMIT_SQLSTATE}',
                  DETAIL = format('tenant %s: this was restore point request %s today; refused requests count too', lim.tenant, n),
                  HINT = 'run the operation as kind ''write'' (undoable row by row without a restore point), wait for the reset, or ask the platform team to raise limits.maxSnapshots';
    END IF;
    RETURN n::integer;
END
$fn$;
ALTER FUNCTION ${schema}.take_pre_ai_snapshot() OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.take_pre_ai_snapshot() FROM PUBLIC;

-- Today's count of a daily counter, without counting.
CREATE OR REPLACE FUNCTION ${schema}.count_today(counter regclass)
RETURNS integer
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT CASE WHEN v IS NOT NULL AND (v >> ${AI_COUNT_BITS}) >= ${TODAY_SQL} THEN (v & ${COUNT_MASK})::integer ELSE 0 END
    FROM pg_sequence_last_value(counter) v
$fn$;
ALTER FUNCTION ${schema}.count_today(regclass) OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.count_today(regclass) FROM PUBLIC;

-- Today's AI operations, without counting.
CREATE OR REPLACE FUNCTION ${schema}.ai_operations_today()
RETURNS integer
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT ${schema}.count_today('${QUOTA_SCHEMA}.${AI_COUNTER_SEQUENCE}'::regclass)
$fn$;
ALTER FUNCTION ${schema}.ai_operations_today() OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.ai_operations_today() FROM PUBLIC;
COMMENT ON FUNCTION ${schema}.ai_operations_today() IS
    'AI operations counted today (UTC), refused attempts included; does not count.';

-- pre_ai restore points counted today, without counting.
CREATE OR REPLACE FUNCTION ${schema}.pre_ai_snapshots_today()
RETURNS integer
LANGUAGE sql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT ${schema}.count_today('${QUOTA_SCHEMA}.${PRE_AI_COUNTER_SEQUENCE}'::regclass)
$fn$;
ALTER FUNCTION ${schema}.pre_ai_snapshots_today() OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.pre_ai_snapshots_today() FROM PUBLIC;

-- Active internal users (res_users: active AND NOT share; 0 without the table). row_security off:
-- a policy of the tenant's on res_users makes the count fail instead of smaller. Rows of tables
-- inheriting from res_users are counted (and the DDL guard refuses such tables).
CREATE OR REPLACE FUNCTION ${schema}.active_internal_users()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = off
AS $fn$
DECLARE
    n bigint;
BEGIN
    IF to_regclass('public.res_users') IS NULL THEN
        RETURN 0;
    END IF;
    SELECT count(*) INTO n FROM public.res_users u WHERE u.active AND NOT u.share;
    RETURN n::integer;
END
$fn$;
ALTER FUNCTION ${schema}.active_internal_users() OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.active_internal_users() FROM PUBLIC;

-- Slots left for active internal users (0 when at or over the limit; NULL: no limit set).
CREATE OR REPLACE FUNCTION ${schema}.remaining_user_slots()
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    lim integer;
BEGIN
    SELECT l.max_users INTO lim FROM ${schema}.limits l;
    IF lim IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN greatest(lim - ${schema}.active_internal_users(), 0);
END
$fn$;
ALTER FUNCTION ${schema}.remaining_user_slots() OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.remaining_user_slots() FROM PUBLIC;
COMMENT ON FUNCTION ${schema}.remaining_user_slots() IS
    'Active internal users that may still be added (0 at or over limits.maxUsers; NULL without limits).';

-- The user limit (trigger ${USERS_TRIGGER} on public.res_users, AFTER INSERT OR UPDATE OF active, share,
-- WHEN the new row is an active internal user). It refuses only a row that BECOMES one: a tenant
-- over a lowered limit can still edit and archive users. Strict under concurrency: the limits row
-- is UPDATEd (a real new row version, not just SELECT FOR UPDATE) before counting: a concurrent
-- READ COMMITTED transaction waits for it, then counts with a fresh snapshot; a REPEATABLE READ one
-- gets a serialization failure (40001), which Odoo retries.
CREATE OR REPLACE FUNCTION ${schema}.enforce_user_limit()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET row_security = off
AS $fn$
DECLARE
    lim record;
    n bigint;
BEGIN
    IF NOT coalesce(NEW.active AND NOT NEW.share, false) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND coalesce(OLD.active AND NOT OLD.share, false) THEN
        RETURN NULL; -- it already was an active internal user: nothing is added
    END IF;
    UPDATE ${schema}.limits l SET max_users = l.max_users
        RETURNING l.tenant, l.tier, l.max_users INTO lim;
    IF NOT FOUND THEN
        RETURN NULL; -- no limits written: no limit
    END IF;
    -- an AFTER trigger: the new row (and the rest of its statement) is visible and counted
    IF (SELECT c.relrowsecurity FROM pg_class c WHERE c.oid = TG_RELID) THEN
        RAISE EXCEPTION 'user limit: res_users has row-level security enabled, so the platform cannot count the users; no user can be added'
            USING ERRCODE = '${USER_LIMIT_SQLSTATE}',
                  HINT = 'ALTER TABLE res_users DISABLE ROW LEVEL SECURITY (the ERP does not use it)';
    END IF;
    SELECT count(*) INTO n FROM public.res_users u WHERE u.active AND NOT u.share;
    IF n > lim.max_users THEN
        RAISE EXCEPTION 'user limit reached: tenant "%" allows % active internal users (tier %, limits.maxUsers) and % are active; archive a user or raise the limit',
                lim.tenant, lim.max_users, lim.tier, n - 1
            USING ERRCODE = '${USER_LIMIT_SQLSTATE}',
                  DETAIL = format('refused: user %s (login %s) would be active internal user number %s',
                                  NEW.id, coalesce(to_jsonb(NEW) ->> 'login', '?'), n),
                  HINT = 'archive (deactivate) an internal user, make the user a portal user, or ask the platform team to raise limits.maxUsers';
    END IF;
    RETURN NULL;
END
$fn$;
ALTER FUNCTION ${schema}.enforce_user_limit() OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.enforce_user_limit() FROM PUBLIC;

DO $users$
BEGIN
    IF (SELECT count(*) FROM pg_attribute a
        WHERE a.attrelid = to_regclass('public.res_users') AND a.attname IN ('active', 'share')
          AND a.atttypid = 'boolean'::regtype AND a.attnum > 0 AND NOT a.attisdropped) = 2 THEN
        -- the owner role counts users in its SECURITY DEFINER functions
        GRANT SELECT (active, share) ON TABLE public.res_users TO ${owner};
        EXECUTE 'CREATE OR REPLACE TRIGGER ${USERS_TRIGGER}
            AFTER INSERT OR UPDATE OF active, share ON public.res_users
            FOR EACH ROW
            WHEN (NEW.active AND NOT NEW.share)
            EXECUTE FUNCTION ${QUOTA_SCHEMA}.enforce_user_limit()';
    END IF;
END
$users$;

-- Read-only for storage, enforced by the platform (not only the database default the tenant's
-- session can override): while the storage check says read_only, every table of the tenant carries
-- the statement trigger ${READ_ONLY_TRIGGER} refusing INSERT and UPDATE (COPY included) in any
-- session but a superuser's; DELETE and TRUNCATE stay allowed, to free space. The DDL guard below
-- refuses new permanent tables, indexes and rewrites meanwhile. The triggers belong to the platform:
-- the tenant can neither drop, disable nor replace them (loomworks_undo's DDL guard).
CREATE OR REPLACE FUNCTION ${schema}.storage_read_only()
RETURNS boolean
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT coalesce((SELECT s.state = 'read_only' FROM ${schema}.storage s), false)
$fn$;
ALTER FUNCTION ${schema}.storage_read_only() OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.storage_read_only() FROM PUBLIC;

CREATE OR REPLACE FUNCTION ${schema}.refuse_write()
RETURNS trigger
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    reason text;
BEGIN
    SELECT s.reason INTO reason FROM ${schema}.storage s WHERE s.state = 'read_only';
    IF NOT FOUND OR (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'cannot execute % on %.% : the tenant is read-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'read_only_sql_transaction',
              DETAIL = coalesce(reason, 'storage limit reached'),
              HINT = 'delete data to free space (DELETE and TRUNCATE are allowed), or ask the platform team to raise limits.maxStorageGb';
END
$fn$;
ALTER FUNCTION ${schema}.refuse_write() OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.refuse_write() FROM PUBLIC;

-- Puts the read-only trigger on every table of the tenant (on = true) or takes it off; returns how
-- many tables changed. Run by the storage check (a superuser); never by the tenant.
CREATE OR REPLACE FUNCTION ${schema}.apply_read_only(want boolean)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS rel,
               EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = '${READ_ONLY_TRIGGER}') AS has
        FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND c.relpersistence IN ('p', 'u')
          AND ns.nspname NOT IN ('pg_catalog', 'information_schema') AND ns.nspname NOT LIKE 'pg\\_%'
          AND ns.nspname NOT LIKE 'loomworks\\_%'
        ORDER BY c.oid
    LOOP
        IF want AND NOT r.has THEN
            EXECUTE format('CREATE TRIGGER ${READ_ONLY_TRIGGER} BEFORE INSERT OR UPDATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION ${QUOTA_SCHEMA}.refuse_write()', r.rel);
            n := n + 1;
        ELSIF NOT want AND r.has THEN
            EXECUTE format('DROP TRIGGER ${READ_ONLY_TRIGGER} ON %s', r.rel);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$fn$;
ALTER FUNCTION ${schema}.apply_read_only(boolean) OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.apply_read_only(boolean) FROM PUBLIC;

-- The DDL guard of the quotas (event trigger loomworks_quota_ddl; superusers excepted): no table may
-- inherit from res_users (its rows would count without passing the user-limit trigger), and while
-- read-only no permanent table, index or materialized view is created or rewritten.
CREATE OR REPLACE FUNCTION ${schema}.on_ddl_end()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RETURN;
    END IF;
    -- to_regclass, not a cast: a database without res_users yet (a template being built) is fine
    IF EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = to_regclass('public.res_users')) THEN
        RAISE EXCEPTION 'no table may inherit from res_users or be a partition of it'
            USING ERRCODE = '${USER_TABLE_INHERITANCE_SQLSTATE}',
                  HINT = 'its rows would be users the user limit (limits.maxUsers) never sees';
    END IF;
    IF ${schema}.storage_read_only() AND EXISTS (
        SELECT 1 FROM pg_event_trigger_ddl_commands() d JOIN pg_class c ON c.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND c.relpersistence <> 't') THEN
        RAISE EXCEPTION 'the tenant is read-only: % is refused', tg_tag
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'delete data to free space, or ask the platform team to raise limits.maxStorageGb';
    END IF;
END
$fn$;
ALTER FUNCTION ${schema}.on_ddl_end() OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.on_ddl_end() FROM PUBLIC;

DROP EVENT TRIGGER IF EXISTS loomworks_quota_ddl;
CREATE EVENT TRIGGER loomworks_quota_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE INDEX',
                 'CREATE MATERIALIZED VIEW', 'REFRESH MATERIALIZED VIEW')
    EXECUTE FUNCTION ${QUOTA_SCHEMA}.on_ddl_end();

-- The tenant's view of its quotas
-- (docs/configuration.md#sql-api). storage.bytes is the last check's measure; max_bytes
-- and percent use the current limit; read_only is the database's actual setting.
CREATE OR REPLACE FUNCTION ${schema}.status()
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    lim record;
    st record;
    used integer := ${schema}.active_internal_users();
    resets timestamptz := to_timestamp((${TODAY_SQL} + 1) * 86400);
    settings text[];
    ro boolean;
    reason text;
BEGIN
    SELECT l.tenant, l.tier, l.max_users, l.max_storage_bytes, l.max_ai_operations_daily
      INTO lim FROM ${schema}.limits l;
    SELECT s.bytes, s.state, s.checked_at INTO st FROM ${schema}.storage s;
    SELECT s.setconfig INTO settings FROM pg_db_role_setting s
     WHERE s.setrole = 0 AND s.setdatabase = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
    -- setconfig entries are 'name=value'
    SELECT coalesce(bool_or(lower(substr(c, strpos(c, '=') + 1)) IN ('on', 'true', 'yes', '1')), false) INTO ro
      FROM unnest(settings) c WHERE split_part(c, '=', 1) = 'default_transaction_read_only';
    SELECT substr(c, strpos(c, '=') + 1) INTO reason
      FROM unnest(settings) c WHERE split_part(c, '=', 1) = 'loomworks.read_only_reason';
    RETURN jsonb_build_object(
        'tenant', lim.tenant,
        'tier', lim.tier,
        'users', jsonb_build_object(
            'used', used,
            'max', lim.max_users,
            'remaining', CASE WHEN lim.max_users IS NOT NULL THEN greatest(lim.max_users - used, 0) END),
        'storage', jsonb_build_object(
            'bytes', st.bytes,
            'max_bytes', lim.max_storage_bytes,
            'percent', CASE WHEN st.bytes IS NOT NULL AND lim.max_storage_bytes > 0
                            THEN round(st.bytes * 100.0 / lim.max_storage_bytes, 2) END,
            'read_only', ro,
            'state', st.state,
            'checked_at', to_char(st.checked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
            'reason', CASE WHEN ro THEN reason END),
        'ai_operations', jsonb_build_object(
            'today', ${schema}.ai_operations_today(),
            'max', lim.max_ai_operations_daily,
            'resets_at', to_char(resets AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
END
$fn$;
ALTER FUNCTION ${schema}.status() OWNER TO ${owner};
REVOKE ALL ON FUNCTION ${schema}.status() FROM PUBLIC;
COMMENT ON FUNCTION ${schema}.status() IS
    'The tenant''s quotas: {users: {used, max, remaining}, storage: {bytes, max_bytes, percent, read_only, ...}, ai_operations: {today, max, resets_at}}.';

-- The tenant role (TENANT_ROLE_SQL; nothing to grant when that is a superuser).
DO $grants$
DECLARE
    tenant name := ${TENANT_ROLE_SQL};
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = tenant) THEN
        EXECUTE format('GRANT USAGE ON SCHEMA ${QUOTA_SCHEMA} TO %I', tenant);
        EXECUTE format('GRANT EXECUTE ON FUNCTION ${QUOTA_SCHEMA}.status(), ${QUOTA_SCHEMA}.remaining_user_slots(), ${QUOTA_SCHEMA}.ai_operations_today(), ${QUOTA_SCHEMA}.pre_ai_snapshots_today(), ${QUOTA_SCHEMA}.storage_read_only() TO %I', tenant);
    END IF;
    -- loomworks_snapshot.request counts pre_ai restore points (its owner role runs it).
    IF EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = '${SNAPSHOT_OWNER_ROLE}') THEN
        GRANT USAGE ON SCHEMA ${schema} TO ${quoteIdent(SNAPSHOT_OWNER_ROLE)};
        GRANT EXECUTE ON FUNCTION ${schema}.take_pre_ai_snapshot() TO ${quoteIdent(SNAPSHOT_OWNER_ROLE)};
    END IF;
END
$grants$;

COMMENT ON SCHEMA ${schema} IS '${SCHEMA_COMMENT_PREFIX}${QUOTA_API_VERSION}';
`;
}

/**
 * Installs (or repairs) the quota API in the database `db` is connected to, as a superuser: the
 * owner role check and {@link quotaApiSql} in one READ WRITE transaction. The guard installer runs
 * the same SQL in its own transaction; this is the stand-alone form (tests, repairs).
 */
export async function installQuotaApi(db: Client): Promise<void> {
  await db.query("BEGIN READ WRITE");
  try {
    await db.query("SET LOCAL client_min_messages = warning");
    await db.query(inertOwnerRoleSql(GUARD_OWNER_ROLE, "quota API"));
    await db.query(quotaApiSql());
    await db.query("COMMIT");
  } catch (err) {
    await db.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
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
