-- Removal of the quota API (lib/guards/install.ts removeGuards): the user-limit trigger on
-- public.res_users, then the schema with its limits, counters and event history.
DO $remove$
BEGIN
    IF to_regclass('public.res_users') IS NOT NULL THEN
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON public.res_users', '{{users_trigger}}');
    END IF;
END
$remove$;
DROP SCHEMA IF EXISTS {{schema}} CASCADE;
