/**
 * `loomworks:platform.docker`: the Docker target (components/docker) — one Docker host running the
 * ERP image, PostgreSQL 15 with pgBackRest, Redis and nginx on one network with named volumes, and a
 * development variant (live addons, debugpy, `--dev=all`). Conventions as in schema.ts: every message
 * states the rule, unknown keys are refused, nulls count as absent, numbers and booleans may be strings.
 */
import { z } from "zod";
import { booleanSchema, integer, rule, strictMap, type IssueParams } from "./helpers";
import { imageReferenceSchema } from "./odoo";

export const DEFAULT_DOCKER_NAME_PREFIX = "loomworks";
export const DEFAULT_DOCKER_NETWORK = "loomworks";
export const DEFAULT_POSTGRES_IMAGE_BASE = "postgres:15-bookworm";
export const DEFAULT_REDIS_IMAGE = "redis:7.2-bookworm";
export const DEFAULT_NGINX_IMAGE = "nginx:1.26-bookworm";
export const DEFAULT_DEBUGPY_PORT = 5678;

const DOCKER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

export const DOCKER_RULES = {
  host: 'must be a Docker daemon address: "unix:///path", "tcp://host:port" or "ssh://user@host"',
  name: "must be a Docker object name: a letter or digit first, then letters, digits, _, . or -, at most 63 characters",
  port: "must be an integer from 1 to 65535",
  bindAddress: "must be an IPv4 address to publish ports on, e.g. 0.0.0.0 or 127.0.0.1",
  absolutePath: "must be an absolute path on the Docker host",
  addonsPathRequired:
    "is required when development.enabled is true; must be the host path of the Loomworks addons checkout",
} as const;

function isDockerHost(s: string): boolean {
  return /^unix:\/\/\/\S+$/.test(s) || /^tcp:\/\/[^\s/:]+:[0-9]{1,5}$/.test(s) || /^ssh:\/\/[^\s/]+$/.test(s);
}

function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(?:0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

const portSchema = integer(1, 65535, DOCKER_RULES.port);
const nameSchema = z.string(rule(DOCKER_RULES.name)).regex(DOCKER_NAME);
const absolutePathSchema = z
  .string(rule(DOCKER_RULES.absolutePath))
  .refine((s) => s.startsWith("/") && s.trim() === s && !/[\0\n]/.test(s), DOCKER_RULES.absolutePath);

export const DEVELOPMENT_KEYS = ["enabled", "addonsPath", "debugpy", "debugpyPort", "image"] as const;

export const dockerDevelopmentSchema = strictMap(
  {
    enabled: booleanSchema.default(false),
    /** Host path of the Loomworks addons checkout, mounted live over the image's addons. */
    addonsPath: absolutePathSchema.optional(),
    /** Run the server under debugpy, listening on debugpyPort (published on 127.0.0.1 only). */
    debugpy: booleanSchema.default(true),
    debugpyPort: portSchema.default(DEFAULT_DEBUGPY_PORT),
    /** The image's `development` target (with debugpy); default: the ERP image. */
    image: imageReferenceSchema.optional(),
  } satisfies Record<(typeof DEVELOPMENT_KEYS)[number], z.ZodTypeAny>,
  "must be a map of development settings (enabled, addonsPath, debugpy, debugpyPort, image)",
  (v, ctx) => {
    const enabled = v.enabled === true || v.enabled === "true";
    if (enabled && v.addonsPath === undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["addonsPath"],
        message: DOCKER_RULES.addonsPathRequired,
        params: { noGot: true } satisfies IssueParams,
      });
    }
  },
);

/** Keys of `loomworks:platform.docker`. */
export const DOCKER_KEYS = [
  "host",
  "namePrefix",
  "networkName",
  "bindAddress",
  "httpPort",
  "postgresImage",
  "opsImage",
  "redisImage",
  "nginxImage",
  "builder",
  "development",
] as const;

export const dockerConfigSchema = strictMap(
  {
    /** Docker daemon; default: the local one (DOCKER_HOST or /var/run/docker.sock). */
    host: z.string(rule(DOCKER_RULES.host)).refine(isDockerHost, DOCKER_RULES.host).optional(),
    /** Prefix of container and volume names (`<prefix>-erp`, `<prefix>_odoo_data`, ...). */
    namePrefix: nameSchema.default(DEFAULT_DOCKER_NAME_PREFIX),
    networkName: nameSchema.default(DEFAULT_DOCKER_NETWORK),
    /** Host address nginx's port is published on. */
    bindAddress: z
      .string(rule(DOCKER_RULES.bindAddress))
      .refine(isIPv4, DOCKER_RULES.bindAddress)
      .default("0.0.0.0"),
    /** Host port of nginx (the tenants' URLs). */
    httpPort: portSchema.default(80),
    /** A prebuilt PostgreSQL 15 + pgBackRest image; default: built from docker/postgres. */
    postgresImage: imageReferenceSchema.optional(),
    /** A prebuilt ops image (docker/ops: scheduled jobs, restores); default: built from docker/ops. */
    opsImage: imageReferenceSchema.optional(),
    redisImage: imageReferenceSchema.default(DEFAULT_REDIS_IMAGE),
    nginxImage: imageReferenceSchema.default(DEFAULT_NGINX_IMAGE),
    /** buildx builder that builds the images on the host (the ERP image's `addons` context needs buildx). */
    builder: nameSchema.default("default"),
    development: dockerDevelopmentSchema.default({}),
  } satisfies Record<(typeof DOCKER_KEYS)[number], z.ZodTypeAny>,
  "must be a map of Docker target settings",
  (v, ctx) => {
    const dev = v.development;
    if (typeof dev === "object" && dev !== null) {
      const d = dev as Record<string, unknown>;
      const http = Number(v.httpPort ?? 80);
      if (
        (d.enabled === true || d.enabled === "true") &&
        Number(d.debugpyPort ?? DEFAULT_DEBUGPY_PORT) === http
      ) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["development", "debugpyPort"],
          message: `must differ from httpPort (both are ${http})`,
          params: { noGot: true } satisfies IssueParams,
        });
      }
    }
  },
);

export type DockerConfig = z.output<typeof dockerConfigSchema>;
export type DockerDevelopmentConfig = z.output<typeof dockerDevelopmentSchema>;

/**
 * Why declared snapshots are refused on the docker target, and what to do instead (the config's
 * preview error, like kubernetesSnapshotRefusal).
 */
export function dockerSnapshotRefusal(namePrefix: string): { snapshots: string; restoreSnapshot: string } {
  const runtime =
    "runtime snapshots are taken by " +
    `\`docker exec ${namePrefix}-ops loomworks-job snapshot-auto\` (every tenant, now) ` +
    "or by `SELECT loomworks_snapshot.request('pre_ai', '<note>')` in the tenant's database (recorded at that " +
    "job's next run), and their lsn is in the registry's snapshots table (docs/operations/docker.md#snapshots)";
  return {
    snapshots:
      "cannot be declared on the docker target: a declared snapshot copies the tenant's filestore on the " +
      "machine running `pulumi up`, and here the filestore is the ERP's odoo_data volume on the Docker host. " +
      `Remove them; ${runtime}; restore to one with restore: { lsn: ... }`,
    restoreSnapshot:
      "cannot name a snapshot on the docker target (it takes no declared snapshots): restore to a runtime " +
      `snapshot's lsn with restore: { lsn: ... }, or to a time with restore: { time: ... }; ${runtime}`,
  };
}
