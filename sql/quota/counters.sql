-- The quota API's daily counters: AI operations and pre_ai restore points. Each is a SEQUENCE whose
-- value is utc_day_number << {{count_bits}} | count (lib/quota/sql.ts has the same arithmetic).

-- The next value of a daily counter sequence (utc_day << {{count_bits}} | count): today's count + 1.
CREATE OR REPLACE FUNCTION {{schema}}.next_in_day(counter regclass, rollover_lock bigint) RETURNS bigint
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
DECLARE
    today bigint := {{today}};
    v bigint := nextval(counter);
BEGIN
    IF (v >> {{count_bits}}) < today THEN
        -- First call of a new day (or of all time): roll the counter over to today. A session-level
        -- lock (not a transaction-level one: the caller's transaction may run for minutes), taken and
        -- released right here; under it, nextval again: when another session has rolled over
        -- meanwhile that value is today's and is ours, else today's count starts at 1 with us.
        -- Calls that raced past the first nextval with yesterday's value all come here and queue.
        BEGIN
            PERFORM pg_advisory_lock(rollover_lock);
            v := nextval(counter);
            IF (v >> {{count_bits}}) < today THEN
                v := (today << {{count_bits}}) | 1;
                PERFORM setval(counter, v, true);
            END IF;
            PERFORM pg_advisory_unlock(rollover_lock);
        EXCEPTION WHEN OTHERS OR query_canceled THEN
            -- never leave the session holding the lock (a warning if it was not taken yet)
            PERFORM pg_advisory_unlock(rollover_lock);
            RAISE;
        END;
    END IF;
    RETURN v;
END
$fn$;

-- Counts one AI operation for today (UTC) and returns today's count; over the daily limit it raises
-- SQLSTATE {{sqlstate.aiLimit}}. Not for the tenant: loomworks_undo.begin_operation (same owner) calls it.
-- Every call counts: refused attempts and calls whose transaction rolls back too (a sequence is not
-- transactional). After a server crash the count may jump ahead by up to 32 (sequences are
-- WAL-logged in batches): it never under-counts. No limits row: no limit.
-- (v3: the counter is read here; next_in_day only on the first call of a day. This runs in every AI
-- transaction, and each nested SECURITY DEFINER call sets and restores search_path.)
CREATE OR REPLACE FUNCTION {{schema}}.take_ai_operation() RETURNS integer
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
DECLARE
    v bigint := nextval('{{schema_name}}.{{ai_counter_sequence}}'::regclass);
    n bigint;
    lim record;
    resets timestamptz;
BEGIN
    IF (v >> {{count_bits}}) < {{today}} THEN
        -- yesterday's value (or none yet): roll over; the value just taken is not today's and is dropped
        v := {{schema}}.next_in_day('{{schema_name}}.{{ai_counter_sequence}}'::regclass, {{ai_rollover_lock}});
    END IF;
    n := v & {{count_mask}};
    SELECT l.tenant, l.tier, l.max_ai_operations_daily INTO lim FROM {{schema}}.limits l;
    IF FOUND AND n > lim.max_ai_operations_daily THEN
        resets := to_timestamp(((v >> {{count_bits}}) + 1) * 86400);
        RAISE EXCEPTION 'daily AI-operation limit reached: % of % operations used today (UTC); the limit resets at % (tier %, limits.maxAiOperationsDaily)',
                lim.max_ai_operations_daily, lim.max_ai_operations_daily,
                to_char(resets AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', lim.tier
            USING ERRCODE = '{{sqlstate.aiLimit}}',
                  DETAIL = format('tenant %s: this was attempt %s today; refused attempts count too', lim.tenant, n),
                  HINT = 'wait for the reset, or ask the platform team to raise limits.maxAiOperationsDaily for this tenant';
    END IF;
    RETURN n::integer;
END
$fn$;
COMMENT ON FUNCTION {{schema}}.take_ai_operation() IS
    'Counts one AI operation for today (UTC) and returns the count; raises {{sqlstate.aiLimit}} over limits.maxAiOperationsDaily. Called by loomworks_undo.begin_operation.';

-- Counts one pre_ai restore point for today (UTC); over the daily limit (limits.max_pre_ai_snapshots_daily,
-- the tier's maxSnapshots; without it maxAiOperationsDaily) it raises SQLSTATE {{sqlstate.preAiLimit}}. Called by
-- loomworks_snapshot.request (its owner role may execute it), never by the tenant directly. Same
-- counter semantics as take_ai_operation: every attempt counts.
CREATE OR REPLACE FUNCTION {{schema}}.take_pre_ai_snapshot() RETURNS integer
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
DECLARE
    v bigint := {{schema}}.next_in_day('{{schema_name}}.{{pre_ai_counter_sequence}}'::regclass, {{pre_ai_rollover_lock}});
    n bigint := v & {{count_mask}};
    lim record;
BEGIN
    SELECT l.tenant, l.tier, coalesce(l.max_pre_ai_snapshots_daily, l.max_ai_operations_daily) AS max_daily
      INTO lim FROM {{schema}}.limits l;
    IF FOUND AND n > lim.max_daily THEN
        RAISE EXCEPTION 'daily pre_ai restore point limit reached: % of % used today (UTC); the limit resets at % (tier %, limits.maxSnapshots)',
                lim.max_daily, lim.max_daily,
                to_char(to_timestamp(((v >> {{count_bits}}) + 1) * 86400) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || '+00', lim.tier
            USING ERRCODE = '{{sqlstate.preAiLimit}}',
                  DETAIL = format('tenant %s: this was restore point request %s today; refused requests count too', lim.tenant, n),
                  HINT = 'run the operation as kind ''write'' (undoable row by row without a restore point), wait for the reset, or ask the platform team to raise limits.maxSnapshots';
    END IF;
    RETURN n::integer;
END
$fn$;

-- Today's count of a daily counter, without counting.
CREATE OR REPLACE FUNCTION {{schema}}.count_today(counter regclass) RETURNS integer
LANGUAGE sql VOLATILE {{definer}} AS $fn$
    SELECT CASE WHEN v IS NOT NULL AND (v >> {{count_bits}}) >= {{today}} THEN (v & {{count_mask}})::integer ELSE 0 END
    FROM pg_sequence_last_value(counter) v
$fn$;

-- Today's AI operations, without counting.
CREATE OR REPLACE FUNCTION {{schema}}.ai_operations_today() RETURNS integer
LANGUAGE sql VOLATILE {{definer}} AS $fn$
    SELECT {{schema}}.count_today('{{schema_name}}.{{ai_counter_sequence}}'::regclass)
$fn$;
COMMENT ON FUNCTION {{schema}}.ai_operations_today() IS
    'AI operations counted today (UTC), refused attempts included; does not count.';

-- pre_ai restore points counted today, without counting.
CREATE OR REPLACE FUNCTION {{schema}}.pre_ai_snapshots_today() RETURNS integer
LANGUAGE sql VOLATILE {{definer}} AS $fn$
    SELECT {{schema}}.count_today('{{schema_name}}.{{pre_ai_counter_sequence}}'::regclass)
$fn$;

