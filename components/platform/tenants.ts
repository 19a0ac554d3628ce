import * as pulumi from "@pulumi/pulumi";
import type { StackConfig, TenantConfig } from "../../infra/config/schema";
import type { TenantTemplate } from "../../dynamic-providers/tenantTemplate";
import type { ErpTenant } from "../../lib/odoo/tenantMap";
import { Tenant, tenantNames, type TenantSite } from "../Tenant";
import type { TenantOutputs } from "./platform";

/** What a target provides its tenants: where their PostgreSQL is, their templates, URLs and files. */
export interface TenantHosting {
  /** The superuser's connection, as this `pulumi up` reaches the server. */
  adminDsn: pulumi.Input<string>;
  /** The server as the tenants' DSNs name it. */
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  /** The ERP's own role (made a member of each tenant's role). */
  erpRole: pulumi.Input<string>;
  /** The declared templates by name (declareTemplates). */
  templates: ReadonlyMap<string, TenantTemplate>;
  /** What every tenant waits for besides its template (the ERP's role, the superuser's login). */
  dependsOn: pulumi.Resource[];
  url: (subdomain: string) => string;
  site: (tenant: TenantConfig) => TenantSite;
}

/**
 * The stack's tenants (`loomworks:tenants`) as Tenant components, children of `parent`, and their
 * entries of the stack outputs. The same on every target that provisions tenants.
 */
export function declareTenants(
  parent: pulumi.Resource,
  config: StackConfig,
  hosting: TenantHosting,
): { declared: Tenant[]; outputs: TenantOutputs } {
  const { platform } = config;
  const outputs: TenantOutputs = { tenants: {}, adminPasswords: {}, snapshots: {}, restores: {} };
  const declared = config.tenants.map((tenant) => {
    const template = hosting.templates.get(tenant.template);
    if (!template) {
      // The config schema already refuses this; kept as a guard for programmatic callers.
      throw new pulumi.RunError(
        `tenant "${tenant.subdomain}": key "template": names no declared template ("${tenant.template}")`,
      );
    }
    const t = new Tenant(
      tenant.subdomain,
      {
        config: tenant,
        adminDsn: hosting.adminDsn,
        host: hosting.host,
        port: hosting.port,
        templateDatabase: template.database,
        url: hosting.url(tenant.subdomain),
        undoExcludeTables: platform.undo.excludeTables ?? [],
        erpRole: hosting.erpRole,
        ...(platform.credentialRotation !== undefined
          ? { platformCredentialRotation: platform.credentialRotation }
          : {}),
        site: hosting.site(tenant),
      },
      { parent, dependsOn: [template, ...hosting.dependsOn] },
    );
    outputs.tenants[tenant.subdomain] = t.summary;
    outputs.adminPasswords[tenant.subdomain] = pulumi.secret(t.adminPassword);
    if (t.restore) outputs.restores[tenant.subdomain] = t.restore;
    for (const [snapshotName, summary] of Object.entries(t.snapshots)) {
      outputs.snapshots[`${tenant.subdomain}/${snapshotName}`] = summary;
    }
    return t;
  });
  return { declared, outputs };
}

/**
 * A tenant as the ERP's tenant files name it (kubernetes and docker), resolved once its database
 * exists (secret: the password): the ERP is never given a tenant before its database.
 */
export function erpTenantOf(t: Tenant): pulumi.Output<ErpTenant> {
  const { database, roleName } = tenantNames(t.config.subdomain);
  return pulumi.secret(
    pulumi.all([t.rolePassword, t.database.id]).apply(([password]) => ({
      subdomain: t.config.subdomain,
      database,
      roleName,
      password,
      state: t.config.state,
    })),
  );
}
