import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../infra/config/schema";
import { RandomSecret } from "../dynamic-providers/randomSecret";
import { TenantTemplate } from "../dynamic-providers/tenantTemplate";
import { DockerPlatform } from "./docker/DockerPlatform";
import { OdooDeployment } from "./kubernetes/OdooDeployment";
import { KubernetesRouter } from "./kubernetes/Router";
import { LocalErp } from "./local/Erp";
import { GUARDS_VERSION } from "../lib/guards/install";
import { LocalPostgresCluster } from "./local/PostgresCluster";
import { Tenant, type RestoreSummary, type SnapshotSummary, type TenantSummary } from "./Tenant";

export interface LoomworksPlatformArgs {
  config: StackConfig;
  /** Directory relative paths in the stack config (stateDir, template dumps) are resolved against. */
  projectDir: string;
}

/** Database name of a declared tenant template. */
export function templateDatabaseName(templateName: string): string {
  return `loomworks_template_${templateName.replace(/[^a-z0-9]/gi, "_").toLowerCase()}`;
}

/** What identifies a template's content, so a changed dump or command shows as a replacement. */
export function templateSourceHash(source: { fromDump: string } | { fromCommand: string }): string {
  const hash = crypto.createHash("sha256");
  if ("fromDump" in source) hash.update(fs.readFileSync(source.fromDump));
  else hash.update(source.fromCommand);
  return hash.digest("hex");
}

/** The whole platform of one stack: PostgreSQL cluster, tenant templates and tenants. */
export class LoomworksPlatform extends pulumi.ComponentResource {
  // Plain objects of outputs, so that only the secret fields (adminDsn, dsn) are secret in the stack outputs.
  postgres!: {
    host: pulumi.Output<string>;
    port: pulumi.Output<number>;
    adminDsn: pulumi.Output<string>;
  };
  readonly tenants: Record<string, TenantSummary> = {};
  readonly adminPasswords: Record<string, pulumi.Output<string>> = {};
  /** `"<subdomain>/<name>"` → the declared snapshot. */
  readonly snapshots: Record<string, pulumi.Output<SnapshotSummary>> = {};
  /** subdomain → the tenant's declared point-in-time restore. */
  readonly restores: Record<string, pulumi.Output<RestoreSummary>> = {};
  /** `{ url, nginxConfig, odooConfig }` (CONFIG.md): the router's base URL and the rendered configuration. */
  router!: {
    url: pulumi.Output<string>;
    nginxConfig: pulumi.Output<string>;
    odooConfig: pulumi.Output<string>;
  };

