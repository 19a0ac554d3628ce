/**
 * odoo.conf rendering and worker sizing (lib/odoo/config.ts), the local target's file and its
 * dynamic provider (lib/odoo/localConfig.ts, dynamic-providers/localOdooConfig.ts, on a temporary
 * directory), and the `loomworks:platform.odoo` schema (infra/config/odoo.ts).
 */
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MIN_WORKER_MEMORY_MB,
  ODOO_SECRET_ENV,
  WORKER_MEMORY_SHARE,
  odooSizing,
  odooThreadedSizing,
  parseOdooConfig,
  renderOdooConfig,
  secretReferences,
  type OdooConfigOptions,
} from "../../lib/odoo/config";
import { checkLocalOdooConfig, diffLocalOdooConfig } from "../../lib/odoo/provider";
import {
  createLocalOdooConfig,
  deleteLocalOdooConfig,
  expectedLocalOdooConfig,
  localOdooConfigPath,
  readLocalOdooConfig,
  renderLocalOdooConfig,
  updateLocalOdooConfig,
  writeLocalOdooConfig,
  type LocalOdooConfigInputs,
  type LocalOdooConfigSpec,
} from "../../lib/odoo/localConfig";
import { loadTemplate, templatePlaceholders } from "../../lib/templates/render";
import * as pulumi from "@pulumi/pulumi";
import { DYNAMIC, installMocks, isSecretInput, plain, promiseOf, registered } from "../helpers/pulumi-mocks";

// Pulumi mocks for the LocalOdooConfig resource test; the imports below declare no resource.
const registrations = installMocks();

import { LocalOdooConfig } from "../../dynamic-providers/localOdooConfig";
import { DEFAULT_ODOO_IMAGE, ODOO_RULES, odooConfigSchema } from "../../infra/config/odoo";

const MiB = 1024 * 1024;

const base: OdooConfigOptions = {
  adminPasswd: "a-very-strong-master-password",
  dbHost: "db.internal",
  dbPort: 5432,
  dbUser: "loomworks_erp",
  dbPassword: "erp-password",
  dataDir: "/var/lib/odoo",
  addonsPath: "/opt/loomworks/addons,/usr/lib/python3/dist-packages/odoo/addons",
  cpu: 2,
  memoryMb: 4096,
};

describe("odooSizing", () => {
  it.each([
    // cpu, memoryMb -> workers, limit_memory_hard MiB
    [2, 4096, 5, 655],
    [1, 2048, 3, 546],
    [0.5, 2048, 2, 819],
    [4, 2048, 3, 546],
    [8, 16384, 17, 771],
    [1, 1024, 1, 819],
    [16, 4096, 6, 546],
  ])("cpu %s, %s MiB -> %s workers of %s MiB", (cpu, memoryMb, workers, hardMb) => {
    const s = odooSizing(cpu, memoryMb);
    expect(s.workers).toBe(workers);
    expect(s.limitMemoryHard).toBe(hardMb * MiB);
    expect(s.limitMemorySoft).toBe(Math.floor(hardMb * MiB * 0.8));
    expect(s.maxCronThreads).toBe(1);
    expect(s.dbMaxConn).toBe(Math.max(8, workers * 2 + 4));
  });

  it("keeps workers = 2 × CPU + 1 while memory allows, and workers × limit_memory_hard within 80 % of memory", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 512 }).map((n) => n / 8),
        fc.integer({ min: 1024, max: 1024 * 1024 }),
        (cpu, memoryMb) => {
          const s = odooSizing(cpu, memoryMb);
          const byCpu = Math.floor(2 * cpu) + 1;
          expect(s.workers).toBeGreaterThanOrEqual(1);
          expect(s.workers).toBeLessThanOrEqual(byCpu);
          expect(s.workers * s.limitMemoryHard).toBeLessThanOrEqual(memoryMb * WORKER_MEMORY_SHARE * MiB);
          expect(s.limitMemoryHard).toBeGreaterThanOrEqual(MIN_WORKER_MEMORY_MB * MiB);
          // Fewer workers than the CPU allows only when one more would go under MIN_WORKER_MEMORY_MB.
          if (s.workers < byCpu)
            expect((memoryMb * WORKER_MEMORY_SHARE) / (s.workers + 1)).toBeLessThan(MIN_WORKER_MEMORY_MB);
          expect(s.limitMemorySoft).toBeLessThan(s.limitMemoryHard);
        },
      ),
    );
  });

  it.each([
    [0, 4096],
    [-1, 4096],
    [2, 0],
    [Number.NaN, 4096],
    [2, Number.POSITIVE_INFINITY],
  ])("refuses cpu %s, memory %s", (cpu, memoryMb) => {
    expect(() => odooSizing(cpu, memoryMb)).toThrow(/odoo sizing needs cpu > 0 and memory > 0/);
  });

  it("threaded mode (development) has no workers", () => {
    expect(odooThreadedSizing(2, 4096)).toEqual({
      workers: 0,
      maxCronThreads: 1,
      limitMemoryHard: 3276 * MiB,
      limitMemorySoft: Math.floor(3276 * MiB * 0.8),
      dbMaxConn: 32,
    });
  });
});

