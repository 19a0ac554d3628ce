import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { StackConfig } from "../infra/config/schema";
import { TenantTemplate } from "../dynamic-providers/tenantTemplate";
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
  readonly postgres: {
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

  constructor(name: string, args: LoomworksPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("loomworks:platform:LoomworksPlatform", name, {}, opts);
    const { platform, tenants } = args.config;
    if (platform.target !== "local") {
      throw new pulumi.RunError(
        `platform: key "target": the ${platform.target} target is not available in this release; use "local"`,
      );
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
        encryptionPassphrase:
          platform.backups.encryptionPassphrase === undefined
            ? undefined
            : pulumi.secret(platform.backups.encryptionPassphrase),
      },
      { parent: this },
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
        },
        { parent: this, dependsOn: [template] },
      );
      this.tenants[tenant.subdomain] = t.summary;
      this.adminPasswords[tenant.subdomain] = pulumi.secret(t.adminPassword);
      if (t.restore) this.restores[tenant.subdomain] = t.restore;
      for (const [snapshotName, summary] of Object.entries(t.snapshots)) {
        this.snapshots[`${tenant.subdomain}/${snapshotName}`] = summary;
      }
    }

    this.postgres = { host: cluster.host, port: cluster.port, adminDsn: pulumi.secret(cluster.adminDsn) };
    this.registerOutputs({});
  }
}