  constructor(name: string, args: LoomworksPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("loomworks:platform:LoomworksPlatform", name, {}, opts);
    const { platform, tenants } = args.config;
    if (platform.target === "docker") {
      this.buildDocker(args);
      return;
    }
    if (platform.target === "kubernetes") {
      this.buildKubernetes(args);
      return;
    }
    const stateDir = path.resolve(args.projectDir, platform.stateDir);
    const cluster = new LocalPostgresCluster(
      "postgres",
      {
        stateDir,
        port: platform.postgresPort,
        archiveTimeoutSeconds: platform.archiveTimeoutSeconds,
        retentionFull: platform.backups.retentionFull,
        schedule: platform.backups.schedule,
        ...(platform.quotas.checkSchedule ? { quotaCheck: platform.quotas.checkSchedule } : {}),
        undoRetentionDays: platform.undo.retentionDays,
        credentialRotation: platform.credentialRotation,
        encryptionPassphrase:
          platform.backups.encryptionPassphrase === undefined
            ? undefined
            : pulumi.secret(platform.backups.encryptionPassphrase),
      },
      { parent: this },
    );

    // The ERP's own role and odoo.conf: the tenants are granted to the role as they are made.
    const erp = new LocalErp(
      "erp",
      {
        adminDsn: cluster.adminDsn,
        host: cluster.host,
        port: cluster.port,
        stateDir,
        odoo: platform.odoo,
        credentialRotation: platform.credentialRotation,
      },
      { parent: this, dependsOn: [cluster] },
    );

    const templates = new Map<string, TenantTemplate>();
    for (const [templateName, source] of Object.entries(platform.templates)) {
      const resolved =
        "fromDump" in source ? { fromDump: path.resolve(args.projectDir, source.fromDump) } : source;
      templates.set(
        templateName,
        new TenantTemplate(
          `template-${templateName}`,
          {
            adminDsn: cluster.adminDsn,
            name: templateName,
            database: templateDatabaseName(templateName),
            ...resolved,
            stateDir,
            dumpHash: templateSourceHash(resolved),
            excludeTables: platform.undo.excludeTables ?? [],
            guardsVersion: GUARDS_VERSION,
          },
          { parent: this, dependsOn: [cluster], customTimeouts: { create: "30m", update: "30m" } },
        ),
      );
    }

    const tenantResources: Tenant[] = [];
    for (const tenant of tenants) {
      const template = templates.get(tenant.template);
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
          adminDsn: cluster.adminDsn,
          host: cluster.host,
          port: cluster.port,
          templateDatabase: template.database,
          filestoreRoot: path.join(stateDir, "filestore"),
          snapshotRoot: path.join(stateDir, "snapshots"),
          stateDir,
          pgbackrestConfig: cluster.pgbackrestConfig,
          stanza: cluster.stanza,
          url: `http://${tenant.subdomain}.${platform.domain}:${platform.routerPort}/`,
          undoExcludeTables: platform.undo.excludeTables ?? [],
          erpRole: erp.role.roleName,
          platformCredentialRotation: platform.credentialRotation,
        },
        { parent: this, dependsOn: [template, erp.role] },
      );
      tenantResources.push(t);
      this.tenants[tenant.subdomain] = t.summary;
      this.adminPasswords[tenant.subdomain] = pulumi.secret(t.adminPassword);
      if (t.restore) this.restores[tenant.subdomain] = t.restore;
      for (const [snapshotName, summary] of Object.entries(t.snapshots)) {
        this.snapshots[`${tenant.subdomain}/${snapshotName}`] = summary;
      }
    }

    const router = erp.routeTenants(tenants, platform, tenantResources);
    this.router = { url: router.url, nginxConfig: router.nginxConfig, odooConfig: erp.odooConfig };
    this.postgres = { host: cluster.host, port: cluster.port, adminDsn: pulumi.secret(cluster.adminDsn) };
    this.registerOutputs({});
  }

  /**
   * The docker target: PostgreSQL, Redis, the ERP and nginx containers on one Docker host. Tenant
   * databases are not provisioned on it by this release (the local target's providers would reach
   * its published PostgreSQL port; see docs/operations/docker.md).
   */
  private buildDocker(args: LoomworksPlatformArgs): void {
    const { platform, tenants } = args.config;
    const docker = new DockerPlatform(
      "docker",
      {
        docker: platform.docker,
        odoo: platform.odoo,
        domain: platform.domain,
        tenants: tenants.map((t) => ({ subdomain: t.subdomain, state: t.state, preview: t.preview })),
        postgres: {
          hostPort: platform.postgresPort,
          archiveTimeoutSeconds: platform.archiveTimeoutSeconds,
          retentionFull: platform.backups.retentionFull,
          ...(platform.backups.encryptionPassphrase === undefined
            ? {}
            : { encryptionPassphrase: pulumi.secret(platform.backups.encryptionPassphrase) }),
        },
        projectDir: args.projectDir,
      },
      { parent: this },
    );
    this.postgres = docker.postgres;
    this.router = {
      url: pulumi.output(docker.url),
      nginxConfig: pulumi.output(docker.nginxConfig),
      odooConfig: pulumi.output(docker.odooConfig),
    };
    this.registerOutputs({});
  }

  /**
   * The kubernetes target: the ERP workload and its routing (Gateway API or Ingress, wildcard
   * certificate through DNS-01). PostgreSQL on Kubernetes and tenant provisioning there are the
   * next step (issue 6); the ERP is pointed at the `postgres` Service of the namespace.
   */
  private buildKubernetes(args: LoomworksPlatformArgs): void {
    const { platform, tenants } = args.config;
    const k8s = platform.kubernetes;
    if (!k8s) throw new pulumi.RunError('platform: key "kubernetes": is required when target is kubernetes');
    const rolePassword = new RandomSecret("erp-role-password", { length: 32 }, { parent: this });
    const adminPasswd = new RandomSecret("erp-admin-passwd", { length: 32 }, { parent: this });
    const erp = new OdooDeployment(
      "erp",
      {
        config: k8s,
        database: {
          host: `postgres.${k8s.namespace}.svc`,
          user: platform.odoo.dbUser,
          password: rolePassword.result,
          peer: { podLabels: { "app.kubernetes.io/name": "postgres" } },
        },
        adminPasswd: adminPasswd.result,
        databases: tenants.filter((t) => t.state === "active").map((t) => t.subdomain),
      },
      { parent: this },
    );
    new KubernetesRouter(
      "router",
      {
        config: k8s,
        domain: platform.domain,
        namespace: erp.namespace,
        tenants: tenants.map((t) => ({ subdomain: t.subdomain, state: t.state, preview: t.preview })),
        erp: { httpService: erp.httpService, websocketService: erp.websocketService },
      },
      { parent: this },
    );
    const url = `https://${platform.domain}/`;
    this.postgres = {
      host: pulumi.output(`postgres.${k8s.namespace}.svc`),
      port: pulumi.output(5432),
      adminDsn: pulumi.secret(pulumi.output("")),
    };
    this.router = {
      url: pulumi.output(url),
      nginxConfig: pulumi.output(""),
      odooConfig: erp.odooConfig,
    };
    this.registerOutputs({});
  }
}
