-- Removal of the undo API (lib/guards/install.ts removeGuards): event triggers, every capture
-- trigger, the schema.

DROP EVENT TRIGGER IF EXISTS loomworks_undo_ddl;
DROP EVENT TRIGGER IF EXISTS loomworks_guard_drop;
DO $remove$
DECLARE
    r record;
BEGIN
    IF to_regnamespace('{{schema_name}}') IS NULL THEN
        RETURN;
    END IF;
    IF to_regprocedure('{{schema_name}}.capture()') IS NOT NULL THEN
        FOR r IN SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_trigger t
                 WHERE t.tgparentid = 0
                   AND t.tgfoid IN ('{{schema_name}}.capture()'::regprocedure, '{{schema_name}}.refuse_truncate()'::regprocedure)
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
        END LOOP;
    END IF;
    -- The platform's own objects, then hstore when it is ours: without CASCADE, so that a tenant
    -- object using it (a column of type hstore) makes the removal fail instead of being dropped.
    FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
             WHERE p.pronamespace = '{{schema_name}}'::regnamespace
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('DROP FUNCTION %s CASCADE', r.sig);
    END LOOP;
    DROP TABLE IF EXISTS {{schema}}.change_log, {{schema}}.operation_log, {{schema}}.excluded_tables;
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hstore' AND extnamespace = '{{schema_name}}'::regnamespace) THEN
        DROP EXTENSION hstore;
    END IF;
END
$remove$;
DROP SCHEMA IF EXISTS {{schema}};
