import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { clusterPaths } from "../../lib/pg/paths";
import type { RestoreTarget, RestoreTenantOptions } from "../../lib/restore";
import { deleteTenant, type TenantSpec } from "../../lib/tenant/provision";
import { dropTemplate, ensureTemplate } from "../../lib/tenant/template";
import type { ProvidedPg } from "./context";

/** A fresh tenant spec with a random `<prefix>-<hex>` subdomain (also its database and role name). */
export function randomTenantSpec(
  prefix: string,
  template: string,
  filestoreRoot: string,
  overrides: Partial<TenantSpec> = {},
): TenantSpec {
  const sub = `${prefix}-${randomBytes(4).toString("hex")}`;
  return {
    subdomain: sub,
    database: sub,
    roleName: sub,
    rolePassword: randomBytes(18).toString("base64url"),
    template,
    tier: "basic",
    state: "active",
    adminEmail: `boss@${sub}.example`,
    adminPassword: randomBytes(12).toString("base64url"),
    limits: {},
    filestoreRoot,
    retentionDays: 0,
    ...overrides,
  };
}

/** restoreTenant's options for a tenant of the shared integration cluster. */
export function restoreOptionsFor(
  pg: ProvidedPg,
  t: TenantSpec,
  target: RestoreTarget,
  extra: Partial<RestoreTenantOptions> = {},
): RestoreTenantOptions {
  return {
    adminDsn: pg.adminDsn,
    stateDir: pg.stateDir,
    stanza: pg.stanza,
    subdomain: t.subdomain,
    database: t.database,
    roleName: t.roleName,
    tenantState: t.state,
    target,
    filestoreRoot: clusterPaths(pg.stateDir).filestoreDir,
    ...extra,
  };
}

/**
 * The Odoo-shaped FIXTURE template (test/fixtures/odoo-shaped; not Odoo) as a throw-away template
 * database for one test file: `create` in beforeAll, `destroy` in afterAll (the tenants made from it
 * first, then the template and its work directory).
 */
export function fixtureTemplate(adminDsn: string, name: string) {
  const database = `loomworks_template_${name}_${randomBytes(3).toString("hex")}`;
  const dump = path.resolve(__dirname, "..", "fixtures", "odoo-shaped", "template.sql");
  let workDir = "";
  return {
    database,
    async create(): Promise<void> {
      workDir = await fsp.mkdtemp(path.join(os.tmpdir(), `loomworks-${name}-it-`));
      await ensureTemplate(adminDsn, { name, database, fromDump: dump, stateDir: workDir });
    },
    async destroy(tenants: readonly TenantSpec[]): Promise<void> {
      for (const s of tenants)
        await deleteTenant(adminDsn, { ...s, forceDestroy: true }).catch(() => undefined);
      await dropTemplate(adminDsn, database).catch(() => undefined);
      if (workDir) await fsp.rm(workDir, { recursive: true, force: true });
    },
  };
}
