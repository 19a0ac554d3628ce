import * as pulumi from "@pulumi/pulumi";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadStackConfig, parseStackConfig } from "../../infra/config/load";
import { isIsoTimestampWithZone } from "../../infra/config/schema";
import { DEFAULT_TIER_LIMITS } from "../../infra/config/tiers";

const templates = { default: { fromDump: "/srv/loomworks/template.sql" } };
const platform = { templates };

function tenant(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { tier: "pro", adminEmail: "boss@acme.example", ...extra };
}

/** The problem lines of a configuration that must be refused. */
function problemsOf(raw: { platform?: unknown; tiers?: unknown; tenants?: unknown }): string[] {
  try {
    parseStackConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const error = e as ConfigError;
    expect(error.message.split("\n")).toEqual(error.problems);
    return [...error.problems];
  }
  throw new Error("expected a ConfigError");
}

/** The problems of one tenant entry `acme` on an otherwise valid stack. */
function tenantProblems(entry: unknown, subdomain = "acme"): string[] {
  return problemsOf({ platform, tenants: { [subdomain]: entry } });
}

const LINE = /^(platform|tiers|tenants|loomworks|tenant "[^"]*"): (key "[^"]+": )?\S.*$/;

describe("parseStackConfig: defaults", () => {
  it("applies every platform default to an empty configuration", () => {
    for (const raw of [
      {},
      { platform: null, tiers: null, tenants: null },
      { platform: {}, tiers: {}, tenants: {} },
    ]) {
      const config = parseStackConfig(raw);
      expect(config.platform).toEqual({
        target: "local",
        domain: "localhost",
        stateDir: ".loomworks",
        postgresPort: 15432,
        routerPort: 8080,
        odooHttp: "127.0.0.1:8069",
        odooWebsocket: "127.0.0.1:8072",
        archiveTimeoutSeconds: 60,
        backups: { retentionFull: 2 },
        templates: {},
        undo: { retentionDays: 30 },
        ai: { keys: {} },
        quotas: {},
        provisioning: { spares: 0 },
        notify: { timeoutSeconds: 10, attempts: 4 },
        odoo: parseStackConfig({}).platform.odoo,
        docker: parseStackConfig({}).platform.docker,
      });
      expect(config.platform.odoo).toMatchObject({ cpu: 2, memoryMb: 4096, dbUser: "loomworks_erp" });
      expect(config.tiers).toEqual(DEFAULT_TIER_LIMITS);
      expect(config.tenants).toEqual([]);
    }
  });

  it("built-in tier limits ascend from basic to enterprise", () => {
    const { basic, pro, enterprise } = DEFAULT_TIER_LIMITS;
    for (const key of ["maxUsers", "maxStorageGb", "maxAiOperationsDaily", "maxSnapshots"] as const) {
      expect(basic[key]).toBeLessThan(pro[key]);
      expect(pro[key]).toBeLessThan(enterprise[key]);
    }
  });

  it("applies tenant defaults", () => {
    const [acme] = parseStackConfig({ platform, tenants: { acme: tenant() } }).tenants;
    expect(acme).toEqual({
      subdomain: "acme",
      tier: "pro",
      adminEmail: "boss@acme.example",
      state: "active",
      template: "default",
      limits: DEFAULT_TIER_LIMITS.pro,
      limitOverrides: {},
      snapshots: {},
      forceDestroy: false,
      retentionDays: 30,
      preview: false,
    });
    expect("restore" in acme).toBe(false);
    expect("dbServer" in acme).toBe(false);
  });

  it("parses the docs/configuration.md example", () => {
    const config = parseStackConfig({
      platform: {
        target: "local",
        domain: "localhost",
        stateDir: ".loomworks",
        postgresPort: 15432,
        routerPort: 8080,
        odooHttp: "127.0.0.1:8069",
        odooWebsocket: "127.0.0.1:8072",
        archiveTimeoutSeconds: 60,
        backups: { retentionFull: 2, encryptionPassphrase: "correct horse battery staple" },
        templates: { default: { fromDump: "/path/to/template.sql" } },
      },
      tiers: { basic: { maxUsers: 10, maxStorageGb: 5, maxAiOperationsDaily: 100, maxSnapshots: 20 } },
      tenants: {
        acme: {
          tier: "pro",
          adminEmail: "boss@acme.example",
          state: "active",
          template: "default",
          limits: { maxUsers: 25 },
          snapshots: { "before-upgrade": {} },
          restore: { snapshot: "before-upgrade" },
          forceDestroy: false,
        },
      },
    });
    expect(config.platform.backups.encryptionPassphrase).toBe("correct horse battery staple");
    expect(config.tenants).toHaveLength(1);
    expect(config.tenants[0]).toMatchObject({
      subdomain: "acme",
      limits: { ...DEFAULT_TIER_LIMITS.pro, maxUsers: 25 },
      limitOverrides: { maxUsers: 25 },
      snapshots: { "before-upgrade": {} },
      restore: { snapshot: "before-upgrade" },
    });
  });

  it("accepts templates built from a command, and every restore form", () => {
    const config = parseStackConfig({
      platform: { templates: { default: { fromCommand: "odoo -d {db} -i base --stop-after-init" } } },
      tenants: {
        a01: tenant({ restore: { time: "2026-11-26T10:00:00Z" } }),
        a02: tenant({ restore: { lsn: "0/5A3B2C10" } }),
        a03: tenant({ restore: { lsn: "16/b374d848" } }),
        a04: tenant({ snapshots: { nightly: null }, restore: { snapshot: "nightly", time: null } }),
      },
    });
    expect(config.platform.templates).toEqual({
      default: { fromCommand: "odoo -d {db} -i base --stop-after-init" },
    });
    expect(config.tenants.map((t) => t.restore)).toEqual([
      { time: "2026-11-26T10:00:00Z" },
      { lsn: "0/5A3B2C10" },
      { lsn: "16/b374d848" },
      { snapshot: "nightly" },
    ]);
    expect(config.tenants[3].snapshots).toEqual({ nightly: {} });
  });

  it("accepts integers and booleans written as strings, and treats null keys as absent", () => {
    const config = parseStackConfig({
      platform: { ...platform, postgresPort: "15433", archiveTimeoutSeconds: "30", domain: null },
      tenants: { acme: tenant({ forceDestroy: "true", limits: { maxUsers: "7" }, dbServer: null }) },
    });
    expect(config.platform.postgresPort).toBe(15433);
    expect(config.platform.archiveTimeoutSeconds).toBe(30);
    expect(config.platform.domain).toBe("localhost");
    expect(config.tenants[0].forceDestroy).toBe(true);
    expect(config.tenants[0].limits.maxUsers).toBe(7);
  });
});

