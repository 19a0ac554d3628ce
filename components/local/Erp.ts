import * as pulumi from "@pulumi/pulumi";
import type { OdooConfig } from "../../infra/config/odoo";
import type { PlatformConfig, TenantConfig } from "../../infra/config/schema";
import { ErpRole } from "../../dynamic-providers/erpRole";
import { LocalAiKeys } from "../../dynamic-providers/localAiKeys";
import { LocalOdooConfig } from "../../dynamic-providers/localOdooConfig";
import { LocalRouter } from "../../dynamic-providers/localRouter";
import { RandomSecret, rotationKeepers } from "../../dynamic-providers/randomSecret";
import { LocalErpTenants } from "../../dynamic-providers/localErpTenants";
import { findInstalledOdoo, localAddonsPath, projectAddonsDir } from "../../lib/odoo/installed";
import { localErpDir } from "../../lib/odoo/localTenantFiles";
import { tenantFilePaths, type ErpTenant } from "../../lib/odoo/tenantMap";

export interface LocalErpArgs {
  adminDsn: pulumi.Input<string>;
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  stateDir: string;
  odoo: OdooConfig;
  /** platform.odooHttp / odooWebsocket ("host:port"): the ports the ERP listens on. */
  odooHttp: string;
  odooWebsocket: string;
  /** platform.credentialRotation: a new value rotates the ERP role's password (not the admin's). */
  credentialRotation?: string;
  /** platform.ai.keys (secrets): written to `<stateDir>/odoo/ai.env` for the ERP's start command. */
  aiKeys?: Record<string, pulumi.Input<string>>;
}

/**
 * The ERP's side of the local target, before the tenants: its own database role (it reaches no
 * tenant: the loomworks_tenants addon opens each tenant database as that tenant's role) and the
 * rendered odoo.conf (`<stateDir>/odoo/odoo.conf`) for an ERP server run on this machine, and the
 * AI provider keys beside it (`ai.env`, when `platform.ai.keys` has any). The tenant
 * map, the tenants' credentials and the router come after the tenants (serveTenants).
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
    const tenantFiles = tenantFilePaths(localErpDir(args.stateDir));
    const installed = findInstalledOdoo(process.env, "locate");
    if ("missing" in installed)
      void pulumi.log.info(`ERP: ${installed.missing}; odoo.conf names only the project's addons`, this);
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
        addonsPath: localAddonsPath(projectAddonsDir(), "odoo" in installed ? installed.odoo : undefined),
        httpPort: portOf(args.odooHttp),
        geventPort: portOf(args.odooWebsocket),
        tenantMapPath: tenantFiles.map,
        tenantCredentialsPath: tenantFiles.credentials,
        cpu: args.odoo.cpu,
        memoryMb: args.odoo.memoryMb,
        ...(args.odoo.redisUrl ? { redisUrl: pulumi.secret(args.odoo.redisUrl) } : {}),
      },
      { parent: this, dependsOn: [this.role] },
    );
    if (Object.keys(args.aiKeys ?? {}).length > 0)
      new LocalAiKeys(
        `${name}-ai-keys`,
        { stateDir: args.stateDir, keys: args.aiKeys ?? {} },
        { parent: this },
      );
    this.odooConfig = conf.path;
    this.workers = conf.workers;
    this.registerOutputs({ odooConfig: this.odooConfig });
  }

  /**
   * The tenant map and credentials the ERP reads (each tenant's own role), then nginx for the
   * declared tenants: active ones to the ERP, suspended/archived to 503, the rest 404.
   */
  serveTenants(
    tenants: readonly {
      config: TenantConfig;
      database: string;
      roleName: string;
      password: pulumi.Output<string>;
    }[],
    platform: RoutedPlatform,
    dependsOn: pulumi.Resource[],
  ): LocalRouter {
    const entries: pulumi.Output<ErpTenant>[] = tenants.map((t) =>
      t.password.apply((password) => ({
        subdomain: t.config.subdomain,
        database: t.database,
        roleName: t.roleName,
        password,
        state: t.config.state,
      })),
    );
    new LocalErpTenants(
      "erp-tenants",
      { stateDir: this.stateDir, tenants: pulumi.secret(pulumi.all(entries)) },
      { parent: this, dependsOn },
    );
    return this.routeTenants(
      tenants.map((t) => t.config),
      platform,
      dependsOn,
    );
  }

  private routeTenants(
    tenants: readonly TenantConfig[],
    platform: RoutedPlatform,
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
        ...(platform.routerTls ? { tls: platform.routerTls } : {}),
      },
      { parent: this, dependsOn },
    );
  }
}

/** The platform settings the router is made from (`routerTls` files absolute). */
type RoutedPlatform = Pick<
  PlatformConfig,
  "domain" | "routerPort" | "odooHttp" | "odooWebsocket" | "routerTls"
>;

/** The port of a "host:port" setting. */
function portOf(hostPort: string): number {
  return Number(hostPort.slice(hostPort.lastIndexOf(":") + 1));
}
