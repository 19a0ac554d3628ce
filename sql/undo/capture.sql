-- The undo API's capture (lib/undo/sql.ts): the row trigger that logs every change made inside an AI
-- operation, attaching it to the tenant's tables, and the event triggers that keep it there.

-- SECURITY DEFINER: the tenant cannot write the log itself. Only the platform's trigger on a
-- user table may call it (the DDL guard keeps other triggers from using it; this is the second line).
CREATE OR REPLACE FUNCTION {{schema}}.capture() RETURNS trigger
LANGUAGE plpgsql {{definer}} AS $fn$
DECLARE
    j {{hstore}}.hstore;
    o {{hstore}}.hstore;
    k jsonb;
BEGIN
    IF TG_NAME <> '{{capture_trigger}}' OR TG_LEVEL <> 'ROW' OR TG_WHEN <> 'AFTER'
       OR TG_TABLE_SCHEMA LIKE 'pg\_%' OR TG_TABLE_SCHEMA LIKE 'loomworks\_%' OR TG_TABLE_SCHEMA = 'information_schema' THEN
        RAISE EXCEPTION 'loomworks_undo.capture() is the platform''s capture trigger; % on %.% is not', TG_NAME,
                TG_TABLE_SCHEMA, TG_TABLE_NAME
            USING ERRCODE = '{{sqlstate.guardedTrigger}}';
    END IF;
    -- hstore: every column's exact text form (SQL NULL distinct from JSON null, numeric scale, json
    -- text, array bounds all kept), and a quicker conversion than to_jsonb.
    IF TG_OP = 'DELETE' THEN
        j := {{hstore}}.hstore(OLD);
    ELSE
        j := {{hstore}}.hstore(NEW);
        IF TG_OP = 'UPDATE' THEN
            o := {{hstore}}.hstore(OLD);
            IF o OPERATOR({{hstore}}.=) j THEN
                RETURN NULL;  -- a write that changed nothing is not a change
            END IF;
        END IF;
    END IF;
    IF TG_NARGS = 1 THEN
        k := jsonb_build_object(TG_ARGV[0], j OPERATOR({{hstore}}.->) TG_ARGV[0]);
    ELSIF TG_NARGS > 1 THEN
        k := '{}';
        FOR i IN 0 .. TG_NARGS - 1 LOOP
            k := k || jsonb_build_object(TG_ARGV[i], j OPERATOR({{hstore}}.->) TG_ARGV[i]);
        END LOOP;
    END IF;
    INSERT INTO {{schema}}.change_log (operation_id, table_oid, action, row_key, old_row, new_row)
    VALUES (current_setting('{{operation_setting}}')::uuid, TG_RELID, left(TG_OP, 1)::"char", k,
            CASE TG_OP WHEN 'DELETE' THEN j WHEN 'UPDATE' THEN o END,
            CASE WHEN TG_OP <> 'DELETE' THEN j END);
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.refuse_truncate() RETURNS trigger
LANGUAGE plpgsql {{pinned}} AS $fn$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of %.% inside AI operation % cannot be undone', TG_TABLE_SCHEMA, TG_TABLE_NAME,
            current_setting('{{operation_setting}}')
        USING ERRCODE = '{{sqlstate.truncate}}',
              HINT = 'delete the rows with DELETE inside the operation (undoable), or truncate outside any operation';
END
$fn$;

-- The primary-key columns of a table, in key order (empty: no primary key).
CREATE OR REPLACE FUNCTION {{schema}}.primary_key_columns(rel oid) RETURNS text[]
LANGUAGE sql STABLE {{definer}} AS $fn$
    SELECT coalesce(array_agg(a.attname::text ORDER BY k.ord), '{}')
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = rel AND i.indisprimary
$fn$;

-- "t.a, t.b" for columns (a, b) and alias t.
CREATE OR REPLACE FUNCTION {{schema}}.column_list(cols text[], alias text) RETURNS text
LANGUAGE sql IMMUTABLE {{definer}} AS $fn$
    SELECT string_agg(format('%I.%I', alias, c), ', ' ORDER BY o) FROM unnest(cols) WITH ORDINALITY AS u(c, o)
