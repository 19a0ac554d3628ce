import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { KubernetesConfig } from "../../infra/config/kubernetes";
import type { RestoreTarget, StackConfig, TenantConfig } from "../../infra/config/schema";
import { PostgresLogin } from "../../dynamic-providers/postgresLogin";
import { RandomSecret, rotationKeepers } from "../../dynamic-providers/randomSecret";
import { sparesOption } from "../../lib/backup/schedule-defaults";
import type { ErpTenant } from "../../lib/odoo/tenantMap";
import { NAMES, POSTGRES_LABELS, POSTGRES_PORT, UPDATE_LABELS, objectLabels } from "../kubernetes/common";
import { Monitoring } from "../kubernetes/Monitoring";
import { OdooDeployment } from "../kubernetes/OdooDeployment";
import { OpsJobs, type OpsNotify, type OpsPods } from "../kubernetes/OpsJobs";
import {
  OFFSITE_SFTP_KEY,
  PGBACKREST_CONFIG_KEY,
  POSTGRES_STANZA,
  kubernetesOffsiteRefusal,
} from "../kubernetes/postgresConfig";
import { OFFSITE_CONTAINER } from "../docker/config";
import { offsiteRepo, offsiteStackDir } from "../offsite";
import { PostgresServer } from "../kubernetes/PostgresServer";
import { restoreJob, restoreJobName } from "../kubernetes/RestoreJob";
import { KubernetesRouter } from "../kubernetes/Router";
import { templateBuilderSecret } from "../kubernetes/templateBuilder";
import { tenantNames, type DeclaredRestoreJob, type RestoreSummary } from "../Tenant";
import type { TenantDatabase } from "../../dynamic-providers/tenantDatabase";
import { erpSettings, routerSettings } from "./kubernetesSettings";
import { PlatformComponent, secretValues, type PlatformArgs } from "./platform";
import { declareTemplates, type TemplatePodBuild } from "./templates";
import { declareTenants, erpTenantOf } from "./tenants";

/**
 * The kubernetes target (docs/architecture.md#kubernetes-and-docker): PostgreSQL as a StatefulSet,
 * the ERP workload, routing (Gateway API or Ingress, wildcard certificate through DNS-01), the
 * scheduled jobs, monitoring, and the tenant databases — provisioned by the same providers as on the local target, through
 * `kubernetes.postgres.adminEndpoint` (where this `pulumi up` reaches the server, e.g. a
 * `kubectl port-forward`); restores run as Jobs in the cluster.
 */
