/**
 * The ERP's own database role against the real integration cluster: not a superuser, a member of
 * every tenant role, so it reaches exactly the tenants' databases and objects — including the undo
 * API — and a suspended tenant refuses it like anyone. Tenants are copies of the Odoo-shaped
 * FIXTURE template (test/fixtures/odoo-shaped; not Odoo).
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { installGuards } from "../../lib/guards/install";
import { withClient } from "../../lib/pg/client";
import { clusterPaths } from "../../lib/pg/paths";
import { dropErpRole, ensureErpRole, readErpRole } from "../../lib/tenant/erpRole";
import {
  createTenant,
  deleteTenant,
  tenantDsn,
  updateTenant,
  type TenantSpec,
} from "../../lib/tenant/provision";
import { dsnWithDatabase } from "../../lib/tenant/sql";
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
  it("is created without attributes and joins the tenants provisioned before it", async () => {
    const early = await tenant({ erpRole: undefined });
    const st = await ensureErpRole(ADMIN, ERP_ROLE, ERP_PASSWORD);
    expect(st).toMatchObject({ exists: true, canLogin: true, superuser: false, missingTenants: [] });
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
    expect(await codeOf(erpDsn(early.database), "SELECT count(*) FROM res_partner")).toBe("ok");
  });

  it("reaches a new tenant's tables and undo API, as the tenant's own role would", async () => {
    const t = await tenant();
    const dsn = erpDsn(t.database);
    // The template carries the guards; installing them again in the tenant grants its role the API.
    await withClient(dsnWithDatabase(ADMIN, t.database), (admin) => installGuards(admin, {}));
    await withClient(dsn, async (c) => {
      await c.query("BEGIN");
      const op = (await c.query("SELECT loomworks_undo.begin_operation('erp-role-test') AS id")).rows[0]
        .id as string;
      await c.query("UPDATE res_partner SET email = 'erp@example.test' WHERE id = 3");
      await c.query("COMMIT");
      await c.query("BEGIN");
      const r = (await c.query("SELECT loomworks_undo.undo_operation($1) AS r", [op])).rows[0].r;
      await c.query("COMMIT");
      expect(r).toMatchObject({ applied: true, restored: { updated: 1 } });
      // DDL on the tenant's own tables, as module upgrades do.
      await c.query("ALTER TABLE res_partner ADD COLUMN x_erp_note text");
    });
  });

  it("is refused by a suspended tenant, and drift (a membership revoked) is reported and repaired", async () => {
    const t = await tenant();
    await updateTenant(ADMIN, t, { ...t, state: "suspended" });
    expect(await codeOf(erpDsn(t.database), "SELECT 1")).toBe("55000"); // database does not allow connections
    await withClient(ADMIN, (c) => c.query(`REVOKE "${t.roleName}" FROM "${ERP_ROLE}"`));
    expect((await readErpRole(ADMIN, ERP_ROLE)).missingTenants).toContain(t.roleName);
    const st = await ensureErpRole(ADMIN, ERP_ROLE, ERP_PASSWORD);
    expect(st.missingTenants).toEqual([]);
  });
});
