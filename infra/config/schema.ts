/**
 * Zod schemas and TypeScript types of the stack configuration (namespace `loomworks`, see
 * docs/configuration.md#stack-configuration). The schemas carry the rules; `load.ts` turns their
 * issues into messages naming the tenant (or section), the key and the rule.
 *
 * Conventions shared by every schema here:
 * - Every issue message states the rule ("must be ..."); a missing required key reads
 *   "is required; <rule>". The offending value is appended by the formatter in `load.ts`.
 * - Unknown keys are errors, reported one issue per key (with a "did you mean" hint), so that
 *   typos such as `teir` never pass silently.
 * - A key whose value is `null` (YAML `key:` with nothing after it) counts as absent.
 * - Integers and booleans written as strings ("15432", "true") are accepted, because
 *   `pulumi config set --path` and the Automation API can store them that way.
 * - Cross-field rules (exactly one restore target, restore snapshot declared, template
 *   declared, ...) run in a preprocess step, so they are reported together with every other
 *   problem instead of only once the rest is valid.
 */
import { z } from "zod";
import { cronProblem } from "../../lib/backup/cron";
import { TENANT_STATES, type TenantState } from "../../lib/registry/tenantState";
import { checkSubdomain } from "./subdomain";
import { aiConfigSchema, type AiConfig } from "./ai";
import { dockerConfigSchema, type DockerConfig } from "./docker";
import { kubernetesConfigSchema, type KubernetesConfig } from "./kubernetes";
import { odooConfigSchema, type OdooConfig } from "./odoo";
import {
  BOOLEAN_RULE,
  TEXT_RULE,
  booleanSchema,
  integer,
  isPlainObject,
  namedMap,
  peek,
  requireExactlyOne,
  rule,
  strictMap,
  text,
  type IssueParams,
} from "./helpers";
import { offsiteSchema, type OffsiteConfig } from "./offsite";

export { isPlainObject, suggestKey, unknownKeyMessage, type IssueParams } from "./helpers";

export const TARGETS = ["local", "kubernetes", "docker"] as const;
export const TIERS = ["basic", "pro", "enterprise"] as const;
export const LIMIT_KEYS = ["maxUsers", "maxStorageGb", "maxAiOperationsDaily", "maxSnapshots"] as const;
export const RESTORE_KINDS = ["snapshot", "time", "lsn"] as const;

export type Target = (typeof TARGETS)[number];
export type Tier = (typeof TIERS)[number];
export type LimitKey = (typeof LIMIT_KEYS)[number];

export interface Limits {
  maxUsers: number;
  maxStorageGb: number;
  maxAiOperationsDaily: number;
  maxSnapshots: number;
}

export type TemplateSource = { fromDump: string } | { fromCommand: string };
/** `platform.backups.schedule`: when the scheduled jobs run (5-field cron, UTC). */
export interface BackupScheduleConfig {
  full: string;
  diff: string;
  verify: string;
  autoSnapshots: string;
}
export type RestoreTarget = { snapshot: string } | { time: string } | { lsn: string };

export interface RouterTlsConfig {
  certFile: string;
  keyFile: string;
  port: number;
  hstsMaxAgeSeconds: number;
}

