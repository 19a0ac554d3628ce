-- The quota API's storage limit: read-only enforced by statement triggers and a DDL guard.

-- Read-only for storage, enforced by the platform (not only the database default the tenant's
-- session can override): while the storage check says read_only, every table of the tenant carries
-- the statement trigger {{read_only_trigger}} refusing INSERT and UPDATE (COPY included) in any
-- session but a superuser's; DELETE and TRUNCATE stay allowed, to free space. The DDL guard below
-- refuses new permanent tables, indexes and rewrites meanwhile. The triggers belong to the platform:
-- the tenant can neither drop, disable nor replace them (loomworks_undo's DDL guard).
CREATE OR REPLACE FUNCTION {{schema}}.storage_read_only() RETURNS boolean
LANGUAGE sql STABLE {{definer}} AS $fn$
    SELECT coalesce((SELECT s.state = 'read_only' FROM {{schema}}.storage s), false)
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.refuse_write() RETURNS trigger
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
DECLARE
    reason text;
BEGIN
    SELECT s.reason INTO reason FROM {{schema}}.storage s WHERE s.state = 'read_only';
    IF NOT FOUND OR (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'cannot execute % on %.% : the tenant is read-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'read_only_sql_transaction',
              DETAIL = coalesce(reason, 'storage limit reached'),
              HINT = 'delete data to free space (DELETE and TRUNCATE are allowed), or ask the platform team to raise limits.maxStorageGb';
END
$fn$;

-- Puts the read-only trigger on every table of the tenant (on = true) or takes it off; returns how
-- many tables changed. Run by the storage check (a superuser); never by the tenant.
CREATE OR REPLACE FUNCTION {{schema}}.apply_read_only(want boolean) RETURNS integer
LANGUAGE plpgsql VOLATILE {{pinned}} AS $fn$
DECLARE
    r record;
    n integer := 0;
BEGIN
    FOR r IN
        SELECT c.oid::regclass AS rel,
               EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = '{{read_only_trigger}}') AS has
        FROM pg_class c JOIN pg_namespace ns ON ns.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND c.relpersistence IN ('p', 'u')
          AND ns.nspname NOT IN ('pg_catalog', 'information_schema') AND ns.nspname NOT LIKE 'pg\_%'
          AND ns.nspname NOT LIKE 'loomworks\_%'
        ORDER BY c.oid
    LOOP
        IF want AND NOT r.has THEN
            EXECUTE format('CREATE TRIGGER {{read_only_trigger}} BEFORE INSERT OR UPDATE ON %s '
                           'FOR EACH STATEMENT EXECUTE FUNCTION {{schema_name}}.refuse_write()', r.rel);
            n := n + 1;
        ELSIF NOT want AND r.has THEN
            EXECUTE format('DROP TRIGGER {{read_only_trigger}} ON %s', r.rel);
            n := n + 1;
        END IF;
    END LOOP;
    RETURN n;
END
$fn$;

-- The DDL guard of the quotas (event trigger loomworks_quota_ddl; superusers excepted): no table may
-- inherit from res_users (its rows would count without passing the user-limit trigger), and while
-- read-only no permanent table, index or materialized view is created or rewritten.
CREATE OR REPLACE FUNCTION {{schema}}.on_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql {{pinned}} AS $fn$
BEGIN
    IF (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = current_user) THEN
        RETURN;
    END IF;
    -- to_regclass, not a cast: a database without res_users yet (a template being built) is fine
    IF EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = to_regclass('public.res_users')) THEN
        RAISE EXCEPTION 'no table may inherit from res_users or be a partition of it'
            USING ERRCODE = '{{sqlstate.userTableInheritance}}',
                  HINT = 'its rows would be users the user limit (limits.maxUsers) never sees';
    END IF;
    IF {{schema}}.storage_read_only() AND EXISTS (
        SELECT 1 FROM pg_event_trigger_ddl_commands() d JOIN pg_class c ON c.oid = d.objid
        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND c.relpersistence <> 't') THEN
        RAISE EXCEPTION 'the tenant is read-only: % is refused', tg_tag
            USING ERRCODE = 'read_only_sql_transaction',
                  HINT = 'delete data to free space, or ask the platform team to raise limits.maxStorageGb';
    END IF;
END
$fn$;

DROP EVENT TRIGGER IF EXISTS loomworks_quota_ddl;
CREATE EVENT TRIGGER loomworks_quota_ddl ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE INDEX',
                 'CREATE MATERIALIZED VIEW', 'REFRESH MATERIALIZED VIEW')
    EXECUTE FUNCTION {{schema_name}}.on_ddl_end();

