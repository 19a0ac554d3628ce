/**
 * The ERP's own database role against the real integration cluster: not a superuser and a member of
 * no tenant role, so it reaches no tenant database (the ERP opens each one as the tenant's own role:
 * lib/odoo/tenantMap.ts); memberships granted by earlier releases are taken back. Tenants are
 * copies of the Odoo-shaped FIXTURE template (test/fixtures/odoo-shaped; not Odoo).
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { withPlainClient as withClient } from "../../lib/pg/client";
import { clusterPaths } from "../../lib/pg/paths";
import { dropErpRole, ensureErpRole, readErpRole } from "../../lib/tenant/erpRole";
import {
  createTenant,
  deleteTenant,
  tenantDsn,
  updateTenant,
  type TenantSpec,
} from "../../lib/tenant/provision";
import { dropTemplate, ensureTemplate } from "../../lib/tenant/template";
import { randomTenantSpec } from "./tenant-specs";

const pg = inject("pg");
const ADMIN = pg.adminDsn;
const run = randomBytes(3).toString("hex");
const TEMPLATE_DB = `loomworks_template_erp_${run}`;
const ERP_ROLE = `loomworks_erp_${run}`;
const ERP_PASSWORD = randomBytes(18).toString("base64url");
const filestoreRoot = clusterPaths(pg.stateDir).filestoreDir;
const created: TenantSpec[] = [];
let workDir: string;

const erpDsn = (database: string): string => tenantDsn(pg.host, pg.port, ERP_ROLE, ERP_PASSWORD, database);

async function codeOf(dsn: string, sql: string): Promise<string> {
  return withClient(dsn, (c) => c.query(sql)).then(
    () => "ok",
    (e: { code?: string; message: string }) => e.code ?? e.message,
  );
}

async function tenant(overrides: Partial<TenantSpec> = {}): Promise<TenantSpec> {
  const spec = randomTenantSpec("erp", TEMPLATE_DB, filestoreRoot, { erpRole: ERP_ROLE, ...overrides });
  created.push(spec);
  await createTenant(ADMIN, spec);
  return spec;
}

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-erp-it-"));
  await ensureTemplate(ADMIN, {
    name: "erp",
    database: TEMPLATE_DB,
    fromDump: path.resolve(__dirname, "..", "fixtures", "odoo-shaped", "template.sql"),
    stateDir: workDir,
    guards: {},
  });
}, 180_000);

afterAll(async () => {
  for (const s of created) await deleteTenant(ADMIN, { ...s, forceDestroy: true }).catch(() => undefined);
  await dropErpRole(ADMIN, ERP_ROLE).catch(() => undefined);
  await dropTemplate(ADMIN, TEMPLATE_DB).catch(() => undefined);
  await fs.rm(workDir, { recursive: true, force: true });
}, 120_000);

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
    expect(await codeOf(erpDsn(t.database), "SELECT 1")).toBe("42501");
    // Odoo's server-wide LISTEN/NOTIFY (cron wake-ups, the bus) happens in the postgres database.
    expect(await codeOf(erpDsn("postgres"), "LISTEN cron_trigger")).toBe("ok");
  });

  it("gives back the tenant memberships an earlier release granted (ensureErpRole and provisioning)", async () => {
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
    expect(await codeOf(erpDsn(b.database), "SELECT 1")).toBe("42501");
  });
});
