/**
 * The undo API inside each tenant database (docs/architecture.md#undo, docs/configuration.md#sql-api): schema
 * `loomworks_undo`, installed by lib/guards/install.ts.
 *
 * Capture: an AFTER ROW trigger `loomworks_undo_capture` on every user table, with
 * `WHEN (current_setting('loomworks.operation', true) <> '')`, so a write outside an AI operation
 * costs one GUC lookup and queues nothing. Rows changed by `ON DELETE CASCADE` / `SET NULL` fire
 * the child tables' triggers in the same transaction and are captured like any other. The trigger's
 * arguments are the table's primary-key columns (the row key is stored with every change). An
 * event trigger attaches capture to tables created later and keeps the arguments right when a
 * primary key changes; another refuses to drop or disable the platform's triggers (superusers
 * excepted). TRUNCATE inside an operation is refused (row triggers do not see it).
 *
 * Privileges (v3; docs/operations/security.md): the tenant role may read the logs and call the
 * documented API; it cannot write any table of the schema. The log accepts rows only from the capture
 * path: capture() is SECURITY DEFINER (owned by the NOLOGIN guard owner role, search_path pinned)
 * and refuses to run from any trigger but the platform's capture trigger on a user table; the DDL
 * guard refuses a tenant's trigger that calls a platform function or carries a platform trigger's
 * name unless it is exactly what attach() makes. An undo refuses any planned row whose table is not
 * a captured user table (LWN02), runs with the caller's rights (the operator's undo connects as the
 * tenant), and is recorded as an undo only by close_undo(), which checks in the log that the rows
 * were brought back. Internals that write (prune, attach_all) are the platform's only; the rest the
 * tenant may reach only does what the documented API does. The daily AI-operation counter
 * (loomworks_quota.take_ai_operation) is not reachable by the tenant at all.
 *
 * `loomworks.operation` is set with set_config(..., is_local => true) by the public (SECURITY
 * INVOKER) wrappers: a function carrying a `SET` clause (as every SECURITY DEFINER function here
 * does) restores on exit every setting changed inside it, so the definer parts return the id and the
 * invoker wrapper sets it.
 */
import { quoteIdent } from "../pg/client";
import { GUARD_OWNER_ROLE, TENANT_ROLE_SQL } from "../pg/ownerRole";

export const UNDO_SCHEMA = "loomworks_undo";
export const UNDO_API_VERSION = 3;
/** The setting holding the current transaction's operation id. */
export const OPERATION_SETTING = "loomworks.operation";
export const CAPTURE_TRIGGER = "loomworks_undo_capture";
export const TRUNCATE_TRIGGER = "loomworks_undo_truncate";

/**
 * Tables never captured, whatever the stack says: notifications, logs, presence, outgoing mail
 * (sent mails are deleted, which would make every later undo report a conflict) and number
 * sequences (`ir_sequence`: an undo must never hand out an invoice number twice).
 */
export const DEFAULT_EXCLUDED_TABLES: readonly string[] = Object.freeze([
  "bus_bus",
  "bus_presence",
  "ir_logging",
  "ir_profile",
  "res_users_log",
  "ir_cron_trigger",
  "ir_cron_progress",
  "ir_sequence",
  "ir_sequence_date_range",
  "mail_mail",
]);

/** SQLSTATEs raised by the API (class `LW`: the ERP can tell them apart from PostgreSQL's own). */
export const UNDO_ERRORS = {
  /** The operation changed rows of a table without a primary key. */
  noPrimaryKey: "LWN01",
  /** The operation's log names a table that is not a captured user table of the tenant. */
  notCaptured: "LWN02",
  /** Unknown operation, already undone, ended, or of the wrong kind. */
  badOperation: "LWO01",
  /** An operation is already active in this transaction. */
  operationActive: "LWO02",
  /** Undoing would change rows the operation did not touch (cascades); nothing was changed. */
  sideEffects: "LWX01",
  /** The rows did not end in their recorded state after the undo; nothing was changed. */
  verification: "LWX02",
  /** TRUNCATE inside an operation. */
  truncate: "LWT01",
  /** Dropping or disabling one of the platform's triggers. */
  guardedTrigger: "LWG01",
} as const;

const s = quoteIdent(UNDO_SCHEMA);
const owner = quoteIdent(GUARD_OWNER_ROLE);
const OP = OPERATION_SETTING;
/** Definer functions: fixed search path (the caller's cannot redirect what they resolve). */
const PINNED = "SET search_path = pg_catalog, pg_temp";
const DEFINER = `SECURITY DEFINER ${PINNED}`;

/** Tables and indexes. Version-gated migrations go after this block as versions are added. */
const tablesSql = (H: string): string => `
CREATE SCHEMA IF NOT EXISTS ${s} AUTHORIZATION ${owner};
ALTER SCHEMA ${s} OWNER TO ${owner};
REVOKE ALL ON SCHEMA ${s} FROM PUBLIC;
${H === s ? `CREATE EXTENSION IF NOT EXISTS hstore WITH SCHEMA ${s};` : ""}

CREATE TABLE IF NOT EXISTS ${s}.operation_log (
    id uuid PRIMARY KEY,
    session_id text CHECK (length(session_id) <= 200),
    kind text NOT NULL CHECK (kind IN ('write', 'destructive', 'undo')),
    description text CHECK (length(description) <= 2000),
    undoes uuid,
    snapshot_id uuid,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at timestamptz,
    started_by text NOT NULL DEFAULT session_user,
    summary jsonb
);
CREATE INDEX IF NOT EXISTS operation_log_session ON ${s}.operation_log (session_id, started_at DESC);
CREATE INDEX IF NOT EXISTS operation_log_started ON ${s}.operation_log (started_at DESC);
CREATE INDEX IF NOT EXISTS operation_log_undoes ON ${s}.operation_log (undoes) WHERE undoes IS NOT NULL;

-- No primary key and no foreign key: every captured row costs as little as possible.
CREATE TABLE IF NOT EXISTS ${s}.change_log (
    id bigint GENERATED ALWAYS AS IDENTITY,
    operation_id uuid NOT NULL,
    table_oid oid NOT NULL,
    action "char" NOT NULL,
    row_key jsonb,
    old_row ${H}.hstore,
    new_row ${H}.hstore
);
CREATE INDEX IF NOT EXISTS change_log_operation ON ${s}.change_log (operation_id, id);
CREATE INDEX IF NOT EXISTS change_log_row ON ${s}.change_log (table_oid, row_key);

-- v1 → v2: row images were jsonb (lossy: JSON null vs SQL NULL, json text, numeric scale); they
-- are hstore now, and row keys hold the key columns' text forms.
DO $migrate$
BEGIN
    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = '${UNDO_SCHEMA}.change_log'::regclass AND attname = 'old_row')
       = 'jsonb'::regtype THEN
        CREATE FUNCTION ${s}.v1_image(j jsonb) RETURNS ${H}.hstore LANGUAGE sql IMMUTABLE AS
            'SELECT ${H}.hstore(array_agg(e.key), array_agg(e.value)) FROM jsonb_each_text(j) e';
        ALTER TABLE ${s}.change_log
            ALTER COLUMN old_row TYPE ${H}.hstore USING ${s}.v1_image(old_row),
            ALTER COLUMN new_row TYPE ${H}.hstore USING ${s}.v1_image(new_row);
        DROP FUNCTION ${s}.v1_image(jsonb);
        UPDATE ${s}.change_log
        SET row_key = (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each_text(row_key) e)
        WHERE row_key IS NOT NULL;
        DROP FUNCTION IF EXISTS ${s}.same_row(jsonb, jsonb);
        DROP FUNCTION IF EXISTS ${s}.key_builder(text[], text);
    END IF;
END
$migrate$;

-- Table name patterns (* wildcard; "schema.table" or just "table") never captured.
CREATE TABLE IF NOT EXISTS ${s}.excluded_tables (
    pattern text PRIMARY KEY,
    source text NOT NULL CHECK (source IN ('builtin', 'stack'))
);

ALTER TABLE ${s}.operation_log OWNER TO ${owner};
ALTER TABLE ${s}.change_log OWNER TO ${owner};
ALTER TABLE ${s}.excluded_tables OWNER TO ${owner};
REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM PUBLIC;
`;

