/**
 * Benchmark: `pulumi up` wall time for new tenants, against the same work done straight from lib.
 *
 * One throw-away stack through the Automation API (testkit/local-stack.ts: own project directory,
 * file:// backend, state directory and port), first brought up with the cluster and the small
 * committed fixture template (test/fixtures/odoo-shaped/template.sql, an Odoo-shaped FIXTURE, not
 * Odoo) and no tenants. Then, each on top of that base:
 *   - `up` adding 1, 10 and 50 new tenants (afterwards removed again by an `up` without them);
 *   - a no-change `up` with the 50 tenants in place (and with none, the fixed cost of an `up`);
 * and next to each, in the same run, against the same cluster and template:
 *   - the same number of createTenant calls, sequential and with at most 10 in flight
 *     (Pulumi's own parallelism is left at its default);
 *   - for the no-change `up`: readTenant for the 50 tenants, sequential and 10 in flight.
 *
 * Concurrent tenant creations can exhaust the server's lock table (the ownership step locks every
 * relation of the new database in one transaction). The benchmark measures how many fit
 * ("fitting" concurrency) and, for batches larger than that, also runs `pulumi up --parallel
 * <fitting>` and createTenant with that many in flight. A failed `up` or createTenant is recorded
 * with its error, not thrown; a failed `up` is followed by `up`s until every tenant exists (also
 * timed), so the rest of the scenario (the no-change `up`) can still be measured.
 *
 *   node bin/bench/pulumi-up.js [--budget-seconds 600] [--repeats 3] [--repeats-50 1]
 *
 * Repeats: `--repeats` for 1 and 10 tenants; 50 tenants run `--repeats-50` times and then again
 * while the budget allows. Writes pulumi-up.json in bench/results/.
 */
import * as fs from "node:fs";
import * as path from "node:path";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { withPlainClient as withClient } from "../lib/pg/client";
import { clearStaleLocks } from "../lib/pulumi/staleLocks";
import { createTenant, deleteTenant, readTenant, type TenantSpec } from "../lib/tenant/provision";
import { dsnWithDatabase } from "../lib/pg/dsn";
import { reassignPublicObjectsSql } from "../lib/tenant/sql";
import * as localStack from "../testkit/local-stack";
import type { TenantEntry } from "../testkit/local-stack";
import { FIXTURE_TEMPLATE_DUMP } from "../testkit/odoo-shaped-fixture";
import {
  REPO_ROOT,
  loadNow,
  machineInfo,
  mapLimit,
  now,
  pulumiVersion,
  stats,
  writeResult,
  type Stats,
  intFlags,
  runBenchmark,
  benchTenantSpec,
} from "./common";

/** What components/platform/templates.ts names the `default` template's database. */
const TEMPLATE_DB = "loomworks_template_default";
const CONCURRENCY = 10;

const log = (msg: string): void => console.log(`[pulumi-up] ${msg}`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

interface Sample {
  ms: number;
  /** 1-minute load average right after the sample. */
  load: number;
  ok: boolean;
  /** Tenants whose creation failed (lib runs). */
  failures?: number;
  /** Distinct error messages (lib runs) or `error:` lines (a failed `up`). */
  errors?: string[];
}

interface Scenario {
  name: string;
  tenants: number;
  baselineName: "createTenant" | "readTenant";
  /** `up` with Pulumi's default parallelism. */
  pulumi: Sample[];
  /** A failed `up` plus the further `up`s it took until the stack had every tenant. */
  pulumiUntilComplete: Sample[];
  /** Number of extra `up`s each of those needed. */
  extraUps: number[];
  /** `up --parallel <fitting>` (batches larger than the fitting concurrency only). */
  pulumiFitting: Sample[];
  libSequential: Sample[];
  libConcurrent: Sample[];
  /** createTenant with <fitting> in flight (batches larger than the fitting concurrency only). */
  libFitting: Sample[];
  /** `up`s removing the tenants again (not part of the comparison). */
  teardownUp: Sample[];
}

type Summary = Stats & { samplesMs: number[]; load: number[]; ok: boolean[]; errors: string[] };

/** Stats over the successful samples; every sample (failed ones too) is listed. */
function summarize(xs: Sample[]): Summary {
  return {
    ...stats(xs.filter((x) => x.ok).map((x) => x.ms)),
    samplesMs: xs.map((x) => x.ms),
    load: xs.map((x) => x.load),
    ok: xs.map((x) => x.ok),
    errors: [...new Set(xs.flatMap((x) => x.errors ?? []))],
  };
}

/** The distinct `error:` lines of a failed Automation API command (its message holds the whole output). */
function errorLines(err: unknown): string[] {
  const text = err instanceof Error ? err.message : String(err);
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => /error: /.test(l))
    .map((l) => l.replace(/^.*?error: /, "").slice(0, 300));
  return lines.length > 0 ? [...new Set(lines)] : [text.split("\n")[0].slice(0, 300)];
}