describe("parseStackConfig: tiers and limits", () => {
  it("merges tier overrides over the built-in defaults, then tenant overrides over the tier", () => {
    const config = parseStackConfig({
      platform,
      tiers: { basic: { maxUsers: 12 }, enterprise: { maxSnapshots: 1000 } },
      tenants: {
        small: tenant({ tier: "basic", limits: { maxStorageGb: 8 } }),
        big: tenant({ tier: "enterprise" }),
      },
    });
    expect(config.tiers.basic).toEqual({ ...DEFAULT_TIER_LIMITS.basic, maxUsers: 12 });
    expect(config.tiers.pro).toEqual(DEFAULT_TIER_LIMITS.pro);
    expect(config.tiers.enterprise).toEqual({ ...DEFAULT_TIER_LIMITS.enterprise, maxSnapshots: 1000 });
    const small = config.tenants.find((t) => t.subdomain === "small");
    expect(small?.limits).toEqual({ ...DEFAULT_TIER_LIMITS.basic, maxUsers: 12, maxStorageGb: 8 });
    expect(small?.limitOverrides).toEqual({ maxStorageGb: 8 });
    expect(config.tenants.find((t) => t.subdomain === "big")?.limits.maxSnapshots).toBe(1000);
  });

  it("does not let the parse result share or mutate the built-in defaults", () => {
    const config = parseStackConfig({ tiers: { pro: { maxUsers: 99 } } });
    config.tiers.basic.maxUsers = 1;
    expect(DEFAULT_TIER_LIMITS.basic.maxUsers).toBe(10);
    expect(DEFAULT_TIER_LIMITS.pro.maxUsers).toBe(50);
  });

  it.each([0, -1, 1.5, "abc", "", "1e3", true, 2 ** 31])("refuses limit value %j", (value) => {
    const problems = tenantProblems(tenant({ limits: { maxUsers: value } }));
    expect(problems).toEqual([
      `tenant "acme": key "limits.maxUsers": must be a positive integer (at most 2147483647) (got ${JSON.stringify(value)})`,
    ]);
  });

  it.each([0, -0.5, "abc", "", true, 2 ** 31])("refuses maxStorageGb %j", (value) => {
    expect(tenantProblems(tenant({ limits: { maxStorageGb: value } }))).toEqual([
      `tenant "acme": key "limits.maxStorageGb": must be a positive number of GB (at most 2147483647; decimals allowed, e.g. 0.5) (got ${JSON.stringify(value)})`,
    ]);
  });

  it.each([
    [0.5, 0.5],
    ["0.25", 0.25],
    [3, 3],
  ])("accepts a fractional maxStorageGb %j", (value, parsed) => {
    const config = parseStackConfig({
      platform,
      tenants: { acme: tenant({ limits: { maxStorageGb: value } }) },
    });
    expect(config.tenants[0].limits.maxStorageGb).toBe(parsed);
  });

  it("refuses unknown tiers and bad tier limits", () => {
    expect(problemsOf({ tiers: { gold: {}, basic: { maxUsers: 0, maxUser: 3 } } })).toEqual([
      'tiers: key "basic.maxUsers": must be a positive integer (at most 2147483647) (got 0)',
      'tiers: key "basic.maxUser": is not a known key (did you mean "maxUsers"?)',
      'tiers: key "gold": is not a known key; known keys: basic, pro, enterprise',
    ]);
    expect(problemsOf({ tiers: [1] })).toEqual([
      "tiers: must be a map from tier (basic, pro, enterprise) to limits (got a list)",
    ]);
  });

  it("refuses more declared snapshots than the tenant's maxSnapshots", () => {
    const snapshots = { s1: {}, s2: {}, s3: {} };
    expect(tenantProblems(tenant({ limits: { maxSnapshots: 2 }, snapshots }))).toEqual([
      'tenant "acme": key "snapshots": must declare at most maxSnapshots = 2 snapshots (declares 3)',
    ]);
    expect(() =>
      parseStackConfig({ platform, tenants: { acme: tenant({ limits: { maxSnapshots: 3 }, snapshots }) } }),
    ).not.toThrow();
  });
});