/** Capture: trigger functions, attach/detach, event triggers. */
const captureSql = (H: string): string => `
-- SECURITY DEFINER: the tenant cannot write the log itself. Only the platform's trigger on a
-- user table may call it (the DDL guard keeps other triggers from using it; this is the second line).
CREATE OR REPLACE FUNCTION ${s}.capture() RETURNS trigger
LANGUAGE plpgsql ${DEFINER} AS $fn$
DECLARE
    j ${H}.hstore;
    o ${H}.hstore;
    k jsonb;
BEGIN
    IF TG_NAME <> '${CAPTURE_TRIGGER}' OR TG_LEVEL <> 'ROW' OR TG_WHEN <> 'AFTER'
       OR TG_TABLE_SCHEMA LIKE 'pg\\_%' OR TG_TABLE_SCHEMA LIKE 'loomworks\\_%' OR TG_TABLE_SCHEMA = 'information_schema' THEN
        RAISE EXCEPTION 'loomworks_undo.capture() is the platform''s capture trigger; % on %.% is not', TG_NAME,
                TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = 'LWG01';
    END IF;
    -- hstore: every column's exact text form (SQL NULL distinct from JSON null, numeric scale, json
    -- text, array bounds all kept), and a quicker conversion than to_jsonb.
    IF TG_OP = 'DELETE' THEN
        j := ${H}.hstore(OLD);
    ELSE
        j := ${H}.hstore(NEW);
        IF TG_OP = 'UPDATE' THEN
            o := ${H}.hstore(OLD);
            IF o OPERATOR(${H}.=) j THEN
                RETURN NULL;  -- a write that changed nothing is not a change
            END IF;
        END IF;
    END IF;
    IF TG_NARGS = 1 THEN
        k := jsonb_build_object(TG_ARGV[0], j OPERATOR(${H}.->) TG_ARGV[0]);
    ELSIF TG_NARGS > 1 THEN
        k := '{}';
        FOR i IN 0 .. TG_NARGS - 1 LOOP
            k := k || jsonb_build_object(TG_ARGV[i], j OPERATOR(${H}.->) TG_ARGV[i]);
        END LOOP;
    END IF;
    INSERT INTO ${s}.change_log (operation_id, table_oid, action, row_key, old_row, new_row)
    VALUES (current_setting('${OP}')::uuid, TG_RELID, left(TG_OP, 1)::"char", k,
            CASE TG_OP WHEN 'DELETE' THEN j WHEN 'UPDATE' THEN o END,
            CASE WHEN TG_OP <> 'DELETE' THEN j END);
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.refuse_truncate() RETURNS trigger
LANGUAGE plpgsql ${PINNED} AS $fn$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of %.% inside AI operation % cannot be undone', TG_TABLE_SCHEMA, TG_TABLE_NAME,
            current_setting('${OP}')
        USING ERRCODE = 'LWT01',
              HINT = 'delete the rows with DELETE inside the operation (undoable), or truncate outside any operation';
END
$fn$;

-- The primary-key columns of a table, in key order (empty: no primary key).
CREATE OR REPLACE FUNCTION ${s}.primary_key_columns(rel oid) RETURNS text[]
LANGUAGE sql STABLE ${DEFINER} AS $fn$
    SELECT coalesce(array_agg(a.attname::text ORDER BY k.ord), '{}')
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = rel AND i.indisprimary
$fn$;

-- "t.a, t.b" for columns (a, b) and alias t.
CREATE OR REPLACE FUNCTION ${s}.column_list(cols text[], alias text) RETURNS text
LANGUAGE sql IMMUTABLE ${DEFINER} AS $fn$
    SELECT string_agg(format('%I.%I', alias, c), ', ' ORDER BY o) FROM unnest(cols) WITH ORDINALITY AS u(c, o)
$fn$;

-- "jsonb_build_object('a', t.a::text, ...)": a row's key, equal to the row_key capture stores
-- (the columns' text forms); typed => true keeps the values' types (for people to read).
CREATE OR REPLACE FUNCTION ${s}.key_builder(cols text[], alias text, typed boolean DEFAULT false) RETURNS text
LANGUAGE sql IMMUTABLE ${DEFINER} AS $fn$
    SELECT 'pg_catalog.jsonb_build_object('
           || string_agg(format(CASE WHEN typed THEN '%L, %I.%I' ELSE '%L, %I.%I::text' END, c, alias, c), ', ' ORDER BY o)
           || ')'
    FROM unnest(cols) WITH ORDINALITY AS u(c, o)
$fn$;

-- Whether a table matches the exclusion list.
CREATE OR REPLACE FUNCTION ${s}.is_excluded(rel oid) RETURNS boolean
LANGUAGE sql STABLE ${DEFINER} AS $fn$
    SELECT EXISTS (
        SELECT 1
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN ${s}.excluded_tables e
          ON (CASE WHEN strpos(e.pattern, '.') > 0 THEN n.nspname || '.' || c.relname ELSE c.relname::text END)
             LIKE replace(replace(replace(e.pattern, '%', '\\%'), '_', '\\_'), '*', '%')
        WHERE c.oid = rel)
$fn$;

-- Tables that get capture: ordinary and partitioned (not partitions: they inherit the parent's
-- triggers), permanent, outside the system and platform schemas.
CREATE OR REPLACE FUNCTION ${s}.is_user_table(rel oid) RETURNS boolean
LANGUAGE sql STABLE ${DEFINER} AS $fn$
    SELECT EXISTS (
        SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = rel AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence = 'p'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
          AND n.nspname NOT LIKE 'loomworks\\_%')
$fn$;

-- Puts capture on a table (or takes it off an excluded one); keeps the key arguments current.
-- Runs with the caller's rights: the installer (superuser) or the role creating the table.
CREATE OR REPLACE FUNCTION ${s}.attach(rel oid) RETURNS text
LANGUAGE plpgsql ${PINNED} AS $fn$
DECLARE
    cols text[];
    want bytea;
    have bytea;
    has_truncate boolean;
    args text;
BEGIN
    IF NOT ${s}.is_user_table(rel) OR ${s}.is_excluded(rel) THEN
        RETURN ${s}.detach(rel);
    END IF;
    cols := ${s}.primary_key_columns(rel);
    SELECT coalesce(string_agg(convert_to(c, 'UTF8') || '\\x00'::bytea, ''::bytea ORDER BY o), ''::bytea) INTO want
    FROM unnest(cols) WITH ORDINALITY AS u(c, o);
    SELECT t.tgargs INTO have
    FROM pg_trigger t
    WHERE t.tgrelid = rel AND t.tgfoid = '${UNDO_SCHEMA}.capture()'::regprocedure
    LIMIT 1;
    SELECT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel
                   AND t.tgfoid = '${UNDO_SCHEMA}.refuse_truncate()'::regprocedure) INTO has_truncate;
    -- tgargs: every argument followed by a NUL byte.
    IF have IS NOT NULL AND have = want AND has_truncate THEN
        RETURN 'unchanged';
    END IF;
    SELECT coalesce(string_agg(quote_literal(c), ', '), '') INTO args FROM unnest(cols) AS c;
    -- OR REPLACE, not DROP + CREATE: when the tenant's own DDL changes a primary key this runs as the
    -- tenant, and loomworks_guard_drop refuses the tenant's DROP TRIGGER of a platform trigger.
    EXECUTE format(
        'CREATE OR REPLACE TRIGGER ${CAPTURE_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW '
        'WHEN (pg_catalog.current_setting(''${OP}'', true) <> '''') EXECUTE FUNCTION ${UNDO_SCHEMA}.capture(%s)',
        rel::regclass, args);
    IF NOT has_truncate THEN
        EXECUTE format(
            'CREATE TRIGGER ${TRUNCATE_TRIGGER} BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
            'WHEN (pg_catalog.current_setting(''${OP}'', true) <> '''') EXECUTE FUNCTION ${UNDO_SCHEMA}.refuse_truncate()',
            rel::regclass);
    END IF;
    RETURN CASE WHEN have IS NULL THEN 'attached' ELSE 'updated' END;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.detach(rel oid) RETURNS text
LANGUAGE plpgsql ${PINNED} AS $fn$
DECLARE
    r record;
    n int := 0;
BEGIN
    -- Not the clones a partitioned table's trigger puts on its partitions (tgparentid): they go with it.
    FOR r IN SELECT t.tgname FROM pg_trigger t
             WHERE t.tgrelid = rel AND t.tgparentid = 0 AND t.tgfoid IN ('${UNDO_SCHEMA}.capture()'::regprocedure,
                                                    '${UNDO_SCHEMA}.refuse_truncate()'::regprocedure)
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, rel::regclass);
        n := n + 1;
    END LOOP;
    RETURN CASE WHEN n > 0 THEN 'detached' ELSE 'unchanged' END;
END
$fn$;

-- Every user table: capture attached unless excluded. Returns counts per outcome.
CREATE OR REPLACE FUNCTION ${s}.attach_all() RETURNS jsonb
LANGUAGE plpgsql ${PINNED} AS $fn$
DECLARE
    rel oid;
    outcome text;
    counts jsonb := '{}';
BEGIN
    FOR rel IN
        SELECT c.oid FROM pg_class c
        WHERE ${s}.is_user_table(c.oid)
           OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid
                      AND t.tgfoid = '${UNDO_SCHEMA}.capture()'::regprocedure)
        ORDER BY c.oid
    LOOP
        outcome := ${s}.attach(rel);
        counts := jsonb_set(counts, ARRAY[outcome], to_jsonb(coalesce((counts ->> outcome)::int, 0) + 1));
    END LOOP;
    RETURN counts;
END
$fn$;

-- A trigger is the platform's own, exactly as attach() makes it: the capture trigger (its key columns
-- as arguments, its WHEN clause) or the TRUNCATE guard, enabled, on a user table not excluded.
CREATE OR REPLACE FUNCTION ${s}.is_platform_trigger(trig oid) RETURNS boolean
LANGUAGE sql STABLE ${DEFINER} AS $fn$
    SELECT coalesce((
        SELECT t.tgenabled = 'O' AND t.tgconstraint = 0 AND t.tgoldtable IS NULL AND t.tgnewtable IS NULL
           AND cardinality(t.tgattr::int2[]) = 0
           AND ${s}.is_user_table(t.tgrelid) AND NOT ${s}.is_excluded(t.tgrelid)
           AND pg_get_triggerdef(t.oid) LIKE '% WHEN ((current_setting(''${OP}''::text, true) <> ''''::text)) EXECUTE FUNCTION %'
           AND CASE t.tgname
               WHEN '${CAPTURE_TRIGGER}' THEN
                   -- AFTER ROW INSERT OR DELETE OR UPDATE, the key columns as arguments
                   t.tgfoid = '${UNDO_SCHEMA}.capture()'::regprocedure AND t.tgtype = 29
                   AND t.tgargs = (SELECT coalesce(string_agg(convert_to(c, 'UTF8') || '\\x00'::bytea, ''::bytea ORDER BY o), ''::bytea)
                                   FROM unnest(${s}.primary_key_columns(t.tgrelid)) WITH ORDINALITY AS u(c, o))
               WHEN '${TRUNCATE_TRIGGER}' THEN
                   -- BEFORE TRUNCATE FOR EACH STATEMENT
                   t.tgfoid = '${UNDO_SCHEMA}.refuse_truncate()'::regprocedure AND t.tgtype = 34 AND t.tgnargs = 0
               ELSE false END
        FROM pg_trigger t WHERE t.oid = trig), false)
$fn$;

-- Tables whose logged rows an undo may touch: user tables carrying the platform's capture trigger
-- (a partition carries its parent's clone).
CREATE OR REPLACE FUNCTION ${s}.is_captured(rel oid) RETURNS boolean
LANGUAGE sql STABLE ${DEFINER} AS $fn$
    SELECT EXISTS (
        SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = rel AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
          AND n.nspname NOT LIKE 'loomworks\\_%'
          AND EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = '${CAPTURE_TRIGGER}'
                      AND t.tgfoid = '${UNDO_SCHEMA}.capture()'::regprocedure AND t.tgenabled = 'O'))
$fn$;

CREATE OR REPLACE FUNCTION ${s}.on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql ${PINNED} AS $fn$
DECLARE
    r record;
    superuser boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
BEGIN
    FOR r IN SELECT DISTINCT objid FROM pg_catalog.pg_event_trigger_ddl_commands()
             WHERE classid = 'pg_catalog.pg_class'::regclass AND object_type IN ('table', 'table column', 'table constraint')
    LOOP
        IF NOT superuser AND EXISTS (
            SELECT 1 FROM pg_catalog.pg_trigger t
            WHERE t.tgrelid = r.objid AND t.tgname LIKE 'loomworks\\_%' AND t.tgenabled <> 'O') THEN
            RAISE EXCEPTION 'the platform''s triggers on % cannot be disabled', r.objid::regclass
                USING ERRCODE = 'LWG01',
                      HINT = 'they capture AI operations for undo and enforce the tenant''s limits';
        END IF;
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = r.objid) THEN
            PERFORM ${s}.attach(r.objid);
        END IF;
    END LOOP;
    -- A trigger the tenant creates, replaces or renames that calls a platform function or carries a
    -- platform trigger's name must be exactly the platform's (attach() running as the tenant passes).
    IF NOT superuser THEN
        FOR r IN SELECT t.oid, t.tgname, t.tgrelid FROM pg_catalog.pg_event_trigger_ddl_commands() d
                 JOIN pg_catalog.pg_trigger t ON t.oid = d.objid
                 JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
                 JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                 WHERE d.classid = 'pg_catalog.pg_trigger'::regclass
                   AND (n.nspname LIKE 'loomworks\\_%' OR t.tgname LIKE 'loomworks\\_%')
        LOOP
            IF NOT ${s}.is_platform_trigger(r.oid) THEN
                RAISE EXCEPTION 'trigger % on %: the platform''s triggers and trigger functions cannot be altered or reused',
                        r.tgname, r.tgrelid::regclass
                    USING ERRCODE = 'LWG01',
                          HINT = 'they capture AI operations for undo and enforce the tenant''s limits';
            END IF;
        END LOOP;
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql ${PINNED} AS $fn$
DECLARE
    r record;
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RETURN;
    END IF;
    FOR r IN SELECT d.object_identity FROM pg_catalog.pg_event_trigger_dropped_objects() d
             WHERE d.object_type = 'trigger' AND d.original
               AND split_part(d.object_identity, ' on ', 1) LIKE 'loomworks\\_%'
               -- detach() taking capture off a table that is now excluded or no longer a user table
               -- (the tenant renamed it to an excluded name, made it UNLOGGED) is allowed.
               AND NOT (d.address_names[3] IN ('${CAPTURE_TRIGGER}', '${TRUNCATE_TRIGGER}') AND coalesce((
                   SELECT NOT ${s}.is_user_table(c.oid) OR ${s}.is_excluded(c.oid)
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = d.address_names[1] AND c.relname = d.address_names[2]), false))
    LOOP
        RAISE EXCEPTION 'trigger % belongs to the hosting platform and cannot be dropped', r.object_identity
            USING ERRCODE = 'LWG01',
                  HINT = 'it captures AI operations for undo or enforces the tenant''s limits';
    END LOOP;
END
$fn$;

ALTER FUNCTION ${s}.capture() OWNER TO ${owner};
ALTER FUNCTION ${s}.refuse_truncate() OWNER TO ${owner};
ALTER FUNCTION ${s}.primary_key_columns(oid) OWNER TO ${owner};
ALTER FUNCTION ${s}.is_excluded(oid) OWNER TO ${owner};
ALTER FUNCTION ${s}.column_list(text[], text) OWNER TO ${owner};
ALTER FUNCTION ${s}.key_builder(text[], text, boolean) OWNER TO ${owner};
ALTER FUNCTION ${s}.is_user_table(oid) OWNER TO ${owner};
ALTER FUNCTION ${s}.attach(oid) OWNER TO ${owner};
ALTER FUNCTION ${s}.detach(oid) OWNER TO ${owner};
ALTER FUNCTION ${s}.attach_all() OWNER TO ${owner};
ALTER FUNCTION ${s}.on_ddl_end() OWNER TO ${owner};
ALTER FUNCTION ${s}.on_sql_drop() OWNER TO ${owner};
ALTER FUNCTION ${s}.is_platform_trigger(oid) OWNER TO ${owner};
ALTER FUNCTION ${s}.is_captured(oid) OWNER TO ${owner};

DROP EVENT TRIGGER IF EXISTS loomworks_undo_ddl;
CREATE EVENT TRIGGER loomworks_undo_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER')
    EXECUTE FUNCTION ${s}.on_ddl_end();
DROP EVENT TRIGGER IF EXISTS loomworks_guard_drop;
CREATE EVENT TRIGGER loomworks_guard_drop ON sql_drop
    WHEN TAG IN ('DROP TRIGGER', 'ALTER TABLE')
    EXECUTE FUNCTION ${s}.on_sql_drop();
`;

