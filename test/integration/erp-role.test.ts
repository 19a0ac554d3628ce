/**
 * The ERP's own database role against the real integration cluster: not a superuser and a member of
 * no tenant role, so it reaches no tenant database (the ERP opens each one as the tenant's own role:
 * lib/odoo/tenantMap.ts); memberships granted by earlier releases are taken back. Tenants are
 * copies of the Odoo-shaped FIXTURE template (test/fixtures/odoo-shaped; not Odoo).
 */
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { withPlainClient as withClient } from "../../lib/pg/client";
import { dropErpRole, ensureErpRole, readErpRole } from "../../lib/tenant/erpRole";
import { tenantDsn, updateTenant, type TenantSpec } from "../../lib/tenant/provision";
import { sqlStateOf, useFixtureTenants } from "../helpers/tenants";

const ERP_ROLE = `loomworks_erp_${randomBytes(3).toString("hex")}`;
const tenants = useFixtureTenants("erp", {
  guards: {},
  afterTenants: () => dropErpRole(ADMIN, ERP_ROLE).catch(() => undefined),
});
const pg = tenants.pg;
const ADMIN = pg.adminDsn;
const ERP_PASSWORD = randomBytes(18).toString("base64url");

const erpDsn = (database: string): string => tenantDsn(pg.host, pg.port, ERP_ROLE, ERP_PASSWORD, database);
const tenant = (overrides: Partial<TenantSpec> = {}): Promise<TenantSpec> =>
  tenants.create("erp", { erpRole: ERP_ROLE, ...overrides });

describe("the ERP's own role", () => {
  it("is created without attributes and reaches no tenant database", async () => {
    const t = await tenant();
    const st = await ensureErpRole(ADMIN, ERP_ROLE, ERP_PASSWORD);
    expect(st).toMatchObject({ exists: true, canLogin: true, superuser: false, tenantMemberships: [] });
    const attrs = await withClient(ADMIN, async (c) =>
      c.query(
        "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = $1",
        [ERP_ROLE],
      ),
    );
    expect(attrs.rows[0]).toEqual({
      rolsuper: false,
      rolcreatedb: false,
      rolcreaterole: false,
      rolreplication: false,
      rolbypassrls: false,
    });
    // 42501: permission denied for database (no CONNECT on a tenant database).
    expect(await sqlStateOf(erpDsn(t.database), "SELECT 1")).toBe("42501");
    // Odoo's server-wide LISTEN/NOTIFY (cron wake-ups, the bus) happens in the postgres database.
    expect(await sqlStateOf(erpDsn("postgres"), "LISTEN cron_trigger")).toBe("ok");
  });

  it("gives back the tenant memberships an earlier release granted (ensureErpRole and provisioning)", async () => {
    await ensureErpRole(ADMIN, ERP_ROLE, ERP_PASSWORD);
    const a = await tenant({ erpRole: undefined });
    const b = await tenant({ erpRole: undefined });
    await withClient(ADMIN, async (c) => {
      await c.query(`GRANT "${a.roleName}" TO "${ERP_ROLE}"`);
      await c.query(`GRANT "${b.roleName}" TO "${ERP_ROLE}"`);
    });
    expect((await readErpRole(ADMIN, ERP_ROLE)).tenantMemberships).toEqual(
      expect.arrayContaining([a.roleName, b.roleName]),
    );
    // Provisioning's erp-access step takes back the membership of the tenant it converges...
    await updateTenant(ADMIN, a, { ...a, erpRole: ERP_ROLE });
    expect((await readErpRole(ADMIN, ERP_ROLE)).tenantMemberships).not.toContain(a.roleName);
    // ...and ensureErpRole every other one.
    const st = await ensureErpRole(ADMIN, ERP_ROLE, ERP_PASSWORD);
    expect(st.tenantMemberships).toEqual([]);
    expect(await sqlStateOf(erpDsn(b.database), "SELECT 1")).toBe("42501");
  });
});
