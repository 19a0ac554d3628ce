-- What the tenant role (the owner of schema public; nothing to grant when that is a superuser)
-- may use of the snapshot API.
DO $install$
DECLARE
    tenant name := {{tenant_role}};
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = tenant) THEN
        EXECUTE format('GRANT USAGE ON SCHEMA {{schema_name}} TO %I', tenant);
        EXECUTE format('GRANT EXECUTE ON FUNCTION {{schema_name}}.request(text, text) TO %I', tenant);
        EXECUTE format('GRANT SELECT ON TABLE {{schema_name}}.requested TO %I', tenant);
    END IF;
END
$install$;