describe("renderOdooConfig", () => {
  it("fills every placeholder of templates/odoo.conf.tmpl", () => {
    const text = renderOdooConfig(base);
    expect(text).not.toMatch(/\{\{/);
    expect(templatePlaceholders(loadTemplate("odoo.conf.tmpl"))).toEqual(
      [
        "addons_path",
        "admin_passwd",
        "cpu",
        "data_dir",
        "db_host",
        "db_maxconn",
        "db_password",
        "db_port",
        "db_sslmode",
        "db_user",
        "gevent_port",
        "http_interface",
        "http_port",
        "limit_memory_hard",
        "limit_memory_soft",
        "log_level",
        "logfile",
        "max_cron_threads",
        "memory_mb",
        "mode",
        "server_wide_modules",
        "session_redis_prefix",
        "session_redis_url",
        "session_store",
        "tenant_files",
        "workers",
      ].sort(),
    );
  });

  it("sets the multi-tenant, proxy and security options and the sizing", () => {
    const o = parseOdooConfig(renderOdooConfig(base));
    expect(o).toEqual({
      dbfilter: "^%d$",
      list_db: "False",
      db_name: "False",
      proxy_mode: "True",
      admin_passwd: "a-very-strong-master-password",
      db_host: "db.internal",
      db_port: "5432",
      db_user: "loomworks_erp",
      db_password: "erp-password",
      db_sslmode: "prefer",
      db_maxconn: "14",
      db_template: "template0",
      http_interface: "0.0.0.0",
      http_port: "8069",
      gevent_port: "8072",
      data_dir: "/var/lib/odoo",
      addons_path: "/opt/loomworks/addons,/usr/lib/python3/dist-packages/odoo/addons",
      workers: "5",
      max_cron_threads: "1",
      limit_memory_soft: String(Math.floor(655 * MiB * 0.8)),
      limit_memory_hard: String(655 * MiB),
      limit_time_cpu: "600",
      limit_time_real: "1200",
      limit_request: "65536",
      session_store: "filesystem",
      session_redis_url: "False",
      session_redis_prefix: "loomworks",
      without_demo: "all",
      server_wide_modules: "base,web",
      log_level: "info",
      logfile: "",
    });
    expect(renderOdooConfig(base)).toContain("; --- processes, prefork, sized from 2 CPU and 4096 MiB");
  });

  it("writes secret references for the entrypoint to fill in, and lists them", () => {
    const text = renderOdooConfig({
      ...base,
      adminPasswd: { fromEnv: ODOO_SECRET_ENV.adminPasswd },
      dbPassword: { fromEnv: ODOO_SECRET_ENV.dbPassword },
      redisUrl: { fromEnv: ODOO_SECRET_ENV.redisUrl },
    });
    const o = parseOdooConfig(text);
    expect([o.admin_passwd, o.db_password, o.session_redis_url, o.session_store]).toEqual([
      "${LOOMWORKS_ADMIN_PASSWD}",
      "${LOOMWORKS_DB_PASSWORD}",
      "${LOOMWORKS_REDIS_URL}",
      "redis",
    ]);
    expect(secretReferences(text)).toEqual({
      admin_passwd: "LOOMWORKS_ADMIN_PASSWD",
      db_password: "LOOMWORKS_DB_PASSWORD",
      session_redis_url: "LOOMWORKS_REDIS_URL",
    });
    expect(secretReferences(renderOdooConfig(base))).toEqual({});
  });

  it("stores sessions in Redis when given a URL, with the server-wide modules and log level asked for", () => {
    const o = parseOdooConfig(
      renderOdooConfig({
        ...base,
        redisUrl: "redis://redis:6379/0",
        redisPrefix: "lw-prod",
        serverWideModules: ["base", "web", "loomworks_session"],
        logLevel: "warn",
        dbSslmode: "require",
      }),
    );
    expect(o).toMatchObject({
      session_store: "redis",
      session_redis_url: "redis://redis:6379/0",
      session_redis_prefix: "lw-prod",
      server_wide_modules: "base,web,loomworks_session",
      log_level: "warn",
      db_sslmode: "require",
    });
  });

  it("threaded mode for development: workers = 0", () => {
    const text = renderOdooConfig({ ...base, mode: "threaded" });
    expect(parseOdooConfig(text)).toMatchObject({ workers: "0", db_maxconn: "32" });
    expect(text).toContain("; --- processes, threaded (development), sized from 2 CPU");
  });

  it.each<[string, Partial<OdooConfigOptions>, RegExp]>([
    ["a short admin_passwd", { adminPasswd: "short" }, /admin_passwd must be at least 16 characters/],
    ["a line break", { dbPassword: "a\nworkers = 99" }, /db_password must not contain a line break/],
    ["surrounding whitespace", { dbHost: " db" }, /db_host must not start or end with whitespace/],
    ["an empty db_user", { dbUser: "" }, /db_user must not be empty/],
    [
      "a literal that looks like a reference",
      { dbPassword: "${LOOMWORKS_X}" },
      /looks like a secret reference/,
    ],
    [
      "a bad reference",
      { dbPassword: { fromEnv: "PGPASSWORD" } },
      /must name a LOOMWORKS_\[A-Z0-9_\]\+ variable/,
    ],
    ["a bad port", { dbPort: 70000 }, /db_port must be an integer from 1 to 65535/],
    ["a bad module", { serverWideModules: ["web", "Bad-Module"] }, /"Bad-Module" is not a module name/],
    ["no cpu", { cpu: 0 }, /odoo sizing needs cpu > 0/],
  ])("refuses %s", (_what, change, message) => {
    expect(() => renderOdooConfig({ ...base, ...change })).toThrow(message);
  });
});

describe("parseOdooConfig", () => {
  it("reads [options] only, skips comments, keeps the last value and values with = and ;", () => {
    expect(
      parseOdooConfig("; c\n[other]\nx = 1\n[options]\n# c\na = 1\nb = x=y;z\na = 2\n\n[after]\nc = 3\n"),
    ).toEqual({ a: "2", b: "x=y;z" });
  });

  it("refuses a line that is not key = value", () => {
    expect(() => parseOdooConfig("[options]\nnot an option\n")).toThrow(/not a "key = value" line/);
  });
});

// ---------------------------------------------------------------------------------------------
// The local target's file and its provider

const spec = (stateDir: string, extra: Partial<LocalOdooConfigSpec> = {}): LocalOdooConfigInputs => ({
  stateDir,
  adminPasswd: "local-master-password-0123",
  dbHost: "127.0.0.1",
  dbPort: 15432,
  dbUser: "loomworks_erp",
  dbPassword: "local-erp-password",
  dataDir: path.join(stateDir, "odoo", "data"),
  addonsPath: "/srv/loomworks/addons",
  cpu: 1,
  memoryMb: 2048,
  ...extra,
});

describe("LocalOdooConfig (lib/odoo/localConfig.ts and its provider)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-odoo-conf-"));
  });
  afterAll(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it("renders with the secrets written in and listens on 127.0.0.1 by default", () => {
    const o = parseOdooConfig(renderLocalOdooConfig(spec("/srv/state")));
    expect(o).toMatchObject({
      admin_passwd: "local-master-password-0123",
      db_password: "local-erp-password",
      http_interface: "127.0.0.1",
      db_port: "15432",
      workers: "3",
    });
    expect(localOdooConfigPath("/srv/state")).toBe("/srv/state/odoo/odoo.conf");
    expect(localOdooConfigPath("rel")).toBe(path.resolve("rel", "odoo", "odoo.conf"));
  });

  it("writes <stateDir>/odoo/odoo.conf mode 0600 in a 0700 directory, atomically and idempotently", async () => {
    const stateDir = path.join(dir, "write");
    const first = await writeLocalOdooConfig(spec(stateDir));
    const again = await writeLocalOdooConfig(spec(stateDir));
    expect(again).toEqual(first);
    expect(first).toEqual({
      path: path.join(stateDir, "odoo", "odoo.conf"),
      sha256: expectedLocalOdooConfig(spec(stateDir)).sha256,
      mode: "0600",
      workers: 3,
      limitMemoryHard: 546 * MiB,
    });
    expect(await fsp.readFile(first.path, "utf8")).toBe(renderLocalOdooConfig(spec(stateDir)));
    expect((await fsp.stat(first.path)).mode & 0o777).toBe(0o600);
    expect((await fsp.stat(path.dirname(first.path))).mode & 0o777).toBe(0o700);
    expect(await fsp.readdir(path.dirname(first.path))).toEqual(["odoo.conf"]);
  });

  it("lifecycle: create, read unchanged, no diff; a hand edit or chmod is drift that update repairs", async () => {
    const inputs = spec(path.join(dir, "lifecycle"));
    const created = await createLocalOdooConfig(inputs);
    const outs = created.outs;
    expect(created.id).toBe(`local-odoo-config:${outs.path}`);
    expect(outs).toMatchObject({ ...inputs, workers: 3, limitMemoryHard: 546 * MiB, mode: "0600" });

    expect(await readLocalOdooConfig(outs)).toEqual(outs);
    expect(diffLocalOdooConfig(outs, inputs).changes).toBe(false);

    await fsp.appendFile(outs.path, "workers = 64\n");
    const edited = await readLocalOdooConfig(outs);
    expect(edited?.sha256).not.toBe(outs.sha256);
    expect(diffLocalOdooConfig(edited!, inputs)).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    const repaired = await updateLocalOdooConfig(inputs);
    expect(repaired).toEqual(outs);
    expect(await fsp.readFile(outs.path, "utf8")).toBe(renderLocalOdooConfig(inputs));

    await fsp.chmod(outs.path, 0o644);
    const loosened = await readLocalOdooConfig(outs);
    expect(loosened?.mode).toBe("0644");
    expect(diffLocalOdooConfig(loosened!, inputs).changes).toBe(true);
    await updateLocalOdooConfig(inputs);
    expect((await fsp.stat(outs.path)).mode & 0o777).toBe(0o600);
  });

  it("lifecycle: a removed file leaves the state; delete removes the file and is idempotent", async () => {
    const inputs = spec(path.join(dir, "removed"));
    const { outs } = await createLocalOdooConfig(inputs);
    await fsp.rm(outs.path);
    expect(await readLocalOdooConfig(outs)).toBeUndefined();
    await createLocalOdooConfig(inputs);
    await deleteLocalOdooConfig(outs);
    await expect(fsp.stat(outs.path)).rejects.toMatchObject({ code: "ENOENT" });
    await expect(fsp.stat(path.dirname(outs.path))).rejects.toMatchObject({ code: "ENOENT" });
    await deleteLocalOdooConfig(outs);
  });

  it("lifecycle: diff updates in place on any input, replaces on a new stateDir", async () => {
    const inputs = spec(path.join(dir, "diff"));
    const { outs: olds } = await createLocalOdooConfig(inputs);
    expect(diffLocalOdooConfig(olds, { ...inputs, cpu: 2 })).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    expect(diffLocalOdooConfig(olds, { ...inputs, dbPassword: "rotated-password" })).toMatchObject({
      changes: true,
      replaces: [],
    });
    expect(diffLocalOdooConfig(olds, { ...inputs, redisUrl: "redis://127.0.0.1:6379/0" })).toMatchObject({
      changes: true,
      replaces: [],
    });
    expect(diffLocalOdooConfig(olds, { ...inputs, stateDir: path.join(dir, "elsewhere") })).toMatchObject({
      changes: true,
      replaces: ["stateDir"],
    });
  });

  it("lifecycle: check names the rule of inputs that cannot render", () => {
    expect(checkLocalOdooConfig(spec(dir, { adminPasswd: "short" }))).toEqual([
      { property: "adminPasswd", reason: "odoo.conf: admin_passwd must be at least 16 characters" },
    ]);
    expect(checkLocalOdooConfig(spec(dir))).toEqual([]);
  });

  it("the resource: type loomworks:LocalOdooConfig, its inputs, the passwords sent as secrets", async () => {
    const first = registrations.length;
    const inputs = spec("/srv/state", { redisUrl: "redis://127.0.0.1:6379/0" });
    const resource = new LocalOdooConfig("odoo-config", {
      ...inputs,
      adminPasswd: pulumi.secret(inputs.adminPasswd),
      dbPassword: pulumi.secret(inputs.dbPassword),
    });
    await registered(resource);
    const regs = registrations.slice(first);
    expect(regs.map((r) => `${r.type}::${r.name}`)).toEqual([`${DYNAMIC}LocalOdooConfig::odoo-config`]);
    const sent = regs[0].inputs;
    expect(plain(sent)).toEqual(inputs);
    expect([
      isSecretInput(sent.adminPasswd),
      isSecretInput(sent.dbPassword),
      isSecretInput(sent.dbHost),
    ]).toEqual([true, true, false]);
    expect(await pulumi.isSecret(resource.path)).toBe(false);
    expect(await promiseOf(resource.id)).toBe("odoo-config-id");
  });
});

