/**
 * The PostgreSQL pod's files on the Kubernetes target. postgresql.conf, pg_hba.conf, pg_ident.conf
 * and pgbackrest.conf are rendered by the functions and from the templates the local and Docker
 * targets run (lib/pg/cluster.ts, lib/pg/pgbackrest.ts, templates/*.tmpl), for the layout of the
 * image built from docker/postgres (components/docker/config.ts POSTGRES_CONTAINER). Pure
 * functions, so that the unit tests compare the files themselves.
 */
import * as path from "node:path";
import { memoryMiB } from "../../infra/config/kubernetes";
import { renderPostgresqlConf } from "../../lib/pg/cluster";
import { renderTemplateFile } from "../../lib/templates/render";
import { OFFSITE_CONTAINER, POSTGRES_CONTAINER, renderDockerPgBackRestConf } from "../docker/config";
import type { OffsiteRepo } from "../../lib/pg/offsite";
import { POSTGRES_ROLES } from "./common";

/** pgBackRest stanza of the Kubernetes cluster. */
export const POSTGRES_STANZA = "loomworks";

/** The ConfigMap, mounted as the directory of postgresql.conf (a new ConfigMap name rolls the pod). */
export const PG_CONFIG_DIR = path.posix.dirname(POSTGRES_CONTAINER.config);
export const PG_CONFIG_FILES = {
  postgresql: path.posix.basename(POSTGRES_CONTAINER.config),
  hba: "pg_hba.conf",
  ident: "pg_ident.conf",
} as const;

/** pgbackrest.conf holds the repository's cipher passphrase: it is a key of the Secret, not of the ConfigMap. */
export const PGBACKREST_CONFIG_DIR = path.posix.dirname(POSTGRES_CONTAINER.pgbackrestConfig);
export const PGBACKREST_CONFIG_KEY = path.posix.basename(POSTGRES_CONTAINER.pgbackrestConfig);

/** The Secret's password files (keys POSTGRES_SECRET_KEYS), read by the image's loomworks-sync-roles. */
export const PG_SECRETS_DIR = "/var/run/secrets/loomworks-postgres";

/** The sidecar that keeps the roles' passwords equal to the Secret (docker/postgres/scripts/loomworks-sync-roles). */
export const POSTGRES_ROLES_CONTAINER = "postgres-roles";

export const DEFAULT_EXPORTER_IMAGE = "quay.io/prometheuscommunity/postgres-exporter:v0.15.0";

/** postgres' arguments (the image's entrypoint stays: it runs initdb and the initdb hooks on an empty volume). */
export function postgresArgs(): string[] {
  return [
    "postgres",
    "-c",
    `config_file=${POSTGRES_CONTAINER.config}`,
    "-c",
    `hba_file=${PG_CONFIG_DIR}/${PG_CONFIG_FILES.hba}`,
    "-c",
    `ident_file=${PG_CONFIG_DIR}/${PG_CONFIG_FILES.ident}`,
  ];
}

export interface PostgresMemorySettings {
  sharedBuffers: string;
  effectiveCacheSize: string;
  maintenanceWorkMem: string;
}

/**
 * Memory settings from the container's memory limit: shared_buffers a quarter of it, the planner's
 * effective_cache_size three quarters (the page cache of the pod counts against the limit too).
 */
export function postgresMemorySettings(memoryLimit: string): PostgresMemorySettings {
  const mib = memoryMiB(memoryLimit);
  if (!Number.isFinite(mib) || mib < 256) {
    throw new Error(`PostgreSQL memory limit must be at least 256Mi (got ${memoryLimit})`);
  }
  return {
    sharedBuffers: `${Math.floor(mib / 4)}MB`,
    effectiveCacheSize: `${Math.floor((mib * 3) / 4)}MB`,
    maintenanceWorkMem: `${Math.min(1024, Math.max(64, Math.floor(mib / 16)))}MB`,
  };
}

export interface KubernetesPostgresqlConfOptions {
  archiveTimeoutSeconds: number;
  memoryLimit: string;
  maxConnections?: number;
}

