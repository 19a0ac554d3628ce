import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { OdooConfig } from "../../infra/config/odoo";
import type { TenantConfig } from "../../infra/config/schema";
import { ErpRole } from "../../dynamic-providers/erpRole";
import { LocalOdooConfig } from "../../dynamic-providers/localOdooConfig";
import { LocalRouter } from "../../dynamic-providers/localRouter";
import { RandomSecret, rotationKeepers } from "../../dynamic-providers/randomSecret";
import { imageAddonsPath } from "../../lib/odoo/image";

export interface LocalErpArgs {
  adminDsn: pulumi.Input<string>;
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  stateDir: string;
  odoo: OdooConfig;
  /** platform.credentialRotation: a new value rotates the ERP role's password (not the admin's). */
  credentialRotation?: string;
}

/**
 * The ERP's side of the local target, before the tenants: its own database role (a member of every
 * tenant role) and the rendered odoo.conf (`<stateDir>/odoo/odoo.conf`) for an ERP server run on
 * this machine. The router comes after the tenants (routeTenants).
 */
export class LocalErp extends pulumi.ComponentResource {
  readonly role: ErpRole;
  readonly odooConfig: pulumi.Output<string>;
  readonly workers: pulumi.Output<number>;
  private readonly stateDir: string;

  constructor(name: string, args: LocalErpArgs, opts?: pulumi.ComponentResourceOptions) {
    super("loomworks:local:Erp", name, {}, opts);
    this.stateDir = args.stateDir;
    const rolePassword = new RandomSecret(
      `${name}-role-password`,
      { length: 32, keepers: rotationKeepers({ platform: args.credentialRotation }) },
      { parent: this },
    );
    const adminPasswd = new RandomSecret(`${name}-admin-passwd`, { length: 32 }, { parent: this });
    this.role = new ErpRole(
      `${name}-role`,
      { adminDsn: args.adminDsn, roleName: args.odoo.dbUser, password: rolePassword.result },
      { parent: this },
    );
    const conf = new LocalOdooConfig(
      `${name}-odoo-config`,
      {
        stateDir: args.stateDir,
        adminPasswd: adminPasswd.result,
        dbHost: args.host,
        dbPort: args.port,
        dbUser: this.role.roleName,
        dbPassword: rolePassword.result,
        // Odoo keeps each database's files in <data_dir>/filestore/<db>: the platform's filestore root.
        dataDir: args.stateDir,
        addonsPath: args.odoo.addonsBuildContext
          ? imageAddonsPath([path.resolve(args.odoo.addonsBuildContext)])
          : imageAddonsPath(),
        cpu: args.odoo.cpu,
        memoryMb: args.odoo.memoryMb,
        ...(args.odoo.redisUrl ? { redisUrl: pulumi.secret(args.odoo.redisUrl) } : {}),
      },
      { parent: this, dependsOn: [this.role] },
    );
    this.odooConfig = conf.path;
    this.workers = conf.workers;
    this.registerOutputs({ odooConfig: this.odooConfig });
  }

  /** nginx for the declared tenants: active ones to the ERP, suspended/archived to 503, the rest 404. */
  routeTenants(
    tenants: readonly TenantConfig[],
    platform: { domain: string; routerPort: number; odooHttp: string; odooWebsocket: string },
    dependsOn: pulumi.Resource[],
  ): LocalRouter {
    return new LocalRouter(
      "router",
      {
        stateDir: this.stateDir,
        port: platform.routerPort,
        domain: platform.domain,
        odooHttp: platform.odooHttp,
        odooWebsocket: platform.odooWebsocket,
        tenants: tenants.map((t) => ({ subdomain: t.subdomain, state: t.state, preview: t.preview })),
      },
      { parent: this, dependsOn },
    );
  }
}
