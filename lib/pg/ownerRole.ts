/**
 * NOLOGIN roles that own the platform's SQL APIs inside tenant databases (snapshot, undo, quota).
 * Their SECURITY DEFINER functions run with the owner's rights, so the owner must be inert: no
 * LOGIN, no attributes, no members and no memberships. The installer (lib/sql/modules.ts,
 * sql/common/owner-role.sql) creates the role when it is missing (concurrently with other databases'
 * installers) and refuses to go on otherwise.
 */

/** NOLOGIN role owning the snapshot API (schema `loomworks_snapshot`) in tenant databases. */
export const SNAPSHOT_OWNER_ROLE = "loomworks_snapshot_owner";

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
