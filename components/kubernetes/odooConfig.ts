/**
 * `odoo.conf` on the Kubernetes target, without secrets in it.
 *
 * The file is rendered by lib/odoo/config.ts (the template every target uses) with the secrets
 * written as references — `admin_passwd = ${LOOMWORKS_ADMIN_PASSWD}`, `db_password =
 * ${LOOMWORKS_DB_PASSWORD}`, `session_redis_url = ${LOOMWORKS_REDIS_URL}` (the URL carries the
 * Redis password). That text is the ConfigMap: every non-secret option is reviewable in `pulumi
 * preview` and readable by whoever may read ConfigMaps. The image's entrypoint (docker/entrypoint.sh)
 * fills the references in from files (`$LOOMWORKS_<NAME>_FILE`) of the mounted Secret into a
 * private copy (mode 0600) on an in-memory volume, and starts Odoo with it. Files rather than
 * environment variables: they do not leak into every child process's environment (report
 * rendering, subprocesses) or into `/proc/<pid>/environ`.
 */
import type * as k8s from "@pulumi/kubernetes";
import {
  ODOO_SECRET_ENV,
  renderOdooConfig,
  secretReferences,
  type OdooConfigOptions,
} from "../../lib/odoo/config";
import { LOG_FORMAT_ENV, imageServerWideModules } from "../../lib/odoo/image";

/** The ConfigMap's file, mounted read-only (a directory mount, so a new ConfigMap name rolls the pods). */
export const CONFIG_DIR = "/etc/loomworks";
export const CONFIG_FILE = "odoo.conf";
/** In-memory volume; the entrypoint's runtime directory (its own subdirectory: it chmods it 0700). */
export const RUN_VOLUME_DIR = "/run/loomworks";
export const RUNTIME_DIR = `${RUN_VOLUME_DIR}/odoo`;
/** The Secret, mounted as files. */
export const SECRETS_DIR = "/var/run/secrets/loomworks";

/** Secret reference (entrypoint variable) → key of the ERP Secret holding its value. */
export const SECRET_FILES = {
  [ODOO_SECRET_ENV.adminPasswd]: "admin-passwd",
  [ODOO_SECRET_ENV.dbPassword]: "db-password",
  [ODOO_SECRET_ENV.redisUrl]: "redis-url",
} as const;

/** The ERP Secret's key for Redis' own `requirepass` (read by the Redis container only). */
export const REDIS_PASSWORD_KEY = "redis-password";

export type KubernetesOdooConfigOptions = Omit<OdooConfigOptions, "adminPasswd" | "dbPassword" | "redisUrl">;

/** The ConfigMap's odoo.conf: every option set, the secrets as `${LOOMWORKS_...}` references. */
export function renderKubernetesOdooConfig(o: KubernetesOdooConfigOptions): string {
  const text = renderOdooConfig({
    ...o,
    serverWideModules: imageServerWideModules(o.serverWideModules),
    adminPasswd: { fromEnv: ODOO_SECRET_ENV.adminPasswd },
    dbPassword: { fromEnv: ODOO_SECRET_ENV.dbPassword },
    redisUrl: { fromEnv: ODOO_SECRET_ENV.redisUrl },
  });
  // Every reference in the file must be one the pod provides a file for, and the other way round.
  const wanted = Object.keys(SECRET_FILES).sort();
  const found = [...new Set(Object.values(secretReferences(text)))].sort();
  if (JSON.stringify(found) !== JSON.stringify(wanted)) {
    throw new Error(
      `odoo.conf secret references ${found.join(", ")} differ from the Secret's ${wanted.join(", ")}`,
    );
  }
  return text;
}

/** How long an ERP pod waits for PostgreSQL to accept its role's password before it fails. */
export const DB_WAIT_SECONDS = 300;

/** The entrypoint's environment: where the config, its runtime copy and each secret's file are. */
export function entrypointEnv(): k8s.types.input.core.v1.EnvVar[] {
  return [
    { name: "LOOMWORKS_ODOO_CONF", value: `${CONFIG_DIR}/${CONFIG_FILE}` },
    { name: "LOOMWORKS_RUNTIME_DIR", value: RUNTIME_DIR },
    { ...LOG_FORMAT_ENV },
    // After a credential rotation the server applies the new password from its own Secret a minute
    // or two after the pods rolled (kubelet refresh + the role-sync sidecar): wait that long for it.
    { name: "LOOMWORKS_DB_WAIT_SECONDS", value: String(DB_WAIT_SECONDS) },
    ...Object.entries(SECRET_FILES).map(([env, key]) => ({
      name: `${env}_FILE`,
      value: `${SECRETS_DIR}/${key}`,
    })),
  ];
}