/** Operations: begin / use / end / list. */
const operationsSql = (): string => `
-- Whether an operation is undone now: some undo of it, closed (close_undo checked that it restored
-- the rows), is itself in effect (not undone).
CREATE OR REPLACE FUNCTION ${s}.undone_by(op uuid) RETURNS uuid
LANGUAGE plpgsql STABLE ${DEFINER} AS $fn$
DECLARE
    u uuid;
BEGIN
    FOR u IN SELECT id FROM ${s}.operation_log WHERE undoes = op AND kind = 'undo' AND ended_at IS NOT NULL
             ORDER BY started_at DESC LOOP
        IF ${s}.undone_by(u) IS NULL THEN
            RETURN u;
        END IF;
    END LOOP;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.parse_operation_id(operation_id text) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE ${DEFINER} AS $fn$
BEGIN
    RETURN operation_id::uuid;
EXCEPTION WHEN invalid_text_representation THEN
    RAISE EXCEPTION 'not an operation id: %', quote_literal(operation_id)
        USING ERRCODE = 'LWO01', HINT = 'operation ids are the texts begin_operation returns';
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.start_operation(session_id text, kind text, description text) RETURNS uuid
LANGUAGE plpgsql VOLATILE ${DEFINER} AS $fn$
#variable_conflict use_variable
DECLARE
    id uuid := gen_random_uuid();
    snapshot uuid;
BEGIN
    IF kind IS NULL OR kind NOT IN ('write', 'destructive') THEN
        RAISE EXCEPTION 'begin_operation: kind must be ''write'' or ''destructive'', got %', coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(session_id) > 200 OR length(description) > 2000 THEN
        RAISE EXCEPTION 'begin_operation: session_id is limited to 200 characters and description to 2000'
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    IF to_regprocedure('loomworks_quota.take_ai_operation()') IS NOT NULL THEN
        PERFORM loomworks_quota.take_ai_operation();
    END IF;
    IF kind = 'destructive' AND to_regprocedure('loomworks_snapshot.request(text, text)') IS NOT NULL THEN
        snapshot := loomworks_snapshot.request('pre_ai', left(format('AI operation %s: %s', id, coalesce(description, kind)), 1000));
    END IF;
    INSERT INTO ${s}.operation_log (id, session_id, kind, description, snapshot_id)
    VALUES (id, session_id, kind, description, snapshot);
    RETURN id;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.check_usable(op uuid) RETURNS void
LANGUAGE plpgsql STABLE ${DEFINER} AS $fn$
DECLARE
    r record;
    u uuid;
BEGIN
    SELECT * INTO r FROM ${s}.operation_log WHERE id = op;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'operation % does not exist', op USING ERRCODE = 'LWO01';
    ELSIF r.kind = 'undo' THEN
        RAISE EXCEPTION 'operation % is an undo; it cannot take further changes', op USING ERRCODE = 'LWO01';
    ELSIF r.ended_at IS NOT NULL THEN
        RAISE EXCEPTION 'operation % ended at %', op, r.ended_at
            USING ERRCODE = 'LWO01', HINT = 'begin a new operation';
    END IF;
    u := ${s}.undone_by(op);
    IF u IS NOT NULL THEN
        RAISE EXCEPTION 'operation % was undone by %', op, u USING ERRCODE = 'LWO01';
    END IF;
END
$fn$;

-- Per table: rows inserted, updated, deleted (captured changes), and the totals.
CREATE OR REPLACE FUNCTION ${s}.change_summary(op uuid) RETURNS jsonb
LANGUAGE sql STABLE ${DEFINER} AS $fn$
    WITH t AS (
        SELECT CASE WHEN k.oid IS NULL THEN 'oid ' || c.table_oid ELSE c.table_oid::regclass::text END AS tbl,
               count(*) FILTER (WHERE c.action = 'I') AS ins,
               count(*) FILTER (WHERE c.action = 'U') AS upd,
               count(*) FILTER (WHERE c.action = 'D') AS del
        FROM ${s}.change_log c LEFT JOIN pg_class k ON k.oid = c.table_oid
        WHERE c.operation_id = op
        GROUP BY 1)
    SELECT jsonb_build_object(
        'operation_id', op,
        'tables', coalesce(jsonb_object_agg(regexp_replace(tbl, '^public\\.', ''),
                           jsonb_build_object('inserted', ins, 'updated', upd, 'deleted', del)) FILTER (WHERE tbl IS NOT NULL), '{}'),
        'inserted', coalesce(sum(ins), 0), 'updated', coalesce(sum(upd), 0), 'deleted', coalesce(sum(del), 0))
    FROM t
$fn$;

-- Ends an operation (end_operation). An undo is ended only by close_undo, after its check.
CREATE OR REPLACE FUNCTION ${s}.finish_operation(op uuid) RETURNS jsonb
LANGUAGE plpgsql VOLATILE ${DEFINER} AS $fn$
DECLARE
    totals jsonb;
    k text;
BEGIN
    SELECT o.kind INTO k FROM ${s}.operation_log o WHERE o.id = op;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'operation % does not exist', op USING ERRCODE = 'LWO01';
    ELSIF k = 'undo' AND NOT EXISTS (SELECT 1 FROM ${s}.operation_log o WHERE o.id = op AND o.ended_at IS NOT NULL) THEN
        RAISE EXCEPTION 'operation % is an undo in progress; only undo_operation ends it', op USING ERRCODE = 'LWO01';
    END IF;
    totals := ${s}.change_summary(op);
    UPDATE ${s}.operation_log SET ended_at = coalesce(ended_at, clock_timestamp()), summary = totals WHERE id = op;
    RETURN totals;
END
$fn$;

-- Public API (SECURITY INVOKER: they set loomworks.operation for the caller's transaction).
CREATE OR REPLACE FUNCTION ${s}.begin_operation(session_id text, kind text DEFAULT 'write', description text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    active text := coalesce(pg_catalog.current_setting('${OP}', true), '');
    id uuid;
BEGIN
    IF active <> '' THEN
        RAISE EXCEPTION 'operation % is already active in this transaction', active
            USING ERRCODE = 'LWO02', HINT = 'an AI tool call is one operation: start it in a new transaction';
    END IF;
    id := ${s}.start_operation(session_id, kind, description);
    PERFORM pg_catalog.set_config('${OP}', id::text, true);
    RETURN id::text;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.use_operation(operation_id text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    active text := coalesce(pg_catalog.current_setting('${OP}', true), '');
    op uuid := ${s}.parse_operation_id(operation_id);
BEGIN
    IF active <> '' AND active <> op::text THEN
        RAISE EXCEPTION 'operation % is already active in this transaction', active USING ERRCODE = 'LWO02';
    END IF;
    PERFORM ${s}.check_usable(op);
    PERFORM pg_catalog.set_config('${OP}', op::text, true);
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.end_operation(operation_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    op uuid := ${s}.parse_operation_id(operation_id);
    summary jsonb := ${s}.finish_operation(op);
BEGIN
    IF coalesce(pg_catalog.current_setting('${OP}', true), '') = op::text THEN
        PERFORM pg_catalog.set_config('${OP}', '', true);
    END IF;
    RETURN summary;
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.operations(session_id text DEFAULT NULL)
RETURNS TABLE (
    id text, session_id text, kind text, description text, started_at timestamptz, ended_at timestamptz,
    started_by text, snapshot_id text, undoes text, undone boolean, undone_by text, summary jsonb)
LANGUAGE sql STABLE ${DEFINER} AS $fn$
    SELECT o.id::text, o.session_id, o.kind, o.description, o.started_at, o.ended_at, o.started_by,
           o.snapshot_id::text, o.undoes::text, u.by IS NOT NULL, u.by::text,
           coalesce(o.summary, ${s}.change_summary(o.id))
    FROM ${s}.operation_log o
    CROSS JOIN LATERAL (SELECT ${s}.undone_by(o.id) AS by) u
    WHERE $1 IS NULL OR o.session_id = $1
    ORDER BY o.started_at DESC, o.id
$fn$;

-- Forgets ended operations (and their changes) older than the retention; returns how many.
CREATE OR REPLACE FUNCTION ${s}.prune(older_than interval) RETURNS integer
LANGUAGE plpgsql VOLATILE ${DEFINER} AS $fn$
DECLARE
    gone uuid[];
BEGIN
    SELECT coalesce(array_agg(id), '{}') INTO gone FROM ${s}.operation_log
    WHERE coalesce(ended_at, started_at) < clock_timestamp() - older_than;
    DELETE FROM ${s}.change_log WHERE operation_id = ANY (gone);
    DELETE FROM ${s}.operation_log WHERE id = ANY (gone);
    -- Rows under an id no operation has (the operation setting set by hand): nothing can undo them.
    -- Rows of operations still open are not visible here (uncommitted) and are left alone.
    DELETE FROM ${s}.change_log c WHERE NOT EXISTS (SELECT 1 FROM ${s}.operation_log o WHERE o.id = c.operation_id);
    RETURN cardinality(gone);
END
$fn$;
`;