describe("parseStackConfig: invalid tenants name tenant, key and rule", () => {
  it.each([
    ["Acme", 'tenant "Acme": key "subdomain": must be lowercase (no uppercase letters) (got "Acme")'],
    ["ab", 'tenant "ab": key "subdomain": must be at least 3 characters long (got "ab")'],
    [
      "ac_me",
      'tenant "ac_me": key "subdomain": may contain only lowercase letters a-z, digits 0-9 and hyphens (got "ac_me")',
    ],
    ["-acme", 'tenant "-acme": key "subdomain": must not start or end with a hyphen (got "-acme")'],
    [
      "pr--acme",
      'tenant "pr--acme": key "subdomain": must not contain "--" (reserved for preview hosts) (got "pr--acme")',
    ],
    ["www", 'tenant "www": key "subdomain": is a reserved name (got "www")'],
    ["postgres", 'tenant "postgres": key "subdomain": is a reserved name (got "postgres")'],
  ])("bad subdomain %j", (subdomain, message) => {
    expect(tenantProblems(tenant(), subdomain)).toEqual([message]);
  });

  it("refuses a subdomain that makes the host name too long", () => {
    const domain = `${"d".repeat(60)}.${"e".repeat(60)}.${"f".repeat(60)}.example`;
    const subdomain = "s".repeat(63);
    expect(problemsOf({ platform: { ...platform, domain }, tenants: { [subdomain]: tenant() } })).toEqual([
      `tenant "${subdomain}": key "subdomain": with the domain "${domain}" must make a host name of at most 253 characters (got "${subdomain}")`,
    ]);
  });

  it("unknown tier", () => {
    expect(tenantProblems(tenant({ tier: "gold" }))).toEqual([
      'tenant "acme": key "tier": must be one of basic, pro, enterprise (got "gold")',
    ]);
  });

  it("unknown state", () => {
    expect(tenantProblems(tenant({ state: "deleted" }))).toEqual([
      'tenant "acme": key "state": must be one of active, suspended, archived (got "deleted")',
    ]);
  });

  it("missing tier and adminEmail", () => {
    expect(tenantProblems({})).toEqual([
      'tenant "acme": key "tier": is required; must be one of basic, pro, enterprise',
      'tenant "acme": key "adminEmail": is required; must be an email address',
    ]);
    expect(tenantProblems(null)).toEqual(tenantProblems({}));
  });

  it.each(["boss", "boss@", "@acme.example", "boss@acme", "boss @acme.example", 42])(
    "bad adminEmail %j",
    (email) => {
      expect(tenantProblems(tenant({ adminEmail: email }))).toEqual([
        `tenant "acme": key "adminEmail": must be an email address (got ${JSON.stringify(email)})`,
      ]);
    },
  );

  it("restore target that names no snapshot", () => {
    expect(tenantProblems(tenant({ restore: { snapshot: "nightly" } }))).toEqual([
      `tenant "acme": key "restore.snapshot": must name a snapshot declared in this tenant's snapshots (declared: none) (got "nightly")`,
    ]);
    expect(
      tenantProblems(
        tenant({ snapshots: { "before-upgrade": {}, weekly: {} }, restore: { snapshot: "nightly" } }),
      ),
    ).toEqual([
      `tenant "acme": key "restore.snapshot": must name a snapshot declared in this tenant's snapshots (declared: before-upgrade, weekly) (got "nightly")`,
    ]);
  });

  it.each([
    "yesterday",
    "2026-11-26",
    "2026-11-26T10:00:00",
    "2026-11-26 10:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-13-01T10:00:00Z",
    "2026-11-26T24:00:00Z",
    "2026-11-26T10:60:00Z",
    "2026-11-26T10:00:00+25:00",
    "26-11-2026T10:00:00Z",
    "1764151200",
  ])("malformed restore time %j", (time) => {
    expect(tenantProblems(tenant({ restore: { time } }))).toEqual([
      `tenant "acme": key "restore.time": must be an ISO-8601 timestamp with a timezone, e.g. "2026-11-26T10:00:00Z" (got ${JSON.stringify(time)})`,
    ]);
  });

  it.each([
    "2026-11-26T10:00:00Z",
    "2026-11-26T10:00Z",
    "2026-11-26T10:00:00.123456+02:00",
    "2024-02-29T23:59:59-0530",
    "2026-11-26T10:00:00+01",
  ])("well-formed restore time %j", (time) => {
    expect(isIsoTimestampWithZone(time)).toBe(true);
  });

  it.each(["0/ZZ", "5A3B2C10", "0/", "/1", "123456789/0", "0/5A3B2C10 ", 5])(
    "malformed restore lsn %j",
    (lsn) => {
      expect(tenantProblems(tenant({ restore: { lsn } }))).toEqual([
        `tenant "acme": key "restore.lsn": must be a PostgreSQL LSN like "0/5A3B2C10" (two hexadecimal numbers of 1 to 8 digits) (got ${JSON.stringify(lsn)})`,
      ]);
    },
  );

  it("restore must name exactly one target", () => {
    expect(tenantProblems(tenant({ restore: {} }))).toEqual([
      'tenant "acme": key "restore": must name exactly one of snapshot, time, lsn (none given)',
    ]);
    expect(tenantProblems(tenant({ restore: { time: "2026-11-26T10:00:00Z", lsn: "0/1" } }))).toEqual([
      'tenant "acme": key "restore": must name exactly one of snapshot, time, lsn (got time and lsn)',
    ]);
    expect(tenantProblems(tenant({ restore: "before-upgrade" }))).toEqual([
      'tenant "acme": key "restore": must be a map with one of snapshot, time, lsn (got "before-upgrade")',
    ]);
    expect(tenantProblems(tenant({ restore: { snapshots: "x" } }))).toEqual([
      'tenant "acme": key "restore": must name exactly one of snapshot, time, lsn (none given)',
      'tenant "acme": key "restore.snapshots": is not a known key (did you mean "snapshot"?)',
    ]);
  });

  it("bad snapshot names and settings", () => {
    expect(tenantProblems(tenant({ snapshots: { Nightly: {}, "-x": {}, ok: { keep: true } } }))).toEqual([
      'tenant "acme": key "snapshots.Nightly": must be a snapshot name: a-z or 0-9 first, then a-z, 0-9 or hyphens, at most 63 characters (got "Nightly")',
      'tenant "acme": key "snapshots.-x": must be a snapshot name: a-z or 0-9 first, then a-z, 0-9 or hyphens, at most 63 characters (got "-x")',
      'tenant "acme": key "snapshots.ok": must be {} (a snapshot takes no settings) (got a map)',
    ]);
    expect(tenantProblems(tenant({ snapshots: ["nightly"] }))).toEqual([
      'tenant "acme": key "snapshots": must be a map from snapshot name to {} (got a list)',
    ]);
  });

  it("unknown tenant keys are refused, with a hint for typos", () => {
    expect(tenantProblems({ teir: "pro", adminEmail: "boss@acme.example", tier: "pro" })).toEqual([
      'tenant "acme": key "teir": is not a known key (did you mean "tier"?)',
    ]);
    expect(tenantProblems(tenant({ adminemail: "x@y.example" }))).toEqual([
      'tenant "acme": key "adminemail": is not a known key (did you mean "adminEmail"?)',
    ]);
    expect(tenantProblems(tenant({ color: "blue" }))).toEqual([
      'tenant "acme": key "color": is not a known key; known keys: tier, adminEmail, state, template, limits, dbServer, snapshots, restore, forceDestroy, retentionDays, preview, credentialRotation',
    ]);
    expect(tenantProblems(tenant({ limits: { maxUser: 3 } }))).toEqual([
      'tenant "acme": key "limits.maxUser": is not a known key (did you mean "maxUsers"?)',
    ]);
  });

  it("template `default` with no template declared", () => {
    expect(problemsOf({ tenants: { acme: tenant() } })).toEqual([
      'tenant "acme": key "template": must name a template declared in platform.templates (declared: none) (got "default")',
    ]);
    expect(tenantProblems(tenant({ template: "enterprise-18" }))).toEqual([
      'tenant "acme": key "template": must name a template declared in platform.templates (declared: default) (got "enterprise-18")',
    ]);
  });

  it("other tenant keys", () => {
    expect(tenantProblems(tenant({ forceDestroy: "yes", retentionDays: -1, dbServer: "" }))).toEqual([
      'tenant "acme": key "dbServer": must be a non-empty string without leading or trailing whitespace (got "")',
      'tenant "acme": key "forceDestroy": must be true or false (got "yes")',
      'tenant "acme": key "retentionDays": must be an integer from 0 to 36500 (days) (got -1)',
    ]);
    expect(tenantProblems("pro")).toEqual(['tenant "acme": must be a map of tenant settings (got "pro")']);
  });

  it("tenants must be a map", () => {
    expect(problemsOf({ tenants: [{ subdomain: "acme" }] })).toEqual([
      "tenants: must be a map from subdomain to tenant settings (got a list)",
    ]);
  });
});

