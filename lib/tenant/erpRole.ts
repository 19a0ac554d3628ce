/**
 * The ERP's own database role (issue 11): the LOGIN role in odoo.conf's `db_user`. It reaches no
 * tenant. The ERP opens each tenant database as that tenant's own role (the loomworks_tenants addon
 * reads the tenants' credentials, lib/odoo/tenantMap.ts), so a trigger a tenant owns, fired by an
 * ERP write, runs with that tenant's rights alone. This role only connects to the `postgres`
 * database, where Odoo keeps its server-wide LISTEN/NOTIFY channels (cron wake-ups, the bus): it
 * needs CONNECT there and nothing else. Earlier releases made it a member of every tenant role;
 * `ensureErpRole` and provisioning take those memberships back.
 */
import type { Client } from "pg";
import { quoteIdent, withClient } from "../pg/client";
import { TENANT_GROUP_ROLE } from "../registry/registry";
import { checkRoleName } from "../pg/names";
import { passwordClause } from "../pg/scram";
import { terminateSessions } from "../pg/sessions";

/** Where Odoo's server-wide LISTEN/NOTIFY happens (`db_connect('postgres')`). */
export const ERP_NOTIFY_DATABASE = "postgres";

export interface ErpRoleStatus {
  exists: boolean;
  canLogin: boolean;
  superuser: boolean;
  /** Tenant roles (members of the tenant group) the ERP role is a member of: must stay empty. */
  tenantMemberships: string[];
}

/** Creates or converges the role (LOGIN, no attributes, the given password, no tenant memberships). */
export async function ensureErpRole(
  adminDsn: string,
  role: string,
  password: string,
): Promise<ErpRoleStatus> {
  checkRoleName(role);
  await withClient(adminDsn, async (admin) => {
    const exists = await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]);
    const attrs = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT";
    if (exists.rowCount === 0) {
      try {
        await admin.query(`CREATE ROLE ${quoteIdent(role)} ${attrs} ${passwordClause(password)}`);
      } catch (err) {
        if ((err as { code?: string }).code !== "42710") throw err; // created concurrently
      }
    }
    await admin.query(`ALTER ROLE ${quoteIdent(role)} ${attrs} ${passwordClause(password)}`);
    for (const tenant of await tenantMemberships(admin, role)) await revoke(admin, tenant, role);
    await admin.query(`GRANT CONNECT ON DATABASE ${quoteIdent(ERP_NOTIFY_DATABASE)} TO ${quoteIdent(role)}`);
  });
  return readErpRole(adminDsn, role);
}

async function revoke(admin: Client, tenantRole: string, erpRole: string): Promise<void> {
  await admin.query(`REVOKE ${quoteIdent(tenantRole)} FROM ${quoteIdent(erpRole)}`);
}

async function tenantMemberships(admin: Client, role: string): Promise<string[]> {
  const r = await admin.query<{ tenant: string }>(
    `SELECT t.rolname AS tenant
     FROM pg_roles t
     JOIN pg_auth_members m ON m.member = t.oid AND m.roleid = (SELECT oid FROM pg_roles WHERE rolname = $2)
     WHERE pg_has_role($1, t.oid, 'MEMBER')
     ORDER BY 1`,
    [role, TENANT_GROUP_ROLE],
  );
  return r.rows.map((x) => x.tenant);
}

/** Takes back a membership of the ERP role in a tenant role that an earlier release granted (no-op otherwise). */
export async function revokeTenantFromErp(admin: Client, tenantRole: string, erpRole: string): Promise<void> {
  const r = await admin.query<{ member: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_auth_members m
                    JOIN pg_roles t ON t.oid = m.roleid AND t.rolname = $1
                    JOIN pg_roles e ON e.oid = m.member AND e.rolname = $2) AS member`,
    [tenantRole, erpRole],
  );
  if (r.rows[0].member) await revoke(admin, tenantRole, erpRole);
}

export async function readErpRole(adminDsn: string, role: string): Promise<ErpRoleStatus> {
  return withClient(adminDsn, async (admin) => {
    const r = await admin.query<{ rolcanlogin: boolean; rolsuper: boolean }>(
      "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1",
      [role],
    );
    if (!r.rows[0]) return { exists: false, canLogin: false, superuser: false, tenantMemberships: [] };
    return {
      exists: true,
      canLogin: r.rows[0].rolcanlogin,
      superuser: r.rows[0].rolsuper,
      tenantMemberships: await tenantMemberships(admin, role),
    };
  });
}

export async function dropErpRole(adminDsn: string, role: string): Promise<void> {
  checkRoleName(role);
  await withClient(adminDsn, async (admin) => {
    await terminateSessions(admin, { role, waitMs: 0 });
    await admin.query(`DROP OWNED BY ${quoteIdent(role)}`).catch(() => undefined);
    await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`);
  });
}
