/**
 * What the Docker target's containers are given: names, paths inside the containers, and the
 * configuration files, each rendered from the same templates the local target runs
 * (templates/postgresql.conf.tmpl, pgbackrest.conf.tmpl, odoo.conf.tmpl, nginx/). Pure functions,
 * so that the unit tests check the files themselves, not only that they are passed along.
 */
import { createHash } from "node:crypto";
import type { OdooConfig } from "../../infra/config/odoo";
import { opsScheduledJobs, OPS_IMAGE, type OpsScheduleArgs } from "../../lib/backup/opsJobs";
import { validateScheduleFile } from "../../lib/backup/schedule-defaults";
import { NOTIFY_ENV } from "../../lib/notify/settings";
import { adminDsn } from "../../lib/pg/client";
import { renderPostgresqlConf } from "../../lib/pg/cluster";
import type { OffsiteRepo } from "../../lib/pg/offsite";
import type { PlatformConfig } from "../../infra/config/schema";
import { offsiteRepo } from "../offsite";
import { renderPgBackRestConf } from "../../lib/pg/pgbackrest";
import { ODOO_GEVENT_PORT, ODOO_HTTP_PORT, ODOO_SECRET_ENV, renderOdooConfig } from "../../lib/odoo/config";
import { ERP_IMAGE, imageAddonsPath, imageServerWideModules } from "../../lib/odoo/image";
import {
  renderTenantCredentials,
  renderTenantMap,
  tenantFilePaths,
  type ErpTenant,
} from "../../lib/odoo/tenantMap";
import type { TenantState } from "../../lib/registry/tenantState";
import { targetKind, type RestoreTarget } from "../../lib/restore/target";
import { renderRouterConfig, type RouterTenant, type RouterTls } from "../../lib/router/config";

/** Network aliases the containers reach each other by. */
export const DOCKER_HOSTS = {
  postgres: "postgres",
  redis: "redis",
  erp: "erp",
  nginx: "nginx",
  ops: "ops",
} as const;

/**
 * Named volumes (docs/architecture.md#kubernetes-and-docker, issue 5), suffixes of `<prefix>_<name>`.
 * `postgres_socket` is PostgreSQL's unix socket directory, shared with the ops container: pgBackRest
 * reaches the server only through a socket, and its backups run there (docs/operations/docker.md).
 */
export const DOCKER_VOLUMES = [
  "odoo_data",
  "postgres_data",
  "wal_archive",
  "backups",
  "postgres_socket",
] as const;
export type DockerVolumeName = (typeof DOCKER_VOLUMES)[number];

/** Paths inside the PostgreSQL container (docker/postgres/Dockerfile). */
export const POSTGRES_CONTAINER = {
  port: 5432,
  /** The postgres_data volume; PGDATA is a subdirectory (initdb wants an empty directory). */
  volumeDir: "/var/lib/postgresql/data",
  dataDir: "/var/lib/postgresql/data/pgdata",
  config: "/etc/postgresql/postgresql.conf",
  pgbackrestConfig: "/etc/pgbackrest/pgbackrest.conf",
  pgbackrestBin: "/usr/bin/pgbackrest",
  /** The backups volume: pgBackRest's repository (base backups under backup/). */
  repoDir: "/var/lib/pgbackrest",
  /** The wal_archive volume, mounted over the repository's archive/: the WAL segments. */
  walArchiveDir: "/var/lib/pgbackrest/archive",
  spoolDir: "/var/spool/pgbackrest",
  logDir: "/var/log/pgbackrest",
  lockDir: "/tmp/pgbackrest",
  socketDir: "/var/run/postgresql",
  passwordFile: "/run/secrets/postgres-password",
} as const;

/** Paths inside the ERP container besides the image's own (lib/odoo/image.ts). */
export const ERP_CONTAINER = {
  adminPasswdFile: "/run/secrets/odoo-admin-passwd",
  dbPasswordFile: "/run/secrets/odoo-db-password",
} as const;

/**
 * The ops container (docker/ops image; components/docker/DockerPlatform.ts): the scheduler daemon's
 * state directory, the secret files it exports to the jobs' environment, where it mounts the ERP's
 * data volume (filestore; snapshots beside it, so that their copies are hard links), and the
 * restore containers' scratch directory.
 */
