/**
 * What the Docker target's containers are given: names, paths inside the containers, and the
 * configuration files, each rendered from the same templates the local target runs
 * (templates/postgresql.conf.tmpl, pgbackrest.conf.tmpl, odoo.conf.tmpl, nginx/). Pure functions,
 * so that the unit tests check the files themselves, not only that they are passed along.
 */
import { renderPostgresqlConf } from "../../lib/pg/cluster";
import { renderPgBackRestConf } from "../../lib/pg/pgbackrest";
import { ODOO_GEVENT_PORT, ODOO_HTTP_PORT, ODOO_SECRET_ENV, renderOdooConfig } from "../../lib/odoo/config";
import { ERP_IMAGE, imageAddonsPath, imageServerWideModules } from "../../lib/odoo/image";
import {
  renderTenantCredentials,
  renderTenantMap,
  tenantFilePaths,
  type ErpTenant,
} from "../../lib/odoo/tenantMap";
import { renderRouterConfig, type RouterTenant } from "../../lib/router/config";

/** Network aliases the containers reach each other by. */
export const DOCKER_HOSTS = { postgres: "postgres", redis: "redis", erp: "erp", nginx: "nginx" } as const;

/** Named volumes (docs/architecture.md#kubernetes-and-docker, issue 5), suffixes of `<prefix>_<name>`. */
export const DOCKER_VOLUMES = ["odoo_data", "postgres_data", "wal_archive", "backups"] as const;
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

/** The router's state directory inside the nginx container (lib/router lays out `<dir>/router/...`). */
export const NGINX_STATE_DIR = "/var/lib/loomworks";

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

/** pgbackrest.conf of the PostgreSQL container (holds the repository passphrase when encrypted). */
export function renderDockerPgBackRestConf(o: {
  stanza: string;
  retentionFull: number;
  encryptionPassphrase?: string;
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
}

export interface DockerNginxConf {
  /** nginx.conf (lib/router's, run in the foreground). */
  text: string;
  pages: { "404.html": string; "503.html": string };
  /** Absolute paths inside the nginx container. */
  paths: { config: string; htmlDir: string; dirs: string[] };
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
