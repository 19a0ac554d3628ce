import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { RestoreTarget, StackConfig } from "../infra/config/schema";
import { PostgresLogin } from "../dynamic-providers/postgresLogin";
import { RandomSecret, rotationKeepers } from "../dynamic-providers/randomSecret";
import { TenantTemplate } from "../dynamic-providers/tenantTemplate";
import { DockerPlatform } from "./docker/DockerPlatform";
import { OdooDeployment } from "./kubernetes/OdooDeployment";
import { KubernetesRouter } from "./kubernetes/Router";
import { LocalErp } from "./local/Erp";
import { GUARDS_VERSION } from "../lib/guards/install";
import { LocalPostgresCluster } from "./local/PostgresCluster";
import { Tenant, tenantNames, type RestoreSummary, type SnapshotSummary, type TenantSummary } from "./Tenant";
import { EXTERNAL_FILESTORE } from "../lib/tenant/provision";
import { NAMES, POSTGRES_LABELS, POSTGRES_PORT, UPDATE_LABELS, objectLabels } from "./kubernetes/common";
import type { KubernetesCommandRunner } from "../lib/tenant/templatePod";
import type { ErpTenant } from "../lib/odoo/tenantMap";
import { Monitoring } from "./kubernetes/Monitoring";
import { OpsJobs } from "./kubernetes/OpsJobs";
import { POSTGRES_STANZA, PGBACKREST_CONFIG_KEY } from "./kubernetes/postgresConfig";
import { PostgresServer } from "./kubernetes/PostgresServer";
import { templateBuilderSecret } from "./kubernetes/templateBuilder";
import { restoreJob, restoreJobName } from "./kubernetes/RestoreJob";

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
  /**
   * `{ url, nginxConfig, odooConfig }` (docs/configuration.md#stack-outputs): the router's base URL
   * and the rendered configuration.
   */
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
        odooHttp: platform.odooHttp,
        odooWebsocket: platform.odooWebsocket,
        credentialRotation: platform.credentialRotation,
      },
      { parent: this, dependsOn: [cluster] },
    );

    const templates = this.declareTemplates(args, cluster.adminDsn, stateDir, [cluster]);

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

    const router = erp.serveTenants(
      tenantResources.map((t) => ({
        config: t.config,
        ...tenantNames(t.config.subdomain),
        password: t.rolePassword,
      })),
      platform,
      tenantResources,
    );
    this.router = { url: router.url, nginxConfig: router.nginxConfig, odooConfig: erp.odooConfig };
    this.postgres = { host: cluster.host, port: cluster.port, adminDsn: pulumi.secret(cluster.adminDsn) };
    this.registerOutputs({});
  }

  /** One TenantTemplate per declared template (the tenants' source databases). */
  private declareTemplates(
    args: LoomworksPlatformArgs,
    adminDsn: pulumi.Input<string>,
    stateDir: string,
    dependsOn: pulumi.Resource[],
    podBuild?: (templateName: string) => TemplatePodBuild,
  ): Map<string, TenantTemplate> {
    const { platform } = args.config;
    const templates = new Map<string, TenantTemplate>();
    for (const [templateName, source] of Object.entries(platform.templates)) {
      const resolved =
        "fromDump" in source ? { fromDump: path.resolve(args.projectDir, source.fromDump) } : source;
      const pod = podBuild && "fromCommand" in resolved ? podBuild(templateName) : undefined;
      templates.set(
        templateName,
        new TenantTemplate(
          `template-${templateName}`,
          {
            adminDsn,
            name: templateName,
            database: templateDatabaseName(templateName),
            ...resolved,
            stateDir,
            ...(podBuild ? {} : { filestoreRoot: path.join(stateDir, "filestore") }),
            dumpHash: templateSourceHash(resolved),
            excludeTables: platform.undo.excludeTables ?? [],
            guardsVersion: GUARDS_VERSION,
            ...(pod ? { commandRunner: pod.commandRunner, builderPassword: pod.builderPassword } : {}),
          },
          {
            parent: this,
            dependsOn: [...dependsOn, ...(pod ? [pod.secret] : [])],
            customTimeouts: { create: "30m", update: "30m" },
          },
        ),
      );
    }
    return templates;
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
   * The kubernetes target
   * (docs/architecture.md#kubernetes-and-docker): PostgreSQL as a StatefulSet, the ERP workload, routing
   * (Gateway API or Ingress, wildcard certificate through DNS-01), the scheduled jobs, monitoring,
   * and the tenant databases — provisioned by the same providers as on the local target, through
   * `kubernetes.postgres.adminEndpoint` (where this `pulumi up` reaches the server, e.g. a
   * `kubectl port-forward`); restores run as Jobs in the cluster.
   */
  private buildKubernetes(args: LoomworksPlatformArgs): void {
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
    const served: pulumi.Output<ErpTenant>[] = [];
    const erp = new OdooDeployment(
      "erp",
      {
        config: k8sCfg,
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
      },
      { parent: this },
    );
    const monitoring = k8sCfg.monitoring;
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
        ...(k8sCfg.postgres.exporterImage !== undefined
          ? { exporterImage: k8sCfg.postgres.exporterImage }
          : {}),
        ...(monitoring.enabled ? { monitoringNamespace: monitoring.namespace } : {}),
        imagePullSecrets: k8sCfg.imagePullSecrets,
        erpRole: { name: platform.odoo.dbUser, password: rolePassword.result },
      },
      { parent: this },
    );
    const opsPostgres = { stanza: POSTGRES_STANZA, retentionFull: platform.backups.retentionFull };
    new OpsJobs(
      "ops",
      {
        namespace: k8sCfg.namespace,
        image: k8sCfg.ops.image,
        ...(k8sCfg.imagePullPolicy !== undefined ? { imagePullPolicy: k8sCfg.imagePullPolicy } : {}),
        imagePullSecrets: k8sCfg.imagePullSecrets,
        postgres: opsPostgres,
        ...(platform.backups.schedule ? { schedule: platform.backups.schedule } : {}),
        ...(platform.quotas.checkSchedule ? { quotaCheckSchedule: platform.quotas.checkSchedule } : {}),
        undoRetentionDays: platform.undo.retentionDays,
        filestoreOwner: k8sCfg.erpUser,
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

    // Tenant databases: the config refuses tenants without an admin endpoint (infra/config/load.ts).
    const endpoint = k8sCfg.postgres.adminEndpoint;
    const adminDsn = endpoint
      ? pg
          .adminDsn(`${endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`)
          .apply((dsn) =>
            k8sCfg.postgres.adminSslMode === "disable"
              ? dsn
              : `${dsn}?sslmode=${k8sCfg.postgres.adminSslMode}`,
          )
      : undefined;
    const stateDir = path.resolve(args.projectDir, platform.stateDir);
    if (adminDsn) {
      // The server applies a rotated superuser password a minute or two after this update wrote it.
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
      const templates = this.declareTemplates(args, pulumi.secret(adminDsn), stateDir, [login], podBuild);
      for (const tenant of tenants) {
        const template = templates.get(tenant.template);
        if (!template) {
          throw new pulumi.RunError(
            `tenant "${tenant.subdomain}": key "template": names no declared template ("${tenant.template}")`,
          );
        }
        const t = new Tenant(
          tenant.subdomain,
          {
            config: tenant,
            adminDsn: pulumi.secret(adminDsn),
            host: serviceHost,
            port: POSTGRES_PORT,
            templateDatabase: template.database,
            filestoreRoot: EXTERNAL_FILESTORE,
            snapshotRoot: "",
            stateDir,
            pgbackrestConfig: "",
            stanza: POSTGRES_STANZA,
            url: `https://${tenant.subdomain}.${platform.domain}/`,
            undoExcludeTables: platform.undo.excludeTables ?? [],
            erpRole: platform.odoo.dbUser,
            ...(rotation !== undefined ? { platformCredentialRotation: rotation } : {}),
            restoreJob: (db) => {
              const target = tenant.restore as RestoreTarget;
              const jobName = restoreJobName(tenant.subdomain, target);
              return restoreJob(
                jobName,
                {
                  namespace: k8sCfg.namespace,
                  image: k8sCfg.ops.image,
                  ...(k8sCfg.imagePullPolicy !== undefined
                    ? { imagePullPolicy: k8sCfg.imagePullPolicy }
                    : {}),
                  imagePullSecrets: k8sCfg.imagePullSecrets,
                  postgres: opsPostgres,
                  pgbackrestConfigSecret: { name: NAMES.postgresSecrets, key: PGBACKREST_CONFIG_KEY },
                  tenant: {
                    ...tenantNames(tenant.subdomain),
                    subdomain: tenant.subdomain,
                    state: tenant.state,
                  },
                  target,
                  filestoreOwner: k8sCfg.erpUser,
                  scratchSizeLimit: k8sCfg.ops.restoreScratchSize,
                },
                { parent: this, dependsOn: [pg, db] },
              );
            },
          },
          { parent: this, dependsOn: [template, login] },
        );
        served.push(erpTenantOf(t));
        this.tenants[tenant.subdomain] = t.summary;
        this.adminPasswords[tenant.subdomain] = pulumi.secret(t.adminPassword);
        if (tenant.restore) {
          const target = { ...tenant.restore } as Record<string, string>;
          const summary: RestoreSummary = {
            id: restoreJobName(tenant.subdomain, tenant.restore),
            target,
            state: "job",
            preRestoreDatabase: "",
            timings: {},
          };
          this.restores[tenant.subdomain] = pulumi.output(summary);
        }
      }
    }

    serveTenants(pulumi.secret(pulumi.all(served)));

    new KubernetesRouter(
      "router",
      {
        config: k8sCfg,
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
      adminDsn: pulumi.secret(adminDsn ?? pulumi.output("")),
    };
    this.router = {
      url: pulumi.output(`https://${platform.domain}/`),
      nginxConfig: pulumi.output(""),
      odooConfig: erp.odooConfig,
    };
    this.registerOutputs({});
  }
}

/** How a `fromCommand` template builds on kubernetes: in a pod, as its builder, whose password is in `secret`. */
interface TemplatePodBuild {
  commandRunner: KubernetesCommandRunner;
  builderPassword: pulumi.Output<string>;
  secret: pulumi.Resource;
}

/** A tenant as the ERP's tenant files name it, resolved once its database exists (secret: the password). */
function erpTenantOf(t: Tenant): pulumi.Output<ErpTenant> {
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