export const OPS_CONTAINER = {
  stateDir: "/var/lib/loomworks-ops",
  /** renderDockerJobScript: `loomworks-job <jobs.js arguments>`, on PATH. */
  jobCommand: "/usr/local/bin/loomworks-job",
  passwordFile: "/run/secrets/postgres-password",
  notifyUrlFile: "/run/secrets/notify-webhook-url",
  filestoreRoot: `${ERP_IMAGE.dataDir}/filestore`,
  snapshotRoot: `${ERP_IMAGE.dataDir}/snapshots`,
  /** Writable by the restore's non-root user in any image (the container's own layer). */
  restoreScratchDir: "/tmp/loomworks-restore",
} as const;

/** The router's state directory inside the nginx container (lib/router lays out `<dir>/router/...`). */
export const NGINX_STATE_DIR = "/var/lib/loomworks";

/** TLS files inside the nginx container (under its state directory: test runs map that directory). */
export const NGINX_TLS = {
  certFile: `${NGINX_STATE_DIR}/tls/router.crt`,
  keyFile: `${NGINX_STATE_DIR}/tls/router.key`,
  /** The container's HTTPS port (published on `platform.routerTls.port`). */
  port: 443,
} as const;

export function containerName(prefix: string, role: keyof typeof DOCKER_HOSTS): string {
  return `${prefix}-${role}`;
}

export function volumeName(prefix: string, volume: DockerVolumeName): string {
  return `${prefix}_${volume}`;
}

export interface DockerPostgresConfOptions {
  archiveTimeoutSeconds: number;
  stanza: string;
  maxConnections?: number;
}

/** postgresql.conf of the PostgreSQL container: the shared template, listening on the network. */
export function renderDockerPostgresqlConf(o: DockerPostgresConfOptions): string {
  return renderPostgresqlConf({
    port: POSTGRES_CONTAINER.port,
    listenAddresses: "*",
    archiveTimeoutSeconds: o.archiveTimeoutSeconds,
    stanza: o.stanza,
    pgbackrestConfig: POSTGRES_CONTAINER.pgbackrestConfig,
    pgbackrestBin: POSTGRES_CONTAINER.pgbackrestBin,
    socketDir: POSTGRES_CONTAINER.socketDir,
    logDirectory: "log",
    ...(o.maxConnections ? { maxConnections: o.maxConnections } : {}),
  });
}

/** The Redis container's memory bound and what goes when it is reached (sessions only). */
export const REDIS_SESSIONS = { maxMemory: "256mb", maxMemoryPolicy: "volatile-lru" } as const;

/** redis-server's command line: no persistence (sessions only), bounded memory, LRU eviction. */
export function redisSessionCommand(): string[] {
  return [
    "redis-server",
    "--save",
    "",
    "--appendonly",
    "no",
    "--maxmemory",
    REDIS_SESSIONS.maxMemory,
    "--maxmemory-policy",
    REDIS_SESSIONS.maxMemoryPolicy,
  ];
}

/** Where the offsite repository's files appear in the PostgreSQL container (docker/postgres image layout). */
export const OFFSITE_CONTAINER = {
  /** A `path` repository: the host directory bind-mounted here. */
  mountDir: "/var/lib/pgbackrest-offsite",
  /** An SFTP private key given as a secret, next to pgbackrest.conf. */
  sftpKeyFile: "/etc/pgbackrest/offsite-sftp-key",
} as const;

/**
 * The docker target's offsite repository, as DockerPlatform's containers and the Compose project
 * (composeOffsite.ts) both see it: an SFTP key given as a secret next to pgbackrest.conf, a `path`
 * repository bind-mounted from the host at OFFSITE_CONTAINER.mountDir.
 */
export function dockerOffsiteRepo(
  backups: PlatformConfig["backups"],
  stackDir: string,
): OffsiteRepo | undefined {
  return offsiteRepo(backups, {
    stackDir,
    sftpKeyFile: OFFSITE_CONTAINER.sftpKeyFile,
    mountedPath: OFFSITE_CONTAINER.mountDir,
  });
}