/** Undo: plan, conflicts, apply in foreign-key-safe order, verify. */
const undoSql = (H: string): string => `
-- Definer side of an undo: serializes undos of one operation and checks it may be undone.
CREATE OR REPLACE FUNCTION ${s}.prepare_undo(op uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE ${DEFINER} AS $fn$
DECLARE
    r record;
    u uuid;
    last_change bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('loomworks_undo:' || op::text, 0));
    SELECT * INTO r FROM ${s}.operation_log WHERE id = op;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'operation % does not exist', op USING ERRCODE = 'LWO01';
    END IF;
    u := ${s}.undone_by(op);
    IF u IS NOT NULL THEN
        RAISE EXCEPTION 'operation % is already undone (by operation %)', op, u
            USING ERRCODE = 'LWO01', HINT = format('undo operation %s to redo it', u);
    END IF;
    IF r.kind = 'undo' AND r.ended_at IS NULL THEN
        RAISE EXCEPTION 'operation % is an undo that never completed; it changed nothing that can be undone', op
            USING ERRCODE = 'LWO01';
    END IF;
    IF r.ended_at IS NULL THEN
        PERFORM ${s}.finish_operation(op);
    END IF;
    SELECT max(id) INTO last_change FROM ${s}.change_log WHERE operation_id = op;
    RETURN coalesce(last_change, 0);
END
$fn$;

-- Per (table, key): the row before the operation and after it (NULL: no row), from its captured changes.
CREATE OR REPLACE FUNCTION ${s}.net_changes(op uuid)
RETURNS TABLE (table_oid oid, key jsonb, before ${H}.hstore, after ${H}.hstore)
LANGUAGE sql STABLE ${DEFINER} AS $fn$
    WITH ch AS (
        SELECT c.id, c.table_oid, c.action, c.row_key, c.old_row, c.new_row,
               CASE WHEN c.action = 'U' THEN
                   (SELECT jsonb_object_agg(k, c.old_row OPERATOR(${H}.->) k) FROM jsonb_object_keys(c.row_key) AS k)
               END AS old_key
        FROM ${s}.change_log c
        WHERE c.operation_id = op
    ), ev AS (
        SELECT ch.id, ch.table_oid, coalesce(ch.old_key, ch.row_key) AS key, ch.old_row AS before,
               CASE WHEN ch.action = 'D' OR (ch.action = 'U' AND ch.old_key IS DISTINCT FROM ch.row_key) THEN NULL
                    ELSE ch.new_row END AS after
        FROM ch
        UNION ALL
        SELECT ch.id, ch.table_oid, ch.row_key, NULL, ch.new_row FROM ch
        WHERE ch.action = 'U' AND ch.old_key IS DISTINCT FROM ch.row_key
    )
    SELECT ev.table_oid, ev.key,
           (array_agg(ev.before ORDER BY ev.id))[1],
           (array_agg(ev.after ORDER BY ev.id DESC))[1]
    FROM ev GROUP BY ev.table_oid, ev.key
$fn$;

-- Starts recording an undo of op: an operation of kind 'undo', not in effect until close_undo.
CREATE OR REPLACE FUNCTION ${s}.open_undo(op uuid) RETURNS uuid
LANGUAGE plpgsql VOLATILE ${DEFINER} AS $fn$
DECLARE
    id uuid := gen_random_uuid();
    target record;
BEGIN
    SELECT * INTO target FROM ${s}.operation_log WHERE operation_log.id = op;
    IF NOT FOUND OR target.ended_at IS NULL OR ${s}.undone_by(op) IS NOT NULL THEN
        RAISE EXCEPTION 'operation % cannot be undone now', op USING ERRCODE = 'LWO01';
    END IF;
    INSERT INTO ${s}.operation_log (id, session_id, kind, description, undoes)
    VALUES (id, target.session_id, 'undo', left(format('undo of %s', op), 2000), op);
    RETURN id;
END
$fn$;

-- Completes an undo, from what capture recorded (the tenant cannot write the log): every row of
-- the operation the undo changed is back in its state before the operation, and it changed at least
-- one when there was anything to restore. Only then does the undo count (undone_by) and end.
CREATE OR REPLACE FUNCTION ${s}.close_undo(undo_id uuid) RETURNS jsonb
LANGUAGE plpgsql VOLATILE ${DEFINER} AS $fn$
DECLARE
    u record;
    restored bigint;
    wrong bigint;
    pending bigint;
BEGIN
    SELECT * INTO u FROM ${s}.operation_log o WHERE o.id = undo_id AND o.kind = 'undo' AND o.ended_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'operation % is not an undo in progress', undo_id USING ERRCODE = 'LWO01';
    END IF;
    SELECT count(*),
           count(*) FILTER (WHERE NOT ((un.after IS NULL AND t.before IS NULL) OR coalesce(${s}.same_row(un.after, t.before), false)))
      INTO restored, wrong
    FROM ${s}.net_changes(undo_id) un JOIN ${s}.net_changes(u.undoes) t USING (table_oid, key);
    SELECT count(*) INTO pending FROM ${s}.net_changes(u.undoes) t
    WHERE NOT ((t.before IS NULL AND t.after IS NULL) OR coalesce(t.before OPERATOR(${H}.=) t.after, false));
    IF wrong > 0 OR (restored = 0 AND pending > 0) THEN
        RAISE EXCEPTION 'undo % of operation %: the recorded changes do not bring its rows back (% restored, % not as before)',
                undo_id, u.undoes, restored - wrong, wrong
            USING ERRCODE = 'LWX02';
    END IF;
    UPDATE ${s}.operation_log o SET ended_at = clock_timestamp() WHERE o.id = undo_id;
    RETURN ${s}.finish_operation(undo_id);
END
$fn$;

-- Operations after "after_change" that touched a row and are still in effect (not undone, and not
-- undos of operations that are themselves later than the one being undone).
CREATE OR REPLACE FUNCTION ${s}.later_operations(rel oid, key jsonb, target uuid, after_change bigint) RETURNS uuid[]
LANGUAGE sql STABLE ${DEFINER} AS $fn$
    SELECT array_agg(DISTINCT c.operation_id ORDER BY c.operation_id)
    FROM ${s}.change_log c
    JOIN ${s}.operation_log o ON o.id = c.operation_id
    WHERE c.table_oid = rel AND c.row_key = key AND c.id > after_change AND c.operation_id <> target
      AND ${s}.undone_by(o.id) IS NULL
      AND NOT (o.kind = 'undo' AND coalesce(
            (SELECT min(c2.id) FROM ${s}.change_log c2 WHERE c2.operation_id = o.undoes), 0) > after_change)
$fn$;

-- The same row? Columns added to or dropped from the table since the image was taken are ignored.
CREATE OR REPLACE FUNCTION ${s}.same_row(cur ${H}.hstore, expected ${H}.hstore) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT cur OPERATOR(${H}.=) expected OR (
        cur IS NOT NULL AND expected IS NOT NULL
        AND ${H}.slice(cur, ${H}.akeys(expected)) OPERATOR(${H}.=) ${H}.slice(expected, ${H}.akeys(cur)))
$fn$;

-- A row image as people read it: the columns with their types (jsonb columns as JSON, not text),
-- only those the image has.
CREATE OR REPLACE FUNCTION ${s}.shown(rel oid, image ${H}.hstore) RETURNS jsonb
LANGUAGE plpgsql STABLE ${PINNED} AS $fn$
DECLARE
    typed jsonb;
BEGIN
    IF image IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = rel) THEN
        RETURN ${H}.hstore_to_jsonb(image);
    END IF;
    EXECUTE format('SELECT pg_catalog.to_jsonb(${H}.populate_record(NULL::%s, $1))', rel::regclass)
        INTO typed USING image;
    RETURN (SELECT pg_catalog.jsonb_object_agg(e.key, e.value) FROM pg_catalog.jsonb_each(typed) e
            WHERE image OPERATOR(${H}.?) e.key);
END
$fn$;

-- A key as people read it: its columns with their types ({"id": 42}, not {"id": "42"}).
CREATE OR REPLACE FUNCTION ${s}.shown_key(rel oid, row_key jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE ${PINNED} AS $fn$
DECLARE
    typed jsonb;
BEGIN
    IF row_key IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = rel) THEN
        RETURN row_key;
    END IF;
    EXECUTE format('SELECT pg_catalog.to_jsonb(pg_catalog.jsonb_populate_record(NULL::%s, $1))', rel::regclass)
        INTO typed USING row_key;
    RETURN (SELECT pg_catalog.jsonb_object_agg(e.key, e.value) FROM pg_catalog.jsonb_each(typed) e WHERE row_key ? e.key);
END
$fn$;

CREATE OR REPLACE FUNCTION ${s}.undo_operation(operation_id text, on_conflict text DEFAULT 'abort', dry_run boolean DEFAULT false)
RETURNS jsonb
-- No pinned search_path: it runs as the caller, whose own triggers fire with the caller's settings.
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_variable
DECLARE
    target uuid := ${s}.parse_operation_id(operation_id);
    tables jsonb;
    last_change bigint;
    tbl record;
    fk record;
    cols text[];
    sql text;
    order_oids oid[] := '{}';
    remaining oid[];
    parents oid[];
    children oid[];
    pick oid;
    pending text[] := '{}';
    still text[];
    errors text[];
    progress boolean;
    conflicts jsonb;
    n_conflicts int;
    later jsonb;
    result jsonb;
    undo_id uuid;
    previous text := coalesce(pg_catalog.current_setting('${OP}', true), '');
    n int;
    counts record;
BEGIN
    IF on_conflict IS NULL OR on_conflict NOT IN ('abort', 'skip', 'force') THEN
        RAISE EXCEPTION 'undo_operation: on_conflict must be ''abort'', ''skip'' or ''force'', got %',
                coalesce(quote_literal(on_conflict), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    last_change := ${s}.prepare_undo(target);

    IF to_regclass('pg_temp.loomworks_undo_plan') IS NOT NULL THEN
        DROP TABLE pg_temp.loomworks_undo_plan;
    END IF;
    -- One row per (table, key): the row before the operation and after it (NULL: no row).
    -- Created, then filled (CREATE TABLE AS is refused in a read-only transaction; a dry run may be in one).
    CREATE TEMP TABLE loomworks_undo_plan (
        table_oid oid, key jsonb, before ${H}.hstore, after ${H}.hstore, action text,
        current ${H}.hstore, present boolean, conflict text, later_ops uuid[], detail jsonb, apply text
    ) ON COMMIT DROP;
    INSERT INTO pg_temp.loomworks_undo_plan
    SELECT net.table_oid, net.key, net.before, net.after,
           CASE WHEN net.before IS NULL AND net.after IS NOT NULL THEN 'delete'
                WHEN net.before IS NOT NULL AND net.after IS NULL THEN 'insert'
                WHEN net.before IS NOT NULL AND NOT net.before OPERATOR(${H}.=) net.after THEN 'update' END AS action,
           NULL, false, NULL, NULL, NULL, NULL
    FROM ${s}.net_changes(target) net;
    -- Rows without a key (a table without a primary key) all share the key NULL, so their changes
    -- net out against each other: keep them, for the check below to refuse the undo.
    DELETE FROM pg_temp.loomworks_undo_plan p WHERE p.action IS NULL AND p.key IS NOT NULL;
    IF NOT pg_catalog.current_setting('transaction_read_only')::boolean THEN
        ANALYZE pg_temp.loomworks_undo_plan;
    END IF;

    -- Every table must still exist and have the primary key its rows were captured with.
    FOR tbl IN SELECT DISTINCT p.table_oid, p.key IS NULL AS nokey,
                      (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(p.key) k) AS keycols
               FROM pg_temp.loomworks_undo_plan p
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = tbl.table_oid) THEN
            RAISE EXCEPTION 'operation % changed rows of a table (oid %) that no longer exists; it cannot be undone row by row',
                    target, tbl.table_oid
                USING ERRCODE = 'LWN01';
        END IF;
        -- Never a catalog, a platform table or anything the platform does not capture, whatever the log says.
        IF NOT ${s}.is_captured(tbl.table_oid) THEN
            RAISE EXCEPTION 'operation % names table %, which is not a captured user table of this tenant; nothing was changed',
                    target, tbl.table_oid::regclass
                USING ERRCODE = 'LWN02',
                      HINT = 'an undo only restores rows of tables the platform captures';
        END IF;
        cols := ${s}.primary_key_columns(tbl.table_oid);
        IF tbl.nokey OR cardinality(cols) = 0 THEN
            RAISE EXCEPTION 'operation % changed rows of table %, which has no primary key: those rows cannot be identified, so the operation cannot be undone row by row',
                    target, tbl.table_oid::regclass
                USING ERRCODE = 'LWN01',
                      HINT = 'restore the operation''s pre_ai snapshot (destructive operations take one), or give the table a primary key before future operations';
        END IF;
        IF (SELECT array_agg(c ORDER BY c) FROM unnest(cols) c) IS DISTINCT FROM tbl.keycols THEN
            RAISE EXCEPTION 'the primary key of table % changed since operation %; it cannot be undone row by row',
                    tbl.table_oid::regclass, target
                USING ERRCODE = 'LWN01';
        END IF;
    END LOOP;

    -- Lock the rows as they are now, and read them.
    FOR tbl IN SELECT DISTINCT p.table_oid FROM pg_temp.loomworks_undo_plan p LOOP
        cols := ${s}.primary_key_columns(tbl.table_oid);
        EXECUTE format(
            'UPDATE pg_temp.loomworks_undo_plan p SET current = c.j, present = true '
            'FROM (SELECT ${H}.hstore(t) AS j, %4$s AS k FROM %1$s t WHERE (%2$s) IN ('
            '  SELECT %3$s FROM pg_temp.loomworks_undo_plan p2, jsonb_populate_record(NULL::%1$s, p2.key) r '
            '  WHERE p2.table_oid = $1) %5$s) c '
            'WHERE p.table_oid = $1 AND p.key = c.k',
            tbl.table_oid::regclass, ${s}.column_list(cols, 't'), ${s}.column_list(cols, 'r'),
            ${s}.key_builder(cols, 't'),
            -- A dry run only reads (it may run in a read-only transaction); the real one locks.
            CASE WHEN dry_run THEN '' ELSE 'FOR UPDATE OF t' END) USING tbl.table_oid;
    END LOOP;

    UPDATE pg_temp.loomworks_undo_plan p SET conflict = CASE
        WHEN p.action = 'insert' AND p.present THEN 'key_taken'
        WHEN p.action <> 'insert' AND NOT p.present THEN 'deleted'
        WHEN p.action <> 'insert' AND NOT ${s}.same_row(p.current, p.after) THEN 'changed' END;
    UPDATE pg_temp.loomworks_undo_plan p
    SET later_ops = ${s}.later_operations(p.table_oid, p.key, target, last_change);
    UPDATE pg_temp.loomworks_undo_plan p SET conflict = 'later_operation'
    WHERE p.conflict IS NULL AND p.later_ops IS NOT NULL;

    -- Conflicts that follow from others, repeated until nothing changes:
    --  * referenced: a row to delete that rows this undo will not delete or restore reference;
    --    deleting it would cascade into, null out, or be refused by rows the operation never touched;
    --  * parent_conflict: a row to re-insert or restore whose foreign key points at a row that
    --    cannot come back (its key is taken by another row now): it would attach to that other row.
    LOOP
        progress := false;
        FOR tbl IN SELECT d.table_oid
                   FROM (SELECT DISTINCT p.table_oid FROM pg_temp.loomworks_undo_plan p
                         WHERE p.action = 'delete' AND p.conflict IS NULL) d
                   WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con
                                 WHERE con.contype = 'f' AND con.confrelid = d.table_oid)
        LOOP
            -- The rows to delete, typed once (not once per foreign key: a table like res_partner
            -- has hundreds pointing at it).
            IF to_regclass('pg_temp.loomworks_undo_parent') IS NOT NULL THEN
                DROP TABLE pg_temp.loomworks_undo_parent;
            END IF;
            EXECUTE format('CREATE TEMP TABLE loomworks_undo_parent (key jsonb, r %s) ON COMMIT DROP',
                           tbl.table_oid::regclass);
            EXECUTE format(
                'INSERT INTO pg_temp.loomworks_undo_parent SELECT p.key, ${H}.populate_record(NULL::%s, p.current) '
                'FROM pg_temp.loomworks_undo_plan p WHERE p.table_oid = $1 AND p.action = ''delete'' AND p.conflict IS NULL',
                tbl.table_oid::regclass) USING tbl.table_oid;
            FOR fk IN
                SELECT con.conrelid AS child,
                       (SELECT string_agg(format('ch.%I', a.attname), ', ' ORDER BY k.ord)
                        FROM unnest(con.conkey) WITH ORDINALITY k(n, ord)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n) AS child_cols,
                       (SELECT string_agg(format('(pt.r).%I', a.attname), ', ' ORDER BY k.ord)
                        FROM unnest(con.confkey) WITH ORDINALITY k(n, ord)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n) AS parent_cols
                FROM pg_catalog.pg_constraint con
                WHERE con.contype = 'f' AND con.confrelid = tbl.table_oid
            LOOP
                cols := ${s}.primary_key_columns(fk.child);
                EXECUTE format(
                    'UPDATE pg_temp.loomworks_undo_plan p SET conflict = ''referenced'', '
                    '  detail = jsonb_build_object(''referenced_by'', hit.refs) '
                    'FROM (SELECT pt.key, jsonb_agg(DISTINCT jsonb_build_object(''table'', %4$L, ''key'', %6$s)) AS refs '
                    '      FROM pg_temp.loomworks_undo_parent pt JOIN %1$s ch ON (%2$s) = (%3$s) '
                    '      WHERE NOT EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan q '
                    '                        WHERE q.table_oid = $2 AND q.action IN (''delete'', ''update'') AND q.key = %5$s '
                    '                          AND (q.conflict IS NULL OR $3 = ''force'')) '
                    '      GROUP BY pt.key) hit '
                    'WHERE p.table_oid = $1 AND p.key = hit.key AND p.conflict IS NULL',
                    fk.child::regclass, fk.child_cols, fk.parent_cols,
                    regexp_replace(fk.child::regclass::text, '^public\\.', ''),
                    coalesce(${s}.key_builder(cols, 'ch'), 'NULL::jsonb'),
                    coalesce(${s}.key_builder(cols, 'ch', true), 'NULL::jsonb'))
                USING tbl.table_oid, fk.child, on_conflict;
                GET DIAGNOSTICS n = ROW_COUNT;
                progress := progress OR n > 0;
            END LOOP;
        END LOOP;
        -- The tables involved, as arrays: a subquery over the plan per foreign key of the database
        -- (thousands in an ERP) would be re-run for each of them.
        SELECT array_agg(DISTINCT p.table_oid) FILTER (WHERE p.action = 'insert' AND p.conflict IS NOT NULL),
               array_agg(DISTINCT p.table_oid) FILTER (WHERE p.action IN ('insert', 'update') AND p.conflict IS NULL)
          INTO parents, children
        FROM pg_temp.loomworks_undo_plan p;
        IF on_conflict <> 'force' AND parents IS NOT NULL AND children IS NOT NULL THEN
            FOR fk IN
                SELECT con.conrelid AS child, con.confrelid AS parent,
                       (SELECT string_agg(format('(c.before OPERATOR(${H}.->) %L) = (p.before OPERATOR(${H}.->) %L)',
                                                 ca.attname, pa.attname), ' AND ')
                        FROM unnest(con.conkey, con.confkey) AS k(cn, pn)
                        JOIN pg_catalog.pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.cn
                        JOIN pg_catalog.pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.pn) AS matches
                FROM pg_catalog.pg_constraint con
                WHERE con.contype = 'f' AND con.confrelid = ANY (parents) AND con.conrelid = ANY (children)
            LOOP
                EXECUTE format(
                    'UPDATE pg_temp.loomworks_undo_plan c SET conflict = ''parent_conflict'', '
                    '  detail = jsonb_build_object(''parent'', jsonb_build_object(''table'', %1$L, '
                    '                                 ''key'', ${UNDO_SCHEMA}.shown_key($2, p.key))) '
                    'FROM pg_temp.loomworks_undo_plan p '
                    'WHERE c.table_oid = $1 AND c.action IN (''insert'', ''update'') AND c.conflict IS NULL '
                    '  AND p.table_oid = $2 AND p.action = ''insert'' AND p.conflict IS NOT NULL AND %2$s',
                    regexp_replace(fk.parent::regclass::text, '^public\\.', ''), fk.matches)
                USING fk.child, fk.parent;
                GET DIAGNOSTICS n = ROW_COUNT;
                progress := progress OR n > 0;
            END LOOP;
        END IF;
        EXIT WHEN NOT progress;
    END LOOP;

    SELECT count(*) FILTER (WHERE p.conflict IS NOT NULL),
           coalesce(jsonb_agg(jsonb_build_object(
               'table', regexp_replace(p.table_oid::regclass::text, '^public\\.', ''),
               'key', ${s}.shown_key(p.table_oid, p.key), 'reason', p.conflict,
               'expected', CASE WHEN p.action = 'insert' THEN NULL ELSE ${s}.shown(p.table_oid, p.after) END,
               'current', ${s}.shown(p.table_oid, p.current),
               'operations', to_jsonb(p.later_ops)) || coalesce(p.detail, '{}')
               ORDER BY p.table_oid, p.key) FILTER (WHERE p.conflict IS NOT NULL), '[]')
      INTO n_conflicts, conflicts
    FROM pg_temp.loomworks_undo_plan p;
    SELECT coalesce(jsonb_agg(DISTINCT o), '[]') INTO later
    FROM pg_temp.loomworks_undo_plan p, unnest(p.later_ops) o;

    UPDATE pg_temp.loomworks_undo_plan p SET apply = CASE
        WHEN p.conflict IS NULL THEN p.action
        WHEN on_conflict = 'force' THEN CASE
            WHEN p.action = 'insert' THEN 'overwrite'
            WHEN p.action = 'update' AND NOT p.present THEN 'insert'
            WHEN p.action = 'delete' AND NOT p.present THEN NULL
            ELSE p.action END
        END;

    SELECT count(*) FILTER (WHERE p.apply = 'insert') AS ins,
           count(*) FILTER (WHERE p.apply IN ('update', 'overwrite')) AS upd,
           count(*) FILTER (WHERE p.apply = 'delete') AS del,
           count(*) AS total
      INTO counts FROM pg_temp.loomworks_undo_plan p;
    -- Every table the undo touches, with what it does there (conflicting rows under "rows" only).
    SELECT coalesce(jsonb_object_agg(t.name, jsonb_build_object('rows', t.total, 'inserted', t.ins, 'updated', t.upd,
                                                                'deleted', t.del)), '{}')
      INTO tables
    FROM (SELECT regexp_replace(p.table_oid::regclass::text, '^public\\.', '') AS name, count(*) AS total,
                 count(*) FILTER (WHERE p.apply = 'insert') AS ins,
                 count(*) FILTER (WHERE p.apply IN ('update', 'overwrite')) AS upd,
                 count(*) FILTER (WHERE p.apply = 'delete') AS del
          FROM pg_temp.loomworks_undo_plan p GROUP BY 1) t;
    result := jsonb_build_object(
        'operation_id', target, 'applied', false, 'undo_operation_id', NULL, 'on_conflict', on_conflict,
        'dry_run', dry_run, 'rows', counts.total, 'tables', tables,
        'restored', jsonb_build_object('inserted', counts.ins, 'updated', counts.upd, 'deleted', counts.del),
        'skipped', CASE WHEN on_conflict = 'skip' THEN n_conflicts ELSE 0 END,
        'conflicts', conflicts, 'later_operations', later,
        'confirmation_required', counts.total > 1);
    IF dry_run OR (n_conflicts > 0 AND on_conflict = 'abort') THEN
        RETURN result;
    END IF;
    IF counts.ins + counts.upd + counts.del = 0 AND n_conflicts > 0 THEN
        RETURN result || jsonb_build_object('error', 'nothing to restore: every row conflicts',
            'hint', 'the rows were changed since; on_conflict => ''force'' sets them back');
    END IF;

    -- Tables parents first (foreign keys among the tables involved; a cycle is broken arbitrarily
    -- and left to the retry loop below).
    SELECT coalesce(array_agg(DISTINCT p.table_oid), '{}') INTO remaining
    FROM pg_temp.loomworks_undo_plan p WHERE p.apply IS NOT NULL;
    WHILE cardinality(remaining) > 0 LOOP
        SELECT r INTO pick FROM unnest(remaining) r
        WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con
                          WHERE con.contype = 'f' AND con.conrelid = r AND con.confrelid <> r
                            AND con.confrelid = ANY (remaining))
        ORDER BY r LIMIT 1;
        IF pick IS NULL THEN
            SELECT min(r) INTO pick FROM unnest(remaining) r;
        END IF;
        order_oids := order_oids || pick;
        remaining := array_remove(remaining, pick);
    END LOOP;

    -- Statements: re-inserts parents first, restores, then deletes children first.
    FOREACH pick IN ARRAY order_oids LOOP
        IF EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan p WHERE p.table_oid = pick AND p.apply = 'insert') THEN
            SELECT format(
                       'INSERT INTO %1$s (%2$s) %3$s SELECT %4$s FROM pg_temp.loomworks_undo_plan p, '
                       '${H}.populate_record(NULL::%1$s, p.before) r WHERE p.table_oid = %5$s AND p.apply = ''insert''',
                       pick::regclass, string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
                       CASE WHEN bool_or(a.attidentity = 'a') THEN 'OVERRIDING SYSTEM VALUE' ELSE '' END,
                       string_agg(format('r.%I', a.attname), ', ' ORDER BY a.attnum), pick)
              INTO sql
            FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = pick AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              AND NOT EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan p
                              WHERE p.table_oid = pick AND p.apply = 'insert'
                                AND NOT p.before OPERATOR(${H}.?) a.attname::text);
            pending := pending || sql;
        END IF;
    END LOOP;
    FOREACH pick IN ARRAY order_oids LOOP
        cols := ${s}.primary_key_columns(pick);
        sql := NULL;
        SELECT format(
                   'UPDATE %1$s t SET (%2$s) = ROW(%3$s) FROM pg_temp.loomworks_undo_plan p, '
                   '${H}.populate_record(NULL::%1$s, p.before) r '
                   'WHERE p.table_oid = %4$s AND p.apply IN (''update'', ''overwrite'') AND (%5$s) = (%6$s)',
                   pick::regclass, string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
                   string_agg(format('r.%I', a.attname), ', ' ORDER BY a.attnum), pick,
                   ${s}.column_list(cols, 't'), ${s}.column_list(cols, 'r'))
          INTO sql
        FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = pick AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
          AND a.attidentity <> 'a' AND NOT a.attname::text = ANY (cols)
          AND NOT EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan p
                          WHERE p.table_oid = pick AND p.apply IN ('update', 'overwrite')
                            AND NOT p.before OPERATOR(${H}.?) a.attname::text)
        HAVING count(*) > 0;
        IF sql IS NOT NULL AND EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan p
                                       WHERE p.table_oid = pick AND p.apply IN ('update', 'overwrite')) THEN
            pending := pending || sql;
        END IF;
    END LOOP;
    FOR i IN REVERSE cardinality(order_oids) .. 1 LOOP
        pick := order_oids[i];
        IF EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan p WHERE p.table_oid = pick AND p.apply = 'delete') THEN
            cols := ${s}.primary_key_columns(pick);
            pending := pending || format(
                'DELETE FROM %1$s t USING pg_temp.loomworks_undo_plan p, jsonb_populate_record(NULL::%1$s, p.key) r '
                'WHERE p.table_oid = %2$s AND p.apply = ''delete'' AND (%3$s) = (%4$s)',
                pick::regclass, pick, ${s}.column_list(cols, 't'), ${s}.column_list(cols, 'r'));
        END IF;
    END LOOP;

    BEGIN
        undo_id := ${s}.open_undo(target);
        PERFORM pg_catalog.set_config('${OP}', undo_id::text, true);

        -- In that order; a statement refused by a constraint (a row it needs comes later, a unique
        -- value is still held by a row deleted later) is retried after the others.
        LOOP
            still := '{}';
            errors := '{}';
            progress := false;
            FOREACH sql IN ARRAY pending LOOP
                BEGIN
                    EXECUTE sql;
                    progress := true;
                EXCEPTION WHEN integrity_constraint_violation THEN
                    still := still || sql;
                    errors := errors || SQLERRM;
                END;
            END LOOP;
            EXIT WHEN cardinality(still) = 0;
            IF NOT progress THEN
                RAISE EXCEPTION 'undo of operation % cannot restore the rows: %', target, errors[1]
                    USING ERRCODE = 'LWX02',
                          HINT = 'a constraint refuses the recorded state (with on_conflict => ''skip'', a skipped row may be needed by another); nothing was changed';
            END IF;
            pending := still;
        END LOOP;

        -- Nothing may have changed beyond the plan (cascades into rows the operation never touched).
        -- (EXCEPT, not NOT EXISTS: with the statistics of rows written in this very transaction the
        -- planner picks a nested-loop anti join, quadratic in the rows undone.)
        SELECT count(*) INTO n FROM (
            SELECT c.table_oid, c.row_key FROM ${s}.change_log c WHERE c.operation_id = undo_id
            EXCEPT
            SELECT p.table_oid, p.key FROM pg_temp.loomworks_undo_plan p WHERE p.apply IS NOT NULL) extra;
        IF n > 0 AND on_conflict <> 'force' THEN
            RAISE EXCEPTION 'undo of operation % would also change % row(s) it did not touch (cascades)', target, n
                USING ERRCODE = 'LWX01';
        END IF;

        -- Every row must now be as it was before the operation.
        FOR tbl IN SELECT DISTINCT p.table_oid FROM pg_temp.loomworks_undo_plan p WHERE p.apply IS NOT NULL LOOP
            cols := ${s}.primary_key_columns(tbl.table_oid);
            EXECUTE format(
                'SELECT count(*) FROM pg_temp.loomworks_undo_plan p '
                'LEFT JOIN LATERAL (SELECT ${H}.hstore(t) AS j FROM %1$s t, jsonb_populate_record(NULL::%1$s, p.key) r '
                '                   WHERE (%2$s) = (%3$s)) now ON true '
                'WHERE p.table_oid = $1 AND p.apply IS NOT NULL AND CASE WHEN p.apply = ''delete'' THEN now.j IS NOT NULL '
                '  ELSE NOT coalesce(${UNDO_SCHEMA}.same_row(now.j, p.before), false) END',
                tbl.table_oid::regclass, ${s}.column_list(cols, 't'), ${s}.column_list(cols, 'r'))
              INTO n USING tbl.table_oid;
            IF n > 0 THEN
                RAISE EXCEPTION 'undo of operation %: % row(s) of % did not end in their recorded state (a trigger or rule changed them); nothing was changed',
                        target, n, tbl.table_oid::regclass
                    USING ERRCODE = 'LWX02';
            END IF;
        END LOOP;
        PERFORM ${s}.close_undo(undo_id);
    EXCEPTION WHEN SQLSTATE 'LWX01' THEN
        PERFORM pg_catalog.set_config('${OP}', previous, true);
        RETURN result || jsonb_build_object('error', SQLERRM,
            'hint', 'rows referencing rows to delete were created or changed since; nothing was changed (on_conflict => ''force'' goes ahead)');
    END;
    PERFORM pg_catalog.set_config('${OP}', previous, true);
    RETURN result || jsonb_build_object('applied', true, 'undo_operation_id', undo_id);
END
$fn$;
`;

