import { randomBytes } from "node:crypto";
import { clusterPaths } from "../../lib/pg/paths";
import type { RestoreTarget, RestoreTenantOptions } from "../../lib/restore";
import type { TenantSpec } from "../../lib/tenant/provision";
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