$fn$;

-- "jsonb_build_object('a', t.a::text, ...)": a row's key, equal to the row_key capture stores
-- (the columns' text forms); typed => true keeps the values' types (for people to read).
CREATE OR REPLACE FUNCTION {{schema}}.key_builder(cols text[], alias text, typed boolean DEFAULT false) RETURNS text
LANGUAGE sql IMMUTABLE {{definer}} AS $fn$
    SELECT 'pg_catalog.jsonb_build_object('
           || string_agg(format(CASE WHEN typed THEN '%L, %I.%I' ELSE '%L, %I.%I::text' END, c, alias, c), ', ' ORDER BY o)
           || ')'
    FROM unnest(cols) WITH ORDINALITY AS u(c, o)
$fn$;

-- Whether a table matches the exclusion list.
CREATE OR REPLACE FUNCTION {{schema}}.is_excluded(rel oid) RETURNS boolean
LANGUAGE sql STABLE {{definer}} AS $fn$
    SELECT EXISTS (
        SELECT 1
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN {{schema}}.excluded_tables e
          ON (CASE WHEN strpos(e.pattern, '.') > 0 THEN n.nspname || '.' || c.relname ELSE c.relname::text END)
             LIKE replace(replace(replace(e.pattern, '%', '\%'), '_', '\_'), '*', '%')
        WHERE c.oid = rel)
$fn$;

-- Tables that get capture: ordinary and partitioned (not partitions: they inherit the parent's
-- triggers), permanent, outside the system and platform schemas.
CREATE OR REPLACE FUNCTION {{schema}}.is_user_table(rel oid) RETURNS boolean
LANGUAGE sql STABLE {{definer}} AS $fn$
    SELECT EXISTS (
        SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = rel AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relpersistence = 'p'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
          AND n.nspname NOT LIKE 'loomworks\_%')
$fn$;

-- Puts capture on a table (or takes it off an excluded one); keeps the key arguments current.
-- Runs with the caller's rights: the installer (superuser) or the role creating the table.
CREATE OR REPLACE FUNCTION {{schema}}.attach(rel oid) RETURNS text
LANGUAGE plpgsql {{pinned}} AS $fn$
DECLARE
    cols text[];
    want bytea;
    have bytea;
    has_truncate boolean;
    args text;
BEGIN
    IF NOT {{schema}}.is_user_table(rel) OR {{schema}}.is_excluded(rel) THEN
        RETURN {{schema}}.detach(rel);
    END IF;
    cols := {{schema}}.primary_key_columns(rel);
    SELECT coalesce(string_agg(convert_to(c, 'UTF8') || '\x00'::bytea, ''::bytea ORDER BY o), ''::bytea) INTO want
    FROM unnest(cols) WITH ORDINALITY AS u(c, o);
    SELECT t.tgargs INTO have
    FROM pg_trigger t
    WHERE t.tgrelid = rel AND t.tgfoid = '{{schema_name}}.capture()'::regprocedure
    LIMIT 1;
    SELECT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = rel
                   AND t.tgfoid = '{{schema_name}}.refuse_truncate()'::regprocedure) INTO has_truncate;
    -- tgargs: every argument followed by a NUL byte.
    IF have IS NOT NULL AND have = want AND has_truncate THEN
        RETURN 'unchanged';
    END IF;
    SELECT coalesce(string_agg(quote_literal(c), ', '), '') INTO args FROM unnest(cols) AS c;
    -- OR REPLACE, not DROP + CREATE: when the tenant's own DDL changes a primary key this runs as the
    -- tenant, and loomworks_guard_drop refuses the tenant's DROP TRIGGER of a platform trigger.
    EXECUTE format(
        'CREATE OR REPLACE TRIGGER {{capture_trigger}} AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW '
        'WHEN (pg_catalog.current_setting(''{{operation_setting}}'', true) <> '''') EXECUTE FUNCTION {{schema_name}}.capture(%s)',
        rel::regclass, args);
    IF NOT has_truncate THEN
        EXECUTE format(
            'CREATE TRIGGER {{truncate_trigger}} BEFORE TRUNCATE ON %s FOR EACH STATEMENT '
            'WHEN (pg_catalog.current_setting(''{{operation_setting}}'', true) <> '''') EXECUTE FUNCTION {{schema_name}}.refuse_truncate()',
            rel::regclass);
    END IF;
    RETURN CASE WHEN have IS NULL THEN 'attached' ELSE 'updated' END;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.detach(rel oid) RETURNS text