/** pgbackrest.conf of the PostgreSQL container (holds the repository passphrase when encrypted). */
export function renderDockerPgBackRestConf(o: {
  stanza: string;
  retentionFull: number;
  encryptionPassphrase?: string;
  /** The offsite repository (repo2), with the container's paths (OFFSITE_CONTAINER). */
  offsite?: OffsiteRepo;
}): string {
  return renderPgBackRestConf({
    repoPath: POSTGRES_CONTAINER.repoDir,
    retentionFull: o.retentionFull,
    spoolPath: POSTGRES_CONTAINER.spoolDir,
    lockPath: POSTGRES_CONTAINER.lockDir,
    logPath: POSTGRES_CONTAINER.logDir,
    stanza: o.stanza,
    pgPath: POSTGRES_CONTAINER.dataDir,
    pgPort: POSTGRES_CONTAINER.port,
    pgSocketPath: POSTGRES_CONTAINER.socketDir,
    ...(o.encryptionPassphrase ? { encryptionPassphrase: o.encryptionPassphrase } : {}),
    ...(o.offsite ? { offsite: o.offsite } : {}),
  });
}

export interface DockerOdooConfOptions {
  dbUser: string;
  cpu: number;
  memoryMb: number;
  /** Development variant: threaded mode (workers = 0) for `--dev=all` and debugpy. */
  development: boolean;
  /** Default: the Redis container. */
  redisUrl?: string;
  serverWideModules?: readonly string[];
  logLevel?: "debug" | "info" | "warn" | "error" | "critical";
}

/** `platform.odoo` as odoo.conf's options, for the production or the development variant. */
export function dockerOdooConfOptions(odoo: OdooConfig, development: boolean): DockerOdooConfOptions {
  return {
    dbUser: odoo.dbUser,
    cpu: odoo.cpu,
    memoryMb: odoo.memoryMb,
    development,
    ...(odoo.redisUrl ? { redisUrl: odoo.redisUrl } : {}),
    serverWideModules: odoo.serverWideModules,
    logLevel: odoo.logLevel,
  };
}

/**
 * odoo.conf of the ERP container: no secret in it (admin_passwd and db_password are references the
 * entrypoint fills in from the secret files), so it is uploaded as a plain file.
 */
export function renderDockerOdooConf(o: DockerOdooConfOptions): string {
  return renderOdooConfig({
    adminPasswd: { fromEnv: ODOO_SECRET_ENV.adminPasswd },
    dbHost: DOCKER_HOSTS.postgres,
    dbPort: POSTGRES_CONTAINER.port,
    dbUser: o.dbUser,
    dbPassword: { fromEnv: ODOO_SECRET_ENV.dbPassword },
    dbSslmode: "disable",
    dataDir: ERP_IMAGE.dataDir,
    addonsPath: imageAddonsPath(),
    cpu: o.cpu,
    memoryMb: o.memoryMb,
    mode: o.development ? "threaded" : "prefork",
    redisUrl: o.redisUrl ?? `redis://${DOCKER_HOSTS.redis}:6379/0`,
    serverWideModules: imageServerWideModules(o.serverWideModules),
    tenantFiles: tenantFilePaths(ERP_IMAGE.tenantsDir),
    ...(o.logLevel ? { logLevel: o.logLevel } : {}),
  });
}

/**
 * The tenant map and tenant credentials of the ERP container (lib/odoo/tenantMap.ts, the renderers
 * every target uses), at the paths odoo.conf names: the map is no secret, the credentials are.
 */
export function renderDockerTenantFiles(
  tenants: readonly ErpTenant[],
): { file: string; content: string; secret: boolean }[] {
  const paths = tenantFilePaths(ERP_IMAGE.tenantsDir);
  return [
    { file: paths.credentials, content: renderTenantCredentials(tenants), secret: true },
    { file: paths.map, content: renderTenantMap(tenants), secret: false },
  ];
}

export interface DockerNginxConfOptions {
  domain: string;
  /** The host port nginx is published on (what clients use; forwarded to the ERP when not 80). */
  publicPort: number;
  tenants: readonly RouterTenant[];
  /** Development variant: the threaded ERP serves WebSockets on its HTTP port. */
  development: boolean;
  /**
   * `platform.routerTls` on Docker: HTTPS on the container's 443 (NGINX_TLS' files), published on
   * `publicPort`; HTTP then redirects tenant hosts there. Absent: plain HTTP.
   */
  tls?: { publicPort: number; hstsMaxAgeSeconds?: number; filesHash?: string };
}

export interface DockerNginxConf {
  /** nginx.conf (lib/router's, run in the foreground). */
  text: string;
  pages: { "404.html": string; "503.html": string };
  /** Absolute paths inside the nginx container. */
  paths: { config: string; htmlDir: string; dirs: string[] };
}

