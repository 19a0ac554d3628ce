-- The API's owner: a NOLOGIN role running its SECURITY DEFINER functions. Run by the installer
-- (lib/sql/modules.ts) first, as a superuser.

-- The owner role is cluster-wide; another tenant database may be creating it right now.
DO $owner$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{{owner_name}}') THEN
        BEGIN
            CREATE ROLE {{owner}} NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END IF;
END
$owner$;

-- It runs SECURITY DEFINER code: it must be inert and nobody may become it.
DO $owner$
DECLARE
    r record;
BEGIN
    SELECT oid, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls
      INTO r FROM pg_roles WHERE rolname = '{{owner_name}}';
    IF r.rolcanlogin OR r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls THEN
        RAISE EXCEPTION 'role {{owner_name}} has LOGIN or another attribute; refusing to install the {{api}} API'
            USING HINT = 'the role is reserved for the platform: it must be NOLOGIN without attributes';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_auth_members WHERE roleid = r.oid OR member = r.oid) THEN
        RAISE EXCEPTION 'role {{owner_name}} has members or memberships; refusing to install the {{api}} API';
    END IF;
END
$owner$;