export class KubernetesPlatform extends PlatformComponent {
  /** The scheduled jobs (declarePostgres); restore Jobs wait for their notification Secret. */
  private ops?: OpsJobs;

  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, opts);
    const { platform, tenants } = args.config;
    const k8sCfg = platform.kubernetes;
    if (!k8sCfg)
      throw new pulumi.RunError('platform: key "kubernetes": is required when target is kubernetes');
    const rotation = platform.credentialRotation;
    const rolePassword = new RandomSecret(
      "erp-role-password",
      { length: 32, keepers: rotationKeepers({ platform: rotation }) },
      { parent: this },
    );
    const adminPasswd = new RandomSecret("erp-admin-passwd", { length: 32 }, { parent: this });
    const serviceHost = `${NAMES.postgres}.${k8sCfg.namespace}.svc`;
    // The ERP's tenant map and credentials: known once the tenants below are declared, written
    // after their databases (a tenant is never served before it exists).
    const [erpTenants, serveTenants] = pulumi.deferredOutput<ErpTenant[]>();
    const erp = new OdooDeployment(
      "erp",
      {
        ...erpSettings(k8sCfg),
        database: {
          host: serviceHost,
          user: platform.odoo.dbUser,
          password: rolePassword.result,
          peer: { podLabels: POSTGRES_LABELS },
        },
        adminPasswd: adminPasswd.result,
        databases: tenants.filter((t) => t.state === "active").map((t) => t.subdomain),
        tenants: erpTenants,
        ...(rotation !== undefined ? { credentialRotation: rotation } : {}),
        aiKeys: secretValues(platform.ai.keys),
      },
      { parent: this },
    );
    const pg = this.declarePostgres(args.config, k8sCfg, erp, rolePassword.result);

    // Tenant databases: the config refuses tenants without an admin endpoint (infra/config/load.ts).
    const adminDsn = adminDsnOf(k8sCfg, pg);
    const declared = adminDsn ? this.declareTenantDatabases(args, k8sCfg, erp, pg, adminDsn) : undefined;
    if (declared) this.exportTenants(declared.outputs);
    serveTenants(pulumi.secret(pulumi.all((declared?.declared ?? []).map(erpTenantOf))));

    new KubernetesRouter(
      "router",
      {
        ...routerSettings(k8sCfg),
        domain: platform.domain,
        namespace: erp.namespace,
        tenants: tenants.map((t) => ({ subdomain: t.subdomain, state: t.state, preview: t.preview })),
        erp: { httpService: erp.httpService, websocketService: erp.websocketService },
      },
      { parent: this },
    );
    this.postgres = {
      host: pg.serviceHost,
      port: pg.port,
      ...(adminDsn ? { adminDsn: pulumi.secret(adminDsn) } : {}),
    };
    this.router = { url: pulumi.output(`https://${platform.domain}/`), odooConfig: erp.odooConfig };
    this.registerOutputs({});
  }

  /** PostgreSQL (StatefulSet), its scheduled jobs and, when enabled, its monitoring. */
  private declarePostgres(
    config: StackConfig,
    k8sCfg: KubernetesConfig,
    erp: OdooDeployment,
    erpRolePassword: pulumi.Output<string>,
  ): PostgresServer {
    const { platform } = config;
    const rotation = platform.credentialRotation;
    const monitoring = k8sCfg.monitoring;
    const offsite = offsiteRepo(platform.backups, {
      sftpKeyFile: OFFSITE_CONTAINER.sftpKeyFile,
      stackDir: offsiteStackDir(pulumi.getProject(), pulumi.getStack()),
    });
    const refusal = kubernetesOffsiteRefusal(offsite);
    if (refusal) throw new pulumi.RunError(`platform: key "backups.offsite.type": ${refusal}`);
    const pg = new PostgresServer(
      "postgres",
      {
        namespace: erp.namespace,
        image: k8sCfg.postgres.image,
        storage: {
          ...(k8sCfg.postgres.storageClass !== undefined
            ? { storageClass: k8sCfg.postgres.storageClass }
            : {}),
          dataSize: k8sCfg.postgres.dataSize,
          walSize: k8sCfg.postgres.walArchiveSize,
          backupsSize: k8sCfg.postgres.backupsSize,
        },
        resources: k8sCfg.postgres.resources,
        ...(rotation !== undefined ? { rotation } : {}),
        ...(platform.backups.encryptionPassphrase !== undefined
          ? { encryptionPassphrase: pulumi.secret(platform.backups.encryptionPassphrase) }
          : {}),
        archiveTimeoutSeconds: platform.archiveTimeoutSeconds,
        retentionFull: platform.backups.retentionFull,
        ...(offsite ? { offsite } : {}),
        ...(k8sCfg.postgres.exporterImage !== undefined
          ? { exporterImage: k8sCfg.postgres.exporterImage }
          : {}),
        ...(monitoring.enabled ? { monitoringNamespace: monitoring.namespace } : {}),
        imagePullSecrets: k8sCfg.imagePullSecrets,
        erpRole: { name: platform.odoo.dbUser, password: erpRolePassword },
      },
      { parent: this },
    );
    const notify = opsNotify(platform);
    this.ops = new OpsJobs(
      "ops",
      {
        ...opsPods(k8sCfg),
        postgres: opsPostgres(platform),
        ...(platform.backups.schedule ? { schedule: platform.backups.schedule } : {}),
        ...(platform.quotas.checkSchedule ? { quotaCheckSchedule: platform.quotas.checkSchedule } : {}),
        ...sparesOption(platform.provisioning),
        undoRetentionDays: platform.undo.retentionDays,
        filestoreOwner: k8sCfg.erpUser,
        ...(notify ? { notify } : {}),
        ...(monitoring.pushgatewayUrl ? { pushgatewayUrl: monitoring.pushgatewayUrl } : {}),
      },
      { parent: this, dependsOn: [pg] },
    );
    if (monitoring.enabled) {
      new Monitoring(
        "monitoring",
        {
          namespace: k8sCfg.namespace,
          labels: monitoring.labels,
          prometheus: { namespace: monitoring.namespace },
          archiveTimeoutSeconds: platform.archiveTimeoutSeconds,
        },
        { parent: this, dependsOn: [pg] },
      );
    }
    return pg;
  }

  /**
   * The templates and tenants, through the admin endpoint once the server accepts the superuser's
   * password (it applies a rotated one a minute or two after this update wrote it).
   */
  private declareTenantDatabases(
    args: PlatformArgs,
    k8sCfg: KubernetesConfig,
    erp: OdooDeployment,
    pg: PostgresServer,
    adminDsn: pulumi.Output<string>,
  ): ReturnType<typeof declareTenants> {
    const { platform } = args.config;
    const rotation = platform.credentialRotation;
    const serviceHost = `${NAMES.postgres}.${k8sCfg.namespace}.svc`;
    const stateDir = path.resolve(args.projectDir, platform.stateDir);
    const login = new PostgresLogin(
      "postgres-login",
      { dsn: pulumi.secret(adminDsn) },
      { parent: this, dependsOn: [pg] },
    );
    // A template's initializer command runs in a pod of the ERP image, next to PostgreSQL, as
    // the template's builder role (its password in a Secret of its own).
    const podBuild = (templateName: string): TemplatePodBuild => {
      const builder = templateBuilderSecret(templateName, erp.namespace, rotation, { parent: this });
      return {
        commandRunner: {
          namespace: k8sCfg.namespace,
          image: k8sCfg.image,
          host: serviceHost,
          port: POSTGRES_PORT,
          passwordSecret: builder.ref,
          labels: objectLabels(UPDATE_LABELS),
          user: k8sCfg.erpUser,
          imagePullSecrets: k8sCfg.imagePullSecrets,
        },
        builderPassword: builder.password,
        secret: builder.secret,
      };
    };
    const templates = declareTemplates(this, {
      platform,
      projectDir: args.projectDir,
      adminDsn: pulumi.secret(adminDsn),
      stateDir,
      dependsOn: [login],
      podBuild,
    });
    return declareTenants(this, args.config, {
      adminDsn: pulumi.secret(adminDsn),
      host: serviceHost,
      port: POSTGRES_PORT,
      erpRole: platform.odoo.dbUser,
      templates,
      dependsOn: [login],
      url: (subdomain) => `https://${subdomain}.${platform.domain}/`,
      site: (tenant) => ({
        kind: "kubernetes",
        restoreJob: (db) => this.declareRestoreJob(platform, k8sCfg, tenant, pg, db),
      }),
    });
  }

  /** A tenant's declared restore as a Job in the cluster, after its database. */
  private declareRestoreJob(
    platform: StackConfig["platform"],
    k8sCfg: KubernetesConfig,
    tenant: TenantConfig,
    pg: PostgresServer,
    db: TenantDatabase,
  ): DeclaredRestoreJob {
    const target = tenant.restore as RestoreTarget;
    const jobName = restoreJobName(tenant.subdomain, target);
    const job = restoreJob(
      jobName,
      {
        ...opsPods(k8sCfg),
        postgres: opsPostgres(platform),
        pgbackrestConfigSecret: {
          name: NAMES.postgresSecrets,
          key: PGBACKREST_CONFIG_KEY,
          // An SFTP key given as a secret: next to pgbackrest.conf, where the file names it.
          ...(platform.backups.offsite?.privateKey ? { extraKeys: [OFFSITE_SFTP_KEY] } : {}),
        },
        tenant: { ...tenantNames(tenant.subdomain), subdomain: tenant.subdomain, state: tenant.state },
        target,
        filestoreOwner: k8sCfg.erpUser,
        scratchSizeLimit: k8sCfg.ops.restoreScratchSize,
        ...(this.ops?.notifySecret ? { notify: opsNotify(platform) } : {}),
        ...(k8sCfg.monitoring.pushgatewayUrl ? { pushgatewayUrl: k8sCfg.monitoring.pushgatewayUrl } : {}),
      },
      { parent: this, dependsOn: [pg, db, ...(this.ops?.notifySecret ? [this.ops.notifySecret] : [])] },
    );
    // The Job has no outputs of its own: the entry is known from the declaration.
    const summary: RestoreSummary = {
      id: jobName,
      target: { ...target } as Record<string, string>,
      state: "job",
      preRestoreDatabase: "",
      timings: {},
    };
    return { job, summary: pulumi.output(summary) };
  }
}

