/**
 * Benchmark: a local stack with 500 tenants, against the same stack at 50 and against the lib
 * functions called straight, without the engine.
 *
 * One throw-away stack through the Automation API (testkit/local-stack.ts), with a SMALL template
 * (the Odoo-shaped fixture's 28-table core, no padding tables: testkit/odoo-shaped-fixture.ts
 * fixtureSql with extraTables 0), so that the figures are the platform's, not a copy's. For the
 * baseline size (--baseline-tenants, 50) and then the full size (--tenants, 500), each from nothing:
 *   - `up` creating all the tenants (peak client connections and locks sampled while it runs);
 *   - no-change `up`, interleaved with readTenant for every tenant (sequential and 10 in flight) and
 *     the dynamic providers' check + diff called in-process for every tenant's resources;
 *   - `up` adding one tenant (and the `up` removing it again), next to createTenant for one;
 *   - one no-change `up` and one adding a tenant with the CLI's log on (--verbose 7 --logflow):
 *     where the time goes (engine vs provider calls by resource type and method, checkpoints);
 *   - PostgreSQL: processes' memory (RSS, PSS), connections, idle CPU, data directory;
 *   - a full backup, then a restore of one tenant to a snapshot (restoreTenant, as `up` runs it);
 *   - (baseline size only) the `up` removing every tenant again.
 * And the router alone (lib/router applyRouter, a throw-away nginx): reloads adding or removing one
 * tenant with 50, 500 and 10,000 tenants, interleaved.
 *
 *   node bin/bench/scale.js [--tenants 500] [--baseline-tenants 50] [--repeats 3]
 *                           [--router-tenants 10000] [--router-reloads 6] [--skip router,baseline,...]
 *                           [--create-skip-checkpoints 0|1]
 *
 * `--skip` takes step names: router, baseline (the whole baseline size), restore, breakdown. The
 * result file (bench/results/scale.json) is rewritten after every step with `complete: false`, so a
 * run that dies keeps what it measured. Measures only; never asserts. Takes 40-60 min at 500 with
 * --create-skip-checkpoints 1 (bench/run.sh); without it the `up` creating 500 tenants alone runs
 * for most of an hour on 2 cores (every step rewrites the whole state).
 */
import { promises as fs, readFileSync, readdirSync } from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { tenantDatabaseProvider, type TenantDatabaseInputs } from "../dynamic-providers/tenantDatabase";
import { tenantGuardsProvider } from "../dynamic-providers/tenantGuards";
import { randomSecretProvider } from "../dynamic-providers/randomSecret";
import { takeBackup } from "../lib/backup/backups";
import { GUARDS_VERSION } from "../lib/guards/install";
import { localClusterLayout, type LocalClusterSpec } from "../lib/pg/cluster";
import { withPlainClient as withClient } from "../lib/pg/client";
import { restoreTenant } from "../lib/restore/restore";
import { applyRouter, removeRouter, type RouterOptions, type RouterTenant } from "../lib/router";
import { createSnapshot } from "../lib/snapshot/snapshot";
import { createTenant, deleteTenant, readTenant, type TenantSpec } from "../lib/tenant/provision";
import { clearStaleLocks } from "../lib/pulumi/staleLocks";
import { SDK_DEBUG_ENV } from "../lib/pulumi/sdkOverhead";
import * as localStack from "../testkit/local-stack";
import type { TenantEntry } from "../testkit/local-stack";
import { fixtureSql } from "../testkit/odoo-shaped-fixture";
import { cliLogsSince, parseEngineLog, type EngineBreakdown } from "./engine-log";
import {
  findFreePort,
  intFlag,
  loadNow,
  machineInfo,
  makeStateDir,
  mapLimit,
  now,
  parseFlags,
  pulumiVersion,
  runBenchmark,
  stats,
  treeFacts,
  writeResult,
  benchTenantSpec,
} from "./common";

const TEMPLATE_DB = "loomworks_template_default";
const STANZA = "loomworks";
const CONCURRENCY = 10;
const SMALL_TEMPLATE = { extraTables: 0, rowsPerTable: 5, payloadBytes: 0 };
const SDK_DEBUG = { [SDK_DEBUG_ENV]: "1" };
const NO_CHECKPOINTS = { PULUMI_SKIP_CHECKPOINTS: "true" };

