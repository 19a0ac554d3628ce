-- The snapshot API (lib/snapshot/runtime.ts): loomworks_snapshot.request(kind, note) creates a
-- restore point from inside the tenant database and queues it for the platform's registry. The
-- restore point name is lw:<database>:<12 hex digits of the id>, as restorePointName().

CREATE TABLE IF NOT EXISTS {{schema}}.requested (
    id uuid PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('pre_ai')),
    note text CHECK (length(note) <= {{max_note_length}}),
    lsn pg_lsn NOT NULL,
    restore_point text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    requested_by text NOT NULL DEFAULT session_user
);
ALTER TABLE {{schema}}.requested OWNER TO {{owner}};
REVOKE ALL ON TABLE {{schema}}.requested FROM PUBLIC;

GRANT EXECUTE ON FUNCTION pg_catalog.pg_create_restore_point(text) TO {{owner}};

CREATE OR REPLACE FUNCTION {{schema}}.request(kind text, note text DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
#variable_conflict use_variable
DECLARE
    rid uuid := gen_random_uuid();
    point text;
    at_lsn pg_lsn;
BEGIN
    IF kind IS DISTINCT FROM 'pre_ai' THEN
        RAISE EXCEPTION 'loomworks_snapshot.request: kind must be ''pre_ai'', got %', coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(note) > {{max_note_length}} THEN
        RAISE EXCEPTION 'loomworks_snapshot.request: note longer than {{max_note_length}} characters'
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    -- Counted per UTC day against the tenant's limit (SQLSTATE {{sqlstate.preAiLimit}} over it); no quota API: no limit.
    IF to_regprocedure('loomworks_quota.take_pre_ai_snapshot()') IS NOT NULL THEN
        PERFORM loomworks_quota.take_pre_ai_snapshot();
    END IF;
    IF (SELECT count(*) FROM {{schema}}.requested) >= {{max_pending_requests}} THEN
        RAISE EXCEPTION 'loomworks_snapshot.request: {{max_pending_requests}} snapshot requests are waiting to be synced'
            USING ERRCODE = 'program_limit_exceeded',
                  HINT = 'the platform moves requests into the registry with its scheduled snapshots';
    END IF;
    point := 'lw:' || left(current_database()::text, 47) || ':' || left(replace(rid::text, '-', ''), 12);
    at_lsn := pg_create_restore_point(point);
    INSERT INTO {{schema}}.requested (id, kind, note, lsn, restore_point)
    VALUES (rid, kind, note, at_lsn, point);
    RETURN rid;
END
$fn$;
COMMENT ON FUNCTION {{schema}}.request(text, text) IS
    'Creates a restore point (kind pre_ai) and queues it for the platform registry; returns the snapshot id.';