describe("parseStackConfig: invalid platform", () => {
  it.each([
    [{ target: "aws" }, 'platform: key "target": must be one of local, kubernetes, docker (got "aws")'],
    [{ postgresPort: 0 }, 'platform: key "postgresPort": must be an integer from 1 to 65535 (got 0)'],
    [{ routerPort: 65536 }, 'platform: key "routerPort": must be an integer from 1 to 65535 (got 65536)'],
    [
      { routerPort: 15432 },
      'platform: key "routerPort": must differ from postgresPort (both are 15432) (got 15432)',
    ],
    [
      { archiveTimeoutSeconds: 0 },
      'platform: key "archiveTimeoutSeconds": must be an integer from 1 to 3600 (seconds) (got 0)',
    ],
    [
      { archiveTimeoutSeconds: 3601 },
      'platform: key "archiveTimeoutSeconds": must be an integer from 1 to 3600 (seconds) (got 3601)',
    ],
    [
      { domain: "Example.COM" },
      'platform: key "domain": must be a lowercase DNS name (labels of a-z, 0-9 and inner hyphens, at most 253 characters) (got "Example.COM")',
    ],
    [
      { odooHttp: "127.0.0.1" },
      'platform: key "odooHttp": must be "host:port" (host name, IPv4 address or [IPv6] address; port 1 to 65535) (got "127.0.0.1")',
    ],
    [
      { odooWebsocket: "300.0.0.1:8072" },
      'platform: key "odooWebsocket": must be "host:port" (host name, IPv4 address or [IPv6] address; port 1 to 65535) (got "300.0.0.1:8072")',
    ],
    [
      { stateDir: "" },
      'platform: key "stateDir": must be a non-empty string without leading or trailing whitespace (got "")',
    ],
    [
      { backups: { retentionFull: 0 } },
      'platform: key "backups.retentionFull": must be an integer from 1 to 9999999 (full backups kept) (got 0)',
    ],
    [{ postgresport: 1 }, 'platform: key "postgresport": is not a known key (did you mean "postgresPort"?)'],
    [
      { templates: { default: { fromDump: "/a.sql", fromCommand: "odoo" } } },
      'platform: key "templates.default": must have exactly one of fromDump, fromCommand (got fromDump and fromCommand)',
    ],
    [
      { templates: { "Big Template": { fromDump: "/a.sql" } } },
      'platform: key "templates.Big Template": must be a template name: a-z or 0-9 first, then a-z, 0-9, underscores or hyphens, at most 63 characters (got "Big Template")',
    ],
    [
      { undo: { excludeTables: ["bus_bus", "Bad Table"] } },
      'platform: key "undo.excludeTables.1": must be a table name pattern: letters, digits, _ and the wildcard *, optionally schema-qualified (schema.table) (got "Bad Table")',
    ],
    [
      { undo: { retentionDays: 0 } },
      'platform: key "undo.retentionDays": must be an integer from 1 to 3650 (days) (got 0)',
    ],
    [
      { quotas: { checkSchedule: "every 10 minutes" } },
      'platform: key "quotas.checkSchedule": must be a 5-field cron expression (minute hour day-of-month month day-of-week, UTC): must have 5 fields (minute hour day-of-month month day-of-week), got 3 (got "every 10 minutes")',
    ],
  ])("%j", (extra, message) => {
    expect(problemsOf({ platform: { ...platform, ...extra } })).toEqual([message]);
  });

  it("accepts host names and IPv6 upstreams", () => {
    const config = parseStackConfig({
      platform: {
        odooHttp: "odoo.loomworks.svc.cluster.local:8069",
        odooWebsocket: "[::1]:8072",
        target: "docker",
      },
    });
    expect(config.platform.odooHttp).toBe("odoo.loomworks.svc.cluster.local:8069");
    expect(config.platform.odooWebsocket).toBe("[::1]:8072");
  });

  it("never shows the backup passphrase", () => {
    const secret = "hunter2-hunter2";
    const problems = problemsOf({
      platform: { backups: { encryptionPassphrase: ` ${secret}`, encryptionPasphrase: secret } },
    });
    expect(problems).toEqual([
      'platform: key "backups.encryptionPassphrase": must be a non-empty string without leading or trailing whitespace (got a secret value)',
      'platform: key "backups.encryptionPasphrase": is not a known key (did you mean "encryptionPassphrase"?)',
    ]);
    expect(problems.join("\n")).not.toContain(secret);
    expect(problemsOf({ platform: { backups: "x", target: 1 } })).toEqual([
      'platform: key "target": must be one of local, kubernetes, docker (got 1)',
      'platform: key "backups": must be a map of backup settings (retentionFull, encryptionPassphrase, schedule, offsite) (got "x")',
    ]);
  });
});

