import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { LocalErp } from "../local/Erp";
import { LocalPostgresCluster } from "../local/PostgresCluster";
import { tenantNames } from "../Tenant";
import { PlatformComponent, notifySettings, secretValues, type PlatformArgs } from "./platform";
import { offsiteRepo, offsiteStackDir } from "../offsite";
import { declareTemplates } from "./templates";
import { declareTenants } from "./tenants";
import { sparesOption } from "../../lib/backup/schedule-defaults";
import { clusterPaths } from "../../lib/pg/paths";
import { routerUrl } from "../../lib/router/config";
import type { PlatformConfig } from "../../infra/config/schema";

/**
 * The local target: a PostgreSQL 15 cluster with its pgBackRest repository and scheduler under the
 * state directory, the ERP's role and odoo.conf, the templates, the tenants (filestores and
 * snapshots on this machine) and nginx routing them to an ERP run on this machine.
 */
export class LocalPlatform extends PlatformComponent {
  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, opts);
    const { platform } = args.config;
    const stateDir = path.resolve(args.projectDir, platform.stateDir);
    const notify = notifySettings(platform);
    const offsite = offsiteRepo(platform.backups, {
      stackDir: offsiteStackDir(pulumi.getProject(), pulumi.getStack()),
      sftpKeyFile: path.join(clusterPaths(stateDir).pgbackrestDir, "offsite-sftp-key"),
    });
    const cluster = new LocalPostgresCluster(
      "postgres",
      {
        stateDir,
        port: platform.postgresPort,
        archiveTimeoutSeconds: platform.archiveTimeoutSeconds,
        retentionFull: platform.backups.retentionFull,
        schedule: platform.backups.schedule,
        ...(platform.quotas.checkSchedule ? { quotaCheck: platform.quotas.checkSchedule } : {}),
        ...sparesOption(platform.provisioning),
        undoRetentionDays: platform.undo.retentionDays,
        credentialRotation: platform.credentialRotation,
        ...(notify ? { notify } : {}),
        encryptionPassphrase:
          platform.backups.encryptionPassphrase === undefined
            ? undefined
            : pulumi.secret(platform.backups.encryptionPassphrase),
        ...(offsite ? { offsite } : {}),
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
        odooHttp: platform.odooHttp,
        odooWebsocket: platform.odooWebsocket,
        credentialRotation: platform.credentialRotation,
        aiKeys: secretValues(platform.ai.keys),
      },
      { parent: this, dependsOn: [cluster] },
    );

    const templates = declareTemplates(this, {
      platform,
      projectDir: args.projectDir,
      adminDsn: cluster.adminDsn,
      stateDir,
      dependsOn: [cluster],
    });
    const { declared, outputs } = declareTenants(this, args.config, {
      adminDsn: cluster.adminDsn,
      host: cluster.host,
      port: cluster.port,
      erpRole: erp.role.roleName,
      templates,
      dependsOn: [erp.role],
      url: (subdomain) => tenantUrl(subdomain, platform),
      site: () => ({
        kind: "local",
        filestoreRoot: path.join(stateDir, "filestore"),
        snapshotRoot: path.join(stateDir, "snapshots"),
        stateDir,
        pgbackrestConfig: cluster.pgbackrestConfig,
        stanza: cluster.stanza,
      }),
    });
    this.exportTenants(outputs);

    const router = erp.serveTenants(
      declared.map((t) => ({
        config: t.config,
        ...tenantNames(t.config.subdomain),
        password: t.rolePassword,
      })),
      {
        ...platform,
        routerTls: platform.routerTls && {
          ...platform.routerTls,
          certFile: path.resolve(args.projectDir, platform.routerTls.certFile),
          keyFile: path.resolve(args.projectDir, platform.routerTls.keyFile),
        },
      },
      declared,
    );
    this.router = { url: router.url, nginxConfig: router.nginxConfig, odooConfig: erp.odooConfig };
    this.postgres = { host: cluster.host, port: cluster.port, adminDsn: pulumi.secret(cluster.adminDsn) };
    this.registerOutputs({});
  }
}

/** A tenant's URL on the local router: https on the TLS port when the router has TLS. */
function tenantUrl(subdomain: string, platform: PlatformConfig): string {
  const host = `${subdomain}.${platform.domain}`;
  return platform.routerTls
    ? routerUrl(host, platform.routerTls.port, "https")
    : routerUrl(host, platform.routerPort);
}
