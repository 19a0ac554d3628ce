/**
 * Reads and validates the stack configuration (namespace `loomworks`,
 * docs/configuration.md#stack-configuration).
 *
 * `parseStackConfig` is pure (no Pulumi engine, no I/O) and reports every problem at once in a
 * `ConfigError`, one problem per line:
 *
 *   platform: key "postgresPort": must be an integer from 1 to 65535 (got 70000)
 *   tiers: key "gold": is not a known key; known keys: basic, pro, enterprise
 *   tenant "acme": key "teir": is not a known key (did you mean "tier"?)
 *   tenants: must be a map from subdomain to tenant settings (got a list)
 *   tenant "acme": key "tier": must be one of basic, pro, enterprise (got "gold")
 *   tenant "acme": key "restore.snapshot": must name a snapshot declared in this tenant's snapshots (declared: none) (got "nightly")
 *
 * i.e. `<scope>: key "<dotted path>": <rule> (got <value>)`, where `<scope>` is `platform`,
 * `tiers`, `tenants`, `loomworks` (unknown namespace keys) or `tenant "<subdomain>"`; the
 * `key` part is left out when the whole section is wrong, and `(got ...)` when the key is
 * missing or the value is beside the point. Maps and lists show as "a map" / "a list", and the
 * backup passphrase is never shown.
 */
import type * as pulumiModule from "@pulumi/pulumi";
import type { z } from "zod";
import {
  isPlainObject,
  PLATFORM_KEYS,
  platformSchema,
  TENANT_KEYS,
  tenantSchema,
  tierOverridesSchema,
  TIERS,
  unknownKeyMessage,
  type IssueParams,
  type PlatformConfig,
  type StackConfig,
  type TenantConfig,
} from "./schema";
import { isAiKeyValuePath } from "./ai";
import { dockerSnapshotRefusal } from "./docker";
import { OFFSITE_SECRET_KEYS } from "./offsite";
import { DEFAULT_KUBERNETES, kubernetesSnapshotRefusal } from "./kubernetes";
import { mergeTierLimits } from "./tiers";

/** The Pulumi configuration namespace. */
export const CONFIG_NAMESPACE = "loomworks";
/** Keys of the namespace this program reads; any other `loomworks:*` key is refused. */
export const CONFIG_KEYS = ["platform", "tiers", "tenants"] as const;

/**
 * Invalid stack configuration. `message` lists every problem, one per line; `problems` holds
 * the same lines. Pulumi prints it without a stack trace (it is flagged as a Pulumi RunError).
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  readonly problems: readonly string[];
  /** Makes `pulumi.RunError.isInstance` true, so the CLI shows the message without a stack. */
  readonly __pulumiRunError = true;

  constructor(problems: readonly string[]) {
    super(problems.join("\n"));
    this.problems = [...problems];
  }
}

const TENANT_ISSUE_ORDER: readonly string[] = ["subdomain", ...TENANT_KEYS];

// pushgatewayUrl is no secret, but one refused for its user info may carry a password.
const SECRET_KEYS = new Set<string>([
  "encryptionPassphrase",
  "webhookUrl",
  "pushgatewayUrl",
  ...OFFSITE_SECRET_KEYS,
]);

/** A short, secret-free rendering of an offending value. */
function describeValue(value: unknown, path: readonly PropertyKey[]): string {
  const last = path[path.length - 1];
  if (typeof last === "string" && SECRET_KEYS.has(last)) return "a secret value";
  if (isAiKeyValuePath(path)) return "a secret value";
  if (Array.isArray(value)) return "a list";
  if (isPlainObject(value)) return "a map";
  if (typeof value === "string") {
    const shown = value.length > 80 ? `${value.slice(0, 77)}...` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null) return String(value);
  return typeof value;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const key of path) {
    if (Array.isArray(value) && typeof key === "number") value = value[key];
    else if (isPlainObject(value) && typeof key === "string" && Object.hasOwn(value, key)) value = value[key];
    else return undefined;
  }
  return value;
}