// ---------------------------------------------------------------------------------------------
// loomworks:platform.odoo

function issues(raw: unknown): string[] {
  const r = odooConfigSchema.safeParse(raw);
  expect(r.success).toBe(false);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("odooConfigSchema", () => {
  it("applies the defaults to an empty or null section", () => {
    const defaults = {
      image: DEFAULT_ODOO_IMAGE,
      cpu: 2,
      memoryMb: 4096,
      dbUser: "loomworks_erp",
      updateModules: [],
      serverWideModules: ["base", "web"],
      logLevel: "info",
    };
    expect(odooConfigSchema.parse({})).toEqual(defaults);
    expect(odooConfigSchema.parse(null)).toEqual(defaults);
    expect(odooConfigSchema.parse({ image: null, cpu: null })).toEqual(defaults);
  });

  it("accepts a full section, numbers written as strings", () => {
    expect(
      odooConfigSchema.parse({
        image: "registry.example.com:5000/loomworks/erp:18.0-20250725@sha256:" + "a".repeat(64),
        addonsBuildContext: "../loomworks-addons",
        cpu: "0.5",
        memoryMb: "2048",
        redisUrl: "rediss://:secret@redis.internal:6380/2",
        dbUser: "erp",
        updateModules: ["loomworks_ai"],
        serverWideModules: ["base", "web", "loomworks_session"],
        logLevel: "warn",
      }),
    ).toEqual({
      image: "registry.example.com:5000/loomworks/erp:18.0-20250725@sha256:" + "a".repeat(64),
      addonsBuildContext: "../loomworks-addons",
      cpu: 0.5,
      memoryMb: 2048,
      redisUrl: "rediss://:secret@redis.internal:6380/2",
      dbUser: "erp",
      updateModules: ["loomworks_ai"],
      serverWideModules: ["base", "web", "loomworks_session"],
      logLevel: "warn",
    });
  });

  it("states the rule of every bad key, and refuses unknown keys with a hint", () => {
    expect(
      issues({
        image: "Loomworks/ERP:latest tag",
        cpu: 0,
        memoryMb: 512,
        redisUrl: "http://redis:6379",
        dbUser: "Erp-Role",
        updateModules: ["ok", "Not OK"],
        logLevel: "verbose",
        memoryGb: 4,
      }),
    ).toEqual([
      'memoryGb: is not a known key (did you mean "memoryMb"?)',
      `image: ${ODOO_RULES.image}`,
      `cpu: ${ODOO_RULES.cpu}`,
      `memoryMb: ${ODOO_RULES.memoryMb}`,
      `redisUrl: ${ODOO_RULES.redisUrl}`,
      `dbUser: ${ODOO_RULES.dbUser}`,
      `updateModules.1: ${ODOO_RULES.modules}`,
      `logLevel: ${ODOO_RULES.logLevel}`,
    ]);
  });

  it("refuses a section that is not a map", () => {
    expect(issues("loomworks/erp:18.0")).toEqual([": must be a map of ERP server settings"]);
  });
});