/** `platform.routerTls` (its `port`: the host port published to the container's 443) as the renderer's `tls` option. */
export function dockerNginxTls(tls: {
  port: number;
  hstsMaxAgeSeconds?: number;
  filesHash?: string;
}): NonNullable<DockerNginxConfOptions["tls"]> {
  return {
    publicPort: tls.port,
    ...(tls.hstsMaxAgeSeconds !== undefined ? { hstsMaxAgeSeconds: tls.hstsMaxAgeSeconds } : {}),
    ...(tls.filesHash ? { filesHash: tls.filesHash } : {}),
  };
}

function dockerRouterTls(tls: NonNullable<DockerNginxConfOptions["tls"]>): RouterTls {
  return {
    certFile: NGINX_TLS.certFile,
    keyFile: NGINX_TLS.keyFile,
    port: NGINX_TLS.port,
    publicPort: tls.publicPort,
    ...(tls.hstsMaxAgeSeconds !== undefined ? { hstsMaxAgeSeconds: tls.hstsMaxAgeSeconds } : {}),
    ...(tls.filesHash !== undefined ? { filesHash: tls.filesHash } : {}),
  };
}

/**
 * The router configuration lib/router renders for the local target, for the nginx container:
 * listening on port 80 of the container, upstreams the ERP container, the master in the foreground
 * (`daemon off`, as a container's main process must be).
 */
export function renderDockerNginxConf(o: DockerNginxConfOptions): DockerNginxConf {
  const rendered = renderRouterConfig({
    stateDir: NGINX_STATE_DIR,
    domain: o.domain,
    port: 80,
    listenAddress: "*",
    publicPort: o.publicPort,
    odooHttp: `${DOCKER_HOSTS.erp}:${ODOO_HTTP_PORT}`,
    odooWebsocket: `${DOCKER_HOSTS.erp}:${o.development ? ODOO_HTTP_PORT : ODOO_GEVENT_PORT}`,
    tenants: o.tenants,
    workerUser: "nginx",
    ...(o.tls ? { tls: dockerRouterTls(o.tls) } : {}),
  });
  if (!/^daemon on;$/m.test(rendered.text))
    throw new Error("router config: no `daemon on;` line to turn off");
  const text = rendered.text.replace(/^daemon on;$/m, "daemon off; # the container's main process");
  const dir = `${NGINX_STATE_DIR}/router`;
  return {
    text,
    pages: rendered.pages,
    paths: {
      config: `${dir}/nginx.conf`,
      htmlDir: `${dir}/html`,
      dirs: ["logs", "run", "temp", "maintenance", "html"].map((d) => `${dir}/${d}`),
    },
  };
}

// --- the ops container and restore containers ------------------------------------------------

/** schedule.json of the ops container's scheduler daemon: the Kubernetes CronJobs' jobs (lib/backup/opsJobs.ts). */
export function renderDockerOpsSchedule(o: OpsScheduleArgs): string {
  return JSON.stringify(validateScheduleFile({ version: 1, jobs: opsScheduledJobs(o) }), null, 2) + "\n";
}

export interface DockerOpsSettings {
  stanza: string;
  retentionFull: number;
  /** `platform.notify` without the URL (that is a secret file): the body's stack, timeout, attempts. */
  notify?: { stack?: string; timeoutSeconds?: number; attempts?: number };
}

/**
 * The plain environment of the ops and restore containers: jobs.js' environment mode
 * (infra/ops/jobs.ts KUBERNETES_ENV) with PostgreSQL at its network alias, a DSN without a password.
 * pgBackRest runs in the container itself (no LOOMWORKS_PGBACKREST wrapper): the data directory,
 * repository and socket volumes are mounted at the PostgreSQL container's paths.
 */
export function dockerOpsEnv(o: DockerOpsSettings): string[] {
  const env: Record<string, string | number | undefined> = {
    LOOMWORKS_ADMIN_DSN: adminDsn({
      host: DOCKER_HOSTS.postgres,
      port: POSTGRES_CONTAINER.port,
      user: "postgres",
    }),
    LOOMWORKS_STANZA: o.stanza,
    LOOMWORKS_RETENTION_FULL: o.retentionFull,
    LOOMWORKS_PGBACKREST_CONFIG: POSTGRES_CONTAINER.pgbackrestConfig,
    LOOMWORKS_FILESTORE_ROOT: OPS_CONTAINER.filestoreRoot,
    LOOMWORKS_SNAPSHOT_ROOT: OPS_CONTAINER.snapshotRoot,
    LOOMWORKS_LOG_FORMAT: "json",
    [NOTIFY_ENV.stack]: o.notify?.stack,
    [NOTIFY_ENV.timeoutSeconds]: o.notify?.timeoutSeconds,
    [NOTIFY_ENV.attempts]: o.notify?.attempts,
  };
  return Object.entries(env).flatMap(([k, v]) => (v === undefined ? [] : [`${k}=${v}`]));
}

