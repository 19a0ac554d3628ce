-- The tenant's view of its quotas (docs/configuration.md#sql-api). storage.bytes is the last check's
-- measure; max_bytes and percent use the current limit; read_only is the database's actual setting.
CREATE OR REPLACE FUNCTION {{schema}}.status() RETURNS jsonb
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
DECLARE
    lim record;
    st record;
    used integer := {{schema}}.active_internal_users();
    resets timestamptz := to_timestamp(({{today}} + 1) * 86400);
    settings text[];
    ro boolean;
    reason text;
BEGIN
    SELECT l.tenant, l.tier, l.max_users, l.max_storage_bytes, l.max_ai_operations_daily
      INTO lim FROM {{schema}}.limits l;
    SELECT s.bytes, s.state, s.checked_at INTO st FROM {{schema}}.storage s;
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
            'today', {{schema}}.ai_operations_today(),
            'max', lim.max_ai_operations_daily,
            'resets_at', to_char(resets AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')));
END
$fn$;
COMMENT ON FUNCTION {{schema}}.status() IS
    'The tenant''s quotas: {users: {used, max, remaining}, storage: {bytes, max_bytes, percent, read_only, ...}, ai_operations: {today, max, resets_at}}.';

