/**
 * `loomworks:platform.odoo`: the ERP server every target runs — its image, how it is built, and the
 * resources odoo.conf's workers and memory limits are sized from (lib/odoo/config.ts). Conventions
 * as in schema.ts: every message states the rule, unknown keys are refused, nulls count as absent,
 * numbers may be strings.
 */
import { z } from "zod";
import { MIN_WORKER_MEMORY_MB } from "../../lib/odoo/config";
import { integer, rule, strictMap, text } from "./helpers";

export const ODOO_LOG_LEVELS = ["debug", "info", "warn", "error", "critical"] as const;

export const DEFAULT_ODOO_IMAGE = "loomworks/erp:18.0";
export const DEFAULT_ODOO_CPU = 2;
export const DEFAULT_ODOO_MEMORY_MB = 4096;
export const DEFAULT_ERP_DB_USER = "loomworks_erp";
export const MAX_ODOO_CPU = 256;
export const MIN_ODOO_MEMORY_MB = 2 * MIN_WORKER_MEMORY_MB;
export const MAX_ODOO_MEMORY_MB = 4 * 1024 * 1024;

/** `[registry[:port]/]path[:tag][@sha256:digest]`, lowercase path components (Docker's reference grammar, simplified). */
const IMAGE_REFERENCE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$/;
const MODULE_NAME = /^[a-z][a-z0-9_]*$/;
const ROLE_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export const ODOO_RULES = {
  image:
    "must be a container image reference like registry.example.com/loomworks/erp:18.0 (a tag or a digest)",
  cpu: `must be a number of CPUs greater than 0 (at most ${MAX_ODOO_CPU}; decimals allowed, e.g. 0.5)`,
  memoryMb: `must be an integer number of MiB from ${MIN_ODOO_MEMORY_MB} to ${MAX_ODOO_MEMORY_MB}`,
  redisUrl: 'must be a Redis URL: "redis://host:port/db" or "rediss://..." (TLS)',
  dbUser: "must be a PostgreSQL role name: a-z or _ first, then a-z, 0-9 or _, at most 63 characters",
  modules: "must be a list of Odoo module names (a-z first, then a-z, 0-9 or _)",
  logLevel: `must be one of ${ODOO_LOG_LEVELS.join(", ")}`,
} as const;

export function isImageReference(s: string): boolean {
  return s.length <= 255 && IMAGE_REFERENCE.test(s);
}

function isRedisUrl(s: string): boolean {
  try {
    const url = new URL(s);
    return (url.protocol === "redis:" || url.protocol === "rediss:") && url.hostname !== "" && !/\s/.test(s);
  } catch {
    return false;
  }
}

export const imageReferenceSchema = z
  .string(rule(ODOO_RULES.image))
  .refine(isImageReference, ODOO_RULES.image);

const cpuSchema = z.preprocess(
  (v) => (typeof v === "string" && /^[0-9]{1,4}(?:\.[0-9]{1,3})?$/.test(v) ? Number(v) : v),
  z.number(rule(ODOO_RULES.cpu)).gt(0).max(MAX_ODOO_CPU),
);

const moduleListSchema = z.array(
  z.string(rule(ODOO_RULES.modules)).regex(MODULE_NAME),
  rule(ODOO_RULES.modules),
);

/** Keys of `loomworks:platform.odoo`. */
export const ODOO_KEYS = [
  "image",
  "addonsBuildContext",
  "cpu",
  "memoryMb",
  "redisUrl",
  "dbUser",
  "updateModules",
  "serverWideModules",
  "logLevel",
] as const;

export const odooConfigSchema = strictMap(
  {
    /** The ERP image (docker/Dockerfile) the docker and kubernetes targets run. */
    image: imageReferenceSchema.default(DEFAULT_ODOO_IMAGE),
    /** Path of the Loomworks addons checkout: the image build's `--build-context addons=<path>`. */
    addonsBuildContext: text().optional(),
    /** CPUs of one ERP server (container limit): workers = 2 × CPU + 1. */
    cpu: cpuSchema.default(DEFAULT_ODOO_CPU),
    /** Memory of one ERP server (container limit), MiB: the workers' hard limits share 80 % of it. */
    memoryMb: integer(MIN_ODOO_MEMORY_MB, MAX_ODOO_MEMORY_MB, ODOO_RULES.memoryMb).default(
      DEFAULT_ODOO_MEMORY_MB,
    ),
    /** Session store; the docker and kubernetes targets default to their own Redis. */
    redisUrl: z.string(rule(ODOO_RULES.redisUrl)).refine(isRedisUrl, ODOO_RULES.redisUrl).optional(),
    /** The ERP's own database role (not a superuser, a member of no tenant role: it connects to `postgres` only). */
    dbUser: z.string(rule(ODOO_RULES.dbUser)).regex(ROLE_NAME).default(DEFAULT_ERP_DB_USER),
    /** Modules updated (`-u`) in every tenant database at each start, besides `-u all` on a new image. */
    updateModules: moduleListSchema.default([]),
    /** odoo.conf `server_wide_modules`; the Redis session addon belongs here. */
    serverWideModules: moduleListSchema.default(["base", "web"]),
    logLevel: z.enum(ODOO_LOG_LEVELS, rule(ODOO_RULES.logLevel)).default("info"),
  } satisfies Record<(typeof ODOO_KEYS)[number], z.ZodTypeAny>,
  "must be a map of ERP server settings",
);

export type OdooConfig = z.output<typeof odooConfigSchema>;
export type OdooConfigInput = z.input<typeof odooConfigSchema>;
