/**
 * NOLOGIN roles that own the platform's SQL APIs inside tenant databases (snapshot, undo, quota).
 * Their SECURITY DEFINER functions run with the owner's rights, so the owner must be inert: no
 * LOGIN, no attributes, no members and no memberships. The installers create the role when it is
 * missing (concurrently with other databases' installers) and refuse to go on otherwise.
 */
import { quoteIdent } from "./client";

/** NOLOGIN role owning the snapshot API (schema `loomworks_snapshot`) in tenant databases. */
export const SNAPSHOT_OWNER_ROLE = "loomworks_snapshot_owner";

/**
 * SQL (two DO blocks) that creates `role` when missing and raises unless it is inert. `api` names
 * the API in the error ("snapshot API"). Run inside the installer's transaction, as a superuser.
 */
export function inertOwnerRoleSql(role: string, api: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role))
    throw new Error(`owner role name ${JSON.stringify(role)} is not plain`);
  return `
-- The owner role is cluster-wide; another tenant database may be creating it right now.
DO $owner$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${role}') THEN
        BEGIN
            CREATE ROLE ${quoteIdent(role)} NOLOGIN NOINHERIT;
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
      INTO r FROM pg_roles WHERE rolname = '${role}';
    IF r.rolcanlogin OR r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls THEN
        RAISE EXCEPTION 'role ${role} has LOGIN or another attribute; refusing to install the ${api}'
            USING HINT = 'the role is reserved for the platform: it must be NOLOGIN without attributes';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_auth_members WHERE roleid = r.oid OR member = r.oid) THEN
        RAISE EXCEPTION 'role ${role} has members or memberships; refusing to install the ${api}';
    END IF;
END
$owner$;
`;
}

/** NOLOGIN role owning the undo and quota APIs (schemas `loomworks_undo`, `loomworks_quota`) in tenant databases. */
export const GUARD_OWNER_ROLE = "loomworks_guard_owner";

/**
 * SQL expression: the tenant role of the database the session is in. The database belongs to the
 * platform; the tenant owns schema `public` (provisioning gives it). Where `public` still has
 * PostgreSQL's default owner (`pg_database_owner`: a template, a tenant not converted yet) it is
 * the database's owner, a superuser in a template: the installers grant nothing to a superuser.
 */
export const TENANT_ROLE_SQL = `(SELECT CASE WHEN n.nspowner = 'pg_database_owner'::pg_catalog.regrole
                  THEN pg_catalog.pg_get_userbyid(d.datdba) ELSE pg_catalog.pg_get_userbyid(n.nspowner) END
          FROM pg_catalog.pg_namespace n, pg_catalog.pg_database d
          WHERE n.nspname = 'public' AND d.datname = pg_catalog.current_database())`;
