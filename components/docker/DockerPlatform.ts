import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import type { OffsiteRepo } from "../../lib/pg/offsite";
import { ErpRole } from "../../dynamic-providers/erpRole";
import { RandomSecret } from "../../dynamic-providers/randomSecret";
import type { DockerConfig } from "../../infra/config/docker";
import type { OdooConfig } from "../../infra/config/odoo";
import type { OpsScheduleArgs } from "../../lib/backup/opsJobs";
import { aiKeyNames } from "../../lib/odoo/aiKeys";
import { ERP_IMAGE } from "../../lib/odoo/image";
import type { ErpTenant } from "../../lib/odoo/tenantMap";
import { routerUrl, type RouterTenant } from "../../lib/router/config";
import {
  DOCKER_HOSTS,
  DOCKER_VOLUMES,
  ERP_CONTAINER,
  NGINX_TLS,
  POSTGRES_CONTAINER,
  containerName,
  dockerNginxTls,
  dockerOdooConfOptions,
  renderDockerNginxConf,
  renderDockerOdooConf,
  renderDockerPgBackRestConf,
  renderDockerPostgresqlConf,
  renderDockerTenantFiles,
  redisSessionCommand,
  volumeName,
  type DockerVolumeName,
} from "./config";
import { containerEnvs, containerHealthcheck, containerVolumes } from "./containerInputs";
import {
  CHECKOUT_BUILDS,
  POSTGRES_SHM_SIZE_MB,
  RESTART_POLICY,
  START_AFTER,
  STOP_TIMEOUT_SECONDS,
  erpCommand,
  erpEnvironment,
  nginxCommand,
  nginxPorts,
  postgresCommand,
  postgresEnvironment,
  type DockerRole,
} from "./containers";
import {
  offsiteUploads,
  offsiteVolumes,
  opsContainer,
  restoreContainer,
  type DockerOffsiteFiles,
  type DockerOpsNotify,
  type DockerRestoreArgs,
  type OpsContainerSettings,
} from "./opsContainers";

export type { DockerOpsNotify, DockerRestoreArgs };

/**
 * The Docker target
 * (docs/architecture.md#kubernetes-and-docker): one Docker host running the same images and configuration
 * files as the other targets — PostgreSQL 15 with pgBackRest, Redis for sessions, the Loomworks ERP
 * image and nginx, on one network, with the named volumes odoo_data, postgres_data, wal_archive and
 * backups. Start order is health-gated: each container is created with `wait: true` (Pulumi waits
 * until its HEALTHCHECK passes) and the next one depends on it — PostgreSQL → the ERP's role →
 * Redis → ERP → nginx. The development variant mounts the addons from the host, runs Odoo threaded
 * with `--dev=all` under debugpy (5678, on 127.0.0.1) and lifts the resource limits.
 */
export interface DockerPlatformArgs {
  /** `loomworks:platform.docker` (infra/config/docker.ts). */
  docker: DockerConfig;
  /** `loomworks:platform.odoo` (infra/config/odoo.ts). */
  odoo: OdooConfig;
  /** Tenants live at `<subdomain>.<domain>`. */
  domain: string;
  /** Routed by nginx: active → the ERP, suspended/archived → 503, any other host → 404. */
  tenants: readonly RouterTenant[];
  /**
   * The ERP's tenant map and credentials (lib/odoo/tenantMap.ts): the provisioned tenants, resolved
   * once their databases exist, so that the ERP container (created after them) never serves a
   * tenant without its database. Default: none.
   */
  erpTenants?: pulumi.Input<ErpTenant[]>;
  /** Databases the ERP's entrypoint keeps updated at each start; default: the active tenants'. */
  databases?: pulumi.Input<string[]>;
  postgres: {
    /** Port on the Docker host's 127.0.0.1 PostgreSQL is published on (the program's own providers use it). */
    hostPort: number;
    archiveTimeoutSeconds: number;
    retentionFull: number;
    /** pgBackRest stanza (default "loomworks"). */
    stanza?: string;
    /** Enables pgBackRest repository encryption; secret. */
    encryptionPassphrase?: pulumi.Input<string>;
    /**
     * The offsite repository (repo2) with the container's paths (OFFSITE_CONTAINER); a `path`
     * one is the host directory `offsiteHostPath`, bind-mounted.
     */
    offsite?: OffsiteRepo;
    offsiteHostPath?: string;
  };
  /** The scheduled jobs of the ops container (lib/backup/opsJobs.ts) and their notifications. */
  ops: OpsScheduleArgs & { notify?: DockerOpsNotify };
  /** `platform.routerTls`: the certificate and key (PEM; the key secret) nginx serves on 443, published on `port`. */
  routerTls?: DockerRouterTls;
  /** The checkout (docker/Dockerfile, docker/postgres, docker/ops); relative addonsBuildContext/addonsPath resolve against it. */
  projectDir: string;
  /**
   * platform.ai.keys: environment variable name → API key (secrets), set in the ERP container's
   * environment. A changed key replaces the container, like any change of its environment.
   */
  aiKeys?: Record<string, pulumi.Input<string>>;
}