/** Where the scheduled jobs and restores run. */
function opsPods(k8sCfg: KubernetesConfig): OpsPods {
  return {
    namespace: k8sCfg.namespace,
    image: k8sCfg.ops.image,
    ...(k8sCfg.imagePullPolicy !== undefined ? { imagePullPolicy: k8sCfg.imagePullPolicy } : {}),
    imagePullSecrets: k8sCfg.imagePullSecrets,
  };
}

/** What the scheduled jobs and restores know of PostgreSQL. */
function opsPostgres(platform: StackConfig["platform"]) {
  return { stanza: POSTGRES_STANZA, retentionFull: platform.backups.retentionFull };
}

/** `platform.notify` for the ops pods: the URL (secret) goes into the Secret NAMES.opsNotify. */
function opsNotify(platform: StackConfig["platform"]): OpsNotify | undefined {
  const { webhookUrl, timeoutSeconds, attempts } = platform.notify;
  if (!webhookUrl) return undefined;
  const url = new URL(webhookUrl);
  return {
    webhookUrl: pulumi.secret(webhookUrl),
    port: Number(url.port || (url.protocol === "https:" ? 443 : 80)),
    stack: pulumi.getStack(),
    timeoutSeconds,
    attempts,
  };
}

/** The superuser's DSN at `kubernetes.postgres.adminEndpoint`; absent without an endpoint. */
function adminDsnOf(k8sCfg: KubernetesConfig, pg: PostgresServer): pulumi.Output<string> | undefined {
  const endpoint = k8sCfg.postgres.adminEndpoint;
  if (!endpoint) return undefined;
  const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host;
  return pg
    .adminDsn(`${host}:${endpoint.port}`)
    .apply((dsn) =>
      k8sCfg.postgres.adminSslMode === "disable" ? dsn : `${dsn}?sslmode=${k8sCfg.postgres.adminSslMode}`,
    );
}
