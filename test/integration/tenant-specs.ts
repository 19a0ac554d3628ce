import { randomBytes } from "node:crypto";
import type { TenantSpec } from "../../lib/tenant/provision";

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