describe("parseStackConfig: reporting", () => {
  it("reports every problem together, one per line, platform first and tenants in order", () => {
    let error: unknown;
    try {
      parseStackConfig({
        platform: { ...platform, postgresPort: "x" },
        tiers: { gold: {} },
        tenants: {
          zeta: tenant({ tier: "gold", state: "gone" }),
          Acme: tenant(),
          beta: tenant({ restore: { time: "noon" }, teir: "pro" }),
          fine: tenant(),
        },
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toBeInstanceOf(Error);
    const configError = error as ConfigError;
    expect(configError.name).toBe("ConfigError");
    expect(configError.__pulumiRunError).toBe(true);
    expect(configError.message.split("\n")).toEqual([
      'platform: key "postgresPort": must be an integer from 1 to 65535 (got "x")',
      'tiers: key "gold": is not a known key; known keys: basic, pro, enterprise',
      'tenant "Acme": key "subdomain": must be lowercase (no uppercase letters) (got "Acme")',
      'tenant "beta": key "restore.time": must be an ISO-8601 timestamp with a timezone, e.g. "2026-11-26T10:00:00Z" (got "noon")',
      'tenant "beta": key "teir": is not a known key (did you mean "tier"?)',
      'tenant "zeta": key "tier": must be one of basic, pro, enterprise (got "gold")',
      'tenant "zeta": key "state": must be one of active, suspended, archived (got "gone")',
    ]);
    for (const line of configError.problems) expect(line).toMatch(LINE);
  });

  it("returns tenants sorted by subdomain", () => {
    const config = parseStackConfig({
      platform,
      tenants: { zeta: tenant(), acme: tenant(), "123": tenant(), beta: tenant(), "a-b": tenant() },
    });
    expect(config.tenants.map((t) => t.subdomain)).toEqual(["123", "a-b", "acme", "beta", "zeta"]);
  });

  it("case-folding collisions cannot happen: only lowercase subdomains are accepted", () => {
    // Map keys are unique, and a key that differs from another only in case has an uppercase
    // letter, which the subdomain rule refuses; so two accepted tenants never share a database.
    expect(problemsOf({ platform, tenants: { acme: tenant(), ACME: tenant() } })).toEqual([
      'tenant "ACME": key "subdomain": must be lowercase (no uppercase letters) (got "ACME")',
    ]);
  });
});

describe("loadStackConfig", () => {
  afterEach(() => {
    pulumi.runtime.setAllConfig({});
  });

  it("reads the loomworks namespace from the Pulumi configuration", () => {
    pulumi.runtime.setAllConfig(
      {
        "loomworks:platform": JSON.stringify({
          ...platform,
          backups: { encryptionPassphrase: "s3cret-passphrase" },
        }),
        "loomworks:tenants": JSON.stringify({ acme: tenant() }),
        "other:setting": "x",
      },
      ["loomworks:platform"],
    );
    const config = loadStackConfig();
    expect(config.platform.backups.encryptionPassphrase).toBe("s3cret-passphrase");
    expect(config.tiers).toEqual(DEFAULT_TIER_LIMITS);
    expect(config.tenants.map((t) => t.subdomain)).toEqual(["acme"]);
  });

  it("refuses unknown loomworks keys and values that are not JSON maps", () => {
    pulumi.runtime.setAllConfig({
      "loomworks:platform": "local",
      "loomworks:tenant": JSON.stringify({ acme: tenant() }),
    });
    expect(() => loadStackConfig()).toThrow(ConfigError);
    try {
      loadStackConfig();
    } catch (e) {
      expect((e as ConfigError).problems).toEqual([
        'loomworks: key "tenant": is not a known key (did you mean "tenants"?)',
        'platform: must be a map of platform settings (got "local")',
      ]);
    }
  });
});

describe("parseStackConfig: backups.schedule", () => {
  it("accepts cron overrides and leaves the schedule out when not given", () => {
    const config = parseStackConfig({
      platform: { ...platform, backups: { schedule: { full: "30 2 * * 6", autoSnapshots: "*/30 * * * *" } } },
    });
    expect(config.platform.backups).toEqual({
      retentionFull: 2,
      schedule: { full: "30 2 * * 6", autoSnapshots: "*/30 * * * *" },
    });
    expect(parseStackConfig({ platform }).platform.backups).toEqual({ retentionFull: 2 });
  });

  it("refuses bad cron expressions and unknown schedule keys, naming the key", () => {
    expect(
      problemsOf({
        platform: {
          ...platform,
          backups: { schedule: { full: "0 25 * * 0", diff: "daily", verify: 3, incremental: "* * * * *" } },
        },
      }),
    ).toEqual([
      'platform: key "backups.schedule.full": must be a 5-field cron expression (minute hour day-of-month month day-of-week, UTC): hour value 25 is out of range 0-23 (got "0 25 * * 0")',
      'platform: key "backups.schedule.diff": must be a 5-field cron expression (minute hour day-of-month month day-of-week, UTC): must have 5 fields (minute hour day-of-month month day-of-week), got 1 (got "daily")',
      'platform: key "backups.schedule.verify": must be a 5-field cron expression (minute hour day-of-month month day-of-week, UTC) (got 3)',
      'platform: key "backups.schedule.incremental": is not a known key; known keys: full, diff, verify, autoSnapshots',
    ]);
  });
});