export interface DockerRouterTls {
  certPem: pulumi.Input<string>;
  /** Secret. */
  keyPem: pulumi.Input<string>;
  /** The host port published to the container's 443 (on `docker.bindAddress`). */
  port: number;
  hstsMaxAgeSeconds?: number;
  /** sha256 of the certificate and key: written into nginx.conf, so a renewed pair replaces the container. */
  filesHash?: string;
}

/**
 * Every long-running container: a refresh that finds it stopped removes it from the state (the
 * provider deletes the stopped container), so the refresh shows it gone and the next `pulumi up`
 * creates it again (docs/operations/docker.md#refresh-and-stopped-containers).
 */
const MUST_RUN = true;

/** The files of the offsite repository every container running pgBackRest needs (PostgreSQL, ops, restores). */
function dockerOffsiteFiles(
  offsite: OffsiteRepo | undefined,
  hostPath: string | undefined,
): DockerOffsiteFiles | undefined {
  if (!offsite) return undefined;
  const files: DockerOffsiteFiles = {};
  if (offsite.type === "path" && hostPath)
    files.mount = { hostPath, containerPath: offsite.mountPoint ?? offsite.path };
  if (offsite.type === "sftp" && offsite.privateKey) {
    files.sftpKey = { file: offsite.privateKeyFile, content: offsite.privateKey };
  }
  return files;
}

/** sha256 of a directory's files (paths and contents; .git, caches and bytecode skipped): rebuilds an image when it changes. */
export function directoryDigest(dir: string): string {
  const hash = createHash("sha256");
  const walk = (rel: string): void => {
    const entries = readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const e of entries) {
      if (e.name === ".git" || e.name === "__pycache__" || e.name.endsWith(".pyc")) continue;
      const child = rel === "" ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) walk(child);
      else if (e.isFile())
        hash
          .update(`${child}\0`)
          .update(readFileSync(path.join(dir, child)))
          .update("\0");
    }
  };
  walk("");
  return hash.digest("hex");
}

export class DockerPlatform extends pulumi.ComponentResource {
  readonly network: docker.Network;
  readonly volumes: Record<DockerVolumeName, docker.Volume>;
  readonly containers: {
    postgres: docker.Container;
    redis: docker.Container;
    erp: docker.Container;
    nginx: docker.Container;
    ops: docker.Container;
  };
  /** The ERP's role resource: tenants are provisioned after it (they are granted to it). */
  readonly erpRoleResource: ErpRole;
  /** What the restore containers share with the ops container. */
  private readonly opsSettings: OpsContainerSettings;
  /** Parent and provider of this component's docker resources. */
  private readonly providerOptions: (o?: pulumi.CustomResourceOptions) => pulumi.CustomResourceOptions;
  /** The cluster as the program's providers reach it (published on the Docker host's 127.0.0.1); adminDsn is secret. */
  readonly postgres: {
    host: pulumi.Output<string>;
    port: pulumi.Output<number>;
    adminDsn: pulumi.Output<string>;
  };
  /** The ERP's own database role (not a superuser); its password is secret. */
  readonly erpRole: { name: string; password: pulumi.Output<string> };
  /** Odoo's master password (secret). */
  readonly adminPasswd: pulumi.Output<string>;
  /** The rendered odoo.conf (no secret in it: the entrypoint fills them in). */
  readonly odooConfig: string;
  /** The rendered nginx.conf. */
  readonly nginxConfig: string;
  /** `http://<domain>:<httpPort>/`; tenants at `http://<sub>.<domain>:<httpPort>/`. */
  readonly url: string;

