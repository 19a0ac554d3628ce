import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { PlatformConfig, RestoreTarget, TenantConfig } from "../../infra/config/schema";
import { sparesOption } from "../../lib/backup/schedule-defaults";
import type { ErpTenant } from "../../lib/odoo/tenantMap";
import { routerUrl, tenantRoutes } from "../../lib/router/config";
import { routerTlsFileProblems, routerTlsFilesHash } from "../../lib/router/tlsFiles";
import { readFileSync } from "node:fs";
import { DockerPlatform, type DockerRouterTls } from "../docker/DockerPlatform";
import { dockerOffsiteRepo, dockerRestoreContainerName } from "../docker/config";
import { tenantNames, type DeclaredRestoreJob, type RestoreSummary } from "../Tenant";
import type { TenantDatabase } from "../../dynamic-providers/tenantDatabase";
import { offsiteStackDir } from "../offsite";
import { PlatformComponent, secretValues, type PlatformArgs } from "./platform";
import { declareTemplates } from "./templates";
import { declareTenants, erpTenantOf } from "./tenants";

/** The offsite repository as the PostgreSQL container sees it (a `path` one bind-mounted from the host). */
function dockerOffsite(backups: PlatformConfig["backups"]) {
  const offsite = dockerOffsiteRepo(backups, offsiteStackDir(pulumi.getProject(), pulumi.getStack()));
  if (!offsite) return {};
  return { offsite, ...(backups.offsite?.type === "path" ? { offsiteHostPath: backups.offsite.path } : {}) };
}

/**
 * The docker target (docs/operations/docker.md): PostgreSQL, Redis, the ERP, nginx and the ops
 * container on one Docker host (components/docker/DockerPlatform.ts), and the tenant databases,
 * templates and guards — provisioned by the same providers as on the local target, through the
 * PostgreSQL port published on the Docker host's 127.0.0.1 (`platform.postgresPort`). The ERP's
 * tenant files list a tenant once its database exists; declared restores run as one-shot containers.
 */
export class DockerHostPlatform extends PlatformComponent {
  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super(name, opts);
    const { platform, tenants } = args.config;
    const routed = tenants.map((t) => ({ subdomain: t.subdomain, state: t.state, preview: t.preview }));
    const [erpTenants, serveTenants] = pulumi.deferredOutput<ErpTenant[]>();
    const routerTls = dockerRouterTls(platform, args.projectDir, routed);
    const { webhookUrl, timeoutSeconds, attempts } = platform.notify;
    const docker = new DockerPlatform(
      "docker",
      {
        docker: platform.docker,
        odoo: platform.odoo,
        domain: platform.domain,
        tenants: routed,
        erpTenants,
        postgres: {
          hostPort: platform.postgresPort,
          archiveTimeoutSeconds: platform.archiveTimeoutSeconds,
          retentionFull: platform.backups.retentionFull,
          ...(platform.backups.encryptionPassphrase === undefined
            ? {}
            : { encryptionPassphrase: pulumi.secret(platform.backups.encryptionPassphrase) }),
          ...dockerOffsite(platform.backups),
        },
        ops: {
          ...(platform.backups.schedule ? { schedule: platform.backups.schedule } : {}),
          ...(platform.quotas.checkSchedule ? { quotaCheckSchedule: platform.quotas.checkSchedule } : {}),
          ...sparesOption(platform.provisioning),
          undoRetentionDays: platform.undo.retentionDays,
          ...(webhookUrl
            ? {
                notify: {
                  webhookUrl: pulumi.secret(webhookUrl),
                  stack: pulumi.getStack(),
                  timeoutSeconds,
                  attempts,
                },
              }
            : {}),
        },
        ...(routerTls ? { routerTls } : {}),
        projectDir: args.projectDir,
        aiKeys: secretValues(platform.ai.keys),
      },
      { parent: this },
    );

    const adminDsn = docker.postgres.adminDsn;
    const templates = declareTemplates(this, {
      platform,
      projectDir: args.projectDir,
      adminDsn,
      stateDir: path.resolve(args.projectDir, platform.stateDir),
      dependsOn: [docker.erpRoleResource],
    });
    const { declared, outputs } = declareTenants(this, args.config, {
      adminDsn,
      host: docker.postgres.host,
      port: docker.postgres.port,
      erpRole: platform.odoo.dbUser,
      templates,
      dependsOn: [docker.erpRoleResource],
      url: (subdomain) =>
        routerTls
          ? routerUrl(`${subdomain}.${platform.domain}`, routerTls.port, "https")
          : routerUrl(`${subdomain}.${platform.domain}`, platform.docker.httpPort),
      site: (tenant) => ({
        kind: "docker",
        restoreJob: (db) => declareRestoreContainer(docker, platform.docker.namePrefix, tenant, db),
      }),
    });
    this.exportTenants(outputs);
    serveTenants(pulumi.secret(pulumi.all(declared.map(erpTenantOf))));

    this.postgres = docker.postgres;
    this.router = {
      url: pulumi.output(docker.url),
      nginxConfig: pulumi.output(docker.nginxConfig),
      odooConfig: pulumi.output(docker.odooConfig),
    };
    this.registerOutputs({});
  }
}

/** A tenant's declared restore as a one-shot container, after its database. */
function declareRestoreContainer(
  docker: DockerPlatform,
  prefix: string,
  tenant: TenantConfig,
  db: TenantDatabase,
): DeclaredRestoreJob {
  const target = tenant.restore as RestoreTarget;
  const containerName = dockerRestoreContainerName(prefix, tenant.subdomain, target);
  const job = docker.restoreContainer(
    {
      tenant: { ...tenantNames(tenant.subdomain), subdomain: tenant.subdomain, state: tenant.state },
      target,
    },
    { dependsOn: [db] },
  );
  // The container has no outputs of the restore's own: the entry is known from the declaration.
  const summary: RestoreSummary = {
    id: containerName,
    target: { ...target } as Record<string, string>,
    state: "container",
    preRestoreDatabase: "",
    timings: {},
  };
  return { job, summary: pulumi.output(summary) };
}

/**
 * `platform.routerTls` for the nginx container: the certificate and key read from this machine
 * (paths relative to the project) and checked as the local router's provider checks them, at
 * preview: readable PEM, the key the certificate's, valid now, naming every tenant host.
 */
function dockerRouterTls(
  platform: PlatformConfig,
  projectDir: string,
  tenants: { subdomain: string; state: TenantConfig["state"]; preview?: boolean }[],
): DockerRouterTls | undefined {
  const tls = platform.routerTls;
  if (!tls) return undefined;
  const files = {
    certFile: path.resolve(projectDir, tls.certFile),
    keyFile: path.resolve(projectDir, tls.keyFile),
  };
  const hosts = tenants.flatMap((t) => tenantRoutes(t, platform.domain).map((r) => r.host));
  const problems = routerTlsFileProblems({ ...files, port: tls.port }, hosts);
  if (problems.length > 0) {
    throw new pulumi.RunError(
      `platform.routerTls: ${problems.map((p) => `${p.property}: ${p.reason}`).join("; ")}`,
    );
  }
  return {
    certPem: readFileSync(files.certFile, "utf8"),
    keyPem: pulumi.secret(readFileSync(files.keyFile, "utf8")),
    port: tls.port,
    hstsMaxAgeSeconds: tls.hstsMaxAgeSeconds,
    ...(routerTlsFilesHash(files) ? { filesHash: routerTlsFilesHash(files) } : {}),
  };
}