LANGUAGE plpgsql {{pinned}} AS $fn$
DECLARE
    r record;
    n int := 0;
BEGIN
    -- Not the clones a partitioned table's trigger puts on its partitions (tgparentid): they go with it.
    FOR r IN SELECT t.tgname FROM pg_trigger t
             WHERE t.tgrelid = rel AND t.tgparentid = 0 AND t.tgfoid IN ('{{schema_name}}.capture()'::regprocedure,
                                                    '{{schema_name}}.refuse_truncate()'::regprocedure)
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, rel::regclass);
        n := n + 1;
    END LOOP;
    RETURN CASE WHEN n > 0 THEN 'detached' ELSE 'unchanged' END;
END
$fn$;

-- Every user table: capture attached unless excluded. Returns counts per outcome.
CREATE OR REPLACE FUNCTION {{schema}}.attach_all() RETURNS jsonb
LANGUAGE plpgsql {{pinned}} AS $fn$
DECLARE
    rel oid;
    outcome text;
    counts jsonb := '{}';
BEGIN
    FOR rel IN
        SELECT c.oid FROM pg_class c
        WHERE {{schema}}.is_user_table(c.oid)
           OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid
                      AND t.tgfoid = '{{schema_name}}.capture()'::regprocedure)
        ORDER BY c.oid
    LOOP
        outcome := {{schema}}.attach(rel);
        counts := jsonb_set(counts, ARRAY[outcome], to_jsonb(coalesce((counts ->> outcome)::int, 0) + 1));
    END LOOP;
    RETURN counts;
END
$fn$;