/**
 * `loomworks-job <jobs.js arguments>` in the ops and restore containers (uploaded at
 * OPS_CONTAINER.jobCommand): the secrets go from the uploaded files into the process environment
 * only (never the container's configuration, which `docker inspect` shows), pgBackRest's own
 * directories exist for postgres, then `exec node jobs.js "$@"`. The operator runs a job the same
 * way: `docker exec <prefix>-ops loomworks-job snapshot-auto`.
 */
export function renderDockerJobScript(): string {
  const exportFile = (name: string, file: string): string =>
    `if [ -r ${file} ]; then ${name}="$(cat ${file})"; export ${name}; fi`;
  const dirs = [POSTGRES_CONTAINER.spoolDir, POSTGRES_CONTAINER.logDir, POSTGRES_CONTAINER.lockDir];
  return [
    "#!/bin/sh",
    "# Rendered by components/docker/config.ts (renderDockerJobScript); uploaded by `pulumi up`.",
    "set -eu",
    `if [ "$(id -u)" = 0 ]; then install -d -o postgres -g postgres -m 0750 ${dirs.join(" ")}; fi`,
    exportFile("PGPASSWORD", OPS_CONTAINER.passwordFile),
    exportFile(NOTIFY_ENV.webhookUrl, OPS_CONTAINER.notifyUrlFile),
    "# Only so that every log line redacts it (pgBackRest reads it from its configuration).",
    `LOOMWORKS_BACKUP_CIPHER_PASS="$(sed -n 's/^repo1-cipher-pass=//p' ${POSTGRES_CONTAINER.pgbackrestConfig} 2>/dev/null || true)"`,
    "export LOOMWORKS_BACKUP_CIPHER_PASS",
    `exec node ${OPS_IMAGE.workdir}/${OPS_IMAGE.jobsScript} "$@"`,
    "",
  ].join("\n");
}

/** The ops container's main process: the scheduler daemon (lib/backup/scheduler.ts) over renderDockerOpsSchedule's jobs. */
export function dockerOpsCommand(): string[] {
  return [OPS_CONTAINER.jobCommand, "scheduler", "--state-dir", OPS_CONTAINER.stateDir];
}

/** `<prefix>-restore-<subdomain>-<hash of the target>`: a new target is a new container (Docker names: 63 characters here). */
export function dockerRestoreContainerName(prefix: string, subdomain: string, target: RestoreTarget): string {
  const { kind, value } = targetKind(subdomain, target);
  const hash = createHash("sha256")
    .update(JSON.stringify([subdomain, kind, value]))
    .digest("hex")
    .slice(0, 10);
  const room = 63 - `${prefix}-restore--${hash}`.length;
  const sub = subdomain.slice(0, Math.max(room, 1)).replace(/-+$/, "");
  return `${prefix}-restore-${sub}-${hash}`;
}

/** argv of a declared restore's container: `jobs.js restore` as the Kubernetes restore Job runs it. */
export function dockerRestoreArgs(o: {
  tenant: { subdomain: string; database: string; roleName: string; state?: TenantState };
  target: RestoreTarget;
}): string[] {
  const { kind, value } = targetKind(o.tenant.subdomain, o.target);
  return [
    OPS_CONTAINER.jobCommand,
    "restore",
    ...["--tenant", o.tenant.subdomain, "--database", o.tenant.database, "--role", o.tenant.roleName],
    ...[`--${kind}`, value],
    ...["--pgbackrest-config", POSTGRES_CONTAINER.pgbackrestConfig],
    ...["--scratch-dir", OPS_CONTAINER.restoreScratchDir, "--filestore-root", OPS_CONTAINER.filestoreRoot],
    ...(o.tenant.state ? ["--tenant-state", o.tenant.state] : []),
  ];
}
