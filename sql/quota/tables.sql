-- The quota API's tables and counter sequences (lib/quota/sql.ts). Re-runnable: what exists is kept,
-- the migrations below bring an older installation up to date.

DO $version$
DECLARE
    installed integer := {{installed_version}};
BEGIN
    IF installed > {{version}} THEN
        RAISE EXCEPTION 'quota API version % is installed in database %; this program installs version {{version}}', installed, current_database()
            USING HINT = 'refusing to downgrade: run the newer program';
    END IF;
END
$version$;

-- The v1 baseline, with what later versions added (for new installations) --------------------------

CREATE TABLE IF NOT EXISTS {{schema}}.limits (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    tenant text NOT NULL,
    tier text NOT NULL,
    max_users integer NOT NULL CHECK (max_users >= 0),
    max_storage_bytes bigint NOT NULL CHECK (max_storage_bytes > 0),
    max_ai_operations_daily integer NOT NULL CHECK (max_ai_operations_daily >= 0),
    max_pre_ai_snapshots_daily integer CHECK (max_pre_ai_snapshots_daily >= 0),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE IF NOT EXISTS {{schema}}.storage (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    database_bytes bigint NOT NULL,
    filestore_bytes bigint NOT NULL,
    undo_log_bytes bigint NOT NULL,
    bytes bigint NOT NULL,
    max_bytes bigint,
    percent numeric,
    state text NOT NULL CHECK (state IN ('ok', 'warning', 'read_only')),
    reason text,
    checked_at timestamptz NOT NULL,
    state_since timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS {{schema}}.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind text NOT NULL,
    detail jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS events_at_idx ON {{schema}}.events (at);

-- value = utc_day_number << {{count_bits}} | count. CACHE 1: every nextval is seen by the next one, in any session.
CREATE SEQUENCE IF NOT EXISTS {{schema}}.{{ai_counter_sequence}} AS bigint MINVALUE 0 START WITH 0 CACHE 1 NO CYCLE;
CREATE SEQUENCE IF NOT EXISTS {{schema}}.{{pre_ai_counter_sequence}} AS bigint MINVALUE 0 START WITH 0 CACHE 1 NO CYCLE;

-- Migrations, each run once on a database installed before its version. A new version adds its
-- block here and bumps QUOTA_API_VERSION (lib/quota/sql.ts).

-- v2: pre_ai restore points are counted per UTC day against their own limit (the tier's maxSnapshots).
DO $migrate$
BEGIN
    IF {{installed_version}} < 2 THEN
        ALTER TABLE {{schema}}.limits ADD COLUMN IF NOT EXISTS max_pre_ai_snapshots_daily integer CHECK (max_pre_ai_snapshots_daily >= 0);
    END IF;
END
$migrate$;

-- Ownership and privileges (every run) -------------------------------------------------------------

ALTER TABLE {{schema}}.limits OWNER TO {{owner}};
ALTER TABLE {{schema}}.storage OWNER TO {{owner}};
ALTER TABLE {{schema}}.events OWNER TO {{owner}};
ALTER SEQUENCE {{schema}}.{{ai_counter_sequence}} OWNER TO {{owner}};
ALTER SEQUENCE {{schema}}.{{pre_ai_counter_sequence}} OWNER TO {{owner}};
REVOKE ALL ON TABLE {{schema}}.limits, {{schema}}.storage, {{schema}}.events FROM PUBLIC;
REVOKE ALL ON SEQUENCE {{schema}}.{{ai_counter_sequence}}, {{schema}}.{{pre_ai_counter_sequence}} FROM PUBLIC;

