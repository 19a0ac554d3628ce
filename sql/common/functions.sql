-- Every function of the API's schema (not an extension's) belongs to the API's NOLOGIN owner role;
-- PUBLIC may execute none (the API's grants come after this). Run by the installer
-- (lib/sql/modules.ts) after the API's definitions.
DO $own$
DECLARE
    fn record;
BEGIN
    FOR fn IN SELECT p.oid::regprocedure AS sig FROM pg_proc p WHERE p.pronamespace = '{{schema_name}}'::regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO {{owner}}', fn.sig);
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', fn.sig);
    END LOOP;
END
$own$;