  constructor(name: string, args: DockerPlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super("loomworks:docker:DockerPlatform", name, {}, opts);
    const { docker: cfg, odoo } = args;
    const dev = cfg.development.enabled;
    const prefix = cfg.namePrefix;
    const stanza = args.postgres.stanza ?? "loomworks";

    const provider = cfg.host
      ? new docker.Provider("docker", { host: cfg.host }, { parent: this })
      : undefined;
    const on = (o: pulumi.CustomResourceOptions = {}): pulumi.CustomResourceOptions => ({
      parent: this,
      ...(provider ? { provider } : {}),
      ...o,
    });

    // --- secrets ------------------------------------------------------------------------------
    const superuserPassword = new RandomSecret(
      "postgres-superuser-password",
      { length: 32 },
      { parent: this },
    );
    const erpPassword = new RandomSecret("erp-db-password", { length: 32 }, { parent: this });
    const adminPasswd = new RandomSecret("odoo-admin-passwd", { length: 32 }, { parent: this });

    // --- network and volumes ------------------------------------------------------------------
    this.network = new docker.Network(
      "network",
      { name: cfg.networkName, driver: "bridge", attachable: false },
      on(),
    );
    const volumes = {} as Record<DockerVolumeName, docker.Volume>;
    for (const v of DOCKER_VOLUMES) {
      // Kept when the stack is destroyed: the tenants' data and backups outlive the containers.
      volumes[v] = new docker.Volume(
        v.replace(/_/g, "-"),
        { name: volumeName(prefix, v), labels: [{ label: "loomworks.volume", value: v }] },
        on({ retainOnDelete: true }),
      );
    }
    this.volumes = volumes;
    const network = [{ name: this.network.name }];

    // --- images -------------------------------------------------------------------------------
    const postgresImage = cfg.postgresImage
      ? new docker.RemoteImage("postgres-image", { name: cfg.postgresImage, keepLocally: true }, on())
      : new docker.RemoteImage(
          "postgres-image",
          {
            name: CHECKOUT_BUILDS.postgres.tag(prefix),
            keepLocally: true,
            build: {
              context: path.join(args.projectDir, CHECKOUT_BUILDS.postgres.context),
              dockerfile: CHECKOUT_BUILDS.postgres.dockerfile,
              builder: cfg.builder,
            },
            triggers: {
              context: directoryDigest(path.join(args.projectDir, CHECKOUT_BUILDS.postgres.context)),
            },
          },
          on(),
        );
    const erpImageName = dev ? (cfg.development.image ?? odoo.image) : odoo.image;
    const erpImage = odoo.addonsBuildContext
      ? new docker.RemoteImage(
          "erp-image",
          {
            name: erpImageName,
            keepLocally: true,
            build: {
              context: path.join(args.projectDir, CHECKOUT_BUILDS.erp.context),
              dockerfile: CHECKOUT_BUILDS.erp.dockerfile,
              target: dev ? "development" : "production",
              builder: cfg.builder,
              additionalContexts: [
                `${CHECKOUT_BUILDS.erp.addonsContext}=${path.resolve(args.projectDir, odoo.addonsBuildContext)}`,
              ],
            },
            triggers: {
              dockerfile: directoryDigest(path.join(args.projectDir, "docker")),
              addons: directoryDigest(path.resolve(args.projectDir, odoo.addonsBuildContext)),
            },
          },
          on(),
        )
      : new docker.RemoteImage("erp-image", { name: erpImageName, keepLocally: true }, on());
    const redisImage = new docker.RemoteImage(
      "redis-image",
      { name: cfg.redisImage, keepLocally: true },
      on(),
    );
    const nginxImage = new docker.RemoteImage(
      "nginx-image",
      { name: cfg.nginxImage, keepLocally: true },
      on(),
    );
    // The ops image: built from the checkout (its build context is the repository) like the PostgreSQL image.
    const opsSources = ["infra", "components", "dynamic-providers", "lib", "templates", "sql", "docker/ops"];
    const opsImage = cfg.opsImage
      ? new docker.RemoteImage("ops-image", { name: cfg.opsImage, keepLocally: true }, on())
      : new docker.RemoteImage(
          "ops-image",
          {
            name: CHECKOUT_BUILDS.ops.tag(prefix),
            keepLocally: true,
            build: {
              context: path.join(args.projectDir, CHECKOUT_BUILDS.ops.context),
              dockerfile: CHECKOUT_BUILDS.ops.dockerfile,
              builder: cfg.builder,
            },
            triggers: Object.fromEntries(
              opsSources.map((dir) => [dir, directoryDigest(path.join(args.projectDir, dir))]),
            ),
          },
          on(),
        );

    // Health-gated start order (containers.ts' START_AFTER): each container after those it names.
    const started: Partial<Record<DockerRole, docker.Container>> = {};
    const startAfter = (role: DockerRole): docker.Container[] =>
      START_AFTER[role].map((r) => {
        const c = started[r];
        if (!c) throw new Error(`docker: ${role} starts after ${r}, which is not declared yet`);
        return c;
      });

    // --- PostgreSQL 15 + pgBackRest -----------------------------------------------------------
    const offsite = args.postgres.offsite;
    const offsiteFiles = dockerOffsiteFiles(offsite, args.postgres.offsiteHostPath);
    const pgbackrestConf = pulumi.output(args.postgres.encryptionPassphrase).apply((passphrase) =>
      renderDockerPgBackRestConf({
        stanza,
        retentionFull: args.postgres.retentionFull,
        ...(passphrase ? { encryptionPassphrase: passphrase } : {}),
        ...(offsite ? { offsite } : {}),
      }),
    );
    const postgres = new docker.Container(
      "postgres",
      {
        name: containerName(prefix, "postgres"),
        image: postgresImage.imageId,
        hostname: DOCKER_HOSTS.postgres,
        networksAdvanced: [{ ...network[0], aliases: [DOCKER_HOSTS.postgres] }],
        command: postgresCommand(),
        envs: containerEnvs(postgresEnvironment({ stanza, passwordFile: POSTGRES_CONTAINER.passwordFile })),
        uploads: [
          {
            file: POSTGRES_CONTAINER.config,
            content: renderDockerPostgresqlConf({
              archiveTimeoutSeconds: args.postgres.archiveTimeoutSeconds,
              stanza,
            }),
            permissions: "0444",
          },
          // May hold the repository passphrase: secret whenever one is set.
          {
            file: POSTGRES_CONTAINER.pgbackrestConfig,
            content:
              args.postgres.encryptionPassphrase || offsite ? pulumi.secret(pgbackrestConf) : pgbackrestConf,
            permissions: "0444",
          },
          ...offsiteUploads(offsiteFiles),
          {
            file: POSTGRES_CONTAINER.passwordFile,
            content: pulumi.secret(superuserPassword.result),
            permissions: "0444",
          },
        ],
        volumes: [...containerVolumes("postgres", volumes), ...offsiteVolumes(offsiteFiles)],
        ports: [{ internal: POSTGRES_CONTAINER.port, external: args.postgres.hostPort, ip: "127.0.0.1" }],
        shmSize: POSTGRES_SHM_SIZE_MB,
        healthcheck: containerHealthcheck("postgres"),
        restart: RESTART_POLICY,
        mustRun: MUST_RUN,
        wait: true,
        waitTimeout: 300,
        stopTimeout: STOP_TIMEOUT_SECONDS.postgres,
        destroyGraceSeconds: STOP_TIMEOUT_SECONDS.postgres,
      },
      on({ dependsOn: startAfter("postgres") }),
    );
    started.postgres = postgres;
    const adminDsn = pulumi.secret(
      pulumi.interpolate`postgres://postgres:${superuserPassword.result}@127.0.0.1:${args.postgres.hostPort}/postgres`,
    );

    // The ERP's own role, through the published port (the program runs on the Docker host).
    const erpRole = new ErpRole(
      "erp-role",
      { adminDsn, roleName: odoo.dbUser, password: pulumi.secret(erpPassword.result) },
      { parent: this, dependsOn: [postgres] },
    );
    this.erpRoleResource = erpRole;

    // --- Redis (sessions) ---------------------------------------------------------------------
    const redis = new docker.Container(
      "redis",
      {
        name: containerName(prefix, "redis"),
        image: redisImage.imageId,
        hostname: DOCKER_HOSTS.redis,
        networksAdvanced: [{ ...network[0], aliases: [DOCKER_HOSTS.redis] }],
        command: redisSessionCommand(),
        healthcheck: containerHealthcheck("redis"),
        restart: RESTART_POLICY,
        mustRun: MUST_RUN,
        wait: true,
        waitTimeout: 120,
        stopTimeout: STOP_TIMEOUT_SECONDS.redis,
      },
      on({ dependsOn: startAfter("redis") }),
    );
    started.redis = redis;

    // --- the ERP ------------------------------------------------------------------------------
    this.odooConfig = renderDockerOdooConf(dockerOdooConfOptions(odoo, dev));
    const databases =
      args.databases ?? args.tenants.filter((t) => t.state === "active").map((t) => t.subdomain);
    const debugpy = dev && cfg.development.debugpy;
    const baseEnvs = pulumi
      .output(databases)
      .apply((dbs) =>
        containerEnvs(erpEnvironment({ databases: dbs, updateModules: odoo.updateModules, debugpy })),
      );
    // With AI keys the whole list is a secret: the engine keeps it encrypted and previews hide it.
    const aiKeys = args.aiKeys ?? {};
    const erpEnvs =
      Object.keys(aiKeys).length === 0
        ? baseEnvs
        : pulumi.secret(
            pulumi
              .all([baseEnvs, pulumi.all(aiKeys)])
              .apply(([base, keys]) => [...base, ...aiKeyNames(keys).map((n) => `${n}=${keys[n] ?? ""}`)]),
          );
    const erp = new docker.Container(
      "erp",
      {
        name: containerName(prefix, "erp"),
        image: erpImage.imageId,
        hostname: DOCKER_HOSTS.erp,
        networksAdvanced: [{ ...network[0], aliases: [DOCKER_HOSTS.erp] }],
        command: erpCommand(dev),
        envs: erpEnvs,
        uploads: [
          { file: ERP_IMAGE.confPath, content: this.odooConfig, permissions: "0444" },
          {
            file: ERP_CONTAINER.adminPasswdFile,
            content: pulumi.secret(adminPasswd.result),
            permissions: "0444",
          },
          {
            file: ERP_CONTAINER.dbPasswordFile,
            content: pulumi.secret(erpPassword.result),
            permissions: "0444",
          },
          // The provisioned tenants (known once their databases exist). Readable by the ERP's user
          // (the uploads belong to root); the credentials are secret.
          ...tenantFileUploads(args.erpTenants ?? []),
        ],
        volumes: [
          ...containerVolumes("erp", volumes),
          ...(dev && cfg.development.addonsPath
            ? [
                {
                  hostPath: path.resolve(args.projectDir, cfg.development.addonsPath),
                  containerPath: ERP_IMAGE.addonsDir,
                  readOnly: true,
                },
              ]
            : []),
        ],
        ports: debugpy
          ? [{ internal: ERP_IMAGE.debugpyPort, external: cfg.development.debugpyPort, ip: "127.0.0.1" }]
          : [],
        // Relaxed in development; otherwise the limits odoo.conf's workers are sized from.
        ...(dev ? {} : { memory: odoo.memoryMb, cpus: String(odoo.cpu) }),
        healthcheck: containerHealthcheck("erp"),
        restart: RESTART_POLICY,
        mustRun: MUST_RUN,
        wait: true,
        waitTimeout: 1800,
        stopSignal: "SIGTERM",
        stopTimeout: STOP_TIMEOUT_SECONDS.erp,
        destroyGraceSeconds: STOP_TIMEOUT_SECONDS.erp,
      },
      // The ERP connects as its role: created once PostgreSQL is up.
      on({ dependsOn: [...startAfter("erp"), erpRole] }),
    );
    started.erp = erp;

    // --- nginx --------------------------------------------------------------------------------
    const router = renderDockerNginxConf({
      domain: args.domain,
      publicPort: cfg.httpPort,
      tenants: args.tenants,
      development: dev,
      ...(args.routerTls ? { tls: dockerNginxTls(args.routerTls) } : {}),
    });
    this.nginxConfig = router.text;
    const nginx = new docker.Container(
      "nginx",
      {
        name: containerName(prefix, "nginx"),
        image: nginxImage.imageId,
        hostname: DOCKER_HOSTS.nginx,
        networksAdvanced: [{ ...network[0], aliases: [DOCKER_HOSTS.nginx] }],
        command: nginxCommand(router.paths),
        // nginx resolves the ERP's address when it starts: a new ERP container means a new nginx.
        envs: [pulumi.interpolate`LOOMWORKS_ERP_CONTAINER=${erp.id}`],
        uploads: [
          { file: router.paths.config, content: router.text, permissions: "0444" },
          {
            file: `${router.paths.htmlDir}/404.html`,
            content: router.pages["404.html"],
            permissions: "0444",
          },
          {
            file: `${router.paths.htmlDir}/503.html`,
            content: router.pages["503.html"],
            permissions: "0444",
          },
          ...(args.routerTls
            ? [
                { file: NGINX_TLS.certFile, content: args.routerTls.certPem, permissions: "0444" },
                // Read by the master process (root) only.
                {
                  file: NGINX_TLS.keyFile,
                  content: pulumi.secret(args.routerTls.keyPem),
                  permissions: "0400",
                },
              ]
            : []),
        ],
        ports: nginxPorts({
          httpPort: cfg.httpPort,
          ...(args.routerTls ? { tlsPort: args.routerTls.port } : {}),
        }).map((p) => ({ ...p, ip: cfg.bindAddress })),
        healthcheck: containerHealthcheck("nginx"),
        restart: RESTART_POLICY,
        mustRun: MUST_RUN,
        wait: true,
        waitTimeout: 120,
        stopTimeout: STOP_TIMEOUT_SECONDS.nginx,
      },
      on({ dependsOn: startAfter("nginx") }),
    );

    // --- ops: the scheduled jobs (and, later, the restore containers) ---------------------------
    this.opsSettings = {
      prefix,
      image: opsImage.imageId,
      networkName: this.network.name,
      volumes,
      stanza,
      retentionFull: args.postgres.retentionFull,
      // May hold the repository passphrase: secret whenever one is set.
      pgbackrestConf:
        args.postgres.encryptionPassphrase || offsite ? pulumi.secret(pgbackrestConf) : pgbackrestConf,
      superuserPassword: superuserPassword.result,
      ...(offsiteFiles ? { offsite: offsiteFiles } : {}),
      ...(args.ops.notify ? { notify: args.ops.notify } : {}),
    };
    const ops = opsContainer(
      "ops",
      { ...this.opsSettings, schedule: args.ops },
      on({ dependsOn: startAfter("ops") }),
    );
    this.providerOptions = on;

    this.containers = { postgres, redis, erp, nginx, ops };
    this.postgres = {
      host: pulumi.output("127.0.0.1"),
      port: pulumi.output(args.postgres.hostPort),
      adminDsn,
    };
    this.erpRole = { name: odoo.dbUser, password: pulumi.secret(erpPassword.result) };
    this.adminPasswd = pulumi.secret(adminPasswd.result);
    this.url = args.routerTls
      ? routerUrl(args.domain, args.routerTls.port, "https")
      : routerUrl(args.domain, cfg.httpPort);
    this.registerOutputs({});
  }

  /** A tenant's declared restore as a one-shot container (opsContainers.ts), after `opts.dependsOn`. */
  restoreContainer(args: DockerRestoreArgs, opts: pulumi.CustomResourceOptions = {}): docker.Container {
    return restoreContainer(this.opsSettings, args, this.providerOptions(opts));
  }
}

/** The ERP's tenant map (no secret in it) and credentials (secret) as uploads, at the paths odoo.conf names. */
function tenantFileUploads(tenants: pulumi.Input<ErpTenant[]>): docker.types.input.ContainerUpload[] {
  const rendered = pulumi.output(tenants).apply((list) => renderDockerTenantFiles(list));
  return renderDockerTenantFiles([]).map((f, i) => {
    const content = rendered.apply((r) => r[i].content);
    return {
      file: f.file,
      content: f.secret ? pulumi.secret(content) : pulumi.unsecret(content),
      permissions: "0444",
    };
  });
}