function formatProblem(scope: string, path: readonly PropertyKey[], rule: string, got?: string): string {
  const key = path.length > 0 ? `key "${path.map(String).join(".")}": ` : "";
  return `${scope}: ${key}${rule}${got !== undefined ? ` (got ${got})` : ""}`;
}

/**
 * One line per zod issue (see the file comment for the format), ordered by the issue's
 * top-level key as listed in `keyOrder` (unknown keys last), then with unknown nested keys
 * after the other issues, otherwise as zod found them.
 */
function formatIssues(
  scope: string,
  error: z.ZodError,
  root: unknown,
  keyOrder: readonly string[],
): string[] {
  const rank = (issue: z.ZodIssue): number => {
    const first = issue.path[0];
    if (first === undefined) return -1;
    const index = keyOrder.indexOf(String(first));
    return index === -1 ? keyOrder.length : index;
  };
  const paramsOf = (issue: z.ZodIssue): IssueParams | undefined =>
    issue.code === "custom" ? (issue.params as IssueParams | undefined) : undefined;
  const unknownLast = (issue: z.ZodIssue): number => (paramsOf(issue)?.unknownKey === true ? 1 : 0);
  const issues = error.issues.map((issue, index) => ({ issue, index }));
  issues.sort(
    (a, b) =>
      rank(a.issue) - rank(b.issue) || unknownLast(a.issue) - unknownLast(b.issue) || a.index - b.index,
  );
  return issues.map(({ issue }) => {
    const params = paramsOf(issue);
    let got: string | undefined;
    if (params?.noGot === true) got = undefined;
    else if (params !== undefined && "got" in params) got = describeValue(params.got, issue.path);
    else {
      const value = valueAt(root, issue.path);
      got = value === undefined ? undefined : describeValue(value, issue.path);
    }
    return formatProblem(scope, issue.path, issue.message, got);
  });
}

function rawTemplateNames(rawPlatform: unknown): string[] | undefined {
  if (rawPlatform === undefined || rawPlatform === null) return [];
  if (!isPlainObject(rawPlatform)) return undefined;
  const templates = rawPlatform.templates;
  if (templates === undefined || templates === null) return [];
  return isPlainObject(templates) ? Object.keys(templates) : undefined;
}

/** Validates the configuration; returns it, or every problem found. */
function collect(raw: { platform?: unknown; tiers?: unknown; tenants?: unknown }): {
  config?: StackConfig;
  problems: string[];
} {
  const problems: string[] = [];

  const platformResult = platformSchema.safeParse(raw.platform ?? {});
  let platform: PlatformConfig | undefined;
  if (platformResult.success) platform = platformResult.data;
  else problems.push(...formatIssues("platform", platformResult.error, raw.platform, PLATFORM_KEYS));

  const tiersResult = tierOverridesSchema.safeParse(raw.tiers ?? {});
  if (!tiersResult.success) problems.push(...formatIssues("tiers", tiersResult.error, raw.tiers, TIERS));
  // With invalid overrides, tenants are still checked against the built-in defaults.
  const tiers = mergeTierLimits(tiersResult.success ? tiersResult.data : {});

  // Template names to check tenants against: the parsed ones, or the raw map's names when the
  // platform section has other problems (reported above); undefined skips the check.
  const templates = platform ? Object.keys(platform.templates) : rawTemplateNames(raw.platform);
  const domain = platform?.domain;
  const snapshotRule =
    platform?.target === "kubernetes"
      ? {
          snapshotsRefused: kubernetesSnapshotRefusal(
            platform.kubernetes?.namespace ?? DEFAULT_KUBERNETES.namespace,
          ),
        }
      : platform?.target === "docker"
        ? { snapshotsRefused: dockerSnapshotRefusal(platform.docker.namePrefix) }
        : {};

  const tenants: TenantConfig[] = [];
  const rawTenants = raw.tenants ?? {};
  if (!isPlainObject(rawTenants)) {
    problems.push(
      formatProblem(
        "tenants",
        [],
        "must be a map from subdomain to tenant settings",
        describeValue(rawTenants, []),
      ),
    );
  } else {
    const subdomains = Object.keys(rawTenants).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const subdomain of subdomains) {
      const entry = rawTenants[subdomain];
      const result = tenantSchema(subdomain, { templates, tiers, domain, ...snapshotRule }).safeParse(entry);
      if (result.success) tenants.push(result.data);
      else
        problems.push(
          ...formatIssues(`tenant ${JSON.stringify(subdomain)}`, result.error, entry, TENANT_ISSUE_ORDER),
        );
    }
  }

  if (
    platform?.target === "kubernetes" &&
    platform.kubernetes &&
    !platform.kubernetes.postgres.adminEndpoint
  ) {
    for (const tenant of tenants) {
      problems.push(
        formatProblem(
          `tenant ${JSON.stringify(tenant.subdomain)}`,
          [],
          'needs platform.kubernetes.postgres.adminEndpoint ("host:port" where `pulumi up` reaches the cluster\'s PostgreSQL, e.g. through kubectl port-forward; docs/operations/kubernetes.md) to be provisioned on the kubernetes target',
        ),
      );
    }
  }

  if (problems.length > 0 || platform === undefined) return { problems };
  return { config: { platform, tiers, tenants }, problems };
}

