/**
 * The ERP image's layout (docker/Dockerfile), for the targets that run it (Docker, Kubernetes): where
 * its configuration, data and addons are, which user it runs as and how its entrypoint is driven.
 * test/unit/docker-lint.test.ts checks these against the Dockerfile.
 */
import { ODOO_GEVENT_PORT, ODOO_HTTP_PORT, ODOO_SECRET_ENV } from "./config";

export const ERP_IMAGE = {
  /** Where the platform mounts its rendered odoo.conf (read-only); the entrypoint reads it. */
  confPath: "/etc/odoo/odoo.conf",
  /** `data_dir`: filestore and sessions; a volume. */
  dataDir: "/var/lib/odoo",
  /** The Loomworks addons baked into the image (the `addons` build context; development mounts its checkout here). */
  addonsDir: "/opt/loomworks/addons",
  /** The platform's own server-wide addons (docker/addons: JSON logs, tenant map and credentials). */
  platformAddonsDir: "/opt/loomworks/platform-addons",
  /**
   * The tenant map and tenant credentials (lib/odoo/tenantMap.ts) the loomworks_tenants addon reads:
   * a Secret mounted as a directory on Kubernetes (kubelet swaps its files in place), uploaded files
   * on Docker. Beside, not under, the Kubernetes ConfigMap's /etc/loomworks: a mount point inside a
   * read-only ConfigMap volume cannot be created.
   */
  tenantsDir: "/etc/loomworks-tenants",
  /** Odoo's own addons, from its Debian package. */
  odooAddonsDir: "/usr/lib/python3/dist-packages/odoo/addons",
  /** The image version the build writes (Odoo release + a hash of the addons). */
  versionFile: "/opt/loomworks/image-version",
  uid: 101,
  gid: 101,
  httpPort: ODOO_HTTP_PORT,
  geventPort: ODOO_GEVENT_PORT,
  debugpyPort: 5678,
  healthPath: "/web/health",
  /** The image's ENTRYPOINT: tini, then docker/entrypoint.sh. */
  entrypoint: ["/usr/bin/tini", "--", "/usr/local/bin/loomworks-entrypoint"],
} as const;

/** `addons_path` inside the image: the Loomworks addons first, the platform's own, then Odoo's. */
export function imageAddonsPath(extraDirs: readonly string[] = []): string {
  return [...extraDirs, ERP_IMAGE.addonsDir, ERP_IMAGE.platformAddonsDir, ERP_IMAGE.odooAddonsDir].join(",");
}

/** Environment variables the entrypoint (docker/entrypoint.sh) reads. */
export const ENTRYPOINT_ENV = {
  ...ODOO_SECRET_ENV,
  conf: "LOOMWORKS_ODOO_CONF",
  databases: "LOOMWORKS_DATABASES",
  databasesFile: "LOOMWORKS_DATABASES_FILE",
  updateModules: "LOOMWORKS_UPDATE_MODULES",
  skipUpdates: "LOOMWORKS_SKIP_UPDATES",
  updateStrict: "LOOMWORKS_UPDATE_STRICT",
  dbWaitSeconds: "LOOMWORKS_DB_WAIT_SECONDS",
  imageVersion: "LOOMWORKS_IMAGE_VERSION",
  debugpy: "LOOMWORKS_DEBUGPY",
  debugpyPort: "LOOMWORKS_DEBUGPY_PORT",
} as const;

/** Exit codes of the entrypoint (besides the server's own). */
export const ENTRYPOINT_EXIT = { unreachable: 69, updateFailed: 70, config: 78 } as const;

/** The platform's own server-wide addon baked into the image (docker/addons): one JSON object per log line. */
export const JSON_LOGGING_MODULE = "loomworks_json_logging";
/** The environment variable that switches the addon on (`json`); the image's targets always set it. */
export const LOG_FORMAT_ENV = { name: "LOOMWORKS_LOG_FORMAT", value: "json" } as const;

/** `server_wide_modules` on an image-based target: the configured ones (default base, web) and the JSON logs addon. */
export function imageServerWideModules(configured?: readonly string[]): string[] {
  return [...new Set([...(configured ?? ["base", "web"]), JSON_LOGGING_MODULE])];
}