/**
 * What the tenant role may execute: the documented API, what it calls with the caller's rights, and
 * what the DDL event triggers call when the tenant creates or alters a table. Everything else (prune,
 * attach_all, ...) is the platform's.
 */
export const TENANT_FUNCTIONS: readonly string[] = Object.freeze([
  // the API (docs/developer/undo-api.md)
  "begin_operation",
  "use_operation",
  "end_operation",
  "undo_operation",
  "operations",
  // called by it
  "parse_operation_id",
  "start_operation",
  "check_usable",
  "finish_operation",
  "prepare_undo",
  "net_changes",
  "open_undo",
  "close_undo",
  "later_operations",
  "same_row",
  "shown",
  "shown_key",
  "primary_key_columns",
  "column_list",
  "key_builder",
  "is_captured",
  // the tenant's DDL (event triggers run as the tenant)
  "attach",
  "detach",
  "is_user_table",
  "is_excluded",
  "is_platform_trigger",
  "capture",
  "refuse_truncate",
]);

/** Ownership and grants; the tenant role is the database owner. */
const grantsSql = (): string => `
DO $grants$
DECLARE
    fn record;
BEGIN
    FOR fn IN SELECT p.oid::regprocedure AS sig FROM pg_proc p WHERE p.pronamespace = '${UNDO_SCHEMA}'::regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO ${owner}', fn.sig);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn.sig);
    END LOOP;
END
$grants$;

GRANT USAGE ON SCHEMA loomworks_snapshot TO ${owner};
GRANT EXECUTE ON FUNCTION loomworks_snapshot.request(text, text) TO ${owner};

DO $grants$
DECLARE
    tenant name := ${TENANT_ROLE_SQL};
    fn record;
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = tenant) THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA ${UNDO_SCHEMA} TO %I', tenant);
    -- Read only (v2 let the tenant append to the change log).
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA ${UNDO_SCHEMA} FROM %I', tenant);
    EXECUTE format('GRANT SELECT ON ${UNDO_SCHEMA}.operation_log, ${UNDO_SCHEMA}.change_log, ${UNDO_SCHEMA}.excluded_tables TO %I', tenant);
    FOR fn IN SELECT p.oid::regprocedure AS sig, p.proname::text = ANY ('{${TENANT_FUNCTIONS.join(",")}}'::text[]) AS allowed
              FROM pg_proc p WHERE p.pronamespace = '${UNDO_SCHEMA}'::regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format(CASE WHEN fn.allowed THEN 'GRANT EXECUTE ON FUNCTION %s TO %I' ELSE 'REVOKE ALL ON FUNCTION %s FROM %I' END,
                       fn.sig, tenant);
    END LOOP;
END
$grants$;
`;