-- A trigger is the platform's own, exactly as attach() makes it: the capture trigger (its key columns
-- as arguments, its WHEN clause) or the TRUNCATE guard, enabled, on a user table not excluded.
CREATE OR REPLACE FUNCTION {{schema}}.is_platform_trigger(trig oid) RETURNS boolean
LANGUAGE sql STABLE {{definer}} AS $fn$
    SELECT coalesce((
        SELECT t.tgenabled = 'O' AND t.tgconstraint = 0 AND t.tgoldtable IS NULL AND t.tgnewtable IS NULL
           AND cardinality(t.tgattr::int2[]) = 0
           AND {{schema}}.is_user_table(t.tgrelid) AND NOT {{schema}}.is_excluded(t.tgrelid)
           AND pg_get_triggerdef(t.oid) LIKE '% WHEN ((current_setting(''{{operation_setting}}''::text, true) <> ''''::text)) EXECUTE FUNCTION %'
           AND CASE t.tgname
               WHEN '{{capture_trigger}}' THEN
                   -- AFTER ROW INSERT OR DELETE OR UPDATE, the key columns as arguments
                   t.tgfoid = '{{schema_name}}.capture()'::regprocedure AND t.tgtype = 29
                   AND t.tgargs = (SELECT coalesce(string_agg(convert_to(c, 'UTF8') || '\x00'::bytea, ''::bytea ORDER BY o), ''::bytea)
                                   FROM unnest({{schema}}.primary_key_columns(t.tgrelid)) WITH ORDINALITY AS u(c, o))
               WHEN '{{truncate_trigger}}' THEN
                   -- BEFORE TRUNCATE FOR EACH STATEMENT
                   t.tgfoid = '{{schema_name}}.refuse_truncate()'::regprocedure AND t.tgtype = 34 AND t.tgnargs = 0
               ELSE false END
        FROM pg_trigger t WHERE t.oid = trig), false)
$fn$;

-- Tables whose logged rows an undo may touch: user tables carrying the platform's capture trigger
-- (a partition carries its parent's clone).
CREATE OR REPLACE FUNCTION {{schema}}.is_captured(rel oid) RETURNS boolean
LANGUAGE sql STABLE {{definer}} AS $fn$
    SELECT EXISTS (
        SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.oid = rel AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p'
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
          AND n.nspname NOT LIKE 'loomworks\_%'
          AND EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = '{{capture_trigger}}'
                      AND t.tgfoid = '{{schema_name}}.capture()'::regprocedure AND t.tgenabled = 'O'))
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql {{pinned}} AS $fn$
DECLARE
    r record;
    superuser boolean := (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
BEGIN
    FOR r IN SELECT DISTINCT objid FROM pg_catalog.pg_event_trigger_ddl_commands()
             WHERE classid = 'pg_catalog.pg_class'::regclass AND object_type IN ('table', 'table column', 'table constraint')
    LOOP
        IF NOT superuser AND EXISTS (
            SELECT 1 FROM pg_catalog.pg_trigger t
            WHERE t.tgrelid = r.objid AND t.tgname LIKE 'loomworks\_%' AND t.tgenabled <> 'O') THEN
            RAISE EXCEPTION 'the platform''s triggers on % cannot be disabled', r.objid::regclass
                USING ERRCODE = '{{sqlstate.guardedTrigger}}',
                      HINT = 'they capture AI operations for undo and enforce the tenant''s limits';
        END IF;
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = r.objid) THEN
            PERFORM {{schema}}.attach(r.objid);
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
                   AND (n.nspname LIKE 'loomworks\_%' OR t.tgname LIKE 'loomworks\_%')
        LOOP
            IF NOT {{schema}}.is_platform_trigger(r.oid) THEN
                RAISE EXCEPTION 'trigger % on %: the platform''s triggers and trigger functions cannot be altered or reused',
                        r.tgname, r.tgrelid::regclass
                    USING ERRCODE = '{{sqlstate.guardedTrigger}}',
                          HINT = 'they capture AI operations for undo and enforce the tenant''s limits';
            END IF;
        END LOOP;
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql {{pinned}} AS $fn$
DECLARE
    r record;
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RETURN;
    END IF;
    FOR r IN SELECT d.object_identity FROM pg_catalog.pg_event_trigger_dropped_objects() d
             WHERE d.object_type = 'trigger' AND d.original
               AND split_part(d.object_identity, ' on ', 1) LIKE 'loomworks\_%'
               -- detach() taking capture off a table that is now excluded or no longer a user table
               -- (the tenant renamed it to an excluded name, made it UNLOGGED) is allowed.
               AND NOT (d.address_names[3] IN ('{{capture_trigger}}', '{{truncate_trigger}}') AND coalesce((
                   SELECT NOT {{schema}}.is_user_table(c.oid) OR {{schema}}.is_excluded(c.oid)
                   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = d.address_names[1] AND c.relname = d.address_names[2]), false))
    LOOP
        RAISE EXCEPTION 'trigger % belongs to the hosting platform and cannot be dropped', r.object_identity
            USING ERRCODE = '{{sqlstate.guardedTrigger}}',
                  HINT = 'it captures AI operations for undo or enforces the tenant''s limits';
    END LOOP;
END
$fn$;

-- The DDL guards: capture follows the tenant's tables; the platform's triggers stay as they are.
DROP EVENT TRIGGER IF EXISTS loomworks_undo_ddl;
CREATE EVENT TRIGGER loomworks_undo_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE TRIGGER', 'ALTER TRIGGER')
    EXECUTE FUNCTION {{schema}}.on_ddl_end();
DROP EVENT TRIGGER IF EXISTS loomworks_guard_drop;
CREATE EVENT TRIGGER loomworks_guard_drop ON sql_drop
    WHEN TAG IN ('DROP TRIGGER', 'ALTER TABLE')
    EXECUTE FUNCTION {{schema}}.on_sql_drop();
