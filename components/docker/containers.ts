/**
 * What the Docker target's containers run, independent of who starts them: the images built from
 * the checkout, the commands, plain environment, named volumes, nginx's published ports, health
 * checks, restart policy, stop timeouts and start order of postgres, redis, erp, nginx and the ops
 * scheduler. DockerPlatform (Pulumi) and the compose renderer (compose.ts, for hosts without
 * Pulumi) both take them from here, so the two cannot drift. Pure data, no Pulumi.
 */
import { ENTRYPOINT_ENV, ERP_IMAGE, LOG_FORMAT_ENV } from "../../lib/odoo/image";
import { ERP_CONTAINER, NGINX_TLS, OPS_CONTAINER, POSTGRES_CONTAINER, type DockerVolumeName } from "./config";

export type DockerRole = "postgres" | "redis" | "erp" | "nginx" | "ops";

/** Every container's restart policy. */
export const RESTART_POLICY = "unless-stopped";

export interface DockerHealthcheck {
  test: string[];
  intervalSeconds: number;
  timeoutSeconds: number;
  startPeriodSeconds: number;
  retries: number;
}

/** The health checks each container is gated on. */
export const HEALTHCHECKS: Record<DockerRole, DockerHealthcheck> = {
  postgres: {
    test: ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", String(POSTGRES_CONTAINER.port), "-U", "postgres"],
    intervalSeconds: 10,
    timeoutSeconds: 5,
    startPeriodSeconds: 60,
    retries: 5,
  },
  redis: {
    test: ["CMD", "redis-cli", "ping"],
    intervalSeconds: 10,
    timeoutSeconds: 3,
    startPeriodSeconds: 10,
    retries: 5,
  },
  erp: {
    test: [
      "CMD",
      "curl",
      "-fsS",
      "-o",
      "/dev/null",
      `http://127.0.0.1:${ERP_IMAGE.httpPort}${ERP_IMAGE.healthPath}`,
    ],
    intervalSeconds: 30,
    timeoutSeconds: 5,
    // Module updates of every tenant database run before the server answers.
    startPeriodSeconds: 600,
    retries: 3,
  },
  nginx: {
    // Any answer from the default server (404 for an unknown host) shows nginx serving; no curl in the image.
    test: [
      "CMD",
      "bash",
      "-c",
      "exec 3<>/dev/tcp/127.0.0.1/80 && printf 'GET / HTTP/1.0\\r\\nHost: health.invalid\\r\\n\\r\\n' >&3 && grep -q '^HTTP/1.1 404' <&3",
    ],
    intervalSeconds: 10,
    timeoutSeconds: 3,
    startPeriodSeconds: 10,
    retries: 3,
  },
  ops: {
    // The scheduler daemon holds its pid file while it runs.
    test: ["CMD-SHELL", `kill -0 "$(cat ${OPS_CONTAINER.stateDir}/scheduler/scheduler.pid)"`],
    intervalSeconds: 30,
    timeoutSeconds: 5,
    startPeriodSeconds: 30,
    retries: 3,
  },
};

/** Seconds between SIGTERM and SIGKILL when a container stops. */
export const STOP_TIMEOUT_SECONDS: Record<DockerRole, number> = {
  postgres: 60,
  redis: 10,
  erp: 60,
  nginx: 30,
  // A running backup is interrupted (pgBackRest resumes it next time); the scheduler passes SIGTERM on.
  ops: 60,
};

/** Start order: each container waits until these are healthy. */
export const START_AFTER: Record<DockerRole, readonly DockerRole[]> = {
  postgres: [],
  redis: ["postgres"],
  erp: ["postgres", "redis"],
  nginx: ["erp"],
  ops: ["postgres"],
};

/**
 * The images built from the checkout (unless the stack names prebuilt ones): their tags, build
 * contexts and Dockerfiles, relative to the checkout. The ERP image is tagged `odoo.image`, built
 * with the stack's addons as the named context `addons`, to the `production` or `development` target.
 */
