-- What the tenant role may use of the undo API: read the logs, execute the documented API, what it
-- calls with the caller's rights, and what the DDL event triggers call when the tenant creates or
-- alters a table. Everything else (prune, attach_all, ...) is the platform's. Every function is the
-- owner's and PUBLIC may execute none before this runs (sql/common/functions.sql).

-- begin_operation (as the guard owner) requests pre_ai restore points.
GRANT USAGE ON SCHEMA loomworks_snapshot TO {{owner}};
GRANT EXECUTE ON FUNCTION loomworks_snapshot.request(text, text) TO {{owner}};

DO $grants$
DECLARE
    tenant name := {{tenant_role}};
    fn record;
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = tenant) THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA {{schema_name}} TO %I', tenant);
    -- Read only (v2 let the tenant append to the change log).
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA {{schema_name}} FROM %I', tenant);
    EXECUTE format('GRANT SELECT ON {{schema_name}}.operation_log, {{schema_name}}.change_log, {{schema_name}}.excluded_tables TO %I', tenant);
    FOR fn IN SELECT p.oid::regprocedure AS sig, p.proname::text = ANY (ARRAY[
                  -- the API (docs/developer/undo-api.md)
                  'begin_operation', 'use_operation', 'end_operation', 'undo_operation', 'operations',
                  -- called by it
                  'parse_operation_id', 'start_operation', 'check_usable', 'finish_operation', 'prepare_undo',
                  'net_changes', 'open_undo', 'close_undo', 'later_changes', 'same_row', 'shown', 'shown_key',
                  'primary_key_columns', 'column_list', 'key_builder', 'is_captured',
                  -- the tenant's DDL (event triggers run as the tenant)
                  'attach', 'detach', 'is_user_table', 'is_excluded', 'is_platform_trigger', 'capture',
                  'refuse_truncate']) AS allowed
              FROM pg_proc p WHERE p.pronamespace = '{{schema_name}}'::regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format(CASE WHEN fn.allowed THEN 'GRANT EXECUTE ON FUNCTION %s TO %I' ELSE 'REVOKE ALL ON FUNCTION %s FROM %I' END,
                       fn.sig, tenant);
    END LOOP;
END
$grants$;
