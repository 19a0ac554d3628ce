/**
 * Benchmark: undo capture under a real ERP workload (issue 16): the same batch of Odoo ORM writes
 * (bench/undo-erp-workload.py: 100 companies with two contacts, two tags and a chatter message each,
 * then a write on each of them) inside an AI operation vs without capture.
 *
 * In a throw-away cluster (own state directory in /tmp, own port; the project's postgresql.conf, WAL
 * archiving on): one database initialized by the installed Odoo 18 (`-i contacts`, which brings
 * mail; as a non-superuser login role owning it, as the ERP connects), and a FILE_COPY copy of it
 * with the guards installed (installGuards, as superuser) and the AI-operation limit at its maximum.
 * Scenarios, interleaved with the order rotating per round after a warm-up round:
 *
 *   plain  the database without guards (no capture triggers);
 *   idle   the guarded copy, no operation (capture triggers whose WHEN is false);
 *   op     the guarded copy, the transaction started with begin_operation (every row captured).
 *
 * Timed per batch, by the workload itself: wall time up to the end of COMMIT, the Python process's
 * CPU time and the database backend's. One Python process runs every batch (the registries loaded
 * once, before any timing). Without an Odoo 18 installed it says so in one line and writes nothing.
 *
 *   node bin/bench/undo-erp.js [--rounds 5] [--warmup 1] [--partners 100]
 *
 * About 10 minutes on 2 cores, most of it Odoo initializing the database. Writes
 * bench/results/undo-erp.json (rendered by bench/report.ts). Measures only; never asserts.
 */
import { randomBytes, randomInt } from "node:crypto";
import * as path from "node:path";
import { installGuards } from "../lib/guards/install";
import { findInstalledOdoo } from "../lib/odoo/installed";
import { ensureCluster } from "../lib/pg/ensureCluster";
import { LOCAL_HOST, localAdminDsn, type LocalClusterSpec } from "../lib/pg/cluster";
// The benchmark's own sessions are plain ones (ad-hoc admin SQL).
import { quoteIdent, withPlainClient as withClient } from "../lib/pg/client";
import { dsnWithDatabase } from "../lib/pg/dsn";
import { passwordClause } from "../lib/pg/scram";
import { runCommand } from "../lib/process/run";
import { writeQuotaLimits } from "../lib/quota/sql";
import { UNDO_API_VERSION } from "../lib/undo/sql";
import {
  REPO_ROOT,
  findFreePort,
  intFlags,
  loadNow,
  machineInfo,
  makeStateDir,
  now,
  removeThrowawayCluster,
  runBenchmark,
  settle,
  stats,
  timed,
  writeResult,
} from "./common";

/** Goal (issue 16): the batch inside an operation takes at most this times the batch without capture. */
export const ERP_WALL_RATIO_GOAL = 1.15;
const MAX_AI_OPERATIONS = 2_147_483_647;
const OWNER = "bench_erp_tenant";
const PLAIN_DB = "bench_erp_plain";
const GUARDED_DB = "bench_erp_guarded";
const WORKLOAD = path.join(REPO_ROOT, "bench", "undo-erp-workload.py");

const log = (msg: string): void => console.log(`[undo-erp] ${msg}`);

type ErpScenario = "plain" | "idle" | "op";
const SCENARIOS: Array<{ name: ErpScenario; label: string; database: string; operation: boolean }> = [
  { name: "plain", label: "no guards installed (no capture)", database: PLAIN_DB, operation: false },
  { name: "idle", label: "capture installed, no operation", database: GUARDED_DB, operation: false },
  {
    name: "op",
    label: "inside an operation: begin_operation first",
    database: GUARDED_DB,
    operation: true,
  },
];

interface ErpBatch {
  scenario: ErpScenario;
  round: number;
  wallMs: number;
  pythonCpuMs: number;
  backendCpuMs: number;
  walBytes: number;
  /** Partners created (companies and contacts). */
  records: number;
  /** change_log rows of the batch's operation (op only). */
  capturedRows: number | null;
  /** 1/5/15-minute load averages right after the batch (the workload reads them). */
  load: number[];
}