/**
 * The installation script: one transaction, run by a superuser connected to the tenant database,
 * after the guard owner role and the snapshot API exist. Idempotent; `excluded` replaces the
 * stack's part of the exclusion list. Attaching capture to every table is a separate call
 * (`SELECT loomworks_undo.attach_all()`), made by the installer after this.
 */
export function undoApiSql(hstoreSchema: string = UNDO_SCHEMA): string {
  const H = quoteIdent(hstoreSchema);
  return [tablesSql(H), captureSql(H), operationsSql(), undoSql(H), grantsSql()]
    .concat(`COMMENT ON SCHEMA ${s} IS 'loomworks undo api v${UNDO_API_VERSION}';`)
    .join("\n");
}

/** Removal: event triggers, every capture trigger, the schema. */
export function removeUndoApiSql(): string {
  return `
DROP EVENT TRIGGER IF EXISTS loomworks_undo_ddl;
DROP EVENT TRIGGER IF EXISTS loomworks_guard_drop;
DO $remove$
DECLARE
    r record;
BEGIN
    IF to_regnamespace('${UNDO_SCHEMA}') IS NULL THEN
        RETURN;
    END IF;
    IF to_regprocedure('${UNDO_SCHEMA}.capture()') IS NOT NULL THEN
        FOR r IN SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_trigger t
                 WHERE t.tgparentid = 0
                   AND t.tgfoid IN ('${UNDO_SCHEMA}.capture()'::regprocedure, '${UNDO_SCHEMA}.refuse_truncate()'::regprocedure)
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
        END LOOP;
    END IF;
    -- The platform's own objects, then hstore when it is ours: without CASCADE, so that a tenant
    -- object using it (a column of type hstore) makes the removal fail instead of being dropped.
    FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
             WHERE p.pronamespace = '${UNDO_SCHEMA}'::regnamespace
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', r.sig);
    END LOOP;
    DROP TABLE IF EXISTS ${s}.change_log, ${s}.operation_log, ${s}.excluded_tables;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hstore' AND extnamespace = '${UNDO_SCHEMA}'::regnamespace) THEN
        DROP EXTENSION hstore;
    END IF;
END
$remove$;
DROP SCHEMA IF EXISTS ${s};
`;
}

/** Where hstore lives in the database `db` is connected to (undefined: not installed). */
export const HSTORE_SCHEMA_SQL =
  "SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hstore'";