export const CHECKOUT_BUILDS = {
  postgres: {
    tag: (prefix: string) => `${prefix}/postgres:15-pgbackrest`,
    context: "docker/postgres",
    dockerfile: "Dockerfile",
  },
  ops: { tag: (prefix: string) => `${prefix}/ops:local`, context: ".", dockerfile: "docker/ops/Dockerfile" },
  erp: { context: ".", dockerfile: "docker/Dockerfile", addonsContext: "addons" },
} as const;

/** PostgreSQL's shared memory (MiB): parallel queries need more than Docker's 64 MiB default. */
export const POSTGRES_SHM_SIZE_MB = 256;

export function postgresCommand(): string[] {
  return ["postgres", "-c", `config_file=${POSTGRES_CONTAINER.config}`];
}

/** The PostgreSQL container's environment (the superuser's password comes from `passwordFile`). */
export function postgresEnvironment(o: { stanza: string; passwordFile: string }): Record<string, string> {
  return {
    POSTGRES_PASSWORD_FILE: o.passwordFile,
    PGDATA: POSTGRES_CONTAINER.dataDir,
    LOOMWORKS_STANZA: o.stanza,
  };
}

export function erpCommand(development: boolean): string[] {
  return development ? ["odoo", "--dev=all"] : ["odoo"];
}

/** The ERP container's plain environment: the secrets by file name only, never their values. */
export function erpEnvironment(o: {
  databases: readonly string[];
  updateModules: readonly string[];
  debugpy: boolean;
}): Record<string, string> {
  return {
    [`${ENTRYPOINT_ENV.adminPasswd}_FILE`]: ERP_CONTAINER.adminPasswdFile,
    [`${ENTRYPOINT_ENV.dbPassword}_FILE`]: ERP_CONTAINER.dbPasswordFile,
    [ENTRYPOINT_ENV.databases]: [...o.databases].sort().join(","),
    [ENTRYPOINT_ENV.updateModules]: o.updateModules.join(","),
    [LOG_FORMAT_ENV.name]: LOG_FORMAT_ENV.value,
    ...(o.debugpy
      ? {
          [ENTRYPOINT_ENV.debugpy]: "1",
          [ENTRYPOINT_ENV.debugpyPort]: String(ERP_IMAGE.debugpyPort),
        }
      : {}),
  };
}

/** nginx in the foreground, after creating the router's working directories. */
export function nginxCommand(paths: { config: string; dirs: readonly string[] }): string[] {
  return ["/bin/sh", "-c", `mkdir -p ${paths.dirs.join(" ")} && exec nginx -c ${paths.config}`];
}

/** nginx's published ports: the container's 80 on `httpPort`, and with `platform.routerTls` its 443 on `tlsPort`. */
export function nginxPorts(o: {
  httpPort: number;
  tlsPort?: number;
}): { internal: number; external: number }[] {
  return [
    { internal: 80, external: o.httpPort },
    ...(o.tlsPort !== undefined ? [{ internal: NGINX_TLS.port, external: o.tlsPort }] : []),
  ];
}

/** Named volumes and where each container mounts them. */
export const VOLUME_MOUNTS: Record<
  DockerRole,
  ReadonlyArray<{ volume: DockerVolumeName; path: string; readOnly?: boolean }>
> = {
  postgres: [
    { volume: "postgres_data", path: POSTGRES_CONTAINER.volumeDir },
    { volume: "backups", path: POSTGRES_CONTAINER.repoDir },
    { volume: "wal_archive", path: POSTGRES_CONTAINER.walArchiveDir },
    { volume: "postgres_socket", path: POSTGRES_CONTAINER.socketDir },
  ],
  redis: [],
  erp: [{ volume: "odoo_data", path: ERP_IMAGE.dataDir }],
  nginx: [],
  // pgBackRest runs in the ops container against the same data directory (read-only) and repository.
  ops: [
    { volume: "postgres_data", path: POSTGRES_CONTAINER.volumeDir, readOnly: true },
    { volume: "backups", path: POSTGRES_CONTAINER.repoDir },
    { volume: "wal_archive", path: POSTGRES_CONTAINER.walArchiveDir },
    { volume: "postgres_socket", path: POSTGRES_CONTAINER.socketDir },
    { volume: "odoo_data", path: ERP_IMAGE.dataDir },
  ],
};
