-- What the tenant role (nothing to grant when that is a superuser) and the
-- snapshot API's owner may use of the quota API. Every function is the owner's and PUBLIC may execute none
-- before this runs (sql/common/functions.sql).
DO $grants$
DECLARE
    tenant name := {{tenant_role}};
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = tenant) THEN
        EXECUTE format('GRANT USAGE ON SCHEMA {{schema_name}} TO %I', tenant);
        EXECUTE format('GRANT EXECUTE ON FUNCTION {{schema_name}}.status(), {{schema_name}}.remaining_user_slots(), {{schema_name}}.ai_operations_today(), {{schema_name}}.pre_ai_snapshots_today(), {{schema_name}}.storage_read_only() TO %I', tenant);
    END IF;
    -- loomworks_snapshot.request counts pre_ai restore points (its owner role runs it).
    IF EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = '{{snapshot_owner_name}}') THEN
        GRANT USAGE ON SCHEMA {{schema}} TO {{snapshot_owner}};
        GRANT EXECUTE ON FUNCTION {{schema}}.take_pre_ai_snapshot() TO {{snapshot_owner}};
    END IF;
END
$grants$;