export interface PlatformConfig {
  target: Target;
  domain: string;
  /** As given in the stack file; may be relative (to the program's working directory). */
  stateDir: string;
  postgresPort: number;
  routerPort: number;
  /** local: HTTPS on the router (absent: plain HTTP). Relative files are relative to the working directory. */
  routerTls?: RouterTlsConfig;
  /** `host:port` of Odoo's HTTP port. */
  odooHttp: string;
  /** `host:port` of Odoo's gevent (websocket) port. */
  odooWebsocket: string;
  archiveTimeoutSeconds: number;
  backups: {
    retentionFull: number;
    /**
     * Plain text once loaded: wrap it with `pulumi.secret()` before it goes into any resource
     * input or output. It is stored encrypted in the stack file (see `loadStackConfig`).
     */
    encryptionPassphrase?: string;
    /** Cron expressions (UTC) overriding DEFAULT_BACKUP_SCHEDULE (lib/backup/schedule-defaults.ts). */
    schedule?: Partial<BackupScheduleConfig>;
    /** The second, offsite repository (repo2); its secrets are plain text once loaded, like the passphrase. */
    offsite?: OffsiteConfig;
  };
  templates: Record<string, TemplateSource>;
  undo: {
    /**
     * Tables never captured for undo, besides the built-in noisy ones (lib/undo/sql.ts
     * DEFAULT_EXCLUDED_TABLES): names or `*` patterns, optionally `schema.`-qualified.
     */
    excludeTables?: string[];
    /** Days the change log of ended operations is kept (pruned by the quota-check job). */
    retentionDays: number;
  };
  quotas: {
    /** Cron (UTC) of the storage quota check; default every 10 minutes. */
    checkSchedule?: string;
  };
  /** Spare tenant databases (lib/tenant/spares.ts) kept ready by a scheduled job. */
  provisioning: {
    /** Ready spares per template; 0 (default): no job, no spares. */
    spares: number;
    /** Cron (UTC) of the `spares` job; default every 5 minutes. */
    sparesSchedule?: string;
  };
  /** Operator notifications (docs/operations/monitoring.md#webhook-notifications-every-target). */
  notify: {
    /**
     * Plain text once loaded, and it may carry a token: wrap it with `pulumi.secret()` before it
     * goes into any resource (see `backups.encryptionPassphrase`). Absent: no webhook.
     */
    webhookUrl?: string;
    /** Per delivery attempt. */
    timeoutSeconds: number;
    /** Delivery attempts in all (network errors, 5xx and 429 are retried with backoff). */
    attempts: number;
  };
  /** The ERP server (image, sizing, sessions): infra/config/odoo.ts. */
  odoo: OdooConfig;
  /** The docker target: infra/config/docker.ts. */
  docker: DockerConfig;
  /** The kubernetes target (required there): infra/config/kubernetes.ts. */
  kubernetes?: KubernetesConfig;
  /** The AI providers' keys the ERP gets as environment: infra/config/ai.ts. */
  ai: AiConfig;
  /**
   * Rotation trigger: a new value rotates the superuser's, the ERP role's and every tenant role's
   * password (docs/operations/credential-rotation.md). Absent: no rotation keeper at all.
   */
  credentialRotation?: string;
}

export interface TenantConfig {
  subdomain: string;
  tier: Tier;
  adminEmail: string;
  state: TenantState;
  template: string;
  /** The tier's limits merged with `limitOverrides`. */
  limits: Limits;
  /** The tenant's own `limits` entry, as given. */
  limitOverrides: Partial<Limits>;
  dbServer?: string;
  snapshots: Record<string, Record<string, never>>;
  restore?: RestoreTarget;
  forceDestroy: boolean;
  /** Days an archived tenant's data is retained (default 30). */
  retentionDays: number;
  /** Also route `<subdomain>--preview.<domain>` (to the database `<subdomain>--preview`). */
  preview: boolean;
  /** Rotation trigger of this tenant's role password only (see PlatformConfig.credentialRotation). */
  credentialRotation?: string;
}

export interface StackConfig {
  platform: PlatformConfig;
  tiers: Record<Tier, Limits>;
  /** Sorted by subdomain. */
  tenants: TenantConfig[];
}

/** Largest limit value: limits are stored in PostgreSQL `integer` columns. */
export const MAX_LIMIT = 2_147_483_647;
/** Longest host name (RFC 1123). */
export const MAX_HOST_LENGTH = 253;
export const DEFAULT_TEMPLATE = "default";
export const DEFAULT_RETENTION_DAYS = 30;

export const SNAPSHOT_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const TEMPLATE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/** PostgreSQL `pg_lsn` text form: two hexadecimal numbers of at most 32 bits each. */
export const LSN = /^[0-9A-F]{1,8}\/[0-9A-F]{1,8}$/i;
/** A credential rotation trigger: any label (a date, a ticket) whose change rotates passwords. */
export const CREDENTIAL_ROTATION = /^[A-Za-z0-9._:-]{1,64}$/;

