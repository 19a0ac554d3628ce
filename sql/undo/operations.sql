-- The undo API's operations (lib/undo/sql.ts): begin, use, end, list, prune, and undoing one. The
-- public functions are SECURITY INVOKER: they set loomworks.operation for the caller's transaction.

-- Whether an operation is undone now: some undo of it, closed (close_undo checked that it restored
-- the rows), is itself in effect (not undone).
CREATE OR REPLACE FUNCTION {{schema}}.undone_by(op uuid) RETURNS uuid
LANGUAGE plpgsql STABLE {{definer}} AS $fn$
DECLARE
    u uuid;
BEGIN
    FOR u IN SELECT id FROM {{schema}}.operation_log WHERE undoes = op AND kind = 'undo' AND ended_at IS NOT NULL
             ORDER BY started_at DESC LOOP
        IF {{schema}}.undone_by(u) IS NULL THEN
            RETURN u;
        END IF;
    END LOOP;
    RETURN NULL;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.parse_operation_id(operation_id text) RETURNS uuid
LANGUAGE plpgsql IMMUTABLE {{definer}} AS $fn$
BEGIN
    RETURN operation_id::uuid;
EXCEPTION WHEN invalid_text_representation THEN
    RAISE EXCEPTION 'not an operation id: %', quote_literal(operation_id)
        USING ERRCODE = '{{sqlstate.badOperation}}', HINT = 'operation ids are the texts begin_operation returns';
END
$fn$;

-- Starts an operation for begin_operation (which sets it for the transaction): counts it against the
-- daily limit, takes the pre_ai restore point of a destructive one, records it. The id is
-- time-ordered (UUID version 7: milliseconds since 1970, then random bits), so the log's indexes
-- grow at their right-hand end instead of at random pages.
CREATE OR REPLACE FUNCTION {{schema}}.start_operation(session_id text, kind text, description text) RETURNS uuid
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
#variable_conflict use_variable
DECLARE
    id uuid := encode(overlay(uuid_send(gen_random_uuid())
                              PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::int8) FROM 3) || '\x70'::bytea
                              FROM 1 FOR 7), 'hex')::uuid;
    snapshot uuid;