const log = (msg: string): void => console.log(`[scale ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

interface Sample {
  ms: number;
  /** Load averages (1/5/15 min) right after the sample. */
  load: number[];
  ok: boolean;
  errors?: string[];
}

interface Peak {
  clientConnections: number;
  locks: number;
}

const sample = (ms: number, ok = true, errors?: string[]): Sample => ({
  ms,
  load: loadNow(),
  ok,
  ...(errors?.length ? { errors } : {}),
});

function errorLines(err: unknown): string[] {
  const text = err instanceof Error ? err.message : String(err);
  const lines = text
    .split("\n")
    .filter((l) => /error: /.test(l))
    .map((l) => l.replace(/^.*?error: /, "").slice(0, 300));
  return lines.length > 0 ? [...new Set(lines)] : [text.split("\n")[0].slice(0, 300)];
}

const tenantName = (i: number): string => `t${String(i).padStart(5, "0")}`;
const entries = (names: string[]): Record<string, TenantEntry> =>
  Object.fromEntries(names.map((n) => [n, { tier: "basic", adminEmail: `owner@${n}.example` }]));

/** Samples peak client connections and locks of the cluster every 250 ms while `fn` runs. */
async function withPeaks<T>(adminDsn: string, fn: () => Promise<T>): Promise<{ value: T; peak: Peak }> {
  const peak: Peak = { clientConnections: 0, locks: 0 };
  let stop = false;
  const sampler = withClient(adminDsn, async (c) => {
    while (!stop) {
      const r = await c.query<{ clients: string; locks: string }>(
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' " +
          "AND pid <> pg_backend_pid()) AS clients, (SELECT count(*) FROM pg_locks) AS locks",
      );
      peak.clientConnections = Math.max(peak.clientConnections, Number(r.rows[0].clients));
      peak.locks = Math.max(peak.locks, Number(r.rows[0].locks));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }).catch(() => undefined);
  try {
    return { value: await fn(), peak };
  } finally {
    stop = true;
    await sampler;
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL's processes

const CLOCK_TICKS = 100;

function procStat(pid: number): { ppid: number; cpuTicks: number; childTicks: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return {
      ppid: Number(f[1]),
      cpuTicks: Number(f[11]) + Number(f[12]),
      childTicks: Number(f[13]) + Number(f[14]),
    };
  } catch {
    return undefined;
  }
}

function postgresPids(dataDir: string): number[] {
  const postmaster = Number(readFileSync(path.join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  const kids = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => procStat(pid)?.ppid === postmaster);
  return [postmaster, ...kids];
}

function memoryKiB(pid: number): { rss: number; pss: number } {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const kb = (key: string): number => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
    return { rss: kb("Rss"), pss: kb("Pss") };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/** CPU seconds the cluster used so far: postmaster and live children, plus reaped children. */
function postgresCpuSeconds(dataDir: string): number {
  const pids = postgresPids(dataDir);
  let ticks = procStat(pids[0])?.childTicks ?? 0;
  for (const pid of pids) ticks += procStat(pid)?.cpuTicks ?? 0;
  return ticks / CLOCK_TICKS;
}

// ---------------------------------------------------------------------------------------------
// The router alone

async function routerReloads(sizes: number[], reloads: number): Promise<unknown> {
  const dirs: string[] = [];
  try {
    const routers = await Promise.all(
      sizes.map(async (n) => {
        const dir = await makeStateDir(`loomworks-bench-scale-router-${n}-`);
        dirs.push(dir);
        const tenants: RouterTenant[] = Array.from({ length: n }, (_, i) => ({
          subdomain: tenantName(i),
          state: "active",
        }));
        const options: RouterOptions = {
          stateDir: dir,
          port: await findFreePort(27000 + n),
          domain: "localhost",
          odooHttp: "127.0.0.1:9",
          odooWebsocket: "127.0.0.1:9",
          workerProcesses: "auto",
          tenants,
        };
        return { n, options };
      }),
    );
    for (const r of routers) await applyRouter(r.options);
    const samples = new Map<
      number,
      Array<{ renderMs: number; checkMs: number; reloadMs: number; applyMs: number }>
    >();
    for (let i = 0; i < reloads; i++) {
      for (const r of i % 2 === 0 ? routers : [...routers].reverse()) {
        // Alternately add and remove one tenant.
        const tenants =
          i % 2 === 0
            ? [...r.options.tenants, { subdomain: `added${i}`, state: "active" as const }]
            : r.options.tenants;
        const a = await applyRouter({ ...r.options, tenants });
        const list = samples.get(r.n) ?? [];
        list.push({ renderMs: a.renderMs, checkMs: a.checkMs, reloadMs: a.reloadMs, applyMs: a.totalMs });
        samples.set(r.n, list);
      }
    }
    return sizes.map((n) => {
      const s = samples.get(n) ?? [];
      return {
        tenants: n,
        configBytes: 0,
        renderMs: stats(s.map((x) => x.renderMs)),
        checkMs: stats(s.map((x) => x.checkMs)),
        reloadMs: stats(s.map((x) => x.reloadMs)),
        applyMs: stats(s.map((x) => x.applyMs)),
      };
    });
  } finally {
    for (const dir of dirs) {
      await removeRouter(dir).catch(() => undefined);
      await fs.rm(dir, { recursive: true, force: true });
    }
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), [
    "tenants",
    "baseline-tenants",
    "repeats",
    "router-tenants",
    "router-reloads",
    "skip",
    "create-skip-checkpoints",
  ]);
  const full = intFlag(flags, "tenants", 500);
  const baseline = intFlag(flags, "baseline-tenants", 50);
  const repeats = intFlag(flags, "repeats", 3);
  const routerMax = intFlag(flags, "router-tenants", 10_000);
  const routerReloadCount = intFlag(flags, "router-reloads", 6);
  const skip = new Set((flags.skip ?? "").split(",").filter(Boolean));
  // The file backend rewrites the whole state after every step: creating n tenants is O(n²) in
  // state bytes. With 1, the `up`s creating and removing every tenant (and the final destroy) run
  // with PULUMI_SKIP_CHECKPOINTS (only the final state is written); every other `up` checkpoints.
  const skipCheckpoints = intFlag(flags, "create-skip-checkpoints", 0) === 1;
  const machine = machineInfo();
  const started = now();
  const result: Record<string, unknown> = {
    benchmark: "scale",
    complete: false,
    machine,
    pulumi: pulumiVersion(),
    settings: {
      tenants: full,
      baselineTenants: baseline,
      repeats,
      routerTenants: routerMax,
      skip: [...skip],
    },
    parallelism: "Pulumi's default (up() without `parallel`: 4 × GOMAXPROCS)",
    phases: {} as Record<string, Record<string, unknown>>,
  };
  const phases = result.phases as Record<string, Record<string, unknown>>;
  const save = async (): Promise<void> => {
    result.loadEnd = loadNow();
    result.totalMs = now() - started;
    await writeResult("scale", result);
  };
  log(`load ${machine.load.join(" ")} on ${machine.nproc} cores; ${full} tenants, baseline ${baseline}`);

  if (!skip.has("router")) {
    const sizes = [...new Set([baseline, full, routerMax])].sort((a, b) => a - b);
    log(`router reloads with ${sizes.join(", ")} tenants`);
    result.router = {
      reloads: routerReloadCount,
      sizes: await routerReloads(sizes, routerReloadCount),
      load: loadNow(),
    };
    await save();
  }

  const logDir = await makeStateDir("loomworks-bench-scale-logs-");
  const stack = await localStack.LocalTestStack.create("bench-scale", { env: { TMPDIR: logDir } });
  const templateFile = path.join(path.dirname(stack.dir), "small-template.sql");
  await fs.writeFile(templateFile, fixtureSql(SMALL_TEMPLATE));
  const platform = { templates: { default: { fromDump: templateFile } } };
  const filestoreRoot = path.join(stack.stateDir, "filestore");
  const snapshotRoot = path.join(stack.stateDir, "snapshots");
  const configure = (names: string[]): Promise<void> => stack.configure(entries(names), platform);

  let adminDsn = "";
  const up = async (
    what: string,
    opts: { verbose?: boolean; env?: Record<string, string> } = {},
  ): Promise<Sample & { peak: Peak }> => {
    clearStaleLocks(stack.env.PULUMI_BACKEND_URL);
    const envBefore = stack.stack.workspace.envVars;
    if (opts.env) stack.stack.workspace.envVars = { ...envBefore, ...opts.env };
    const start = now();
    const { value, peak } = await withPeaks(adminDsn, async () => {
      try {
        const r = await stack.stack.up({
          color: "never",
          ...(opts.verbose ? { logVerbosity: 7, logFlow: true } : {}),
        });
        return { ok: r.summary.result === "succeeded", errors: [] as string[] };
      } catch (err) {
        return { ok: false, errors: errorLines(err) };
      }
    });
    stack.stack.workspace.envVars = envBefore;
    const s = { ...sample(now() - start, value.ok, value.errors), peak };
    log(`up (${what}): ${secs(s.ms)}${s.ok ? "" : ` FAILED: ${value.errors.join(" | ")}`}`);
    return s;
  };
  /** `up` until it succeeds (at most 3 more): a failed create is retried by the next `up`. */
  const ws = stack.stack.workspace;
  /** PULUMI_SKIP_CHECKPOINTS off (the default) or on for the next `up`s. */
  const checkpointing = (on: boolean): void => {
    const { PULUMI_SKIP_CHECKPOINTS: _dropped, ...rest } = ws.envVars;
    ws.envVars = on ? rest : { ...rest, PULUMI_SKIP_CHECKPOINTS: "true" };
  };
  /** A bulk `up` until it succeeds (at most 3 more): a failed create is retried by the next `up`. */
  const upUntilDone = async (
    what: string,
  ): Promise<{ first: Sample & { peak: Peak }; extraUps: Sample[]; skipCheckpoints: boolean }> => {
    checkpointing(!skipCheckpoints);
    try {
      const first = await up(what);
      const extraUps: Sample[] = [];
      while (!(extraUps.at(-1) ?? first).ok && extraUps.length < 3) extraUps.push(await up(`${what}, again`));
      if (!(extraUps.at(-1) ?? first).ok) throw new Error(`up (${what}) kept failing`);
      return { first, extraUps, skipCheckpoints };
    } finally {
      checkpointing(true);
    }
  };

  try {
    await configure([]);
    const base = await up("base: cluster, template, no tenants");
    if (!base.ok) throw new Error("the base up failed");
    adminDsn = ((await stack.outputs()).postgres as { adminDsn: string }).adminDsn;
    const superuserPassword = decodeURIComponent(new URL(adminDsn).password);
    const clusterSpec: LocalClusterSpec = {
      stateDir: stack.stateDir,
      port: stack.postgresPort,
      archiveTimeoutSeconds: 30,
      superuserPassword,
      stanza: STANZA,
      retentionFull: 2,
    };
    const layout = localClusterLayout(clusterSpec);
    const admin = <T>(fn: (c: Client) => Promise<T>): Promise<T> => withClient(adminDsn, fn);
    const template = await admin(async (c) => {
      const r = await c.query<{ b: string }>("SELECT pg_database_size($1) AS b", [TEMPLATE_DB]);
      return { database: TEMPLATE_DB, options: SMALL_TEMPLATE, tables: 28, bytes: Number(r.rows[0].b) };
    });
    result.template = template;
    result.baseUp = base;
    log(`template ${TEMPLATE_DB}: ${(template.bytes / 1e6).toFixed(1)} MB`);
    await save();

    const libSpec = (name: string): TenantSpec =>
      benchTenantSpec(name, { template: TEMPLATE_DB, filestoreRoot, tier: "basic" });
    const readAll = async (names: string[], limit: number): Promise<Sample> => {
      const start = now();
      await mapLimit(names, limit, (t) => readTenant(adminDsn, t, t, t, filestoreRoot));
      return sample(now() - start);
    };
    /** The dynamic providers' check and diff for every tenant's four resources, in-process. */
    const providerCalls = async (names: string[]): Promise<Sample> => {
      const start = now();
      for (const n of names) {
        const db: TenantDatabaseInputs = {
          adminDsn,
          host: "127.0.0.1",
          port: stack.postgresPort,
          subdomain: n,
          database: n,
          roleName: n,
          rolePassword: "x".repeat(32),
          adminEmail: `owner@${n}.example`,
          adminPassword: "y".repeat(20),
          template: TEMPLATE_DB,
          tier: "basic",
          state: "active",
          limits: { maxUsers: 10 },
          filestoreRoot,
          retentionDays: 30,
          forceDestroy: false,
        };
        await tenantDatabaseProvider.check?.(db, db);
        const dbOuts = {
          ...db,
          dsn: adminDsn,
          createdAt: "2026-01-01T00:00:00Z",
          filestore: path.join(filestoreRoot, n),
          databaseExists: true,
          roleExists: true,
          initialized: true,
          registryExists: true,
        };
        await tenantDatabaseProvider.diff?.(n, dbOuts, db);
        const guards = {
          adminDsn,
          subdomain: n,
          database: n,
          tier: "basic",
          limits: { maxUsers: 10 },
          excludeTables: [],
          version: GUARDS_VERSION,
        };
        const guardOuts = { ...guards, capturedTables: 28, uncapturedTables: 0, userLimitTrigger: true };
        await tenantGuardsProvider.diff?.(n, guardOuts, guards);
        for (let i = 0; i < 2; i++)
          await randomSecretProvider.diff?.(n, { length: 32, keepers: {} }, { length: 32, keepers: {} });
      }
      return sample(now() - start);
    };
    const postgresFacts = async (): Promise<Record<string, unknown>> => {
      const pids = postgresPids(layout.paths.dataDir);
      const mem = pids.map(memoryKiB);
      const cpu0 = postgresCpuSeconds(layout.paths.dataDir);
      const idleSeconds = 30;
      await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
      const cpu1 = postgresCpuSeconds(layout.paths.dataDir);
      const q = await admin(async (c) => {
        const one = async (sql: string): Promise<Record<string, string>> => (await c.query(sql)).rows[0];
        return {
          ...(await one(
            "SELECT count(*) AS databases, sum(pg_database_size(datname)) AS bytes FROM pg_database",
          )),
          ...(await one(
            "SELECT count(*) FILTER (WHERE backend_type = 'client backend') AS clients, count(*) AS backends FROM pg_stat_activity",
          )),
          ...(await one(
            "SELECT current_setting('max_connections') AS max_connections, current_setting('shared_buffers') AS shared_buffers, " +
              "current_setting('max_locks_per_transaction') AS max_locks_per_transaction, current_setting('autovacuum_naptime') AS autovacuum_naptime",
          )),
        };
      });
      return {
        processes: pids.length,
        rssMiB: mem.reduce((a, m) => a + m.rss, 0) / 1024,
        pssMiB: mem.reduce((a, m) => a + m.pss, 0) / 1024,
        postmasterRssMiB: mem[0].rss / 1024,
        idleCpuPercent: ((cpu1 - cpu0) / idleSeconds) * 100,
        idleSeconds,
        ...q,
        dataDir: await treeFacts(layout.paths.dataDir),
        load: loadNow(),
      };
    };
    const breakdown = async (what: string, verboseUp: () => Promise<Sample>): Promise<unknown> => {
      const since = Date.now();
      const s = await verboseUp();
      const files = await cliLogsSince(logDir, since);
      const parsed: EngineBreakdown[] = [];
      for (const f of files) parsed.push(parseEngineLog(await fs.readFile(f, "utf8")));
      for (const f of await fs.readdir(logDir)) await fs.rm(path.join(logDir, f), { force: true });
      const b = parsed.sort((a, c) => c.logSpanMs - a.logSpanMs)[0];
      log(
        `${what} (--verbose 7): ${secs(s.ms)}; provider busy ${secs(b?.providerBusyMs ?? NaN)}, ` +
          `engine only ${secs(b?.engineOnlyMs ?? NaN)}, ${b?.checkpoints ?? "?"} checkpoints`,
      );
      return { up: s, breakdown: b ?? null };
    };

    const sizes = skip.has("baseline") ? [full] : [baseline, full];
    for (const n of sizes) {
      const key = String(n);
      const phase: Record<string, unknown> = { tenants: n };
      phases[key] = phase;
      const names = Array.from({ length: n }, (_, i) => tenantName(i));

      // 1. From nothing to n tenants.
      await configure(names);
      const created = await upUntilDone(`create ${n} tenants`);
      const libOne = libSpec("libwarm");
      await createTenant(adminDsn, libOne); // warm-up of the in-process path; not timed
      await deleteTenant(adminDsn, { ...libOne, forceDestroy: true });
      phase.create = created;
      await save();

      // 2. No-change up, interleaved with the lib reads and the in-process provider calls.
      const noChange = {
        up: [] as Sample[],
        upSdkDebug: [] as Sample[],
        readSequential: [] as Sample[],
        readConcurrent: [] as Sample[],
        providerCalls: [] as Sample[],
        peaks: [] as Peak[],
      };
      phase.noChange = noChange;
      for (let i = 0; i < repeats; i++) {
        const u = await up(`no change, ${n} tenants`);
        noChange.up.push(u);
        noChange.peaks.push(u.peak);
        // The program as it was before trimSdkOverhead (lib/pulumi/sdkOverhead.ts), same stack.
        noChange.upSdkDebug.push(await up(`no change, ${n} tenants, SDK debug kept`, { env: SDK_DEBUG }));
        noChange.readSequential.push(await readAll(names, 1));
        noChange.readConcurrent.push(await readAll(names, CONCURRENCY));
        noChange.providerCalls.push(await providerCalls(names));
        log(
          `no change at ${n}: up ${secs(u.ms)}; readTenant ×${n} sequential ${secs(noChange.readSequential[i].ms)}, ` +
            `${CONCURRENCY} in flight ${secs(noChange.readConcurrent[i].ms)}; check+diff in-process ${noChange.providerCalls[i].ms.toFixed(0)} ms`,
        );
        await save();
      }

      // 3. Adding one tenant, next to createTenant for one.
      const addOne = {
        up: [] as Sample[],
        removeUp: [] as Sample[],
        createTenant: [] as Sample[],
        deleteTenant: [] as Sample[],
        upNoCheckpoints: [] as Sample[],
      };
      phase.addOne = addOne;
      for (let i = 0; i < repeats; i++) {
        const extra = `added${i}`;
        await configure([...names, extra]);
        addOne.up.push(await up(`add one to ${n}`));
        await configure(names);
        addOne.removeUp.push(await up(`remove the added one from ${n}`));
        // Diagnostic: the same `up` writing the state once, at its end (what the checkpoints cost).
        await configure([...names, extra]);
        addOne.upNoCheckpoints.push(await up(`add one to ${n}, no checkpoints`, { env: NO_CHECKPOINTS }));
        await configure(names);
        await up(`remove the added one from ${n}, no checkpoints`, { env: NO_CHECKPOINTS });
        const spec = libSpec(`libadd${i}`);
        let t = now();
        await createTenant(adminDsn, spec);
        addOne.createTenant.push(sample(now() - t));
        t = now();
        await deleteTenant(adminDsn, { ...spec, forceDestroy: true });
        addOne.deleteTenant.push(sample(now() - t));
        await save();
      }

      // 4. Where the time goes.
      if (!skip.has("breakdown")) {
        phase.breakdownNoChange = await breakdown(`no change at ${n}`, () =>
          up(`no change at ${n}, logged`, { verbose: true }),
        );
        await configure([...names, "logged"]);
        phase.breakdownAddOne = await breakdown(`add one to ${n}`, () =>
          up(`add one to ${n}, logged`, { verbose: true }),
        );
        await configure(names);
        await up(`remove the logged one from ${n}`);
        const stateFiles = await treeFacts(stack.env.PULUMI_BACKEND_URL.replace(/^file:\/\//, ""));
        phase.stateBackend = stateFiles;
        await save();
      }

      // 5. PostgreSQL with n tenant databases.
      phase.postgres = await postgresFacts();
      log(`postgres at ${n}: ${JSON.stringify(phase.postgres)}`);
      await save();

      // 6. A full backup, then a restore of one tenant to a snapshot.
      if (!skip.has("restore")) {
        let t = now();
        await takeBackup(clusterSpec, adminDsn, "full", (m) => log(m));
        const backup = sample(now() - t);
        const tenant = names[Math.floor(n / 2)];
        const snap = await createSnapshot(adminDsn, {
          subdomain: tenant,
          database: tenant,
          name: `bench-${n}`,
          kind: "manual",
          filestoreRoot,
          snapshotRoot,
          pgbackrest: layout.pgbackrest,
        });
        t = now();
        const r = await restoreTenant({
          adminDsn,
          stateDir: stack.stateDir,
          stanza: STANZA,
          subdomain: tenant,
          database: tenant,
          roleName: tenant,
          tenantState: "active",
          target: { snapshot: snap.name },
          snapshotLsn: snap.lsn,
          snapshotFilestore: snap.filestorePath,
          filestoreRoot,
          log: (m) => log(`restore: ${m}`),
        });
        const restore = sample(now() - t);
        await admin((c) => c.query(`DROP DATABASE IF EXISTS "${r.preRestoreDatabase}"`));
        phase.restore = { backup, restore, timings: r.timings, tenant };
        log(`restore of ${tenant} among ${n}: ${secs(restore.ms)} (full backup ${secs(backup.ms)})`);
        await save();
      }

      // 7. Back to nothing before the next size.
      if (n !== sizes.at(-1)) {
        await configure([]);
        phase.removeAll = await upUntilDone(`remove ${n} tenants`);
        await save();
      }
    }
    result.complete = true;
    await save();
  } finally {
    log("disposing of the stack");
    checkpointing(!skipCheckpoints);
    const t = now();
    await stack.dispose().catch((err: Error) => log(`dispose failed: ${err.message.split("\n")[0]}`));
    log(`disposed in ${secs(now() - t)}`);
    await fs.rm(logDir, { recursive: true, force: true });
  }
  log(`done in ${secs(now() - started)}`);
}

runBenchmark(main);