/** Rule messages that tests and other modules may match on. */
export const RULES = {
  target: `must be one of ${TARGETS.join(", ")}`,
  tier: `must be one of ${TIERS.join(", ")}`,
  state: `must be one of ${TENANT_STATES.join(", ")}`,
  email: "must be an email address",
  limit: `must be a positive integer (at most ${MAX_LIMIT})`,
  storageLimit: `must be a positive number of GB (at most ${MAX_LIMIT}; decimals allowed, e.g. 0.5)`,
  tablePattern:
    "must be a table name pattern: letters, digits, _ and the wildcard *, optionally schema-qualified (schema.table)",
  undoRetentionDays: "must be an integer from 1 to 3650 (days)",
  port: "must be an integer from 1 to 65535",
  archiveTimeout: "must be an integer from 1 to 3600 (seconds)",
  hstsMaxAge: "must be an integer from 0 to 2147483647 (seconds)",
  retentionFull: "must be an integer from 1 to 9999999 (full backups kept)",
  retentionDays: "must be an integer from 0 to 36500 (days)",
  boolean: BOOLEAN_RULE,
  domain: "must be a lowercase DNS name (labels of a-z, 0-9 and inner hyphens, at most 253 characters)",
  hostPort: 'must be "host:port" (host name, IPv4 address or [IPv6] address; port 1 to 65535)',
  text: TEXT_RULE,
  snapshotName: "must be a snapshot name: a-z or 0-9 first, then a-z, 0-9 or hyphens, at most 63 characters",
  templateName:
    "must be a template name: a-z or 0-9 first, then a-z, 0-9, underscores or hyphens, at most 63 characters",
  snapshotSettings: "must be {} (a snapshot takes no settings)",
  restoreOneOf: `must name exactly one of ${RESTORE_KINDS.join(", ")}`,
  time: 'must be an ISO-8601 timestamp with a timezone, e.g. "2026-11-26T10:00:00Z"',
  lsn: 'must be a PostgreSQL LSN like "0/5A3B2C10" (two hexadecimal numbers of 1 to 8 digits)',
  templateOneOf: "must have exactly one of fromDump, fromCommand",
  cron: "must be a 5-field cron expression (minute hour day-of-month month day-of-week, UTC)",
  webhookUrl: "must be an http:// or https:// URL",
  notifyTimeout: "must be an integer from 1 to 120 (seconds)",
  notifyAttempts: "must be an integer from 1 to 10",
  spares: "must be an integer from 0 to 20 (ready spares per template; 0 turns them off)",
  credentialRotation:
    'must be 1 to 64 characters of A-Z, a-z, 0-9, ".", "_", ":" or "-" (e.g. "2026-11-26"); changing it rotates the passwords',
} as const;

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function isDnsName(s: string, caseInsensitive = false): boolean {
  const name = caseInsensitive ? s.toLowerCase() : s;
  return name.length <= MAX_HOST_LENGTH && name.split(".").every((label) => DNS_LABEL.test(label));
}

function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(?:0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

export function isHostPort(s: string): boolean {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+):([0-9]{1,5})$/.exec(s);
  if (!m) return false;
  const [, host, port] = m;
  const portNumber = Number(port);
  if (portNumber < 1 || portNumber > 65535) return false;
  if (host.startsWith("[")) return host.includes(":");
  return isIPv4(host) || (!/^[0-9.]+$/.test(host) && isDnsName(host, true));
}

const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2})(?::?(\d{2}))?)$/;

/** ISO-8601 date and time with a timezone (`Z` or an offset), calendar-checked. */
export function isIsoTimestampWithZone(s: string): boolean {
  const m = ISO_TIMESTAMP.exec(s);
  if (!m) return false;
  const [year, month, day, hour, minute, second = 0, offsetHour = 0, offsetMinute = 0] = m
    .slice(1)
    .map((part) => (part === undefined ? undefined : Number(part)));
  if (year === undefined || month === undefined || day === undefined) return false;
  if (month < 1 || month > 12) return false;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > daysInMonth) return false;
  return (
    hour !== undefined &&
    minute !== undefined &&
    hour <= 23 &&
    minute <= 59 &&
    second <= 59 &&
    offsetHour <= 23 &&
    offsetMinute <= 59
  );
}