BEGIN
    IF current_setting('{{operation_setting}}', true) <> '' THEN
        RAISE EXCEPTION 'operation % is already active in this transaction', current_setting('{{operation_setting}}')
            USING ERRCODE = '{{sqlstate.operationActive}}', HINT = 'an AI tool call is one operation: start it in a new transaction';
    END IF;
    IF kind IS NULL OR kind NOT IN ('write', 'destructive') THEN
        RAISE EXCEPTION 'begin_operation: kind must be ''write'' or ''destructive'', got %', coalesce(quote_literal(kind), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF length(session_id) > 200 OR length(description) > 2000 THEN
        RAISE EXCEPTION 'begin_operation: session_id is limited to 200 characters and description to 2000'
            USING ERRCODE = 'string_data_right_truncation';
    END IF;
    -- The quota and snapshot APIs are installed with this one, before it (lib/guards/install.ts).
    PERFORM loomworks_quota.take_ai_operation();
    IF kind = 'destructive' THEN
        snapshot := loomworks_snapshot.request('pre_ai', left(format('AI operation %s: %s', id, coalesce(description, kind)), 1000));
    END IF;
    INSERT INTO {{schema}}.operation_log (id, session_id, kind, description, snapshot_id)
    VALUES (id, session_id, kind, description, snapshot);
    RETURN id;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.check_usable(op uuid) RETURNS void
LANGUAGE plpgsql STABLE {{definer}} AS $fn$
DECLARE
    r record;
    u uuid;
BEGIN
    SELECT * INTO r FROM {{schema}}.operation_log WHERE id = op;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'operation % does not exist', op USING ERRCODE = '{{sqlstate.badOperation}}';
    ELSIF r.kind = 'undo' THEN
        RAISE EXCEPTION 'operation % is an undo; it cannot take further changes', op USING ERRCODE = '{{sqlstate.badOperation}}';
    ELSIF r.ended_at IS NOT NULL THEN
        RAISE EXCEPTION 'operation % ended at %', op, r.ended_at
            USING ERRCODE = '{{sqlstate.badOperation}}', HINT = 'begin a new operation';
    END IF;
    u := {{schema}}.undone_by(op);
    IF u IS NOT NULL THEN
        RAISE EXCEPTION 'operation % was undone by %', op, u USING ERRCODE = '{{sqlstate.badOperation}}';
    END IF;
END
$fn$;

-- Per table: rows inserted, updated, deleted (captured changes), and the totals.
CREATE OR REPLACE FUNCTION {{schema}}.change_summary(op uuid) RETURNS jsonb
LANGUAGE sql STABLE {{definer}} AS $fn$
    WITH t AS (
        SELECT CASE WHEN k.oid IS NULL THEN 'oid ' || c.table_oid ELSE c.table_oid::regclass::text END AS tbl,
               count(*) FILTER (WHERE c.action = 'I') AS ins,
               count(*) FILTER (WHERE c.action = 'U') AS upd,
               count(*) FILTER (WHERE c.action = 'D') AS del
        FROM {{schema}}.change_log c LEFT JOIN pg_class k ON k.oid = c.table_oid
        WHERE c.operation_id = op
        GROUP BY 1)
    SELECT jsonb_build_object(
        'operation_id', op,
        'tables', coalesce(jsonb_object_agg(regexp_replace(tbl, '^public\.', ''),
                           jsonb_build_object('inserted', ins, 'updated', upd, 'deleted', del)) FILTER (WHERE tbl IS NOT NULL), '{}'),
        'inserted', coalesce(sum(ins), 0), 'updated', coalesce(sum(upd), 0), 'deleted', coalesce(sum(del), 0))
    FROM t
$fn$;

-- Ends an operation (end_operation). An undo is ended only by close_undo, after its check.
CREATE OR REPLACE FUNCTION {{schema}}.finish_operation(op uuid) RETURNS jsonb
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
DECLARE
    totals jsonb;
    k text;
BEGIN
    SELECT o.kind INTO k FROM {{schema}}.operation_log o WHERE o.id = op;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'operation % does not exist', op USING ERRCODE = '{{sqlstate.badOperation}}';
    ELSIF k = 'undo' AND NOT EXISTS (SELECT 1 FROM {{schema}}.operation_log o WHERE o.id = op AND o.ended_at IS NOT NULL) THEN
        RAISE EXCEPTION 'operation % is an undo in progress; only undo_operation ends it', op USING ERRCODE = '{{sqlstate.badOperation}}';
    END IF;
    totals := {{schema}}.change_summary(op);
    UPDATE {{schema}}.operation_log SET ended_at = coalesce(ended_at, clock_timestamp()), summary = totals WHERE id = op;
    RETURN totals;
END
$fn$;

-- Public API (SECURITY INVOKER: they set loomworks.operation for the caller's transaction).
-- SQL, not PL/pgSQL: the planner inlines it into the caller's statement (no function call of its own).
CREATE OR REPLACE FUNCTION {{schema}}.begin_operation(session_id text, kind text DEFAULT 'write', description text DEFAULT NULL)
RETURNS text
LANGUAGE sql VOLATILE AS $fn$
    SELECT pg_catalog.set_config('{{operation_setting}}', {{schema}}.start_operation($1, $2, $3)::pg_catalog.text, true)
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.use_operation(operation_id text) RETURNS void
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    active text := coalesce(pg_catalog.current_setting('{{operation_setting}}', true), '');
    op uuid := {{schema}}.parse_operation_id(operation_id);
BEGIN
    IF active <> '' AND active <> op::text THEN
        RAISE EXCEPTION 'operation % is already active in this transaction', active USING ERRCODE = '{{sqlstate.operationActive}}';
    END IF;
    PERFORM {{schema}}.check_usable(op);
    PERFORM pg_catalog.set_config('{{operation_setting}}', op::text, true);
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.end_operation(operation_id text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    op uuid := {{schema}}.parse_operation_id(operation_id);
    summary jsonb := {{schema}}.finish_operation(op);
BEGIN
    IF coalesce(pg_catalog.current_setting('{{operation_setting}}', true), '') = op::text THEN
        PERFORM pg_catalog.set_config('{{operation_setting}}', '', true);
    END IF;
    RETURN summary;
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.operations(session_id text DEFAULT NULL)
RETURNS TABLE (
    id text, session_id text, kind text, description text, started_at timestamptz, ended_at timestamptz,
    started_by text, snapshot_id text, undoes text, undone boolean, undone_by text, summary jsonb)
LANGUAGE sql STABLE {{definer}} AS $fn$
    SELECT o.id::text, o.session_id, o.kind, o.description, o.started_at, o.ended_at, o.started_by,
           o.snapshot_id::text, o.undoes::text, u.by IS NOT NULL, u.by::text,
           coalesce(o.summary, {{schema}}.change_summary(o.id))
    FROM {{schema}}.operation_log o
    CROSS JOIN LATERAL (SELECT {{schema}}.undone_by(o.id) AS by) u
    WHERE $1 IS NULL OR o.session_id = $1
    ORDER BY o.started_at DESC, o.id
$fn$;

-- Forgets ended operations (and their changes) older than the retention; returns how many.
CREATE OR REPLACE FUNCTION {{schema}}.prune(older_than interval) RETURNS integer
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
DECLARE
    gone uuid[];
BEGIN
    SELECT coalesce(array_agg(id), '{}') INTO gone FROM {{schema}}.operation_log
    WHERE coalesce(ended_at, started_at) < clock_timestamp() - older_than;
    DELETE FROM {{schema}}.change_log WHERE operation_id = ANY (gone);
    DELETE FROM {{schema}}.operation_log WHERE id = ANY (gone);
    -- Rows under an id no operation has (the operation setting set by hand): nothing can undo them.
    -- Rows of operations still open are not visible here (uncommitted) and are left alone.
    DELETE FROM {{schema}}.change_log c WHERE NOT EXISTS (SELECT 1 FROM {{schema}}.operation_log o WHERE o.id = c.operation_id);
    RETURN cardinality(gone);
END
$fn$;

-- Undoing an operation ------------------------------------------------------------------------------
-- Plan from the captured changes, conflicts, apply in foreign-key-safe order, verify, record.

-- Definer side of an undo: serializes undos of one operation and checks it may be undone.
CREATE OR REPLACE FUNCTION {{schema}}.prepare_undo(op uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
DECLARE
    r record;
    u uuid;
    last_change bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('loomworks_undo:' || op::text, 0));
    SELECT * INTO r FROM {{schema}}.operation_log WHERE id = op;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'operation % does not exist', op USING ERRCODE = '{{sqlstate.badOperation}}';
    END IF;
    u := {{schema}}.undone_by(op);
    IF u IS NOT NULL THEN
        RAISE EXCEPTION 'operation % is already undone (by operation %)', op, u
            USING ERRCODE = '{{sqlstate.badOperation}}', HINT = format('undo operation %s to redo it', u);
    END IF;
    IF r.kind = 'undo' AND r.ended_at IS NULL THEN
        RAISE EXCEPTION 'operation % is an undo that never completed; it changed nothing that can be undone', op
            USING ERRCODE = '{{sqlstate.badOperation}}';
    END IF;
    IF r.ended_at IS NULL THEN
        PERFORM {{schema}}.finish_operation(op);
    END IF;
    SELECT max(id) INTO last_change FROM {{schema}}.change_log WHERE operation_id = op;
    RETURN coalesce(last_change, 0);
END
$fn$;

-- Per (table, key): the row before the operation and after it (NULL: no row), from its captured changes.
CREATE OR REPLACE FUNCTION {{schema}}.net_changes(op uuid)
RETURNS TABLE (table_oid oid, key jsonb, before {{hstore}}.hstore, after {{hstore}}.hstore)
LANGUAGE sql STABLE {{definer}} AS $fn$
    WITH ch AS (
        SELECT c.id, c.table_oid, c.action, c.row_key, c.old_row, c.new_row,
               CASE WHEN c.action = 'U' THEN
                   (SELECT jsonb_object_agg(k, c.old_row OPERATOR({{hstore}}.->) k) FROM jsonb_object_keys(c.row_key) AS k)
               END AS old_key
        FROM {{schema}}.change_log c
        WHERE c.operation_id = op
    ), ev AS (
        SELECT ch.id, ch.table_oid, coalesce(ch.old_key, ch.row_key) AS key, ch.old_row AS before,
               CASE WHEN ch.action = 'D' OR (ch.action = 'U' AND ch.old_key IS DISTINCT FROM ch.row_key) THEN NULL
                    ELSE ch.new_row END AS after
        FROM ch
        UNION ALL
        SELECT ch.id, ch.table_oid, ch.row_key, NULL, ch.new_row FROM ch
        WHERE ch.action = 'U' AND ch.old_key IS DISTINCT FROM ch.row_key
    )
    SELECT ev.table_oid, ev.key,
           (array_agg(ev.before ORDER BY ev.id))[1],
           (array_agg(ev.after ORDER BY ev.id DESC))[1]
    FROM ev GROUP BY ev.table_oid, ev.key
$fn$;

-- Starts recording an undo of op: an operation of kind 'undo', not in effect until close_undo.
CREATE OR REPLACE FUNCTION {{schema}}.open_undo(op uuid) RETURNS uuid
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
DECLARE
    id uuid := gen_random_uuid();
    target record;
BEGIN
    SELECT * INTO target FROM {{schema}}.operation_log WHERE operation_log.id = op;
    IF NOT FOUND OR target.ended_at IS NULL OR {{schema}}.undone_by(op) IS NOT NULL THEN
        RAISE EXCEPTION 'operation % cannot be undone now', op USING ERRCODE = '{{sqlstate.badOperation}}';
    END IF;
    INSERT INTO {{schema}}.operation_log (id, session_id, kind, description, undoes)
    VALUES (id, target.session_id, 'undo', left(format('undo of %s', op), 2000), op);
    RETURN id;
END
$fn$;

-- Completes an undo, from what capture recorded (the tenant cannot write the log): every row of
-- the operation the undo changed is back in its state before the operation, and it changed at least
-- one when there was anything to restore. Only then does the undo count (undone_by) and end.
CREATE OR REPLACE FUNCTION {{schema}}.close_undo(undo_id uuid) RETURNS jsonb
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
DECLARE
    u record;
    restored bigint;
    wrong bigint;
    pending bigint;
BEGIN
    SELECT * INTO u FROM {{schema}}.operation_log o WHERE o.id = undo_id AND o.kind = 'undo' AND o.ended_at IS NULL FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'operation % is not an undo in progress', undo_id USING ERRCODE = '{{sqlstate.badOperation}}';
    END IF;
    SELECT count(*),
           count(*) FILTER (WHERE NOT ((un.after IS NULL AND t.before IS NULL) OR coalesce({{schema}}.same_row(un.after, t.before), false)))
      INTO restored, wrong
    FROM {{schema}}.net_changes(undo_id) un JOIN {{schema}}.net_changes(u.undoes) t USING (table_oid, key);
    SELECT count(*) INTO pending FROM {{schema}}.net_changes(u.undoes) t
    WHERE NOT ((t.before IS NULL AND t.after IS NULL) OR coalesce(t.before OPERATOR({{hstore}}.=) t.after, false));
    IF wrong > 0 OR (restored = 0 AND pending > 0) THEN
        RAISE EXCEPTION 'undo % of operation %: the recorded changes do not bring its rows back (% restored, % not as before)',
                undo_id, u.undoes, restored - wrong, wrong
            USING ERRCODE = '{{sqlstate.verification}}';
    END IF;
    UPDATE {{schema}}.operation_log o SET ended_at = clock_timestamp() WHERE o.id = undo_id;
    RETURN {{schema}}.finish_operation(undo_id);
END
$fn$;

-- Per (table, key) changed after "after_change": the operations still in effect that changed it (not
-- undone, and not undos of operations that are themselves later than the one being undone). One
-- pass over the changes after it (BRIN on id), joined with the plan by the caller.
DROP FUNCTION IF EXISTS {{schema}}.later_operations(oid, jsonb, uuid, bigint);
CREATE OR REPLACE FUNCTION {{schema}}.later_changes(target uuid, after_change bigint)
RETURNS TABLE (table_oid oid, key jsonb, operations uuid[])
LANGUAGE sql STABLE {{definer}} AS $fn$
    WITH later AS MATERIALIZED (
        SELECT c.table_oid, c.row_key, c.operation_id FROM {{schema}}.change_log c
        WHERE c.id > after_change AND c.operation_id <> target
    ), live AS MATERIALIZED (
        SELECT o.id FROM {{schema}}.operation_log o
        WHERE o.id IN (SELECT DISTINCT l.operation_id FROM later l)
          AND {{schema}}.undone_by(o.id) IS NULL
          AND NOT (o.kind = 'undo' AND coalesce(
                (SELECT min(c2.id) FROM {{schema}}.change_log c2 WHERE c2.operation_id = o.undoes), 0) > after_change)
    )
    SELECT l.table_oid, l.row_key, array_agg(DISTINCT l.operation_id ORDER BY l.operation_id)
    FROM later l JOIN live ON live.id = l.operation_id
    GROUP BY l.table_oid, l.row_key
$fn$;

-- The same row? Columns added to or dropped from the table since the image was taken are ignored.
CREATE OR REPLACE FUNCTION {{schema}}.same_row(cur {{hstore}}.hstore, expected {{hstore}}.hstore) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $fn$
    SELECT cur OPERATOR({{hstore}}.=) expected OR (
        cur IS NOT NULL AND expected IS NOT NULL
        AND {{hstore}}.slice(cur, {{hstore}}.akeys(expected)) OPERATOR({{hstore}}.=) {{hstore}}.slice(expected, {{hstore}}.akeys(cur)))
$fn$;

-- A row image as people read it: the columns with their types (jsonb columns as JSON, not text),
-- only those the image has.
CREATE OR REPLACE FUNCTION {{schema}}.shown(rel oid, image {{hstore}}.hstore) RETURNS jsonb
LANGUAGE plpgsql STABLE {{pinned}} AS $fn$
DECLARE
    typed jsonb;
BEGIN
    IF image IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = rel) THEN
        RETURN {{hstore}}.hstore_to_jsonb(image);
    END IF;
    EXECUTE format('SELECT pg_catalog.to_jsonb({{hstore}}.populate_record(NULL::%s, $1))', rel::regclass)
        INTO typed USING image;
    RETURN (SELECT pg_catalog.jsonb_object_agg(e.key, e.value) FROM pg_catalog.jsonb_each(typed) e
            WHERE image OPERATOR({{hstore}}.?) e.key);
END
$fn$;

-- A key as people read it: its columns with their types ({"id": 42}, not {"id": "42"}).
CREATE OR REPLACE FUNCTION {{schema}}.shown_key(rel oid, row_key jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE {{pinned}} AS $fn$
DECLARE
    typed jsonb;
BEGIN
    IF row_key IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = rel) THEN
        RETURN row_key;
    END IF;
    EXECUTE format('SELECT pg_catalog.to_jsonb(pg_catalog.jsonb_populate_record(NULL::%s, $1))', rel::regclass)
        INTO typed USING row_key;
    RETURN (SELECT pg_catalog.jsonb_object_agg(e.key, e.value) FROM pg_catalog.jsonb_each(typed) e WHERE row_key ? e.key);
END
$fn$;

CREATE OR REPLACE FUNCTION {{schema}}.undo_operation(operation_id text, on_conflict text DEFAULT 'abort', dry_run boolean DEFAULT false)
RETURNS jsonb
-- No pinned search_path: it runs as the caller, whose own triggers fire with the caller's settings.
LANGUAGE plpgsql VOLATILE AS $fn$
#variable_conflict use_variable
DECLARE
    target uuid := {{schema}}.parse_operation_id(operation_id);
    tables jsonb;
    last_change bigint;
    tbl record;
    fk record;
    cols text[];
    sql text;
    order_oids oid[] := '{}';
    remaining oid[];
    parents oid[];
    children oid[];
    pick oid;
    pending text[] := '{}';
    still text[];
    errors text[];
    progress boolean;
    conflicts jsonb;
    n_conflicts int;
    later jsonb;
    result jsonb;
    undo_id uuid;
    previous text := coalesce(pg_catalog.current_setting('{{operation_setting}}', true), '');
    n int;
    counts record;
BEGIN
    IF on_conflict IS NULL OR on_conflict NOT IN ('abort', 'skip', 'force') THEN
        RAISE EXCEPTION 'undo_operation: on_conflict must be ''abort'', ''skip'' or ''force'', got %',
                coalesce(quote_literal(on_conflict), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    last_change := {{schema}}.prepare_undo(target);

    IF to_regclass('pg_temp.loomworks_undo_plan') IS NOT NULL THEN
        DROP TABLE pg_temp.loomworks_undo_plan;
    END IF;
    -- One row per (table, key): the row before the operation and after it (NULL: no row).
    -- Created, then filled (CREATE TABLE AS is refused in a read-only transaction; a dry run may be in one).
    CREATE TEMP TABLE loomworks_undo_plan (
        table_oid oid, key jsonb, before {{hstore}}.hstore, after {{hstore}}.hstore, action text,
        current {{hstore}}.hstore, present boolean, conflict text, later_ops uuid[], detail jsonb, apply text
    ) ON COMMIT DROP;
    INSERT INTO pg_temp.loomworks_undo_plan
    SELECT net.table_oid, net.key, net.before, net.after,
           CASE WHEN net.before IS NULL AND net.after IS NOT NULL THEN 'delete'
                WHEN net.before IS NOT NULL AND net.after IS NULL THEN 'insert'
                WHEN net.before IS NOT NULL AND NOT net.before OPERATOR({{hstore}}.=) net.after THEN 'update' END AS action,
           NULL, false, NULL, NULL, NULL, NULL
    FROM {{schema}}.net_changes(target) net;
    -- Rows without a key (a table without a primary key) all share the key NULL, so their changes
    -- net out against each other: keep them, for the check below to refuse the undo.
    DELETE FROM pg_temp.loomworks_undo_plan p WHERE p.action IS NULL AND p.key IS NOT NULL;
    IF NOT pg_catalog.current_setting('transaction_read_only')::boolean THEN
        ANALYZE pg_temp.loomworks_undo_plan;
    END IF;

    -- Every table must still exist and have the primary key its rows were captured with.
    FOR tbl IN SELECT DISTINCT p.table_oid, p.key IS NULL AS nokey,
                      (SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(p.key) k) AS keycols
               FROM pg_temp.loomworks_undo_plan p
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = tbl.table_oid) THEN
            RAISE EXCEPTION 'operation % changed rows of a table (oid %) that no longer exists; it cannot be undone row by row',
                    target, tbl.table_oid
                USING ERRCODE = '{{sqlstate.noPrimaryKey}}';
        END IF;
        -- Never a catalog, a platform table or anything the platform does not capture, whatever the log says.
        IF NOT {{schema}}.is_captured(tbl.table_oid) THEN
            RAISE EXCEPTION 'operation % names table %, which is not a captured user table of this tenant; nothing was changed',
                    target, tbl.table_oid::regclass
                USING ERRCODE = '{{sqlstate.notCaptured}}',
                      HINT = 'an undo only restores rows of tables the platform captures';
        END IF;
        cols := {{schema}}.primary_key_columns(tbl.table_oid);
        IF tbl.nokey OR cardinality(cols) = 0 THEN
            RAISE EXCEPTION 'operation % changed rows of table %, which has no primary key: those rows cannot be identified, so the operation cannot be undone row by row',
                    target, tbl.table_oid::regclass
                USING ERRCODE = '{{sqlstate.noPrimaryKey}}',
                      HINT = 'restore the operation''s pre_ai snapshot (destructive operations take one), or give the table a primary key before future operations';
        END IF;
        IF (SELECT array_agg(c ORDER BY c) FROM unnest(cols) c) IS DISTINCT FROM tbl.keycols THEN
            RAISE EXCEPTION 'the primary key of table % changed since operation %; it cannot be undone row by row',
                    tbl.table_oid::regclass, target
                USING ERRCODE = '{{sqlstate.noPrimaryKey}}';
        END IF;
    END LOOP;

    -- Lock the rows as they are now, and read them.
    FOR tbl IN SELECT DISTINCT p.table_oid FROM pg_temp.loomworks_undo_plan p LOOP
        cols := {{schema}}.primary_key_columns(tbl.table_oid);
        EXECUTE format(
            'UPDATE pg_temp.loomworks_undo_plan p SET current = c.j, present = true '
            'FROM (SELECT {{hstore}}.hstore(t) AS j, %4$s AS k FROM %1$s t WHERE (%2$s) IN ('
            '  SELECT %3$s FROM pg_temp.loomworks_undo_plan p2, jsonb_populate_record(NULL::%1$s, p2.key) r '
            '  WHERE p2.table_oid = $1) %5$s) c '
            'WHERE p.table_oid = $1 AND p.key = c.k',
            tbl.table_oid::regclass, {{schema}}.column_list(cols, 't'), {{schema}}.column_list(cols, 'r'),
            {{schema}}.key_builder(cols, 't'),
            -- A dry run only reads (it may run in a read-only transaction); the real one locks.
            CASE WHEN dry_run THEN '' ELSE 'FOR UPDATE OF t' END) USING tbl.table_oid;
    END LOOP;

    UPDATE pg_temp.loomworks_undo_plan p SET conflict = CASE
        WHEN p.action = 'insert' AND p.present THEN 'key_taken'
        WHEN p.action <> 'insert' AND NOT p.present THEN 'deleted'
        WHEN p.action <> 'insert' AND NOT {{schema}}.same_row(p.current, p.after) THEN 'changed' END;
    UPDATE pg_temp.loomworks_undo_plan p SET later_ops = l.operations
    FROM {{schema}}.later_changes(target, last_change) l
    WHERE p.table_oid = l.table_oid AND p.key = l.key;
    UPDATE pg_temp.loomworks_undo_plan p SET conflict = 'later_operation'
    WHERE p.conflict IS NULL AND p.later_ops IS NOT NULL;

    -- Conflicts that follow from others, repeated until nothing changes:
    --  * referenced: a row to delete that rows this undo will not delete or restore reference;
    --    deleting it would cascade into, null out, or be refused by rows the operation never touched;
    --  * parent_conflict: a row to re-insert or restore whose foreign key points at a row that
    --    cannot come back (its key is taken by another row now): it would attach to that other row.
    LOOP
        progress := false;
        FOR tbl IN SELECT d.table_oid
                   FROM (SELECT DISTINCT p.table_oid FROM pg_temp.loomworks_undo_plan p
                         WHERE p.action = 'delete' AND p.conflict IS NULL) d
                   WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con
                                 WHERE con.contype = 'f' AND con.confrelid = d.table_oid)
        LOOP
            -- The rows to delete, typed once (not once per foreign key: a table like res_partner
            -- has hundreds pointing at it).
            IF to_regclass('pg_temp.loomworks_undo_parent') IS NOT NULL THEN
                DROP TABLE pg_temp.loomworks_undo_parent;
            END IF;
            EXECUTE format('CREATE TEMP TABLE loomworks_undo_parent (key jsonb, r %s) ON COMMIT DROP',
                           tbl.table_oid::regclass);
            EXECUTE format(
                'INSERT INTO pg_temp.loomworks_undo_parent SELECT p.key, {{hstore}}.populate_record(NULL::%s, p.current) '
                'FROM pg_temp.loomworks_undo_plan p WHERE p.table_oid = $1 AND p.action = ''delete'' AND p.conflict IS NULL',
                tbl.table_oid::regclass) USING tbl.table_oid;
            FOR fk IN
                SELECT con.conrelid AS child,
                       (SELECT string_agg(format('ch.%I', a.attname), ', ' ORDER BY k.ord)
                        FROM unnest(con.conkey) WITH ORDINALITY k(n, ord)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n) AS child_cols,
                       (SELECT string_agg(format('(pt.r).%I', a.attname), ', ' ORDER BY k.ord)
                        FROM unnest(con.confkey) WITH ORDINALITY k(n, ord)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n) AS parent_cols
                FROM pg_catalog.pg_constraint con
                WHERE con.contype = 'f' AND con.confrelid = tbl.table_oid
            LOOP
                cols := {{schema}}.primary_key_columns(fk.child);
                EXECUTE format(
                    'UPDATE pg_temp.loomworks_undo_plan p SET conflict = ''referenced'', '
                    '  detail = jsonb_build_object(''referenced_by'', hit.refs) '
                    'FROM (SELECT pt.key, jsonb_agg(DISTINCT jsonb_build_object(''table'', %4$L, ''key'', %6$s)) AS refs '
                    '      FROM pg_temp.loomworks_undo_parent pt JOIN %1$s ch ON (%2$s) = (%3$s) '
                    '      WHERE NOT EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan q '
                    '                        WHERE q.table_oid = $2 AND q.action IN (''delete'', ''update'') AND q.key = %5$s '
                    '                          AND (q.conflict IS NULL OR $3 = ''force'')) '
                    '      GROUP BY pt.key) hit '
                    'WHERE p.table_oid = $1 AND p.key = hit.key AND p.conflict IS NULL',
                    fk.child::regclass, fk.child_cols, fk.parent_cols,
                    regexp_replace(fk.child::regclass::text, '^public\.', ''),
                    coalesce({{schema}}.key_builder(cols, 'ch'), 'NULL::jsonb'),
                    coalesce({{schema}}.key_builder(cols, 'ch', true), 'NULL::jsonb'))
                USING tbl.table_oid, fk.child, on_conflict;
                GET DIAGNOSTICS n = ROW_COUNT;
                progress := progress OR n > 0;
            END LOOP;
        END LOOP;
        -- The tables involved, as arrays: a subquery over the plan per foreign key of the database
        -- (thousands in an ERP) would be re-run for each of them.
        SELECT array_agg(DISTINCT p.table_oid) FILTER (WHERE p.action = 'insert' AND p.conflict IS NOT NULL),
               array_agg(DISTINCT p.table_oid) FILTER (WHERE p.action IN ('insert', 'update') AND p.conflict IS NULL)
          INTO parents, children
        FROM pg_temp.loomworks_undo_plan p;
        IF on_conflict <> 'force' AND parents IS NOT NULL AND children IS NOT NULL THEN
            FOR fk IN
                SELECT con.conrelid AS child, con.confrelid AS parent,
                       (SELECT string_agg(format('(c.before OPERATOR({{hstore}}.->) %L) = (p.before OPERATOR({{hstore}}.->) %L)',
                                                 ca.attname, pa.attname), ' AND ')
                        FROM unnest(con.conkey, con.confkey) AS k(cn, pn)
                        JOIN pg_catalog.pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.cn
                        JOIN pg_catalog.pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.pn) AS matches
                FROM pg_catalog.pg_constraint con
                WHERE con.contype = 'f' AND con.confrelid = ANY (parents) AND con.conrelid = ANY (children)
            LOOP
                EXECUTE format(
                    'UPDATE pg_temp.loomworks_undo_plan c SET conflict = ''parent_conflict'', '
                    '  detail = jsonb_build_object(''parent'', jsonb_build_object(''table'', %1$L, '
                    '                                 ''key'', {{schema_name}}.shown_key($2, p.key))) '
                    'FROM pg_temp.loomworks_undo_plan p '
                    'WHERE c.table_oid = $1 AND c.action IN (''insert'', ''update'') AND c.conflict IS NULL '
                    '  AND p.table_oid = $2 AND p.action = ''insert'' AND p.conflict IS NOT NULL AND %2$s',
                    regexp_replace(fk.parent::regclass::text, '^public\.', ''), fk.matches)
                USING fk.child, fk.parent;
                GET DIAGNOSTICS n = ROW_COUNT;
                progress := progress OR n > 0;
            END LOOP;
        END IF;
        EXIT WHEN NOT progress;
    END LOOP;

    SELECT count(*) FILTER (WHERE p.conflict IS NOT NULL),
           coalesce(jsonb_agg(jsonb_build_object(
               'table', regexp_replace(p.table_oid::regclass::text, '^public\.', ''),
               'key', {{schema}}.shown_key(p.table_oid, p.key), 'reason', p.conflict,
               'expected', CASE WHEN p.action = 'insert' THEN NULL ELSE {{schema}}.shown(p.table_oid, p.after) END,
               'current', {{schema}}.shown(p.table_oid, p.current),
               'operations', to_jsonb(p.later_ops)) || coalesce(p.detail, '{}')
               ORDER BY p.table_oid, p.key) FILTER (WHERE p.conflict IS NOT NULL), '[]')
      INTO n_conflicts, conflicts
    FROM pg_temp.loomworks_undo_plan p;
    SELECT coalesce(jsonb_agg(DISTINCT o), '[]') INTO later
    FROM pg_temp.loomworks_undo_plan p, unnest(p.later_ops) o;

    UPDATE pg_temp.loomworks_undo_plan p SET apply = CASE
        WHEN p.conflict IS NULL THEN p.action
        WHEN on_conflict = 'force' THEN CASE
            WHEN p.action = 'insert' THEN 'overwrite'
            WHEN p.action = 'update' AND NOT p.present THEN 'insert'
            WHEN p.action = 'delete' AND NOT p.present THEN NULL
            ELSE p.action END
        END;

    SELECT count(*) FILTER (WHERE p.apply = 'insert') AS ins,
           count(*) FILTER (WHERE p.apply IN ('update', 'overwrite')) AS upd,
           count(*) FILTER (WHERE p.apply = 'delete') AS del,
           count(*) AS total
      INTO counts FROM pg_temp.loomworks_undo_plan p;
    -- Every table the undo touches, with what it does there (conflicting rows under "rows" only).
    SELECT coalesce(jsonb_object_agg(t.name, jsonb_build_object('rows', t.total, 'inserted', t.ins, 'updated', t.upd,
                                                                'deleted', t.del)), '{}')
      INTO tables
    FROM (SELECT regexp_replace(p.table_oid::regclass::text, '^public\.', '') AS name, count(*) AS total,
                 count(*) FILTER (WHERE p.apply = 'insert') AS ins,
                 count(*) FILTER (WHERE p.apply IN ('update', 'overwrite')) AS upd,
                 count(*) FILTER (WHERE p.apply = 'delete') AS del
          FROM pg_temp.loomworks_undo_plan p GROUP BY 1) t;
    result := jsonb_build_object(
        'operation_id', target, 'applied', false, 'undo_operation_id', NULL, 'on_conflict', on_conflict,
        'dry_run', dry_run, 'rows', counts.total, 'tables', tables,
        'restored', jsonb_build_object('inserted', counts.ins, 'updated', counts.upd, 'deleted', counts.del),
        'skipped', CASE WHEN on_conflict = 'skip' THEN n_conflicts ELSE 0 END,
        'conflicts', conflicts, 'later_operations', later,
        'confirmation_required', counts.total > 1);
    IF dry_run OR (n_conflicts > 0 AND on_conflict = 'abort') THEN
        RETURN result;
    END IF;
    IF counts.ins + counts.upd + counts.del = 0 AND n_conflicts > 0 THEN
        RETURN result || jsonb_build_object('error', 'nothing to restore: every row conflicts',
            'hint', 'the rows were changed since; on_conflict => ''force'' sets them back');
    END IF;

    -- Tables parents first (foreign keys among the tables involved; a cycle is broken arbitrarily
    -- and left to the retry loop below).
    SELECT coalesce(array_agg(DISTINCT p.table_oid), '{}') INTO remaining
    FROM pg_temp.loomworks_undo_plan p WHERE p.apply IS NOT NULL;
    WHILE cardinality(remaining) > 0 LOOP
        SELECT r INTO pick FROM unnest(remaining) r
        WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con
                          WHERE con.contype = 'f' AND con.conrelid = r AND con.confrelid <> r
                            AND con.confrelid = ANY (remaining))
        ORDER BY r LIMIT 1;
        IF pick IS NULL THEN
            SELECT min(r) INTO pick FROM unnest(remaining) r;
        END IF;
        order_oids := order_oids || pick;
        remaining := array_remove(remaining, pick);
    END LOOP;

    -- Statements: re-inserts parents first, restores, then deletes children first.
    FOREACH pick IN ARRAY order_oids LOOP
        IF EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan p WHERE p.table_oid = pick AND p.apply = 'insert') THEN
            SELECT format(
                       'INSERT INTO %1$s (%2$s) %3$s SELECT %4$s FROM pg_temp.loomworks_undo_plan p, '
                       '{{hstore}}.populate_record(NULL::%1$s, p.before) r WHERE p.table_oid = %5$s AND p.apply = ''insert''',
                       pick::regclass, string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
                       CASE WHEN bool_or(a.attidentity = 'a') THEN 'OVERRIDING SYSTEM VALUE' ELSE '' END,
                       string_agg(format('r.%I', a.attname), ', ' ORDER BY a.attnum), pick)
              INTO sql
            FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = pick AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
              AND NOT EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan p
                              WHERE p.table_oid = pick AND p.apply = 'insert'
                                AND NOT p.before OPERATOR({{hstore}}.?) a.attname::text);
            pending := pending || sql;
        END IF;
    END LOOP;
    FOREACH pick IN ARRAY order_oids LOOP
        cols := {{schema}}.primary_key_columns(pick);
        sql := NULL;
        SELECT format(
                   'UPDATE %1$s t SET (%2$s) = ROW(%3$s) FROM pg_temp.loomworks_undo_plan p, '
                   '{{hstore}}.populate_record(NULL::%1$s, p.before) r '
                   'WHERE p.table_oid = %4$s AND p.apply IN (''update'', ''overwrite'') AND (%5$s) = (%6$s)',
                   pick::regclass, string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum),
                   string_agg(format('r.%I', a.attname), ', ' ORDER BY a.attnum), pick,
                   {{schema}}.column_list(cols, 't'), {{schema}}.column_list(cols, 'r'))
          INTO sql
        FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = pick AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
          AND a.attidentity <> 'a' AND NOT a.attname::text = ANY (cols)
          AND NOT EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan p
                          WHERE p.table_oid = pick AND p.apply IN ('update', 'overwrite')
                            AND NOT p.before OPERATOR({{hstore}}.?) a.attname::text)
        HAVING count(*) > 0;
        IF sql IS NOT NULL AND EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan p
                                       WHERE p.table_oid = pick AND p.apply IN ('update', 'overwrite')) THEN
            pending := pending || sql;
        END IF;
    END LOOP;
    FOR i IN REVERSE cardinality(order_oids) .. 1 LOOP
        pick := order_oids[i];
        IF EXISTS (SELECT 1 FROM pg_temp.loomworks_undo_plan p WHERE p.table_oid = pick AND p.apply = 'delete') THEN
            cols := {{schema}}.primary_key_columns(pick);
            pending := pending || format(
                'DELETE FROM %1$s t USING pg_temp.loomworks_undo_plan p, jsonb_populate_record(NULL::%1$s, p.key) r '
                'WHERE p.table_oid = %2$s AND p.apply = ''delete'' AND (%3$s) = (%4$s)',
                pick::regclass, pick, {{schema}}.column_list(cols, 't'), {{schema}}.column_list(cols, 'r'));
        END IF;
    END LOOP;

    BEGIN
        undo_id := {{schema}}.open_undo(target);
        PERFORM pg_catalog.set_config('{{operation_setting}}', undo_id::text, true);

        -- In that order; a statement refused by a constraint (a row it needs comes later, a unique
        -- value is still held by a row deleted later) is retried after the others.
        LOOP
            still := '{}';
            errors := '{}';
            progress := false;
            FOREACH sql IN ARRAY pending LOOP
                BEGIN
                    EXECUTE sql;
                    progress := true;
                EXCEPTION WHEN integrity_constraint_violation THEN
                    still := still || sql;
                    errors := errors || SQLERRM;
                END;
            END LOOP;
            EXIT WHEN cardinality(still) = 0;
            IF NOT progress THEN
                RAISE EXCEPTION 'undo of operation % cannot restore the rows: %', target, errors[1]
                    USING ERRCODE = '{{sqlstate.verification}}',
                          HINT = 'a constraint refuses the recorded state (with on_conflict => ''skip'', a skipped row may be needed by another); nothing was changed';
            END IF;
            pending := still;
        END LOOP;

        -- Nothing may have changed beyond the plan (cascades into rows the operation never touched).
        -- (EXCEPT, not NOT EXISTS: with the statistics of rows written in this very transaction the
        -- planner picks a nested-loop anti join, quadratic in the rows undone.)
        SELECT count(*) INTO n FROM (
            SELECT c.table_oid, c.row_key FROM {{schema}}.change_log c WHERE c.operation_id = undo_id
            EXCEPT
            SELECT p.table_oid, p.key FROM pg_temp.loomworks_undo_plan p WHERE p.apply IS NOT NULL) extra;
        IF n > 0 AND on_conflict <> 'force' THEN
            RAISE EXCEPTION 'undo of operation % would also change % row(s) it did not touch (cascades)', target, n
                USING ERRCODE = '{{sqlstate.sideEffects}}';
        END IF;

        -- Every row must now be as it was before the operation.
        FOR tbl IN SELECT DISTINCT p.table_oid FROM pg_temp.loomworks_undo_plan p WHERE p.apply IS NOT NULL LOOP
            cols := {{schema}}.primary_key_columns(tbl.table_oid);
            EXECUTE format(
                'SELECT count(*) FROM pg_temp.loomworks_undo_plan p '
                'LEFT JOIN LATERAL (SELECT {{hstore}}.hstore(t) AS j FROM %1$s t, jsonb_populate_record(NULL::%1$s, p.key) r '
                '                   WHERE (%2$s) = (%3$s)) now ON true '
                'WHERE p.table_oid = $1 AND p.apply IS NOT NULL AND CASE WHEN p.apply = ''delete'' THEN now.j IS NOT NULL '
                '  ELSE NOT coalesce({{schema_name}}.same_row(now.j, p.before), false) END',
                tbl.table_oid::regclass, {{schema}}.column_list(cols, 't'), {{schema}}.column_list(cols, 'r'))
              INTO n USING tbl.table_oid;
            IF n > 0 THEN
                RAISE EXCEPTION 'undo of operation %: % row(s) of % did not end in their recorded state (a trigger or rule changed them); nothing was changed',
                        target, n, tbl.table_oid::regclass
                    USING ERRCODE = '{{sqlstate.verification}}';
            END IF;
        END LOOP;
        PERFORM {{schema}}.close_undo(undo_id);
    EXCEPTION WHEN SQLSTATE '{{sqlstate.sideEffects}}' THEN
        PERFORM pg_catalog.set_config('{{operation_setting}}', previous, true);
        RETURN result || jsonb_build_object('error', SQLERRM,
            'hint', 'rows referencing rows to delete were created or changed since; nothing was changed (on_conflict => ''force'' goes ahead)');
    END;
    PERFORM pg_catalog.set_config('{{operation_setting}}', previous, true);
    RETURN result || jsonb_build_object('applied', true, 'undo_operation_id', undo_id);
END
$fn$;