/**
 * Parses and validates the three `loomworks` configuration values (as `getObject` returns them:
 * plain JSON values, `undefined` when unset). Pure: no Pulumi engine needed.
 * @throws ConfigError listing every problem, one per line.
 */
export function parseStackConfig(raw: {
  platform?: unknown;
  tiers?: unknown;
  tenants?: unknown;
}): StackConfig {
  const { config, problems } = collect(raw);
  if (config === undefined) throw new ConfigError(problems);
  return config;
}

/**
 * Reads `loomworks:platform`, `loomworks:tiers` and `loomworks:tenants` from the stack's
 * configuration and validates them (see `parseStackConfig`). Any other `loomworks:*` key is an
 * error too: a typo such as `loomworks:tenant` would otherwise read as "no tenants" and destroy
 * every tenant. Add new keys to `CONFIG_KEYS`.
 *
 * Secrets: the backup repository passphrase is kept encrypted in the stack file, set with
 *   pulumi config set --secret --path 'loomworks:platform.backups.encryptionPassphrase' <value>
 * which makes the whole `loomworks:platform` value a secret config entry. It is read here with
 * `getObject` (plain values, synchronously, so that validation happens before any resource is
 * declared); `PlatformConfig.backups.encryptionPassphrase` is therefore plain text and callers
 * must wrap it with `pulumi.secret()` before passing it to a resource or output.
 *
 * `@pulumi/pulumi` is loaded lazily so that importing this module (for `parseStackConfig`)
 * stays cheap in unit tests; `loadStackConfig` itself only needs the config the engine (or
 * `pulumi.runtime.setAllConfig` in tests) provides.
 * @throws ConfigError listing every problem, one per line.
 */
export function loadStackConfig(): StackConfig {
  const pulumi = require("@pulumi/pulumi") as typeof pulumiModule;
  const config = new pulumi.Config(CONFIG_NAMESPACE);
  const read = (key: string): unknown => {
    try {
      return config.getObject<unknown>(key);
    } catch {
      // Not JSON (e.g. set as a plain string): hand the string on, to be reported as not a map.
      return config.get(key);
    }
  };

  const known: readonly string[] = CONFIG_KEYS;
  const prefix = `${CONFIG_NAMESPACE}:`;
  const unknownKeyProblems = Object.keys(pulumi.runtime.allConfig())
    .filter((fullKey) => fullKey.startsWith(prefix) && !known.includes(fullKey.slice(prefix.length)))
    .sort()
    .map((fullKey) => {
      const key = fullKey.slice(prefix.length);
      return formatProblem(CONFIG_NAMESPACE, [key], unknownKeyMessage(key, known));
    });

  const { config: stackConfig, problems } = collect({
    platform: read("platform"),
    tiers: read("tiers"),
    tenants: read("tenants"),
  });
  if (stackConfig === undefined || unknownKeyProblems.length > 0) {
    throw new ConfigError([...unknownKeyProblems, ...problems]);
  }
  return stackConfig;
}