// ---------------------------------------------------------------------------------------------
// Leaf schemas

export const targetSchema = z.enum(TARGETS, rule(RULES.target));
export const tierSchema = z.enum(TIERS, rule(RULES.tier));
export const tenantStateSchema = z.enum(TENANT_STATES, rule(RULES.state));
export const emailSchema = z.string(rule(RULES.email)).max(254).email();
export const portSchema = integer(1, 65535, RULES.port);
export const limitSchema = integer(1, MAX_LIMIT, RULES.limit);
/** Storage may be a fraction of a GB (e.g. 0.5); the other limits are counts. */
export const storageLimitSchema = z.preprocess(
  (v) => (typeof v === "string" && /^[0-9]{1,10}(?:\.[0-9]{1,9})?$/.test(v) ? Number(v) : v),
  z.number(rule(RULES.storageLimit)).gt(0).max(MAX_LIMIT),
);
/** A table name pattern of `platform.undo.excludeTables`: `bus_bus`, `ir_cron_*`, `audit.*`. */
export const TABLE_PATTERN = /^(?:[a-z_*][a-z0-9_$*]{0,62}\.)?[a-z_*][a-z0-9_$*]{0,62}$/;
export const tablePatternSchema = z.string(rule(RULES.tablePattern)).regex(TABLE_PATTERN);
export const domainSchema = z.string(rule(RULES.domain)).refine((s) => isDnsName(s), RULES.domain);
export const hostPortSchema = z.string(rule(RULES.hostPort)).refine(isHostPort, RULES.hostPort);
export const snapshotNameSchema = z.string(rule(RULES.snapshotName)).regex(SNAPSHOT_NAME);
export const templateNameSchema = z.string(rule(RULES.templateName)).regex(TEMPLATE_NAME);
export const restoreTimeSchema = z.string(rule(RULES.time)).refine(isIsoTimestampWithZone, RULES.time);
export const lsnSchema = z.string(rule(RULES.lsn)).regex(LSN);
/** A bare counter (`credentialRotation: 3` in YAML arrives as a number) counts as its digits. */
export const credentialRotationSchema = z.preprocess(
  (v) => (typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? String(v) : v),
  z.string(rule(RULES.credentialRotation)).regex(CREDENTIAL_ROTATION),
);
function isHttpUrl(s: string): boolean {
  try {
    const url = new URL(s);
    return (url.protocol === "http:" || url.protocol === "https:") && url.host !== "";
  } catch {
    return false;
  }
}
export const webhookUrlSchema = z.string(rule(RULES.webhookUrl)).refine(isHttpUrl, RULES.webhookUrl);
export const cronSchema = z.string(rule(RULES.cron)).superRefine((expr, ctx) => {
  const problem = cronProblem(expr);
  if (problem !== undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${RULES.cron}: ${problem}` });
  }
});

// ---------------------------------------------------------------------------------------------
// Composite schemas

/** A tenant's `limits` (or a tier override): any subset of the limits. */
export const limitOverridesSchema = strictMap(
  {
    maxUsers: limitSchema.optional(),
    maxStorageGb: storageLimitSchema.optional(),
    maxAiOperationsDaily: limitSchema.optional(),
    maxSnapshots: limitSchema.optional(),
  },
  `must be a map of limits (${LIMIT_KEYS.join(", ")})`,
);

/** `loomworks:tiers`: per-tier overrides of the built-in defaults (see tiers.ts). */
export const tierOverridesSchema = strictMap(
  {
    basic: limitOverridesSchema.optional(),
    pro: limitOverridesSchema.optional(),
    enterprise: limitOverridesSchema.optional(),
  },
  `must be a map from tier (${TIERS.join(", ")}) to limits`,
);

export const templateSourceSchema = strictMap(
  { fromDump: text().optional(), fromCommand: text().optional() },
  "must be a map with fromDump or fromCommand",
  (v, ctx) => requireExactlyOne(v, ["fromDump", "fromCommand"], RULES.templateOneOf, ctx),
).transform((t): TemplateSource =>
  t.fromDump !== undefined ? { fromDump: t.fromDump } : { fromCommand: t.fromCommand ?? "" },
);

/** Keys of `loomworks:platform`. */
export const PLATFORM_KEYS = [
  "target",
  "domain",
  "stateDir",
  "postgresPort",
  "routerPort",
  "routerTls",
  "odooHttp",
  "odooWebsocket",
  "archiveTimeoutSeconds",
  "backups",
  "templates",
  "undo",
  "quotas",
  "provisioning",
  "notify",
  "odoo",
  "docker",
  "kubernetes",
  "ai",
  "credentialRotation",
] as const;

export const platformSchema = strictMap(
  {
    target: targetSchema.default("local"),
    domain: domainSchema.default("localhost"),
    stateDir: text().default(".loomworks"),
    postgresPort: portSchema.default(15432),
    routerPort: portSchema.default(8080),
    routerTls: strictMap(
      {
        certFile: text(),
        keyFile: text(),
        port: portSchema.default(8443),
        hstsMaxAgeSeconds: integer(0, 2_147_483_647, RULES.hstsMaxAge).default(31_536_000),
      },
      "must be a map of router TLS settings (certFile, keyFile, port, hstsMaxAgeSeconds)",
    ).optional(),
    odooHttp: hostPortSchema.default("127.0.0.1:8069"),
    odooWebsocket: hostPortSchema.default("127.0.0.1:8072"),
    archiveTimeoutSeconds: integer(1, 3600, RULES.archiveTimeout).default(60),
    backups: strictMap(
      {
        retentionFull: integer(1, 9_999_999, RULES.retentionFull).default(2),
        encryptionPassphrase: text().optional(),
        schedule: strictMap(
          {
            full: cronSchema.optional(),
            diff: cronSchema.optional(),
            verify: cronSchema.optional(),
            autoSnapshots: cronSchema.optional(),
          },
          "must be a map of cron schedules (full, diff, verify, autoSnapshots)",
        ).optional(),
        offsite: offsiteSchema.optional(),
      },
      "must be a map of backup settings (retentionFull, encryptionPassphrase, schedule, offsite)",
    ).default({}),
    undo: strictMap(
      {
        excludeTables: z.array(tablePatternSchema, rule("must be a list of table name patterns")).optional(),
        retentionDays: integer(1, 3650, RULES.undoRetentionDays).default(30),
      },
      "must be a map of undo settings (excludeTables, retentionDays)",
    ).default({}),
    quotas: strictMap(
      { checkSchedule: cronSchema.optional() },
      "must be a map of quota settings (checkSchedule)",
    ).default({}),
    provisioning: strictMap(
      {
        spares: integer(0, 20, RULES.spares).default(0),
        sparesSchedule: cronSchema.optional(),
      },
      "must be a map of provisioning settings (spares, sparesSchedule)",
    ).default({}),
    notify: strictMap(
      {
        webhookUrl: webhookUrlSchema.optional(),
        timeoutSeconds: integer(1, 120, RULES.notifyTimeout).default(10),
        attempts: integer(1, 10, RULES.notifyAttempts).default(4),
      },
      "must be a map of notification settings (webhookUrl, timeoutSeconds, attempts)",
    ).default({}),
    odoo: odooConfigSchema.default({}),
    docker: dockerConfigSchema.default({}),
    kubernetes: kubernetesConfigSchema.optional(),
    ai: aiConfigSchema.default({}),
    credentialRotation: credentialRotationSchema.optional(),
    templates: namedMap(
      TEMPLATE_NAME,
      RULES.templateName,
      templateSourceSchema,
      "must be a map from template name to { fromDump } or { fromCommand }",
    ).default({}),
  } satisfies Record<(typeof PLATFORM_KEYS)[number], z.ZodTypeAny>,
  "must be a map of platform settings",
  (v, ctx) => {
    const postgresPort = peek(portSchema.default(15432), v.postgresPort);
    const routerPort = peek(portSchema.default(8080), v.routerPort);
    if (v.target === "kubernetes" && v.kubernetes === undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["kubernetes"],
        message: "is required when target is kubernetes (image, proxy, tls, filestore, ...)",
        params: { noGot: true } satisfies IssueParams,
      });
    }
    if (v.routerTls !== undefined && v.target === "kubernetes") {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["routerTls"],
        message: "is for the local and docker routers; on kubernetes TLS is kubernetes.tls",
        params: { noGot: true } satisfies IssueParams,
      });
    }
    const httpsPort = isPlainObject(v.routerTls)
      ? peek(portSchema.default(8443), v.routerTls.port)
      : undefined;
    const dockerHttpPort =
      v.target === "docker" && isPlainObject(v.docker)
        ? peek(portSchema.default(80), v.docker.httpPort)
        : undefined;
    if (httpsPort !== undefined && dockerHttpPort !== undefined && httpsPort === dockerHttpPort) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["routerTls", "port"],
        message: `must differ from docker.httpPort (both are ${httpsPort})`,
        params: { got: httpsPort } satisfies IssueParams,
      });
    }
    if (httpsPort !== undefined && (httpsPort === routerPort || httpsPort === postgresPort)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["routerTls", "port"],
        message: `must differ from routerPort and postgresPort (${routerPort}, ${postgresPort})`,
        params: { got: httpsPort } satisfies IssueParams,
      });
    }
    if (postgresPort !== undefined && postgresPort === routerPort) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["routerPort"],
        message: `must differ from postgresPort (both are ${postgresPort})`,
        params: { got: routerPort } satisfies IssueParams,
      });
    }
  },
);

export const restoreSchema = strictMap(
  {
    snapshot: snapshotNameSchema.optional(),
    time: restoreTimeSchema.optional(),
    lsn: lsnSchema.optional(),
  },
  `must be a map with one of ${RESTORE_KINDS.join(", ")}`,
  (v, ctx) => requireExactlyOne(v, RESTORE_KINDS, RULES.restoreOneOf, ctx),
).transform((r): RestoreTarget =>
  r.snapshot !== undefined
    ? { snapshot: r.snapshot }
    : r.time !== undefined
      ? { time: r.time }
      : { lsn: r.lsn ?? "" },
);

export const snapshotSettingsSchema = z
  .custom<Record<string, never>>((v) => v === null || (isPlainObject(v) && Object.keys(v).length === 0), {
    message: RULES.snapshotSettings,
  })
  .transform((): Record<string, never> => ({}));

export const snapshotsSchema = namedMap(
  SNAPSHOT_NAME,
  RULES.snapshotName,
  snapshotSettingsSchema,
  "must be a map from snapshot name to {}",
);

/** What a tenant's entry is checked against: the parsed platform and tiers. */
export interface TenantContext {
  /** Template names declared in `platform.templates`; undefined skips the check. */
  templates?: readonly string[];
  /** Effective tier limits (built-in defaults merged with `loomworks:tiers`). */
  tiers: Record<Tier, Limits>;
  /** The platform domain; undefined skips the host-length check. */
  domain?: string;
  /**
   * Set on a target that takes no declared snapshots (kubernetes): the messages refusing
   * `snapshots` and `restore.snapshot`, each saying why and what to do instead.
   */
  snapshotsRefused?: { snapshots: string; restoreSnapshot: string };
}

/** Keys a tenant entry may have. */
export const TENANT_KEYS = [
  "tier",
  "adminEmail",
  "state",
  "template",
  "limits",
  "dbServer",
  "snapshots",
  "restore",
  "forceDestroy",
  "retentionDays",
  "preview",
  "credentialRotation",
] as const;

/**
 * Schema of one tenant entry (`loomworks:tenants.<subdomain>`), checked against the platform
 * and tiers; parses to the full `TenantConfig`. Issues about the subdomain itself have the path
 * `["subdomain"]`.
 */
export function tenantSchema(subdomain: string, context: TenantContext) {
  const checkTenant = (v: Record<string, unknown>, ctx: z.RefinementCtx): void => {
    const subdomainRule = checkSubdomain(subdomain);
    if (subdomainRule !== undefined) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["subdomain"],
        message: subdomainRule,
        params: { got: subdomain } satisfies IssueParams,
      });
    } else if (
      context.domain !== undefined &&
      subdomain.length + 1 + context.domain.length > MAX_HOST_LENGTH
    ) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ["subdomain"],
        message: `with the domain "${context.domain}" must make a host name of at most ${MAX_HOST_LENGTH} characters`,
        params: { got: subdomain } satisfies IssueParams,
      });
    }

    const template = v.template ?? DEFAULT_TEMPLATE;
    if (context.templates !== undefined && typeof template === "string" && TEMPLATE_NAME.test(template)) {
      if (!context.templates.includes(template)) {
        const declared = context.templates.length > 0 ? context.templates.join(", ") : "none";
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["template"],
          message: `must name a template declared in platform.templates (declared: ${declared})`,
          params: { got: template } satisfies IssueParams,
        });
      }
    }

    const restore = v.restore;
    const snapshots = v.snapshots === undefined ? {} : v.snapshots;
    const refused = context.snapshotsRefused;
    if (refused !== undefined) {
      if (isPlainObject(snapshots) && Object.keys(snapshots).length > 0) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["snapshots"],
          message: refused.snapshots,
          params: { noGot: true } satisfies IssueParams,
        });
      }
      if (isPlainObject(restore) && restore.snapshot !== undefined) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["restore", "snapshot"],
          message: refused.restoreSnapshot,
          params: { got: restore.snapshot } satisfies IssueParams,
        });
      }
    } else if (isPlainObject(restore) && isPlainObject(snapshots)) {
      const name = restore.snapshot;
      if (typeof name === "string" && SNAPSHOT_NAME.test(name) && !Object.hasOwn(snapshots, name)) {
        const declared = Object.keys(snapshots);
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["restore", "snapshot"],
          message: `must name a snapshot declared in this tenant's snapshots (declared: ${
            declared.length > 0 ? declared.join(", ") : "none"
          })`,
          params: { got: name } satisfies IssueParams,
        });
      }
    }

    const tier = peek(tierSchema, v.tier);
    const overrides = peek(limitOverridesSchema, v.limits ?? {});
    if (tier !== undefined && overrides !== undefined && isPlainObject(snapshots)) {
      const max = overrides.maxSnapshots ?? context.tiers[tier].maxSnapshots;
      const count = Object.keys(snapshots).length;
      if (count > max) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ["snapshots"],
          message: `must declare at most maxSnapshots = ${max} snapshots (declares ${count})`,
          params: { noGot: true } satisfies IssueParams,
        });
      }
    }
  };

  return strictMap(
    {
      tier: tierSchema,
      adminEmail: emailSchema,
      state: tenantStateSchema.default("active"),
      template: templateNameSchema.default(DEFAULT_TEMPLATE),
      limits: limitOverridesSchema.default({}),
      dbServer: text().optional(),
      snapshots: snapshotsSchema.default({}),
      restore: restoreSchema.optional(),
      forceDestroy: booleanSchema.default(false),
      retentionDays: integer(0, 36_500, RULES.retentionDays).default(DEFAULT_RETENTION_DAYS),
      preview: booleanSchema.default(false),
      credentialRotation: credentialRotationSchema.optional(),
    } satisfies Record<(typeof TENANT_KEYS)[number], z.ZodTypeAny>,
    "must be a map of tenant settings",
    checkTenant,
  ).transform((t): TenantConfig => {
    const limitOverrides: Partial<Limits> = {};
    for (const key of LIMIT_KEYS) {
      const value = t.limits[key];
      if (value !== undefined) limitOverrides[key] = value;
    }
    return {
      subdomain,
      tier: t.tier,
      adminEmail: t.adminEmail,
      state: t.state,
      template: t.template,
      limits: { ...context.tiers[t.tier], ...limitOverrides },
      limitOverrides,
      ...(t.dbServer !== undefined ? { dbServer: t.dbServer } : {}),
      snapshots: t.snapshots,
      ...(t.restore !== undefined ? { restore: t.restore } : {}),
      forceDestroy: t.forceDestroy,
      retentionDays: t.retentionDays,
      preview: t.preview,
      ...(t.credentialRotation !== undefined ? { credentialRotation: t.credentialRotation } : {}),
    };
  });
}
