-- The undo API's tables (lib/undo/sql.ts). {{hstore}} is the schema of the hstore extension that
-- holds the captured rows: the database's own installation when it has one, else ours, made here.
DO $hstore$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hstore') THEN
        CREATE EXTENSION hstore WITH SCHEMA {{schema}};
    END IF;
END
$hstore$;

CREATE TABLE IF NOT EXISTS {{schema}}.operation_log (
    id uuid PRIMARY KEY,
    session_id text CHECK (length(session_id) <= 200),
    kind text NOT NULL CHECK (kind IN ('write', 'destructive', 'undo')),
    description text CHECK (length(description) <= 2000),
    undoes uuid,
    snapshot_id uuid,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at timestamptz,
    started_by text NOT NULL DEFAULT session_user,
    summary jsonb
);
CREATE INDEX IF NOT EXISTS operation_log_session ON {{schema}}.operation_log (session_id, started_at DESC);
CREATE INDEX IF NOT EXISTS operation_log_undoes ON {{schema}}.operation_log (undoes) WHERE undoes IS NOT NULL;

-- No primary key and no foreign key: every captured row costs as little as possible. Indexes: an
-- operation's rows (operation ids are time-ordered, so its entries go to the right-hand end) and a
-- BRIN on id; what an undo looks up by row (later changes to the same rows) it joins at undo time.
CREATE TABLE IF NOT EXISTS {{schema}}.change_log (
    id bigint GENERATED ALWAYS AS IDENTITY,
    operation_id uuid NOT NULL,
    table_oid oid NOT NULL,
    action "char" NOT NULL,
    row_key jsonb,
    old_row {{hstore}}.hstore,
    new_row {{hstore}}.hstore
);
CREATE INDEX IF NOT EXISTS change_log_operation ON {{schema}}.change_log (operation_id, id);
-- The changes after a given one (an undo's check for later changes to its rows): ids grow with the
-- table, so a BRIN index finds the tail at almost no cost per captured row.
CREATE INDEX IF NOT EXISTS change_log_id ON {{schema}}.change_log USING brin (id);
-- v3 → v4: the (table_oid, row_key) index and the operation log's started_at index cost every
-- captured row and every operation more than they saved (BENCHMARKS.md, "Undo capture").
DROP INDEX IF EXISTS {{schema}}.change_log_row;
DROP INDEX IF EXISTS {{schema}}.operation_log_started;

-- v1 → v2: row images were jsonb (lossy: JSON null vs SQL NULL, json text, numeric scale); they
-- are hstore now, and row keys hold the key columns' text forms.
DO $migrate$
BEGIN
    IF (SELECT atttypid FROM pg_attribute WHERE attrelid = '{{schema_name}}.change_log'::regclass AND attname = 'old_row')
       = 'jsonb'::regtype THEN
        CREATE FUNCTION {{schema}}.v1_image(j jsonb) RETURNS {{hstore}}.hstore LANGUAGE sql IMMUTABLE AS
            'SELECT {{hstore}}.hstore(array_agg(e.key), array_agg(e.value)) FROM jsonb_each_text(j) e';
        ALTER TABLE {{schema}}.change_log
            ALTER COLUMN old_row TYPE {{hstore}}.hstore USING {{schema}}.v1_image(old_row),
            ALTER COLUMN new_row TYPE {{hstore}}.hstore USING {{schema}}.v1_image(new_row);
        DROP FUNCTION {{schema}}.v1_image(jsonb);
        UPDATE {{schema}}.change_log
        SET row_key = (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each_text(row_key) e)
        WHERE row_key IS NOT NULL;
        DROP FUNCTION IF EXISTS {{schema}}.same_row(jsonb, jsonb);
        DROP FUNCTION IF EXISTS {{schema}}.key_builder(text[], text);
    END IF;
END
$migrate$;

-- Table name patterns (* wildcard; "schema.table" or just "table") never captured.
CREATE TABLE IF NOT EXISTS {{schema}}.excluded_tables (
    pattern text PRIMARY KEY,
    source text NOT NULL CHECK (source IN ('builtin', 'stack'))
);

ALTER TABLE {{schema}}.operation_log OWNER TO {{owner}};
ALTER TABLE {{schema}}.change_log OWNER TO {{owner}};
ALTER TABLE {{schema}}.excluded_tables OWNER TO {{owner}};
REVOKE ALL ON ALL TABLES IN SCHEMA {{schema}} FROM PUBLIC;
