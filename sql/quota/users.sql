-- The quota API's user limit: counting active internal users and the trigger on public.res_users.

-- Active internal users (res_users: active AND NOT share; 0 without the table). row_security off:
-- a policy of the tenant's on res_users makes the count fail instead of smaller. Rows of tables
-- inheriting from res_users are counted (and the DDL guard refuses such tables).
CREATE OR REPLACE FUNCTION {{schema}}.active_internal_users() RETURNS integer
LANGUAGE plpgsql VOLATILE {{definer}} SET row_security = off AS $fn$
DECLARE
    n bigint;
BEGIN
    IF to_regclass('public.res_users') IS NULL THEN
        RETURN 0;
    END IF;
    SELECT count(*) INTO n FROM public.res_users u WHERE u.active AND NOT u.share;
    RETURN n::integer;
END
$fn$;

-- Slots left for active internal users (0 when at or over the limit; NULL: no limit set).
CREATE OR REPLACE FUNCTION {{schema}}.remaining_user_slots() RETURNS integer
LANGUAGE plpgsql VOLATILE {{definer}} AS $fn$
DECLARE
    lim integer;
BEGIN
    SELECT l.max_users INTO lim FROM {{schema}}.limits l;
    IF lim IS NULL THEN
        RETURN NULL;
    END IF;
    RETURN greatest(lim - {{schema}}.active_internal_users(), 0);
END
$fn$;
COMMENT ON FUNCTION {{schema}}.remaining_user_slots() IS
    'Active internal users that may still be added (0 at or over limits.maxUsers; NULL without limits).';

-- The user limit (trigger {{users_trigger}} on public.res_users, AFTER INSERT OR UPDATE OF active, share,
-- WHEN the new row is an active internal user). It refuses only a row that BECOMES one: a tenant
-- over a lowered limit can still edit and archive users. Strict under concurrency: the limits row
-- is UPDATEd (a real new row version, not just SELECT FOR UPDATE) before counting: a concurrent
-- READ COMMITTED transaction waits for it, then counts with a fresh snapshot; a REPEATABLE READ one
-- gets a serialization failure (40001), which Odoo retries.
CREATE OR REPLACE FUNCTION {{schema}}.enforce_user_limit() RETURNS trigger
LANGUAGE plpgsql VOLATILE {{definer}} SET row_security = off AS $fn$
DECLARE
    lim record;
    n bigint;
BEGIN
    IF NOT coalesce(NEW.active AND NOT NEW.share, false) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND coalesce(OLD.active AND NOT OLD.share, false) THEN
        RETURN NULL; -- it already was an active internal user: nothing is added
    END IF;
    UPDATE {{schema}}.limits l SET max_users = l.max_users
        RETURNING l.tenant, l.tier, l.max_users INTO lim;
    IF NOT FOUND THEN
        RETURN NULL; -- no limits written: no limit
    END IF;
    -- an AFTER trigger: the new row (and the rest of its statement) is visible and counted
    IF (SELECT c.relrowsecurity FROM pg_class c WHERE c.oid = TG_RELID) THEN
        RAISE EXCEPTION 'user limit: res_users has row-level security enabled, so the platform cannot count the users; no user can be added'
            USING ERRCODE = '{{sqlstate.userLimit}}',
                  HINT = 'ALTER TABLE res_users DISABLE ROW LEVEL SECURITY (the ERP does not use it)';
    END IF;
    SELECT count(*) INTO n FROM public.res_users u WHERE u.active AND NOT u.share;
    IF n > lim.max_users THEN
        RAISE EXCEPTION 'user limit reached: tenant "%" allows % active internal users (tier %, limits.maxUsers) and % are active; archive a user or raise the limit',
                lim.tenant, lim.max_users, lim.tier, n - 1
            USING ERRCODE = '{{sqlstate.userLimit}}',
                  DETAIL = format('refused: user %s (login %s) would be active internal user number %s',
                                  NEW.id, coalesce(to_jsonb(NEW) ->> 'login', '?'), n),
                  HINT = 'archive (deactivate) an internal user, make the user a portal user, or ask the platform team to raise limits.maxUsers';
    END IF;
    RETURN NULL;
END
$fn$;

DO $users$
BEGIN
    IF (SELECT count(*) FROM pg_attribute a
        WHERE a.attrelid = to_regclass('public.res_users') AND a.attname IN ('active', 'share')
          AND a.atttypid = 'boolean'::regtype AND a.attnum > 0 AND NOT a.attisdropped) = 2 THEN
        -- the owner role counts users in its SECURITY DEFINER functions
        GRANT SELECT (active, share) ON TABLE public.res_users TO {{owner}};
        EXECUTE 'CREATE OR REPLACE TRIGGER {{users_trigger}}
            AFTER INSERT OR UPDATE OF active, share ON public.res_users
            FOR EACH ROW
            WHEN (NEW.active AND NOT NEW.share)
            EXECUTE FUNCTION {{schema_name}}.enforce_user_limit()';
    END IF;
END
$users$;

