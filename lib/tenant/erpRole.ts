/**
 * The ERP's own database role (DESIGN.md §3, issue 5): one LOGIN role the ERP server connects with
 * to every tenant database (it picks the database from the host: `dbfilter = ^%d$`). Not a
 * superuser: it is a member of every tenant role (`GRANT <tenant> TO <erp>`), so it has exactly the
 * tenants' rights — their tables (Odoo owns its tables), the undo and quota functions — and can
 * connect only where a tenant role can; a suspended tenant's database refuses it like everyone.
 */
import type { Client } from "pg";
import { quoteIdent, withClient } from "../pg/client";
import { TENANT_GROUP_ROLE } from "./registry";
import { checkRoleName, passwordClause } from "./sql";

export interface ErpRoleStatus {
  exists: boolean;
  canLogin: boolean;
  superuser: boolean;
  /** Tenant roles (members of the tenant group) the ERP role is not a member of. */
  missingTenants: string[];
}

/** Creates or converges the role (LOGIN, no attributes, the given password) and its tenant memberships. */
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
    await grantTenantsTo(admin, role);
  });
  return readErpRole(adminDsn, role);
}

async function grantTenantsTo(admin: Client, role: string): Promise<void> {
  const missing = await missingTenants(admin, role);
  for (const tenant of missing) await admin.query(`GRANT ${quoteIdent(tenant)} TO ${quoteIdent(role)}`);
}

async function missingTenants(admin: Client, role: string): Promise<string[]> {
  const r = await admin.query<{ tenant: string }>(
    `SELECT t.rolname AS tenant
     FROM pg_roles t
     JOIN pg_auth_members m ON m.member = t.oid AND m.roleid = (SELECT oid FROM pg_roles WHERE rolname = $2)
     WHERE NOT pg_has_role($1, t.oid, 'MEMBER')
     ORDER BY 1`,
    [role, TENANT_GROUP_ROLE],
  );
  return r.rows.map((x) => x.tenant);
}

/** Makes the ERP role a member of one tenant role (provisioning calls it; no-op when it is already). */
export async function grantTenantToErp(admin: Client, tenantRole: string, erpRole: string): Promise<void> {
  const r = await admin.query<{ ok: boolean }>(
    "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AND pg_has_role($1, $2, 'MEMBER') AS ok",
    [erpRole, tenantRole],
  );
  if (r.rows[0].ok) return;
  const exists = await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [erpRole]);
  if (exists.rowCount === 0) return; // no ERP role (yet): ensureErpRole grants every tenant when it runs
  await admin.query(`GRANT ${quoteIdent(tenantRole)} TO ${quoteIdent(erpRole)}`);
}

export async function readErpRole(adminDsn: string, role: string): Promise<ErpRoleStatus> {
  return withClient(adminDsn, async (admin) => {
    const r = await admin.query<{ rolcanlogin: boolean; rolsuper: boolean }>(
      "SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1",
      [role],
    );
    if (!r.rows[0]) return { exists: false, canLogin: false, superuser: false, missingTenants: [] };
    return {
      exists: true,
      canLogin: r.rows[0].rolcanlogin,
      superuser: r.rows[0].rolsuper,
      missingTenants: await missingTenants(admin, role),
    };
  });
}

export async function dropErpRole(adminDsn: string, role: string): Promise<void> {
  checkRoleName(role);
  await withClient(adminDsn, async (admin) => {
    await admin.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
      [role],
    );
    await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`);
  });
}