/** postgresql.conf of the pod: the shared template, listening on the pod's addresses. */
export function renderKubernetesPostgresqlConf(o: KubernetesPostgresqlConfOptions): string {
  return renderPostgresqlConf({
    port: POSTGRES_CONTAINER.port,
    listenAddresses: "*",
    archiveTimeoutSeconds: o.archiveTimeoutSeconds,
    stanza: POSTGRES_STANZA,
    pgbackrestConfig: POSTGRES_CONTAINER.pgbackrestConfig,
    pgbackrestBin: POSTGRES_CONTAINER.pgbackrestBin,
    socketDir: POSTGRES_CONTAINER.socketDir,
    logDirectory: "log",
    ...(o.maxConnections ? { maxConnections: o.maxConnections } : {}),
    ...postgresMemorySettings(o.memoryLimit),
  });
}

/**
 * pg_hba.conf of the pod: the shared template plus password (SCRAM) logins from the pod network,
 * including streaming replication for the replication role. Which pods may connect at all is the
 * NetworkPolicy's decision.
 */
export function renderKubernetesPgHba(): string {
  const rules = [
    "# Kubernetes: the monitoring role from inside the pod only (its exporter sidecar).",
    `host    all          ${POSTGRES_ROLES.monitor}  127.0.0.1/32  scram-sha-256`,
    `host    all          ${POSTGRES_ROLES.monitor}  ::1/128       scram-sha-256`,
    `host    all          ${POSTGRES_ROLES.monitor}  0.0.0.0/0     reject`,
    `host    all          ${POSTGRES_ROLES.monitor}  ::/0          reject`,
    "# Kubernetes: other pods (PostgresServer's NetworkPolicy admits only the platform's).",
    "host    all          all       0.0.0.0/0      scram-sha-256",
    "host    all          all       ::/0           scram-sha-256",
    `host    replication  ${POSTGRES_ROLES.replication}  0.0.0.0/0  scram-sha-256`,
    `host    replication  ${POSTGRES_ROLES.replication}  ::/0       scram-sha-256`,
  ];
  return renderTemplateFile("pg_hba.conf.tmpl", { extraHostRules: rules.join("\n") });
}

/** pg_ident.conf: the shared template (the container runs as `postgres`: peer logins as the superuser). */
export function renderKubernetesPgIdent(): string {
  return renderTemplateFile("pg_ident.conf.tmpl", {});
}

/** The Secret key (and file next to pgbackrest.conf) of an SFTP private key given as a secret. */
export const OFFSITE_SFTP_KEY = path.posix.basename(OFFSITE_CONTAINER.sftpKeyFile);

/**
 * Why the kubernetes target refuses an offsite repository (undefined when it takes it): a
 * mounted directory needs a volume this target does not declare.
 */
export function kubernetesOffsiteRefusal(offsite: OffsiteRepo | undefined): string | undefined {
  if (offsite?.type !== "path") return undefined;
  return (
    "backups.offsite.type path is a mounted directory of the local and docker targets; " +
    "on kubernetes use type s3 or sftp (the PostgreSQL image's pgBackRest has native SFTP)"
  );
}

/**
 * pgbackrest.conf: the same image layout as the Docker target, so the same file; always encrypted
 * here, the offsite repository too (with the first repository's passphrase unless it has its own).
 */
export function renderKubernetesPgBackRestConf(o: {
  retentionFull: number;
  encryptionPassphrase: string;
  offsite?: OffsiteRepo;
}): string {
  const refusal = kubernetesOffsiteRefusal(o.offsite);
  if (refusal) throw new Error(refusal);
  return renderDockerPgBackRestConf({
    stanza: POSTGRES_STANZA,
    retentionFull: o.retentionFull,
    encryptionPassphrase: o.encryptionPassphrase,
    ...(o.offsite
      ? {
          offsite: {
            ...o.offsite,
            encryptionPassphrase: o.offsite.encryptionPassphrase ?? o.encryptionPassphrase,
          },
        }
      : {}),
  });
}