async function main(): Promise<void> {
  const { rounds, warmup, partners } = intFlags(process.argv.slice(2), {
    rounds: 5,
    warmup: 1,
    partners: 100,
  });
  const found = findInstalledOdoo();
  if ("missing" in found || !found.odoo.version.startsWith("18.")) {
    log(`skipped: ${"missing" in found ? found.missing : `Odoo ${found.odoo.version} is not 18`}`);
    return;
  }
  const odoo = found.odoo;
  const machine = machineInfo();
  const started = now();
  log(`load ${machine.load.join(" ")}; Odoo ${odoo.version} (${odoo.python} ${odoo.command})`);

  const stateDir = await makeStateDir("loomworks-bench-undo-erp-");
  const spec: LocalClusterSpec = {
    stateDir,
    // A random start: several benchmarks may look for a port at the same moment.
    port: await findFreePort(26_432 + randomInt(2000)),
    archiveTimeoutSeconds: 60,
    superuserPassword: randomBytes(24).toString("base64url"),
    stanza: "bench",
    retentionFull: 1,
  };
  const ownerPassword = randomBytes(24).toString("base64url");
  const odooOptions = [
    ...["--db_host", LOCAL_HOST, "--db_port", String(spec.port)],
    ...["--db_user", OWNER, "--db_password", ownerPassword],
    ...["--data-dir", path.join(stateDir, "odoo-data"), "--log-level", "warn"],
  ];
  try {
    await ensureCluster(spec, (m) => log(`cluster: ${m}`));
    const superDsn = localAdminDsn(spec);
    const superIn = (database: string): string => dsnWithDatabase(superDsn, database);
    const setup = await withClient(superDsn, async (admin) => {
      await admin.query(`CREATE ROLE ${quoteIdent(OWNER)} LOGIN ${passwordClause(ownerPassword)}`);
      await admin.query(
        `CREATE DATABASE ${quoteIdent(PLAIN_DB)} OWNER ${quoteIdent(OWNER)} TEMPLATE template0 ENCODING 'UTF8'`,
      );
      log("odoo -i contacts (initializing the database)");
      const init = await timed(() =>
        runCommand(
          odoo.python,
          [
            odoo.command,
            ...["-d", PLAIN_DB, "-i", "contacts", "--without-demo=all", "--stop-after-init", "--no-http"],
            ...odooOptions,
          ],
          { timeoutMs: 60 * 60_000 },
        ),
      );
      if (init.value.code !== 0)
        throw new Error(`odoo -i contacts failed:\n${(init.value.stdout + init.value.stderr).slice(-3000)}`);
      await admin.query(
        `CREATE DATABASE ${quoteIdent(GUARDED_DB)} TEMPLATE ${quoteIdent(PLAIN_DB)} OWNER ${quoteIdent(OWNER)} STRATEGY FILE_COPY`,
      );
      const guards = await withClient(superIn(GUARDED_DB), async (db) => {
        const status = await installGuards(db);
        await writeQuotaLimits(db, {
          subdomain: "bench",
          tier: "bench",
          limits: { maxUsers: 1000, maxStorageGb: 1000, maxAiOperationsDaily: MAX_AI_OPERATIONS },
        });
        return status;
      });
      const size = await admin.query<{ b: string }>("SELECT pg_database_size($1) AS b", [PLAIN_DB]);
      await settle(admin);
      return {
        initMs: init.ms,
        capturedTables: guards.capturedTables,
        databaseBytes: Number(size.rows[0].b),
      };
    });
    log(
      `database initialized in ${(setup.initMs / 1000).toFixed(0)} s (${(setup.databaseBytes / 1e6).toFixed(0)} MB, ` +
        `${setup.capturedTables} tables captured in the guarded copy)`,
    );

    const config = { odoo: odooOptions, rounds, warmup, partners, scenarios: SCENARIOS };
    const batches: ErpBatch[] = [];
    const run = await runCommand(odoo.python, [WORKLOAD, JSON.stringify(config)], {
      timeoutMs: 60 * 60_000,
    });
    if (run.code !== 0) throw new Error(`the ERP workload failed:\n${run.stderr.slice(-3000)}`);
    for (const line of run.stdout.split("\n")) {
      if (!line.startsWith("{")) continue;
      const b = JSON.parse(line) as ErpBatch;
      batches.push(b);
      if (b.round >= 0)
        log(`round ${b.round + 1}/${rounds} ${b.scenario}: ${b.wallMs.toFixed(0)} ms (load ${b.load[0]})`);
    }
    const timedBatches = batches.filter((b) => b.round >= 0);
    const plainRuns = timedBatches.filter((b) => b.scenario === "plain");
    const scenarios = SCENARIOS.map((s) => {
      const own = timedBatches.filter((b) => b.scenario === s.name);
      const wall = stats(own.map((b) => b.wallMs));
      const paired = own
        .map((b) => b.wallMs / (plainRuns.find((p) => p.round === b.round)?.wallMs ?? NaN))
        .filter(Number.isFinite);
      const captured = own.map((b) => b.capturedRows).filter((n): n is number => n !== null);
      return {
        name: s.name,
        label: s.label,
        wallMs: wall,
        ratio: wall.median / stats(plainRuns.map((b) => b.wallMs)).median,
        pairedRatio: stats(paired),
        pythonCpuMs: stats(own.map((b) => b.pythonCpuMs)),
        backendCpuMs: stats(own.map((b) => b.backendCpuMs)),
        walBytes: stats(own.map((b) => b.walBytes)),
        records: own[0]?.records ?? 0,
        capturedRows: captured.length > 0 ? stats(captured).median : undefined,
        load: own.map((b) => b.load),
      };
    });
    const op = scenarios.find((s) => s.name === "op");
    const result = {
      benchmark: "undo-erp",
      machine,
      loadEnd: loadNow(),
      totalMs: now() - started,
      odoo: { version: odoo.version, command: odoo.command, python: odoo.python },
      undoApiVersion: UNDO_API_VERSION,
      rounds,
      warmup,
      partners,
      setup,
      workload:
        `per batch, one transaction committed: ${partners} companies (res.partner) each with two contacts ` +
        "(child_ids), two tags (category_id) and a chatter message (message_post), then a write on every company " +
        "and every contact; through the ORM as Odoo's superuser, in one Python process with the registries " +
        "loaded before any timing",
      method:
        "the database initialized by `odoo -i contacts --without-demo=all` as a non-superuser owner role, and a " +
        "FILE_COPY copy of it with the guards installed; rounds interleaved with the order rotating, after " +
        `${warmup} warm-up round(s); wall time from the first statement to the end of COMMIT`,
      scenarios,
      batches,
      goal: {
        goal: ERP_WALL_RATIO_GOAL,
        value: op?.ratio ?? NaN,
        pairedMedian: op?.pairedRatio.median ?? NaN,
        met: (op?.ratio ?? Infinity) <= ERP_WALL_RATIO_GOAL,
      },
    };
    const file = await writeResult("undo-erp", result);
    for (const s of scenarios)
      log(
        `${s.name.padEnd(5)} median ${s.wallMs.median.toFixed(0)} ms (${s.ratio.toFixed(3)} × plain; paired ` +
          `${s.pairedRatio.median.toFixed(3)}); backend CPU ${s.backendCpuMs.median.toFixed(0)} ms, Python ` +
          `${s.pythonCpuMs.median.toFixed(0)} ms; WAL ${(s.walBytes.median / 1e6).toFixed(2)} MB` +
          (s.capturedRows !== undefined ? `; ${s.capturedRows} rows captured` : ""),
      );
    log(
      `goal: op ≤ ${ERP_WALL_RATIO_GOAL} × plain: ${result.goal.value.toFixed(3)} (${result.goal.met ? "met" : "missed"})`,
    );
    log(`wrote ${file} (${(result.totalMs / 60_000).toFixed(1)} min)`);
  } finally {
    await removeThrowawayCluster(spec, stateDir, log);
  }
}

runBenchmark(main);