const newScenario = (name: string, tenants: number, baselineName: Scenario["baselineName"]): Scenario => ({
  name,
  tenants,
  baselineName,
  pulumi: [],
  pulumiUntilComplete: [],
  extraUps: [],
  pulumiFitting: [],
  libSequential: [],
  libConcurrent: [],
  libFitting: [],
  teardownUp: [],
});

async function main(): Promise<void> {
  const flags = intFlags(process.argv.slice(2), { "budget-seconds": 600, repeats: 3, "repeats-50": 1 });
  const budgetMs = flags["budget-seconds"] * 1000;
  const { repeats, "repeats-50": repeats50 } = flags;
  if (!fs.existsSync(FIXTURE_TEMPLATE_DUMP))
    throw new Error(`fixture dump ${FIXTURE_TEMPLATE_DUMP} not found`);
  const machine = machineInfo();
  const started = now();
  log(`load ${machine.load.join(" ")} on ${machine.nproc} cores; budget ${budgetMs / 1000} s`);

  const stack = await localStack.LocalTestStack.create("bench-up");
  const platform = { templates: { default: { fromDump: FIXTURE_TEMPLATE_DUMP } } };
  const filestoreRoot = path.join(stack.stateDir, "filestore");
  const configure = (tenants: Record<string, TenantEntry>): Promise<void> =>
    stack.configure(tenants, platform);
  /** A timed `up` (Pulumi's default parallelism unless given); a failed one is recorded, not thrown. */
  const up = async (what: string, parallel?: number): Promise<Sample> => {
    clearStaleLocks(stack.env.PULUMI_BACKEND_URL);
    const start = now();
    try {
      const result = await stack.stack.up({ color: "never", ...(parallel ? { parallel } : {}) });
      const ok = result.summary.result === "succeeded";
      return {
        ms: now() - start,
        load: loadNow()[0],
        ok,
        ...(ok ? {} : { errors: [result.summary.result] }),
      };
    } catch (err) {
      const sample = { ms: now() - start, load: loadNow()[0], ok: false, errors: errorLines(err) };
      log(`pulumi up (${what}) failed after ${secs(sample.ms)}: ${sample.errors.join(" | ")}`);
      return sample;
    }
  };
  const mustUp = async (what: string): Promise<Sample> => {
    const s = await up(what);
    if (!s.ok) throw new Error(`pulumi up (${what}) failed: ${(s.errors ?? []).join(" | ")}`);
    return s;
  };
  const entries = (names: string[]): Record<string, TenantEntry> =>
    Object.fromEntries(names.map((n) => [n, { tier: "basic", adminEmail: `owner@${n}.example` }]));

  try {
    await configure({});
    const base = await mustUp("base");
    log(`base stack up (cluster + template, no tenants): ${secs(base.ms)}`);
    const outputs = await stack.outputs();
    const adminDsn = (outputs.postgres as { adminDsn: string }).adminDsn;
    const libSpec = (name: string): TenantSpec =>
      benchTenantSpec(name, { template: TEMPLATE_DB, filestoreRoot, tier: "basic" });
    /** deleteTenant for every spec (idempotent: also clears half-made tenants a failed run left). */
    const deleteAll = async (specs: TenantSpec[]): Promise<void> => {
      await mapLimit(specs, 4, (s) => deleteTenant(adminDsn, { ...s, forceDestroy: true }));
    };
    /** createTenant for every spec, at most `limit` in flight; failures are counted, not thrown. */
    const createAll = async (specs: TenantSpec[], limit: number): Promise<Sample> => {
      const errors: string[] = [];
      const start = now();
      await mapLimit(specs, limit, (s) =>
        createTenant(adminDsn, s).catch((err: Error) => {
          errors.push(err.message.split("\n")[0]);
        }),
      );
      const ms = now() - start;
      if (errors.length > 0)
        log(`createTenant x${specs.length} (${limit} in flight): ${errors.length} failed`);
      return {
        ms,
        load: loadNow()[0],
        ok: errors.length === 0,
        ...(errors.length > 0 ? { failures: errors.length, errors: [...new Set(errors)] } : {}),
      };
    };
    const readAll = async (names: string[], limit: number): Promise<Sample> => {
      const start = now();
      await mapLimit(names, limit, (t) => readTenant(adminDsn, t, t, t, filestoreRoot));
      return { ms: now() - start, load: loadNow()[0], ok: true };
    };

    // Warm-up of the in-process path (registry check, pg driver, pbkdf2 thread pool); not timed.
    // It also measures the locks one tenant's ownership transfer holds at once (lock table sizing).
    const warm = libSpec("lib-warmup");
    await createTenant(adminDsn, warm);
    const lockTable = await withClient(adminDsn, async (admin) => {
      const t = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [TEMPLATE_DB]);
      if (t.rowCount !== 1)
        throw new Error(`template database ${TEMPLATE_DB} not found in the stack's cluster`);
      const setting = async (name: string): Promise<number> =>
        Number((await admin.query<{ v: string }>("SELECT current_setting($1) AS v", [name])).rows[0].v);
      const maxLocks = await setting("max_locks_per_transaction");
      const maxConnections = await setting("max_connections");
      const slots = maxLocks * (maxConnections + (await setting("max_prepared_transactions")));
      await admin.query("CREATE ROLE bench_lock_probe NOLOGIN");
      try {
        const held = await withClient(dsnWithDatabase(adminDsn, warm.database), async (db) => {
          await db.query("BEGIN");
          await db.query(reassignPublicObjectsSql("bench_lock_probe"));
          const r = await db.query<{ n: string }>(
            "SELECT count(*) AS n FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation'",
          );
          await db.query("ROLLBACK");
          return Number(r.rows[0].n);
        });
        return {
          maxLocksPerTransaction: maxLocks,
          maxConnections,
          slots,
          relationLocksPerOwnershipStep: held,
          fitsAtOnce: Math.max(1, Math.floor(slots / held)),
        };
      } finally {
        await admin.query("DROP ROLE bench_lock_probe");
      }
    });
    const fits = lockTable.fitsAtOnce;
    log(
      `ownership step holds ${lockTable.relationLocksPerOwnershipStep} relation locks; lock table ` +
        `${lockTable.slots} slots => ${fits} at once`,
    );
    await deleteAll([warm]);

    // The fixed cost of an `up` that changes nothing, with no tenants.
    const idleUp: Sample[] = [];
    for (let i = 0; i < 3; i++) idleUp.push(await mustUp("no change, no tenants"));
    log(`no-change up, 0 tenants: ${idleUp.map((s) => secs(s.ms)).join(", ")}`);

    const scenarios: Scenario[] = [];
    const noChange = newScenario("no-change up, 50 tenants", 50, "readTenant");
    for (const n of [1, 10, 50]) {
      const sc = newScenario(`${n} new tenant${n === 1 ? "" : "s"}`, n, "createTenant");
      scenarios.push(sc);
      for (let rep = 0; ; rep++) {
        const wanted = n === 50 ? repeats50 : repeats;
        const repStart = now();
        const names = (prefix: string): string[] =>
          Array.from({ length: n }, (_, i) => `${prefix}${n}r${rep}t${String(i).padStart(2, "0")}`);
        const removeAll = async (created: string[]): Promise<void> => {
          await configure({});
          sc.teardownUp.push(await mustUp(`remove ${n} tenants`));
          await deleteAll(created.map(libSpec)); // leftovers of failed creates (not in the Pulumi state)
        };

        // Pulumi, default parallelism: n new tenants on top of the base stack.
        const pNames = names("pu");
        await configure(entries(pNames));
        const pu = await up(`${n} new tenants`);
        sc.pulumi.push(pu);
        if (!pu.ok) {
          // Further `up`s retry what failed; the whole sequence is what getting the tenants took.
          let total = pu.ms;
          let extra = 0;
          let ok = false;
          while (!ok && extra < 4) {
            const again = await up(`${n} new tenants, again after a failed up`);
            extra++;
            total += again.ms;
            ok = again.ok;
          }
          sc.pulumiUntilComplete.push({ ms: total, load: loadNow()[0], ok });
          sc.extraUps.push(extra);
        }
        log(
          `${sc.name} #${rep + 1}: pulumi up ${secs(pu.ms)}` +
            (pu.ok
              ? ""
              : ` FAILED; complete after ${sc.extraUps.at(-1)} more up(s), ${secs(sc.pulumiUntilComplete.at(-1)?.ms ?? NaN)} in all`),
        );

        if (n === 50 && (pu.ok || sc.pulumiUntilComplete.at(-1)?.ok)) {
          for (let i = 0; i < 3; i++) {
            noChange.pulumi.push(await up("no change, 50 tenants"));
            noChange.libSequential.push(await readAll(pNames, 1));
            noChange.libConcurrent.push(await readAll(pNames, CONCURRENCY));
          }
          log(
            `no-change up, 50 tenants: ${noChange.pulumi.map((s) => secs(s.ms)).join(", ")}; readTenant x50 ` +
              `sequential ${noChange.libSequential.map((s) => s.ms.toFixed(0)).join(", ")} ms`,
          );
        }
        await removeAll(pNames);

        // Pulumi limited to the concurrency the lock table allows.
        if (n > fits) {
          const qNames = names("pq");
          await configure(entries(qNames));
          const pq = await up(`${n} new tenants, --parallel ${fits}`, fits);
          sc.pulumiFitting.push(pq);
          log(`${sc.name} #${rep + 1}: pulumi up --parallel ${fits} ${secs(pq.ms)}${pq.ok ? "" : " FAILED"}`);
          await removeAll(qNames);
        }

        // lib: the same number of createTenant calls, sequential, 10 in flight, <fitting> in flight.
        const seq = names("ls").map(libSpec);
        sc.libSequential.push(await createAll(seq, 1));
        await deleteAll(seq);
        const par = names("lc").map(libSpec);
        const conc = await createAll(par, CONCURRENCY);
        sc.libConcurrent.push(conc);
        await deleteAll(par);
        if (n > fits) {
          const fit = names("lf").map(libSpec);
          sc.libFitting.push(await createAll(fit, fits));
          await deleteAll(fit);
        }
        log(
          `${sc.name} #${rep + 1}: lib sequential ${secs(sc.libSequential[rep].ms)}, ${CONCURRENCY} in flight ` +
            `${secs(conc.ms)}${conc.ok ? "" : ` (${conc.failures} FAILED)`}` +
            (n > fits ? `, ${fits} in flight ${secs(sc.libFitting[rep].ms)}` : "") +
            ` (repeat took ${secs(now() - repStart)}, load ${loadNow()[0]})`,
        );

        if (rep + 1 < wanted) continue;
        // Beyond the minimum, another repeat of 50 only while it fits in the budget.
        if (n !== 50 || now() - started + (now() - repStart) > budgetMs) break;
      }
    }

    const result = {
      benchmark: "pulumi-up",
      machine,
      loadEnd: loadNow(),
      pulumi: pulumiVersion(),
      parallelism: "Pulumi's default (up() without `parallel`)",
      libConcurrency: CONCURRENCY,
      lockTable,
      template: { fromDump: path.relative(REPO_ROOT, FIXTURE_TEMPLATE_DUMP), database: TEMPLATE_DB },
      baseUpMs: base.ms,
      totalMs: now() - started,
      scenarios: [...scenarios, noChange].map((sc) => ({
        name: sc.name,
        tenants: sc.tenants,
        baselineName: sc.baselineName,
        pulumi: summarize(sc.pulumi),
        pulumiUntilComplete: { extraUps: sc.extraUps, ...summarize(sc.pulumiUntilComplete) },
        pulumiFitting: { parallel: fits, ...summarize(sc.pulumiFitting) },
        libSequential: summarize(sc.libSequential),
        libConcurrent: summarize(sc.libConcurrent),
        libFitting: { concurrency: fits, ...summarize(sc.libFitting) },
        teardownUp: summarize(sc.teardownUp),
      })),
      idleUp: summarize(idleUp),
    };
    const file = await writeResult("pulumi-up", result);
    for (const sc of result.scenarios) {
      log(
        `${sc.name}: pulumi up median ${sc.pulumi.median.toFixed(0)} ms (${sc.pulumi.n} ok of ` +
          `${sc.pulumi.samplesMs.length}); ${sc.baselineName} sequential ${sc.libSequential.median.toFixed(0)} ms, ` +
          `${CONCURRENCY} in flight ${sc.libConcurrent.median.toFixed(0)} ms (${sc.libConcurrent.n} ok of ` +
          `${sc.libConcurrent.samplesMs.length})`,
      );
    }
    log(`no-change up, 0 tenants: median ${result.idleUp.median.toFixed(0)} ms`);
    log(`wrote ${file} (${secs(result.totalMs)})`);
  } finally {
    log("disposing of the stack");
    await stack.dispose().catch((err: Error) => log(`dispose failed: ${err.message.split("\n")[0]}`));
  }
}

runBenchmark(main);
