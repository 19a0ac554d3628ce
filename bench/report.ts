/**
 * Renders BENCHMARKS.md from the result files the benchmarks wrote to bench/results/
 * (tenant-create.json, pulumi-up.json, restore.json, undo.json, router.json, rotation.json, k8s-up.json, scale.json, optionally pulumi-cold-build.json) and the Pulumi CLI
 * build cache (~/.cache/loomworks-hosting/pulumi-v*\/build-seconds). A benchmark without a result file keeps
 * its section of the current file (marked as kept), and sections the report does not render (hand-written
 * ones) are kept at the end, so rendering after one benchmark never drops another's figures.
 *
 *   node bin/bench/report.js [--out BENCHMARKS.md]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPO_ROOT, RESULTS_DIR, parseFlags, stats, type MachineInfo, type Stats } from "./common";
import type { RestoreTimings } from "../lib/restore/restore";
import type { BaselineSample, Method, Phase, RestoreSample } from "./restore-result";
import type { K8sUpBenchResult } from "./k8s-up";
import { K8S_UP_HEADING, k8sUpSection } from "./k8s-up-report";
import type { RotationBenchResult } from "./rotation";
import type { RouterBenchResult } from "./router";
import type { SnapshotCreateResult } from "./snapshot-create";
import { erpGoalRow, erpSection, type UndoErpResult } from "./undo-erp-report";
import type { SessionResult } from "./undo-session";
import { scaleSection, type ScaleResult } from "./scale-report";

type Summary = Stats & { samplesMs: number[]; load: number[]; ok: boolean[]; errors: string[] };

interface TenantCreateResult {
  machine: MachineInfo;
  loadEnd: number[];
  postgres: string;
  template: {
    fixture: { extraTables: number; rowsPerTable: number; payloadBytes: number };
    databaseBytes: number;
    tables: number;
    buildMs: number;
  };
  rounds: number;
  warmup: number;
  method: string;
  baseline: Stats & { name: string; samplesMs: number[] };
  createTenant: Stats & { name: string; samplesMs: number[] };
  ratio: number;
  goals: {
    ratio: { goal: number; value: number; met: boolean };
    p95: { goalMs: number; valueMs: number; met: boolean };
    p95FromSpare?: { goalMs: number; valueMs: number; met: boolean };
  };
  breakdown: Array<Stats & { name: string }>;
  paired?: {
    createDatabaseInCreateTenant: Stats;
    createDatabaseMinusBaseline: Stats;
    restOfCreateTenant: Stats;
  };
  statements?: Array<Stats & { name: string }>;
  pbkdf2: Stats & { rounds: number };
  loadDuring?: number[][];
  fileCopy?: Stats & { name: string; ratioToWalLog: number };
  fromSpare?: Stats & {
    name: string;
    samplesMs: number[];
    ratioToBaseline: number;
    breakdown: Array<Stats & { name: string; samplesMs?: number[] }>;
    prepareSpare: Stats;
  };
  neighbour?: {
    method: string;
    idle: NeighbourFigures;
    walLog: NeighbourFigures;
    fileCopy: NeighbourFigures;
  };
}

interface NeighbourFigures {
  windows: number;
  commitsPerSecond: number;
  latency: Stats;
}

interface PulumiScenario {
  name: string;
  tenants: number;
  baselineName: string;
  pulumi: Summary;
  pulumiUntilComplete: Summary & { extraUps: number[] };
  pulumiFitting: Summary & { parallel: number };
  libSequential: Summary;
  libConcurrent: Summary;
  libFitting: Summary & { concurrency: number };
  teardownUp: Summary;
}

interface PulumiUpResult {
  machine: MachineInfo;
  loadEnd: number[];
  pulumi: string;
  parallelism: string;
  libConcurrency: number;
  lockTable: {
    maxLocksPerTransaction: number;
    maxConnections: number;
    slots: number;
    relationLocksPerOwnershipStep: number;
    fitsAtOnce: number;
  };
  template: { fromDump: string; database: string };
  baseUpMs: number;
  totalMs: number;
  scenarios: PulumiScenario[];
  idleUp: Summary;
}

interface ColdBuildResult {
  date: string;
  seconds: number;
  ok: boolean;
  load: number[];
  note?: string;
}

type RestoreMethod = Method;
type RestoreBenchSample = RestoreSample;
type RestoreBaselineSample = BaselineSample;
type RestorePhase = Phase;

interface RestoreBenchResult {
  machine: MachineInfo;
  loadEnd: number[];
  postgres: string;
  pgbackrest: string;
  template: {
    fixture: { extraTables: number; rowsPerTable: number; payloadBytes: number };
    buildMs: number;
    databaseBytes: number;
    tenantBytes: number;
    tables: number;
    filestoreFiles: number;
  };
  small: { fromDump: string; databaseBytes: number; tables: number; filestoreFiles: number };
  createTenantMs: Stats;
  createConcurrency: number;
  others?: { mode: "full" | "small"; reason: string; projectedMs?: number };
  methods: RestoreMethod[];
  methodNote: string;
  settings: {
    restores: number;
    smallRestores: number;
    snapshots: number;
    baselineRounds: number;
    clusterBaselines?: boolean;
  };
  goals: { snapshotP95Ms: number; restoreMs: number; unavailableMs: number; scalingRatio: number };
  method: string;
  baselineCommands: Record<string, string>;
  phases: RestorePhase[];
  /** The definitions' load alone: parallel sessions vs one transaction (bench/restore.ts). */
  schemaLoad?: {
    tables: number;
    jobs: number;
    parallelMs: number[];
    oneTransactionMs: number[];
    fallbacks: number;
  };
  failures: string[];
  /** Fixes applied to the result file after the run, each with its reason. */
  corrections?: string[];
  totalMs: number;
}

interface UndoScenarioSummary {
  name: string;
  label: string;
  tps: Stats;
  ratio: number;
  cpuRatio: number;
  serverCpuUsPerTx: Stats;
  clientCpuUsPerTx: Stats;
  pairedRatio: Stats;
  latencyMs: Stats;
  walBytesPerTx: Stats;
  walRecordsPerTx: number;
  walFpiPerTx: number;
  failed: number;
  statements: Array<{ sql: string; ms: number }>;
  functions?: Array<{ name: string; callsPerTx: number; totalUsPerCall: number; selfUsPerCall: number }>;
  changeLog?: { rowsPerTx: number; bytesPerRow: Stats };
}

interface UndoKindSummary {
  kind: "insert" | "delete" | "update";
  undoMs: Stats;
  undoStatementMs: Stats;
  undoCommitMs: Stats;
  dryRunMs: Stats;
  forwardCapturedMs: Stats;
  forwardPlainMs: Stats;
  commitMs: Stats;
  bytesPerRow: Stats;
  heapBytesPerRow: Stats;
  indexBytesPerRow: Stats;
  allApplied: boolean;
}

interface UndoBenchResult {
  machine: MachineInfo;
  loadEnd: number[];
  postgres: string;
  settings: Record<string, string>;
  undoApi?: { version: number; sqlSha256: string };
  totalMs: number;
  pgbench: {
    clients: number;
    threads: number;
    seconds: number;
    warmupSeconds: number;
    scale: number;
    rounds: number;
    databaseBytes: number;
    capture: { triggers: string[] };
    method: string;
    runs?: Array<{ scenario: string; tps: number; load: number[] }>;
    scenarios: UndoScenarioSummary[];
  };
  dormant?: {
    rows: number;
    singleRowStatements: number;
    rounds: number;
    method: string;
    kinds: Array<{ kind: string; baselineUsPerRow: Stats; idleUsPerRow: Stats; extraUsPerRow: number }>;
  };
  profile?: { rounds: number; seconds: number; clients: number; scenarios: UndoScenarioSummary[] };
  session?: SessionResult;
  undo: {
    rows: number;
    rounds: number;
    backgroundRows: number;
    tableBytes: number;
    table: string;
    method: string;
    kinds: UndoKindSummary[];
  };
  goals: {
    opRatio: { goal: number; value: number; met: boolean; cpuRatio: number };
    idleRatio: { goal: number; value: number; met: boolean; cpuRatio: number };
    undoMs: { goalMs: number; valueMs: number; met: boolean; worstKindMs: number; allKindsMet: boolean };
  };
}

const CACHE_ROOT =
  process.env.LOOMWORKS_TOOLS_CACHE ??
  path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "loomworks-hosting");

function readJson<T>(name: string): T | undefined {
  const file = path.join(RESULTS_DIR, `${name}.json`);
  return fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, "utf8")) as T) : undefined;
}

const sec = (ms: number): string => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : "–");
const msf = (ms: number): string => (Number.isFinite(ms) ? `${ms.toFixed(0)} ms` : "–");
const ratio = (a: number, b: number): string =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "–";
const yesNo = (met: boolean): string => (met ? "**met**" : "**missed**");
const loads = (l: number[]): string => l.map((x) => x.toFixed(2)).join(" / ");
/** "median (n ok of m)" with failures spelled out. */
function cell(s: Summary, fmt: (ms: number) => string = sec): string {
  const total = s.samplesMs.length;
  if (total === 0) return "–";
  const failed = (s.ok ?? []).filter((ok) => !ok).length;
  const n = `n=${s.n}`;
  return failed > 0
    ? `${s.n > 0 ? fmt(s.median) : "–"} (${n}; ${failed} of ${total} FAILED)`
    : `${fmt(s.median)} (${n})`;
}

function machineSection(
  tc?: TenantCreateResult,
  pu?: PulumiUpResult,
  rs?: RestoreBenchResult,
  un?: UndoBenchResult,
): string[] {
  const m = tc?.machine ?? pu?.machine ?? rs?.machine ?? un?.machine;
  if (!m) return [];
  const out = [
    "## Machine",
    "",
    "| | |",
    "|---|---|",
    `| CPU | ${m.nproc} cores (nproc), ${m.cpuModel} |`,
    `| Memory | ${m.memoryGiB} GiB |`,
    `| Node.js | ${m.node} |`,
  ];
  const postgres = tc?.postgres ?? rs?.postgres ?? un?.postgres;
  if (postgres) out.push(`| PostgreSQL | ${postgres} |`);
  if (rs) out.push(`| pgBackRest | ${rs.pgbackrest.replace(/^pgBackRest /, "")} |`);
  if (pu) out.push(`| Pulumi | ${pu.pulumi} (project CLI in .tools/bin) |`);
  if (tc) {
    out.push(
      `| Load (1/5/15 min), tenant-create | start ${loads(tc.machine.load)}, end ${loads(tc.loadEnd)} |`,
    );
  }
  if (pu)
    out.push(`| Load (1/5/15 min), pulumi-up | start ${loads(pu.machine.load)}, end ${loads(pu.loadEnd)} |`);
  if (rs)
    out.push(`| Load (1/5/15 min), restore | start ${loads(rs.machine.load)}, end ${loads(rs.loadEnd)} |`);
  if (un) out.push(`| Load (1/5/15 min), undo | start ${loads(un.machine.load)}, end ${loads(un.loadEnd)} |`);
  out.push(
    "",
    `Load averages above ${m.nproc} mean other work (other sessions' test runs and builds) shared the ` +
      "machine during the measurement; interleaving the scenarios spreads that over both sides of each comparison.",
    "",
  );
  return out;
}

function tenantCreateSection(r: TenantCreateResult): string[] {
  const t = r.template;
  const row = (name: string, s: Stats, toA: number): string =>
    `| ${name} | ${msf(s.median)} | ${msf(s.p95)} | ${msf(s.min)} | ${msf(s.max)} | ${s.n} | ${toA.toFixed(2)} |`;
  const out = [
    "## Tenant creation: createTenant vs raw CREATE DATABASE (`bench/tenant-create.ts`)",
    "",
    `Template: Odoo-shaped FIXTURE (not Odoo), ${(t.databaseBytes / 1e6).toFixed(1)} MB ` +
      `\`pg_database_size\` (${(t.databaseBytes / 2 ** 20).toFixed(1)} MiB), ${t.tables} tables in \`public\` ` +
      `(generator options extraTables=${t.fixture.extraTables}, rowsPerTable=${t.fixture.rowsPerTable}, ` +
      `payloadBytes=${t.fixture.payloadBytes}; built by ensureTemplate in ${sec(t.buildMs)}), in a throw-away ` +
      "cluster with the project's postgresql.conf (WAL archiving to pgBackRest on).",
    "",
    `${r.rounds} interleaved rounds after ${r.warmup} warm-up round(s). Method: ${r.method}.`,
    "",
    `Load (1/5/15 min): ${loadLine(r)}.`,
    "",
    "| Scenario | median | p95 | min | max | n | median / median(a) |",
    "|---|---|---|---|---|---|---|",
    row(`(a) baseline: ${r.baseline.name}`, r.baseline, 1),
    ...(r.fileCopy ? [row(`(a′) ${r.fileCopy.name}`, r.fileCopy, r.fileCopy.ratioToWalLog)] : []),
    row(
      `(b) ${r.createTenant.name}${r.fromSpare ? ", no spare: copies the template" : ""}`,
      r.createTenant,
      r.ratio,
    ),
    ...(r.fromSpare ? [row(`(c) ${r.fromSpare.name}`, r.fromSpare, r.fromSpare.ratioToBaseline)] : []),
    "",
    "| Goal | Target | Measured | |",
    "|---|---|---|---|",
    `| median(b) / median(a) | ≤ ${r.goals.ratio.goal} | ${r.ratio.toFixed(2)} | ${yesNo(r.goals.ratio.met)} |`,
    `| p95(b), copying the template | ≤ ${sec(r.goals.p95.goalMs)} | ${sec(r.goals.p95.valueMs)} | ${yesNo(r.goals.p95.met)} |`,
    ...(r.goals.p95FromSpare
      ? [
          `| p95(c), from a spare | ≤ ${sec(r.goals.p95FromSpare.goalMs)} | ${sec(r.goals.p95FromSpare.valueMs)} | ` +
            `${yesNo(r.goals.p95FromSpare.met)} |`,
        ]
      : []),
    "",
    ...spareText(r),
  ];
  if (!r.goals.p95.met && r.baseline.p95 > r.goals.p95.goalMs) {
    out.push(
      `The raw CREATE DATABASE alone has a p95 of ${sec(r.baseline.p95)} here, above the p95 goal: on this ` +
        "machine the copy itself (WAL_LOG writes the whole 100 MB through WAL, with wal_compression on, " +
        "archived by pgBackRest) is the floor, whatever createTenant adds.",
      "",
    );
  }
  const total = r.createTenant.median;
  out.push(
    "### createTenant step breakdown (medians over the rounds)",
    "",
    "Times between consecutive createTenant log lines. A step's line is printed after its journal " +
      "write in the registry, so each row is the step itself plus the journal writes around it " +
      "(finishStep of that step, beginStep + setProvisioningStep of the next).",
    "",
    "| Segment (opened by log line) | median | p95 | share of median total |",
    "|---|---|---|---|",
    ...r.breakdown.map(
      (s) => `| ${s.name} | ${msf(s.median)} | ${msf(s.p95)} | ${((s.median / total) * 100).toFixed(0)} % |`,
    ),
    "",
    ...(r.paired
      ? [
          `Paired per round: the CREATE DATABASE inside createTenant (between its \`database\` and ` +
            `\`created database\` lines) took a median ${msf(r.paired.createDatabaseInCreateTenant.median)}; ` +
            `its difference to the same round's baseline has a median of ` +
            `${msf(r.paired.createDatabaseMinusBaseline.median)} but ranges from ` +
            `${msf(r.paired.createDatabaseMinusBaseline.min)} to ${msf(r.paired.createDatabaseMinusBaseline.max)}, ` +
            "i.e. the copy itself costs the same in both scenarios within this run's noise. Everything else " +
            `createTenant does took a median ${msf(r.paired.restOfCreateTenant.median)} ` +
            `(p95 ${msf(r.paired.restOfCreateTenant.p95)}); for the ratio goal it would have to stay within ` +
            `${msf(r.baseline.median * (r.goals.ratio.goal - 1))} (${r.goals.ratio.goal - 1} × median(a)). ` +
            "That part is roughly fixed while the copy time grows with machine load, so the ratio improves on a " +
            `busy machine: at this run's fastest baseline (${msf(r.baseline.min)}) the same overhead gives ` +
            `${((r.baseline.min + r.paired.restOfCreateTenant.median) / r.baseline.min).toFixed(2)}.`,
          "",
        ]
      : []),
    ...(r.statements && r.statements.length > 0
      ? [
          "Statement-level replay of the two heaviest post-copy steps (same SQL and hash as " +
            `lib/tenant/provision.ts, run on a raw copy of the template, medians of ${r.statements[0].n}):`,
          "",
          "| Statement | median | max |",
          "|---|---|---|",
          ...r.statements.map((s) => `| ${s.name} | ${msf(s.median)} | ${msf(s.max)} |`),
          "",
        ]
      : []),
    `For reference: one pbkdf2-sha512 hash with ${r.pbkdf2.rounds.toLocaleString("en")} rounds (the erp-admin ` +
      `step's CPU part) takes ${msf(r.pbkdf2.median)} (median of ${r.pbkdf2.n}) on its own.`,
    "",
  );
  return out;
}

/** (c) per round without its erp-admin segment (the wait for the hash): what the rest costs. */
function hashFloor(r: TenantCreateResult, sp: NonNullable<TenantCreateResult["fromSpare"]>): string[] {
  const erp = sp.breakdown.find((x) => x.name === "erp-admin")?.samplesMs;
  if (!erp || erp.length !== sp.samplesMs.length) return [];
  const rest = sp.samplesMs.map((ms, i) => ms - erp[i]).sort((x, y) => x - y);
  const median = rest[Math.floor((rest.length - 1) / 2)];
  const worst = rest[rest.length - 1];
  return [
    `Without its \`erp-admin\` segment (c) took a median of ${msf(median)} (at most ${msf(worst)}) per round; ` +
      `the segment itself a median of ${msf(sp.breakdown.find((x) => x.name === "erp-admin")?.median ?? NaN)}. ` +
      `The hash is CPU-bound and single-threaded (PBKDF2's rounds are sequential), so it, not the database, ` +
      `is (c)'s floor here, and it grows with the machine's load (1-minute load ${loadRange(r)} on ` +
      `${r.machine.nproc} cores in this run). Its rounds are Odoo's ` +
      "(an admin password any other way would be weaker or would be re-hashed at the first login).",
    "",
  ];
}

/** The 1-minute load's range over the rounds ("?" when not recorded). */
function loadRange(r: TenantCreateResult): string {
  const during = (r.loadDuring ?? []).map((l) => l[0]);
  return during.length ? `${Math.min(...during).toFixed(2)}–${Math.max(...during).toFixed(2)}` : "?";
}

/** Load at the start and end of the run, and the 1-minute load's range over the rounds. */
function loadLine(r: TenantCreateResult): string {
  const during = (r.loadDuring ?? []).map((l) => l[0]);
  const range = during.length
    ? `; 1-min load after each round ${Math.min(...during).toFixed(2)}–${Math.max(...during).toFixed(2)}`
    : "";
  return `start ${loads(r.machine.load)}, end ${loads(r.loadEnd)}${range} (${r.machine.nproc} cores)`;
}

/** The spare scenario's breakdown, FILE_COPY's cost to a neighbour, and why the copy is the floor. */
function spareText(r: TenantCreateResult): string[] {
  const out: string[] = [];
  const sp = r.fromSpare;
  if (sp) {
    out.push(
      "(c) takes a spare database made ahead of time (lib/tenant/spares.ts; " +
        `making one took a median ${msf(sp.prepareSpare.median)}, p95 ${msf(sp.prepareSpare.p95)}, outside the timed ` +
        "part, as the background job does): the copy, the ownership of every object and the sequences' re-log " +
        "are done on the spare, and the claim renames the database and its role in one transaction. In (b) the " +
        "admin's pbkdf2 hash already runs in libuv's thread pool while the template is copied.",
      "",
      "| (c) segment (opened by log line) | median | p95 | share of median total |",
      "|---|---|---|---|",
      ...sp.breakdown.map(
        (x) =>
          `| ${x.name} | ${msf(x.median)} | ${msf(x.p95)} | ${((x.median / sp.median) * 100).toFixed(0)} % |`,
      ),
      "",
      `On (c)'s critical path the admin's hash is what remains: one pbkdf2-sha512 hash of ` +
        `${r.pbkdf2.rounds.toLocaleString("en")} rounds took ${msf(r.pbkdf2.median)} (median) alone in this run; ` +
        "it starts when createTenant does and the `erp-admin` step waits for whatever of it is left.",
      "",
      ...hashFloor(r, sp),
    );
  }
  const n = r.neighbour;
  if (n && r.fileCopy) {
    const cell = (x: NeighbourFigures): string =>
      `${x.commitsPerSecond.toFixed(0)} | ${msf(x.latency.median)} | ${msf(x.latency.p95)} | ${msf(x.latency.max)} | ${x.windows}`;
    out.push(
      "**FILE_COPY vs WAL_LOG, and what each costs a neighbour.** FILE_COPY copies the template's files " +
        "without WAL but runs a CHECKPOINT before and after the copy: every dirty buffer of the cluster is " +
        `written out and fsynced, by the creating session. Here FILE_COPY took ${r.fileCopy.ratioToWalLog.toFixed(2)} × ` +
        `WAL_LOG's median (${msf(r.fileCopy.median)} vs ${msf(r.baseline.median)}), with the neighbour below ` +
        `writing throughout. Method: ${n.method}.`,
      "",
      "| Neighbour during | commits/s (median of windows) | commit latency median | p95 | max | windows |",
      "|---|---|---|---|---|---|",
      `| nothing else (idle) | ${cell(n.idle)} |`,
      `| (a) CREATE DATABASE ... WAL_LOG | ${cell(n.walLog)} |`,
      `| (a′) CREATE DATABASE ... FILE_COPY | ${cell(n.fileCopy)} |`,
      "",
    );
  }
  return out;
}

function pulumiSection(r: PulumiUpResult): string[] {
  const lt = r.lockTable;
  const out = [
    "## `pulumi up` vs the same work straight from lib (`bench/pulumi-up.ts`)",
    "",
    `A throw-away stack (testkit/local-stack.ts, Automation API, file:// backend) already up with its ` +
      `cluster and the small committed fixture template (\`${r.template.fromDump}\`; base up took ` +
      `${sec(r.baseUpMs)}); each scenario adds new tenants on top of it and removes them afterwards. ` +
      `Pulumi parallelism: ${r.parallelism}. Baselines run in the same process against the same cluster ` +
      `and template: sequential, and at most ${r.libConcurrency} in flight (mapLimit over Promise.all). ` +
      `Medians over successful samples (n); failed samples are counted separately. Total run ${sec(r.totalMs)}.`,
    "",
    `| Scenario | pulumi up | baseline | sequential | ratio | ${r.libConcurrency} in flight | ratio |`,
    "|---|---|---|---|---|---|---|",
  ];
  for (const s of r.scenarios) {
    out.push(
      `| ${s.name} | ${cell(s.pulumi)} | ${s.baselineName} ×${s.tenants} | ${cell(s.libSequential)} | ` +
        `${ratio(s.pulumi.median, s.libSequential.median)} | ${cell(s.libConcurrent)} | ` +
        `${ratio(s.pulumi.median, s.libConcurrent.median)} |`,
    );
  }
  out.push(`| no-change up, 0 tenants (fixed cost of an up) | ${cell(r.idleUp)} | – | – | – | – | – |`, "");

  const fitting = r.scenarios.filter(
    (s) => s.pulumiFitting.samplesMs.length > 0 || s.libFitting.samplesMs.length > 0,
  );
  if (fitting.length > 0) {
    out.push(
      `At the concurrency the server's lock table allows (${lt.fitsAtOnce}, see below):`,
      "",
      `| Scenario | pulumi up --parallel ${lt.fitsAtOnce} | createTenant, ${lt.fitsAtOnce} in flight | ratio | createTenant sequential | ratio |`,
      "|---|---|---|---|---|---|",
      ...fitting.map(
        (s) =>
          `| ${s.name} | ${cell(s.pulumiFitting)} | ${cell(s.libFitting)} | ` +
          `${ratio(s.pulumiFitting.median, s.libFitting.median)} | ${cell(s.libSequential)} | ` +
          `${ratio(s.pulumiFitting.median, s.libSequential.median)} |`,
      ),
      "",
    );
  }

  const failed = r.scenarios.filter((s) => s.pulumi.errors.length > 0 || s.libConcurrent.errors.length > 0);
  if (failed.length > 0) {
    out.push("### Failures", "");
    for (const s of failed) {
      const nFailed = (x: Summary): number => x.ok.filter((ok) => !ok).length;
      if (s.pulumi.errors.length > 0) {
        const until = s.pulumiUntilComplete;
        out.push(
          `- ${s.name}, pulumi up (default parallelism): ${nFailed(s.pulumi)} of ${s.pulumi.samplesMs.length} failed ` +
            `(after ${s.pulumi.samplesMs
              .filter((_, i) => !s.pulumi.ok[i])
              .map(sec)
              .join(", ")}): ` +
            `${s.pulumi.errors.map((e) => `\`${e}\``).join("; ")}. Repeating \`up\` until every tenant existed took ` +
            `${until.extraUps.join(", ")} more up(s), ${until.samplesMs.map(sec).join(", ")} in all (first up included).`,
        );
      }
      if (s.libConcurrent.errors.length > 0) {
        out.push(
          `- ${s.name}, createTenant with ${r.libConcurrency} in flight: ${nFailed(s.libConcurrent)} of ` +
            `${s.libConcurrent.samplesMs.length} batches had failures: ` +
            `${s.libConcurrent.errors.map((e) => `\`${e}\``).join("; ")}.`,
        );
      }
    }
    out.push("");
  }
  out.push(
    `Lock table: the ownership step (lib/tenant/sql.ts reassignPublicObjectsSql, one transaction) holds ` +
      `${lt.relationLocksPerOwnershipStep} relation locks at once for this ~400-table template (tables, their ` +
      `indexes, TOAST tables and sequences); the shared lock table has max_locks_per_transaction × ` +
      `(max_connections + max_prepared_transactions) = ${lt.maxLocksPerTransaction} × ${lt.maxConnections} = ` +
      `${lt.slots} slots, so about ${lt.fitsAtOnce} tenant creations fit at the same time; beyond that they ` +
      "can fail with `out of shared memory` (hint: increase max_locks_per_transaction).",
    "",
  );
  return out;
}

const METHOD_LABEL: Record<RestoreMethod, string> = {
  overlapped:
    "restoreTenant, overlapped pipeline (lib/restore/pipeline.ts, the default), selective scratch restore",
  sequential:
    "restoreTenant, sequential pipeline (the one before, `LOOMWORKS_RESTORE_PIPELINE=sequential`), selective scratch restore",
  pgbackrest:
    "restoreTenant, scratch by `pgbackrest restore --db-include` (`LOOMWORKS_RESTORE_METHOD=pgbackrest`)",
  selective:
    "restoreTenant, selective scratch restore (lib/restore/selective.ts, `LOOMWORKS_RESTORE_METHOD=selective`)",
  current: "restoreTenant (the one scratch-restore method lib/restore has)",
};
const SHORT_METHOD: Record<RestoreMethod, string> = {
  overlapped: "overlapped",
  sequential: "sequential",
  pgbackrest: "pgbackrest",
  selective: "selective",
  current: "restoreTenant",
};
const BASELINE_LABEL: Record<RestoreBaselineSample["kind"], string> = {
  "whole-cluster": "baseline: whole-cluster `pgbackrest restore` + `pg_dump -Fc \\| pg_restore`",
  "db-include": "naive selective: `pgbackrest restore --db-include` + `pg_dump -Fc \\| pg_restore`",
};

const gb = (bytes: number | undefined): string =>
  bytes === undefined || !Number.isFinite(bytes) ? "–" : `${(bytes / 1e9).toFixed(2)} GB`;
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;
const count = (n: number): string => n.toLocaleString("en");
const ms1 = (ms: number): string => (Number.isFinite(ms) ? `${ms.toFixed(1)} ms` : "–");
const num = (x: unknown): number => (typeof x === "number" ? x : NaN);
const medianOf = (values: number[]): number => {
  const v = values.filter(Number.isFinite);
  return v.length > 0 ? stats(v).median : NaN;
};

/** Snapshot create (issue 16): O(1) createSnapshot against the old filestore copy, same run. */
function snapshotCreateSection(r: SnapshotCreateResult): string[] {
  const worst = Math.max(...r.series.map((x) => x.created.p95));
  const out = [
    "## Snapshot create without a filestore copy (`bench/snapshot-create.ts`)",
    "",
    `One run of ${(r.totalMs / 60_000).toFixed(1)} min in a throw-away cluster: tenants from the small committed ` +
      "fixture template with 0, 300 and 3,000 content-addressed files (1-4 KB) in their filestores, a full backup, " +
      `then ${r.settings.rounds} rounds, each taking per tenant (rotating order) one snapshot with createSnapshot as ` +
      "it is now and one **baseline**: the same call followed by the hard-link copy of the filestore that " +
      "createSnapshot made before issue 16 (`bench/snapshot-baseline.ts`), new and baseline alternating which goes " +
      "first, 100 ms apart (the copy's writes settle before the next timed call). Times end to end as the caller sees them; the first call per tenant (it opens the registry pool) is " +
      "not a sample. Steps: lookup of a manual name / the one statement (restore point, WAL file, size, backup set, " +
      "row `ready`, synchronous commit) / the pgBackRest fallback for the backup set.",
    "",
    "| Filestore | new p50 | new p95 | baseline p50 | baseline p95 | p95 new / baseline | copy alone (median) | new steps (medians) | load (1/5/15) start → end | p95 ≤ " +
      `${r.goals.p95Ms} ms |`,
    "|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const x of r.series) {
    out.push(
      `| ${count(x.files)} files (${mb(x.filestoreBytes)}) | ${ms1(x.created.median)} | ${ms1(x.created.p95)} | ` +
        `${ms1(x.baseline.median)} | ${ms1(x.baseline.p95)} | ${ratio(x.created.p95, x.baseline.p95)} | ` +
        `${ms1(x.copyMedianMs)} | ${[x.steps.register, x.steps.restorePoint, x.steps.record].map((v) => ms1(v ?? NaN)).join(" / ")} | ` +
        `${loads(x.loadStart)} → ${loads(x.loadEnd)} | ${yesNo(x.created.p95 <= r.goals.p95Ms)} |`,
    );
  }
  out.push(
    "",
    "Where the cost went: a restore now links exactly the files the restored database references, from the live " +
      "filestore and the retired area (lib/restore/filestore.ts), instead of `cp -al` of the snapshot's copy. The " +
      `same files, ${r.settings.restoreRounds} rounds each, interleaved:`,
    "",
    "| Files | link the referenced files p50 / p95 | `cp -al` of the directory p50 / p95 | p50 ratio | load (1/5/15) start → end |",
    "|---|---|---|---|---|",
  );
  for (const x of r.restoreFilestore) {
    out.push(
      `| ${count(x.files)} | ${ms1(x.assemble.median)} / ${ms1(x.assemble.p95)} | ${ms1(x.copyTree.median)} / ` +
        `${ms1(x.copyTree.p95)} | ${ratio(x.assemble.median, x.copyTree.median)} | ${loads(x.loadStart)} → ${loads(x.loadEnd)} |`,
    );
  }
  out.push(
    "",
    "| Goal | Target | Measured | |",
    "|---|---|---|---|",
    `| snapshot create p95, whatever the filestore holds (worst of ${r.series.map((x) => count(x.files)).join(" / ")} files) | ` +
      `≤ ${r.goals.p95Ms} ms | ${ms1(worst)} | ${yesNo(worst <= r.goals.p95Ms)} |`,
    "",
  );
  return out;
}

function restoreSection(r: RestoreBenchResult): string[] {
  const phases = [...r.phases].sort((a, b) => a.tenants - b.tenants);
  const first = phases[0];
  const last = phases.length > 1 ? phases[phases.length - 1] : undefined;
  const g = r.goals;
  const cols = phases.map((p) => `${p.tenants} tenants`);
  const large = `${Math.round(r.template.tenantBytes / 1e6)} MB`;
  const okRestores = (p: RestorePhase, m: RestoreMethod, size: "large" | "small"): RestoreBenchSample[] =>
    p.restores.filter((x) => x.method === m && x.size === size && x.ok);
  const okBaselines = (p: RestorePhase, k: RestoreBaselineSample["kind"]): RestoreBaselineSample[] =>
    p.baselines.filter((x) => x.kind === k && x.ok);
  const wallStats = (xs: Array<{ ms: number }>): Stats | undefined =>
    xs.length > 0 ? stats(xs.map((x) => x.ms)) : undefined;
  const restoreStats = (p: RestorePhase, m: RestoreMethod, size: "large" | "small"): Stats | undefined =>
    wallStats(okRestores(p, m, size).map((x) => ({ ms: x.wallMs })));
  const baselineStats = (p: RestorePhase, k: RestoreBaselineSample["kind"]): Stats | undefined =>
    wallStats(okBaselines(p, k).map((x) => ({ ms: x.totalMs })));
  const statCells = (st: Stats | undefined, fmt: (ms: number) => string = sec): string =>
    st ? `${fmt(st.median)} | ${fmt(st.p95)} | ${st.n}` : "– | – | 0";
  const growth = (a?: Stats, b?: Stats): string => (a && b ? ratio(b.median, a.median) : "–");

  const others = r.others
    ? r.others.mode === "full"
      ? `each ${mb(r.template.tenantBytes)} like the first ones (${r.others.reason})`
      : `**from the small template** (${r.others.reason}; they add the same number of databases and ` +
        "files, ~400 tables each, but few bytes)"
    : "";
  const out = [
    "## Snapshots and per-tenant restore (`bench/restore.ts`)",
    "",
    `One run of ${(r.totalMs / 60_000).toFixed(1)} min in a throw-away cluster (own state directory and port, ` +
      "the project's postgresql.conf and pgbackrest.conf: WAL archiving on, zstd level 3, process-max 2). " +
      `${first.tenants} tenants created with createTenant from the Odoo-shaped FIXTURE template (not Odoo; ` +
      `extraTables=${r.template.fixture.extraTables}, rowsPerTable=${r.template.fixture.rowsPerTable}, ` +
      `payloadBytes=${r.template.fixture.payloadBytes}): a tenant is ${mb(r.template.tenantBytes)} ` +
      `\`pg_database_size\` with ${r.template.tables} tables in \`public\` and ${r.template.filestoreFiles} ` +
      `files in its filestore; one small tenant from \`${r.small.fromDump}\` (${mb(r.small.databaseBytes)}, ` +
      `${r.small.tables} tables, ${r.small.filestoreFiles} files); then a full backup.` +
      (last
        ? ` Later in the same run the cluster grew to ${last.tenants} tenants, the ${last.tenants - first.tenants} ` +
          `others ${others}, and took a new full backup.`
        : ""),
    "",
    `Scratch-restore methods: ${r.methodNote}. Method: ${r.method}.`,
    "",
    "| Cluster | " + cols.join(" | ") + " |",
    "|---|" + cols.map(() => "---").join("|") + "|",
    `| tenant databases (all databases) | ${phases.map((p) => `${p.cluster.tenantDatabases} (${p.cluster.databases})`).join(" | ")} |`,
    `| data directory | ${phases.map((p) => `${gb(p.cluster.dataDirBytes)}, ${count(p.cluster.dataDirFiles)} files (${count(p.cluster.baseFiles)} in base/)`).join(" | ")} |`,
    `| sum of \`pg_database_size\` | ${phases.map((p) => gb(p.cluster.databaseBytes)).join(" | ")} |`,
    `| full backup (pgBackRest) | ${phases.map((p) => `${sec(p.cluster.backup.ms)}; ${gb(p.cluster.backup.sizeBytes)}, ${gb(p.cluster.backup.repoBytes)} in the repository`).join(" | ")} |`,
    `| load (1/5/15 min) at the phase's start → end | ${phases.map((p) => `${loads(p.loadStart)} → ${loads(p.loadEnd)}`).join(" | ")} |`,
    "",
    `### Snapshot create (createSnapshot, ${r.settings.snapshots} per tenant and cluster size, interleaved)`,
    "",
    "Timed end to end by the caller; the first call of each series (new registry pool) is shown apart and " +
      "not in the samples. Steps: createSnapshot's own timings (registry row / restore point + WAL file + " +
      "size + backup lookup / filestore hard-link copy / final update).",
    "",
    "| Tenant | Cluster | p50 | p95 | max | n | first call | steps (medians) | p95 goal |",
    "|---|---|---|---|---|---|---|---|---|",
  ];
  for (const size of ["small", "large"] as const) {
    for (const p of phases) {
      const sn = p.snapshots.find((x) => x.size === size);
      if (!sn) continue;
      const parts = ["register", "restorePoint", "filestore", "record"].map((k) => ms1(sn.parts[k] ?? NaN));
      out.push(
        `| ${size === "small" ? "small" : large} (\`${sn.tenant}\`, ${mb(sn.databaseBytes)}, ${sn.filestoreFiles} files) | ` +
          `${p.tenants} tenants | ${ms1(sn.stats.median)} | ${ms1(sn.stats.p95)} | ${ms1(sn.stats.max)} | ` +
          `${sn.stats.n} | ${ms1(sn.coldMs)} | ${parts.join(" / ")} | ` +
          `${yesNo(sn.stats.p95 <= g.snapshotP95Ms)} |`,
      );
    }
  }
  out.push("");

  // -- restore against baselines
  out.push(
    "### One-tenant restore against the baselines",
    "",
    `Restore of one tenant to a snapshot taken after some writes, with rows changed after it (5 tables), ` +
      `end to end as the caller of restoreTenant sees it; ${r.settings.restores} restore(s) of the ${large} tenant ` +
      `per method and cluster size (\`${first.restoreTarget.large}\`` +
      (last ? ` at ${first.tenants}, \`${last.restoreTarget.large}\` at ${last.tenants} tenants` : "") +
      `), ${r.settings.smallRestores} of the small one per method. Baselines to the same backup set and target: ` +
      `${r.baselineCommands["whole-cluster"]}; naive selective: ${r.baselineCommands["db-include"]}.`,
    "",
    "| Scenario | " +
      phases.map((p) => `${p.tenants} tenants: median | p95 | n`).join(" | ") +
      (last ? ` | ${last.tenants} / ${first.tenants} tenants` : "") +
      " |",
    "|---|" + phases.map(() => "---|---|---").join("|") + (last ? "|---" : "") + "|",
  );
  const row = (label: string, get: (p: RestorePhase) => Stats | undefined): void => {
    const st = phases.map(get);
    out.push(
      `| ${label} | ${st.map((x) => statCells(x)).join(" | ")}` +
        (last ? ` | ${growth(st[0], st[st.length - 1])}` : "") +
        " |",
    );
  };
  for (const m of r.methods) row(`${METHOD_LABEL[m]}, ${large} tenant`, (p) => restoreStats(p, m, "large"));
  for (const m of r.methods) row(`${METHOD_LABEL[m]}, small tenant`, (p) => restoreStats(p, m, "small"));
  for (const k of ["whole-cluster", "db-include"] as const)
    row(`${BASELINE_LABEL[k]}, ${large} tenant`, (p) => baselineStats(p, k));
  out.push("");

  if (r.methods.includes("overlapped") && r.methods.includes("sequential")) {
    const size = (z: "large" | "small") => (z === "large" ? `${large} tenant` : "small tenant");
    out.push(
      "The overlapped pipeline against the sequential one it replaced, same run, interleaved (medians; a " +
        "ratio below 1 means the overlapped pipeline is faster; load = 1-min load average after each restore):",
      "",
      "| Tenant | " + cols.join(" | ") + " |",
      "|---|" + cols.map(() => "---").join("|") + "|",
    );
    for (const z of ["large", "small"] as const) {
      const cells = phases.map((p) => {
        const a = restoreStats(p, "overlapped", z);
        const b = restoreStats(p, "sequential", z);
        if (!a || !b) return "–";
        const load = (m: RestoreMethod) =>
          okRestores(p, m, z)
            .map((x) => x.load[0]?.toFixed(1) ?? "–")
            .join(", ");
        return (
          `${sec(a.median)} vs ${sec(b.median)}: ${ratio(a.median, b.median)} ` +
          `(load ${load("overlapped")} / ${load("sequential")})`
        );
      });
      out.push(`| ${size(z)} | ${cells.join(" | ")} |`);
    }
    out.push("");
  }
  out.push(
    `Medians side by side (${large} tenant; a ratio below 1 means restoreTenant is faster):`,
    "",
    "| restoreTenant | against | " + cols.join(" | ") + " |",
    "|---|---|" + cols.map(() => "---").join("|") + "|",
  );
  for (const m of r.methods) {
    for (const k of ["whole-cluster", "db-include"] as const) {
      const cells = phases.map((p) => {
        const a = restoreStats(p, m, "large");
        const b = baselineStats(p, k);
        if (!a || !b) return "–";
        return `${sec(a.median)} vs ${sec(b.median)}: ${ratio(a.median, b.median)} (${(b.median / a.median).toFixed(1)}× faster)`;
      });
      out.push(
        `| ${SHORT_METHOD[m]} | ${k === "whole-cluster" ? "whole-cluster baseline" : "naive `--db-include`"} | ${cells.join(" | ")} |`,
      );
    }
  }
  out.push("");

  // -- steps
  const stepCols = r.methods.flatMap((m) => phases.map((p) => ({ m, p })));
  const stepRows: Array<[string, keyof RestoreTimings]> = [
    ["validate", "validateMs"],
    ["↳ WAL switch + archived (overlapped: in scratch-restore, beside the files)", "archiveWaitMs"],
    ["scratch-restore", "scratchRestoreMs"],
    ["↳ files into the scratch directory", "pgbackrestMs"],
    ["↳ start + recovery to the target", "recoveryMs"],
    ["verify", "verifyMs"],
    ["↳ pg_amcheck", "amcheckMs"],
    ["↳ pg_dump -Fd of the rows (sequential: in copy; overlapped: in verify, beside pg_amcheck)", "dumpMs"],
    ["↳ pg_dump of the definitions (overlapped, beside pg_amcheck)", "schemaDumpMs"],
    ["↳ definitions loaded into the copy (overlapped, beside pg_amcheck)", "schemaLoadMs"],
    ["copy", "copyMs"],
    ["↳ pg_restore (sequential: all; overlapped: rows, indexes, constraints)", "pgRestoreMs"],
    ["↳↳ indexes and constraints (overlapped: post-data, -j 8 then foreign keys)", "indexesMs"],
    ["↳ scratch instance stopped (overlapped, beside pg_restore)", "scratchStopMs"],
    ["↳ sequences raised and re-logged", "sequencesMs"],
    ["↳ filestore (hard links)", "filestoreMs"],
    ["swap", "swapMs"],
    ["cleanup", "cleanupMs"],
    ["total (restoreTenant's timings)", "totalMs"],
  ];
  out.push(
    `### restoreTenant steps, ${large} tenant (medians)`,
    "",
    "| Step | " + stepCols.map(({ m, p }) => `${SHORT_METHOD[m]}, ${p.tenants} tenants`).join(" | ") + " |",
    "|---|" + stepCols.map(() => "---").join("|") + "|",
  );
  for (const [label, key] of stepRows) {
    out.push(
      `| ${label} | ${stepCols
        .map(({ m, p }) => msf(medianOf(okRestores(p, m, "large").map((x) => num(x.timings[key])))))
        .join(" | ")} |`,
    );
  }
  out.push(
    `| end to end (caller) | ${stepCols.map(({ m, p }) => msf(medianOf(okRestores(p, m, "large").map((x) => x.wallMs)))).join(" | ")} |`,
    `| tenant unavailable (swap), median / max | ${stepCols
      .map(({ m, p }) => {
        const u = okRestores(p, m, "large").map((x) => num(x.timings.unavailableMs));
        return u.length ? `${msf(medianOf(u))} / ${msf(Math.max(...u))}` : "–";
      })
      .join(" | ")} |`,
    `| load (1 min) after each restore | ${stepCols
      .map(({ m, p }) =>
        okRestores(p, m, "large")
          .map((x) => x.load[0]?.toFixed(1) ?? "–")
          .join(", "),
      )
      .join(" | ")} |`,
    "",
  );
  if (r.methods.includes("overlapped")) {
    out.push(
      "Where the floor is: the copy into the live cluster is a logical load (`pg_restore`), and on " +
        "PostgreSQL 15 every index build of a WAL-logged relation ends with an fsync of its file — one " +
        "per TOAST index in the definitions (~405 for this tenant) and one per primary key and index " +
        "in post-data (~817), 2–3 ms each on this disk, counted with strace — while the ~1,600 " +
        "foreign keys are CPU (a validation query and four triggers each) and cannot run in parallel " +
        "jobs (they deadlock on their cycle). The overlapped pipeline hides the definitions' fsyncs " +
        "behind pg_amcheck and the dump, and overlaps the indexes' with `-j 8`; what is left is the " +
        "files of the scratch, recovery, the rows, the foreign keys and the swap, each of them CPU " +
        "on 2 cores shared with the rest of the machine (its load printed beside every figure; " +
        "[details](docs/operations/backup-and-restore.md#where-the-time-goes)).",
      "",
    );
  }
  const sl = r.schemaLoad;
  if (sl && sl.parallelMs.length > 0 && sl.oneTransactionMs.length > 0) {
    const par = stats(sl.parallelMs);
    const one = stats(sl.oneTransactionMs);
    out.push(
      `The definitions' load on its own (restoreTenant's \`loadSchema\`: the large tenant's pre-data, ` +
        `${sl.tables} tables, into a new database of the live cluster after the phases; ${sl.parallelMs.length} ` +
        "interleaved rounds, CHECKPOINT and archiver caught up before each):",
      "",
      "| Definitions loaded by | median | min | max | n |",
      "|---|---|---|---|---|",
      `| ${sl.jobs} sessions creating the tables at once (the overlapped pipeline's)` +
        `${sl.fallbacks ? `, ${sl.fallbacks} fell back to one transaction` : ""} | ${msf(par.median)} | ` +
        `${msf(par.min)} | ${msf(par.max)} | ${par.n} |`,
      `| one transaction (before) | ${msf(one.median)} | ${msf(one.min)} | ${msf(one.max)} | ${one.n} |`,
      "",
      `Ratio of the medians: ${(par.median / one.median).toFixed(2)}×.`,
      "",
    );
  }

  // -- baseline parts
  const blCols = (["whole-cluster", "db-include"] as const).flatMap((k) => phases.map((p) => ({ k, p })));
  const part = (get: (x: RestoreBaselineSample) => number): string[] =>
    blCols.map(({ k, p }) => msf(medianOf(okBaselines(p, k).map(get))));
  out.push(
    `### Baseline parts, ${large} tenant (medians)`,
    "",
    "| Part | " +
      blCols
        .map(
          ({ k, p }) => `${k === "whole-cluster" ? "whole cluster" : "`--db-include`"}, ${p.tenants} tenants`,
        )
        .join(" | ") +
      " |",
    "|---|" + blCols.map(() => "---").join("|") + "|",
    `| WAL switch + archived | ${part((x) => num(x.parts.archiveWaitMs)).join(" | ")} |`,
    `| pgbackrest restore | ${part((x) => num(x.parts.pgbackrestMs)).join(" | ")} |`,
    `| start + recovery to the target | ${part((x) => num(x.parts.recoveryMs)).join(" | ")} |`,
    `| CREATE DATABASE + pg_dump -Fc \\| pg_restore | ${part((x) => num(x.parts.dumpRestoreMs)).join(" | ")} |`,
    `| data in the live cluster (sum of the above) | ${part((x) => x.toDataMs).join(" | ")} |`,
    `| remove the scratch directory | ${part((x) => num(x.parts.cleanupMs)).join(" | ")} |`,
    `| total | ${part((x) => x.totalMs).join(" | ")} |`,
    `| scratch data directory written | ${blCols
      .map(({ k, p }) => {
        const b = okBaselines(p, k)[0];
        return b ? `${count(b.scratchFiles ?? 0)} files, ${gb(b.scratchBytes)}` : "–";
      })
      .join(" | ")} |`,
    "",
  );

  // -- goals
  out.push("### Goals", "", "| Goal | Target | Measured | |", "|---|---|---|---|");
  for (const size of ["small", "large"] as const) {
    const worst = Math.max(
      ...phases
        .map((p) => p.snapshots.find((x) => x.size === size)?.stats.p95 ?? NaN)
        .filter(Number.isFinite),
    );
    out.push(
      `| snapshot create p95, ${size === "small" ? "small" : large} tenant (worst cluster size) | ` +
        `≤ ${g.snapshotP95Ms} ms | ${ms1(worst)} | ${yesNo(worst <= g.snapshotP95Ms)} |`,
    );
  }
  for (const m of r.methods) {
    const meds = phases.map((p) => restoreStats(p, m, "large"));
    if (meds.some((x) => !x)) {
      out.push(
        `| ${large} tenant restored end to end, ${SHORT_METHOD[m]} | ≤ ${sec(g.restoreMs)} | no successful sample | **missed** |`,
      );
      continue;
    }
    const st = meds as Stats[];
    const worstMedian = Math.max(...st.map((x) => x.median));
    out.push(
      `| ${large} tenant restored end to end, ${SHORT_METHOD[m]} (median at ${phases.map((p) => p.tenants).join(" / ")} tenants; max) | ` +
        `≤ ${sec(g.restoreMs)} | ${st.map((x) => sec(x.median)).join(" / ")}; max ${sec(Math.max(...st.map((x) => x.max)))} | ` +
        `${yesNo(worstMedian <= g.restoreMs)} |`,
    );
    const unavailable = phases.flatMap((p) =>
      p.restores.filter((x) => x.method === m && x.ok).map((x) => num(x.timings.unavailableMs)),
    );
    const worstU = Math.max(...unavailable);
    out.push(
      `| tenant unavailable, ${SHORT_METHOD[m]} (max over its ${unavailable.length} restores) | ≤ ${sec(g.unavailableMs)} | ` +
        `${msf(worstU)} | ${yesNo(worstU <= g.unavailableMs)} |`,
    );
    if (last) {
      const q = st[st.length - 1].median / st[0].median;
      out.push(
        `| restore time, ${last.tenants} against ${first.tenants} tenants, ${SHORT_METHOD[m]} (ratio of medians; ` +
          `proportional to the cluster would be ${(last.tenants / first.tenants).toFixed(0)}×) | ` +
          `≤ ${g.scalingRatio}× | ${q.toFixed(2)}× | ${yesNo(q <= g.scalingRatio)} |`,
      );
    }
  }
  out.push("");

  const sizeLines = r.methods
    .map((m) => {
      const cells = phases.map((p) => {
        const s = restoreStats(p, m, "small");
        const l = restoreStats(p, m, "large");
        return s && l
          ? `${sec(s.median)} small vs ${sec(l.median)} ${large} at ${p.tenants} tenants`
          : undefined;
      });
      return cells.some((c) => c) ? `${SHORT_METHOD[m]}: ${cells.filter((c) => c).join("; ")}` : undefined;
    })
    .filter((x): x is string => x !== undefined);
  if (sizeLines.length > 0) {
    out.push(
      `Restore time against tenant size (small ${mb(r.small.databaseBytes)} vs ${mb(r.template.tenantBytes)}, ` +
        `both ~400 tables): ${sizeLines.join("; ")}.`,
      "",
    );
  }
  const allRestores = phases.flatMap((p) => p.restores);
  const allBaselines = phases.flatMap((p) => p.baselines);
  out.push(
    `Checked in every scenario (not timed): the rows changed after the snapshot were as at the snapshot ` +
      `after ${allRestores.filter((x) => x.ok && x.verified).length} of ${allRestores.filter((x) => x.ok).length} ` +
      `successful restores and in ${allBaselines.filter((x) => x.ok && x.verified).length} of ` +
      `${allBaselines.filter((x) => x.ok).length} baseline copies.`,
    "",
  );
  if (r.failures.length > 0) {
    out.push("Failures:", "", ...r.failures.map((f) => `- ${f}`), "");
  }
  if (r.corrections && r.corrections.length > 0) {
    out.push("Corrected in the result file after the run:", "", ...r.corrections.map((c) => `- ${c}`), "");
  }
  return out;
}

/**
 * The previous undo API's figures (`undo-before.json`: bench/undo.ts run on the code before the
 * change, with the same flags, just before this run) next to this run's, each as its own ratio to its
 * own baseline.
 */
function beforeAfterSection(before: UndoBenchResult, after: UndoBenchResult): string[] {
  const v = (r: UndoBenchResult): string => (r.undoApi ? `v${r.undoApi.version}` : "before");
  const row = (name: string): string => {
    const b = before.pgbench.scenarios.find((x) => x.name === name);
    const a = after.pgbench.scenarios.find((x) => x.name === name);
    if (!a || !b) return "";
    const cpu = (x: UndoScenarioSummary): string =>
      `${(x.serverCpuUsPerTx.median + x.clientCpuUsPerTx.median).toFixed(0)} µs`;
    return (
      `| ${a.label} | ${b.tps.median.toFixed(0)} / ${a.tps.median.toFixed(0)} | ${b.ratio.toFixed(3)} / ${a.ratio.toFixed(3)} | ` +
      `${cpu(b)} / ${cpu(a)} | ${b.cpuRatio.toFixed(3)} / ${a.cpuRatio.toFixed(3)} | ` +
      `${b.walBytesPerTx.median.toFixed(0)} B / ${a.walBytesPerTx.median.toFixed(0)} B |`
    );
  };
  const fpb = before.pgbench;
  return [
    `### Undo API ${v(before)} (before) and ${v(after)} (this run)`,
    "",
    `The same benchmark on the code before the change (undo API ${v(before)}), run just before this one with ` +
      `the same pgbench settings (\`-c ${fpb.clients} -j ${fpb.threads} -T ${fpb.seconds}\`, ${fpb.rounds} rounds); ` +
      `load ${loads(before.machine.load)} at its start, ${loads(before.loadEnd)} at its end. Each figure is ` +
      "relative to its own run's baseline (no guards), so the ratios compare across the two runs even though " +
      "the machine's load moved the absolute tps.",
    "",
    "| Scenario | tps median before / after | / baseline before / after | CPU per transaction before / after | baseline CPU / this, before / after | WAL per transaction before / after |",
    "|---|---|---|---|---|---|",
    ...["baseline", "idle", "op", "reuse"].map(row).filter((x) => x !== ""),
    "",
  ];
}

/**
 * A throughput goal is met when the tps ratio and the CPU-per-transaction ratio both reach it: on a
 * loaded machine the tps of one scenario can beat its baseline by chance, its CPU per transaction
 * hardly.
 */
function ratioGoal(x: { goal: number; value: number; cpuRatio: number }): string {
  if (x.value >= x.goal && x.cpuRatio >= x.goal) return yesNo(true);
  if (x.value >= x.goal) return "**missed** (the tps ratio reaches it, the CPU ratio does not: load noise)";
  return yesNo(false);
}

/** The one-session phase: the server's CPU per transaction, each mode against the baseline. */
function sessionSection(se: SessionResult): string[] {
  const base = se.modes.find((m) => m.mode === "baseline")?.serverUsPerTx.median ?? NaN;
  return [
    `The server's own work per transaction, in one session per database (${se.method}; ` +
      `${count(se.transactions)} transactions per mode and round, medians of ${se.rounds} rounds):`,
    "",
    "| Mode | server CPU per transaction | min–max | baseline / this | + over the baseline | Load (1/5/15 min) after the rounds |",
    "|---|---|---|---|---|---|",
    ...se.modes.map(
      (m) =>
        `| ${m.label} | ${m.serverUsPerTx.median.toFixed(1)} µs | ${m.serverUsPerTx.min.toFixed(1)}–` +
        `${m.serverUsPerTx.max.toFixed(1)} µs | ${(base / m.serverUsPerTx.median).toFixed(3)} | ` +
        `${m.mode === "baseline" ? "–" : `${(m.serverUsPerTx.median - base).toFixed(1)} µs`} | ` +
        `${loads([0, 1, 2].map((i) => medianOf(m.load.map((l) => l[i]))))} |`,
    ),
    "",
  ];
}

const UNDO_KIND_LABEL: Record<UndoKindSummary["kind"], string> = {
  insert: "INSERT of new rows (undo deletes them)",
  delete: "DELETE of rows (undo re-inserts them)",
  update: "UPDATE of rows (undo restores them)",
};

/** A pgbench statement as a row label: the operation id of `reuse` elided. */
const statementLabel = (sql: string): string =>
  "`" + sql.replace(/'[0-9a-f-]{36}'/, "'…'").replace(/ (SET|VALUES) .*$/, " $1 …") + "`";

function undoSection(r: UndoBenchResult, erp?: UndoErpResult, before?: UndoBenchResult): string[] {
  const pb = r.pgbench;
  const g = r.goals;
  const by = (list: UndoScenarioSummary[], name: string): UndoScenarioSummary | undefined =>
    list.find((x) => x.name === name);
  const tps = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : "–");
  const spread = (s: Stats): string => `${tps(s.min)}–${tps(s.max)}`;
  const bytes = (b: number): string => (Number.isFinite(b) ? `${b.toFixed(0)} B` : "–");
  const us0 = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(0)} µs` : "–");
  const settings = Object.entries(r.settings)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
  const out = [
    "## Undo capture and undo (`bench/undo.ts`)",
    "",
    `One run of ${(r.totalMs / 60_000).toFixed(1)} min in a throw-away cluster with the project's postgresql.conf ` +
      `(${settings}); everything connected as a non-superuser login role owning the databases, as the ERP ` +
      "connects; guards installed by installGuards (as superuser), AI-operation limit written at its maximum" +
      (r.undoApi
        ? ` (undo API v${r.undoApi.version}, installation SQL sha256 \`${r.undoApi.sqlSha256}…\`).`
        : "."),
    "",
    "### pgbench-style writes on captured tables",
    "",
    `The real \`pgbench\` with a custom TPC-B-like script (pgbench's own five statements in BEGIN … END; ` +
      "`-n`, simple query protocol like the ERP's driver), on pgbench tables with primary keys (history " +
      `gets an identity id), scale ${pb.scale} (${mb(pb.databaseBytes)} per database), \`-c ${pb.clients} ` +
      `-j ${pb.threads} -T ${pb.seconds}\`; ${pb.rounds} interleaved rounds after a ${pb.warmupSeconds} s ` +
      `warm-up run of each scenario. Capture triggers as installGuards attached them: ` +
      `${pb.capture.triggers.map((t) => `\`${t}\``).join(", ")} (primary-key columns in ` +
      `parentheses). Method: ${pb.method}.`,
    "",
    "| Scenario | tps median | min–max | median / baseline median | per-round ratio: median (min–max) | CPU per transaction: server + pgbench | baseline CPU / this | mean latency | WAL per transaction | change_log rows per transaction, bytes per row |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...pb.scenarios.map(
      (s) =>
        `| ${s.label} | ${tps(s.tps.median)} | ${spread(s.tps)} | ${s.ratio.toFixed(3)} | ` +
        `${s.name === "baseline" ? "–" : `${s.pairedRatio.median.toFixed(3)} (${s.pairedRatio.min.toFixed(3)}–${s.pairedRatio.max.toFixed(3)})`} | ` +
        `${us0(s.serverCpuUsPerTx.median)} + ${us0(s.clientCpuUsPerTx.median)} | ${s.cpuRatio.toFixed(3)} | ` +
        `${s.latencyMs.median.toFixed(2)} ms | ${bytes(s.walBytesPerTx.median)} (${s.walRecordsPerTx.toFixed(1)} records) | ` +
        `${s.changeLog ? `${s.changeLog.rowsPerTx.toFixed(1)}, ${bytes(s.changeLog.bytesPerRow.median)}` : "–"} |`,
    ),
    "",
    "CPU per transaction: the CPU time of the server processes that ended during the run (the " +
      "postmaster's reaped children: pgbench's backends, autovacuum workers; `/proc/<postmaster>/stat` " +
      "cutime + cstime) and of pgbench itself (bash `times`), divided by the transactions. Other work on the " +
      "machine moves tps a lot and CPU time little, so the CPU ratio is the steadier estimate of what a " +
      "CPU-bound run on an otherwise idle machine would show.",
    "",
  ];
  const baseTps = by(pb.scenarios, "baseline")?.tps;
  const runLoads = (pb.runs ?? []).map((x) => x.load[0]).filter(Number.isFinite);
  if (baseTps && runLoads.length > 0) {
    const swing = (baseTps.max - baseTps.min) / baseTps.median;
    out.push(
      `1-minute load average after the runs: ${Math.min(...runLoads).toFixed(1)} to ${Math.max(...runLoads).toFixed(1)} ` +
        `on ${r.machine.nproc} cores; the baseline's own tps ranged ±${((swing / 2) * 100).toFixed(0)} % around its ` +
        "median." +
        (swing > 0.2
          ? " Other work on the machine moved the tps by far more than the differences the goals are about: " +
            "read the tps ratios with that uncertainty, and lean on the CPU ratios."
          : ""),
      "",
    );
  }
  if (r.session) out.push(...sessionSection(r.session));
  const failed = pb.scenarios.filter((s) => s.failed > 0);
  if (failed.length > 0)
    out.push(`Failed transactions: ${failed.map((s) => `${s.name} ${s.failed}`).join(", ")}.`, "");

  const undo = r.undo.kinds;
  const ins = undo.find((k) => k.kind === "insert");
  // The load beside each pgbench figure: the 1/5/15-minute averages after the scenario's and the
  // baseline's runs (medians over the rounds).
  const loadOf = (...names: string[]): string => {
    const ls = (pb.runs ?? []).filter((x) => names.includes(x.scenario)).map((x) => x.load);
    return ls.length === 0 ? "–" : loads([0, 1, 2].map((i) => medianOf(ls.map((l) => l[i]))));
  };
  out.push(
    "| Goal | Target | Measured | | Load (1/5/15 min) during the runs |",
    "|---|---|---|---|---|",
    `| tps with an operation active (begin_operation per transaction) / tps without capture | ≥ ${g.opRatio.goal} | ` +
      `${g.opRatio.value.toFixed(3)} (CPU per transaction: ${g.opRatio.cpuRatio.toFixed(3)}) | ${ratioGoal(g.opRatio)} | ${loadOf("op", "baseline")} |`,
    `| tps with capture installed, no operation / tps without capture | ≥ ${g.idleRatio.goal} | ` +
      `${g.idleRatio.value.toFixed(3)} (CPU per transaction: ${g.idleRatio.cpuRatio.toFixed(3)}) | ${ratioGoal(g.idleRatio)} | ${loadOf("idle", "baseline")} |`,
    ...(erp ? [erpGoalRow(erp)] : []),
    `| undo of a ${count(r.undo.rows)}-row operation (INSERT; BEGIN … COMMIT, median) | ≤ ${sec(g.undoMs.goalMs)} | ` +
      `${sec(g.undoMs.valueMs)}${ins ? ` (p95 ${sec(ins.undoMs.p95)})` : ""} | ${yesNo(g.undoMs.met)} | ${loadOf()} |`,
    `| the same for DELETE and UPDATE operations (slowest median of the three) | ≤ ${sec(g.undoMs.goalMs)} | ` +
      `${sec(g.undoMs.worstKindMs)} | ${yesNo(g.undoMs.allKindsMet)} | ${loadOf()} |`,
    "",
  );
  out.push(
    "What undo API v4 changed for this (issue 16), each kept because it measured cheaper on its own: the " +
      "change log's (table_oid, row_key) B-tree is gone (an undo finds later changes to its rows with one " +
      "join over the changes after the operation's last one, through a BRIN index on the change id); " +
      "operation ids are time-ordered (UUID version 7), so the operation index and the operation log's " +
      "primary key grow at one end instead of at random pages; the operation log's started_at index is gone; " +
      "`begin_operation` is an SQL function the planner inlines, with one SECURITY DEFINER call behind it " +
      "(no existence checks of the quota and snapshot functions), and the daily counter is read without " +
      "a nested definer call. Tried and not kept: capture() as one INSERT … SELECT instead of its IF and " +
      "INSERT (slower per transaction: PL/pgSQL rebuilds its expressions per transaction either way, and the " +
      "SELECT adds a plan node); dropping capture()'s pinned `search_path` (the `op-unpinned` profile variant " +
      "below: within the noise, and the pin is what keeps a tenant's shadows of built-ins away from the " +
      "definer code); dropping the operation index (an undo, `operations()` and the summaries read an " +
      "operation's rows through it). Not tried: statement-level triggers with transition tables (pgbench's " +
      "statements change one row each, where they would add a tuplestore per statement to the row triggers' work).",
    "",
  );
  // Only a run made just before this one is its "before" (a later full run leaves the file behind).
  const gapMs = before ? Date.parse(r.machine.date) - Date.parse(before.machine.date) : NaN;
  if (before && gapMs > 0 && gapMs < 2 * 3_600_000) out.push(...beforeAfterSection(before, r));
  const idle = by(pb.scenarios, "idle");
  if (idle && idle.pairedRatio.min < g.idleRatio.goal && idle.pairedRatio.max >= g.idleRatio.goal) {
    out.push(
      `The per-round ratios of the idle scenario range from ${idle.pairedRatio.min.toFixed(3)} to ` +
        `${idle.pairedRatio.max.toFixed(3)}: the run-to-run spread on this shared machine is larger than the ` +
        "2 % the goal allows, so this run cannot tell a miss from noise.",
      "",
    );
  }

  // -- per-statement latencies
  const labels: string[] = [];
  for (const s of pb.scenarios)
    for (const st of s.statements)
      if (!labels.includes(statementLabel(st.sql))) labels.push(statementLabel(st.sql));
  const order = (l: string): number =>
    l.startsWith("`BEGIN") ? 0 : l.includes("loomworks_undo.") ? 1 : l.startsWith("`END") ? 9 : 5;
  labels.sort((a, b) => order(a) - order(b));
  out.push(
    "Mean latency per statement (pgbench `-r`, medians over the rounds; with more clients than cores it " +
      "includes waiting for a CPU):",
    "",
    "| Statement | " + pb.scenarios.map((s) => s.name).join(" | ") + " |",
    "|---|" + pb.scenarios.map(() => "---").join("|") + "|",
    ...labels.map(
      (l) =>
        `| ${l} | ${pb.scenarios
          .map((s) => {
            const st = s.statements.find((x) => statementLabel(x.sql) === l);
            return st ? `${st.ms.toFixed(3)} ms` : "–";
          })
          .join(" | ")} |`,
    ),
    "",
  );

  // -- the dormant trigger
  const dm = r.dormant;
  if (dm) {
    const perStmt = (k: string): boolean => k.endsWith("-1");
    const label = (k: string): string =>
      perStmt(k)
        ? `${count(dm.singleRowStatements)} single-row ${k.replace("-1", "").toUpperCase()}s (per statement)`
        : `one ${k.toUpperCase()} of ${count(dm.rows)} rows (per row)`;
    const us2 = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)} µs` : "–");
    out.push(
      "The dormant trigger on its own, as backend CPU time in one session (no network, no other clients): " +
        `${dm.method}; medians of ${dm.rounds} rounds.`,
      "",
      "| Statements | without capture | capture installed, no operation | difference |",
      "|---|---|---|---|",
      ...dm.kinds.map(
        (k) =>
          `| ${label(k.kind)} | ${us2(k.baselineUsPerRow.median)} | ${us2(k.idleUsPerRow.median)} | ` +
          `${k.extraUsPerRow >= 0 ? "+" : ""}${us2(k.extraUsPerRow)} |`,
      ),
      "",
    );
  }

  // -- profile
  const pf = r.profile;
  if (pf) {
    const fn = (s: UndoScenarioSummary | undefined, name: string): number =>
      s?.functions?.find((f) => f.name === name)?.totalUsPerCall ?? NaN;
    const us = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(1)} µs` : "–");
    out.push(
      "### Where the capture cost goes",
      "",
      `${pf.rounds} interleaved rounds of ${pf.seconds} s with \`-c ${pf.clients}\` (one client: no waiting ` +
        "for a CPU, so times are work): baseline and idle as above, and copies of the op database with `track_functions = 'pl'` " +
        "(`pg_stat_user_functions`: time inside each PL/pgSQL function, SQL it runs included) and one change " +
        "each; throw-away experiments, none of them a configuration of the platform.",
      "",
      "| Variant | tps | / baseline | server CPU per transaction | mean latency | capture() per call | begin_operation() per call (start_operation; take_ai_operation) | WAL per transaction |",
      "|---|---|---|---|---|---|---|---|",
      ...pf.scenarios.map(
        (s) =>
          `| ${s.name === "baseline" ? "baseline: no guards" : s.name === "idle" ? "capture installed, no operation" : s.label} | ${tps(s.tps.median)} | ${s.ratio.toFixed(3)} | ` +
          `${us0(s.serverCpuUsPerTx.median)} | ${s.latencyMs.median.toFixed(3)} ms | ${us(fn(s, "loomworks_undo.capture"))} | ` +
          `${s.functions ? `${us(fn(s, "loomworks_undo.begin_operation"))} (${us(fn(s, "loomworks_undo.start_operation"))}; ${us(fn(s, "loomworks_quota.take_ai_operation"))})` : "–"} | ` +
          `${bytes(s.walBytesPerTx.median)} |`,
      ),
      "",
    );
    const base = by(pf.scenarios, "baseline");
    const op = by(pf.scenarios, "op-tracked");
    if (base && op) {
      const cap = fn(op, "loomworks_undo.capture");
      const calls = op.functions?.find((f) => f.name === "loomworks_undo.capture")?.callsPerTx ?? NaN;
      const beginStmt = op.statements.find((x) => x.sql.includes("begin_operation"))?.ms ?? NaN;
      const beginFn = fn(op, "loomworks_undo.begin_operation");
      const rowIdx = fn(by(pf.scenarios, "op-row-index"), "loomworks_undo.capture");
      const noIdx = fn(by(pf.scenarios, "op-no-index"), "loomworks_undo.capture");
      const unpinned = fn(by(pf.scenarios, "op-unpinned"), "loomworks_undo.capture");
      const unlogged = fn(by(pf.scenarios, "op-unlogged"), "loomworks_undo.capture");
      const empty = fn(by(pf.scenarios, "op-calls-only"), "loomworks_undo.capture");
      // Statement latencies up to COMMIT: the work; COMMIT itself is mostly the WAL flush (fsync).
      const work = (s: UndoScenarioSummary): number =>
        s.statements.filter((x) => !/^END\b/.test(x.sql)).reduce((sum, x) => sum + x.ms, 0);
      const commit = (s: UndoScenarioSummary): number =>
        s.statements.find((x) => /^END\b/.test(x.sql))?.ms ?? NaN;
      const extra = work(op) - work(base);
      const cpu = (x: UndoScenarioSummary | undefined): number => x?.serverCpuUsPerTx.median ?? NaN;
      const idleP = by(pf.scenarios, "idle");
      const setOnly = by(pf.scenarios, "op-set-only");
      const callsOnly = by(pf.scenarios, "op-calls-only");
      const startFn = fn(op, "loomworks_undo.start_operation");
      const takeFn = fn(op, "loomworks_quota.take_ai_operation");
      out.push(
        `Inside the functions (one client): begin_operation ${us(beginFn)} per transaction (start_operation ` +
          `${us(startFn)}, of it take_ai_operation ${us(takeFn)}); the begin_operation statement as pgbench saw ` +
          `it ${(beginStmt * 1000).toFixed(0)} µs (with its round trip, parse and plan). capture() ` +
          `${calls.toFixed(0)} × ${us(cap)} = ${us(calls * cap)} per transaction; per call ${us(cap)} as it is, ` +
          `${us(rowIdx)} with undo API v3's (table_oid, row_key) index added back, ${us(noIdx)} without any ` +
          `index, ${us(unlogged)} with the change log unlogged (no WAL), ${us(unpinned)} without the pinned ` +
          `search_path, ${us(empty)} with an empty body (the call itself). Statement latencies up to COMMIT: ${work(base).toFixed(3)} ms without capture, ` +
          `${work(op).toFixed(3)} ms with (+${(extra * 1000).toFixed(0)} µs); COMMIT, mostly the WAL flush: ` +
          `${commit(base).toFixed(3)} ms and ${commit(op).toFixed(3)} ms. Capture adds ` +
          `${bytes(op.walBytesPerTx.median - base.walBytesPerTx.median)} of WAL per transaction ` +
          `(${(op.walBytesPerTx.median / base.walBytesPerTx.median).toFixed(1)}× the baseline's).`,
        "",
      );
      const budget = cpu(base) * (1 / 0.8 - 1);
      if (Number.isFinite(budget) && Number.isFinite(calls * cap)) {
        out.push(
          `The floor of the 0.8 goal: capture may add at most ${us0(budget)} of server CPU per transaction (a ` +
            `quarter of the baseline's ${us0(cpu(base))}); the capture() calls alone take ${us0(calls * cap)} ` +
            `(${calls.toFixed(0)} × ${us(cap)}), before begin_operation or the triggers' firing. With row ` +
            "triggers in PL/pgSQL the goal is out of reach whatever begin_operation costs. What could reach it is " +
            "not built: capture in C (an extension every target's PostgreSQL image would have to carry) or " +
            "outside the writing transaction by logical decoding (a replication slot and its retained WAL per " +
            "tenant database).",
          "",
        );
      }
      // The CPU split is only worth printing when runs of one variant agree.
      const spreads = pf.scenarios.map(
        (x) => (x.serverCpuUsPerTx.max - x.serverCpuUsPerTx.min) / x.serverCpuUsPerTx.median,
      );
      const worst = Math.max(...spreads.filter(Number.isFinite));
      const total = cpu(op) - cpu(base);
      const part = (x: number): string =>
        Number.isFinite(x) ? `${us0(x)} (${((x / total) * 100).toFixed(0)} %)` : "–";
      if (worst <= 0.15) {
        out.push(
          `Server CPU per transaction: ${us0(cpu(base))} without capture, ${us0(cpu(op))} with begin_operation ` +
            `and capture, +${us0(total)} in all. Step by step: the dormant triggers ${part(cpu(idleP) - cpu(base))}; ` +
            `capturing the rows with the operation set by a plain \`SET LOCAL\` ${part(cpu(setOnly) - cpu(idleP))}, ` +
            `of which the capture() body (row images as jsonb, the change-log insert and its indexes) ` +
            `${us0(cpu(op) - cpu(callsOnly))}; begin_operation instead of the \`SET LOCAL\` ` +
            `${part(cpu(op) - cpu(setOnly))}.`,
          "",
        );
      } else {
        out.push(
          `The server CPU per transaction of the variants (table) is not split further here: runs of one ` +
            `variant differed by up to ${(worst * 100).toFixed(0)} % of their median in this run (other work on ` +
            "the machine), more than the parts to be told apart; the times inside the functions above are the " +
            "steadier measure.",
          "",
        );
      }
    }
  }

  // -- undo
  out.push(
    `### Undo of ${count(r.undo.rows)}-row operations`,
    "",
    `Table ${r.undo.table}; ${count(r.undo.backgroundRows)} rows (${mb(r.undo.tableBytes)}) before the ` +
      `operations. ${r.undo.rounds} rounds; method: ${r.undo.method}. Times are medians (p95) over the rounds.`,
    "",
    "| Operation | undo: BEGIN; undo_operation; COMMIT | p95 | of which undo_operation / COMMIT | dry run (plan only) | the write with capture / without | change_log per captured row (heap + indexes) |",
    "|---|---|---|---|---|---|---|",
    ...undo.map(
      (k) =>
        `| ${UNDO_KIND_LABEL[k.kind]}${k.allApplied ? "" : " (**not every undo applied**)"} | ${msf(k.undoMs.median)} | ` +
        `${msf(k.undoMs.p95)} | ${msf(k.undoStatementMs.median)} / ${msf(k.undoCommitMs.median)} | ` +
        `${msf(k.dryRunMs.median)} | ${msf(k.forwardCapturedMs.median)} / ${msf(k.forwardPlainMs.median)} | ` +
        `${bytes(k.bytesPerRow.median)} (${bytes(k.heapBytesPerRow.median)} + ${bytes(k.indexBytesPerRow.median)}) |`,
    ),
    "",
  );
  const pg = by(pb.scenarios, "op")?.changeLog;
  if (pg) {
    out.push(
      `For operators sizing the change log: a captured row took ${bytes(pg.bytesPerRow.median)} of ` +
        "`pg_total_relation_size(loomworks_undo.change_log)` in the pgbench mix (3 updates and an insert per " +
        "transaction; rows of 4 to 6 columns, three tables with an 84-character filler), " +
        `${undo.map((k) => `${bytes(k.bytesPerRow.median)} per ${k.kind === "insert" ? "inserted" : `${k.kind}d`} row`).join(", ")} of the ` +
        "13-column table above (an update stores the row before and after). An undo is itself an operation: " +
        "its own changes are captured too, so undoing doubles the log entries of the rows involved.",
      "",
    );
  }
  if (erp) out.push(...erpSection(erp));
  return out;
}

function routerSection(r: RouterBenchResult): string[] {
  const t = r.throughput;
  const s = r.settings;
  const rps = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString("en") : "–");
  const lat = (us: number): string => (Number.isFinite(us) ? `${(us / 1000).toFixed(2)} ms` : "–");
  const us1 = (us: number | undefined): string =>
    us !== undefined && Number.isFinite(us) ? `${us.toFixed(1)} µs` : "–";
  const errs = (e: {
    connect: number;
    read: number;
    write: number;
    status: number;
    timeout: number;
  }): string =>
    `${e.connect} connect, ${e.read} read, ${e.write} write, ${e.timeout} timeout, ${e.status} HTTP ≥ 400`;
  const ul = r.underLoad;
  const tenants = s.tenants.toLocaleString("en");
  return [
    `## Local router: nginx with a ${tenants}-tenant map (\`bench/router.ts\`)`,
    "",
    `${r.nginx.replace(/^nginx version: /, "")}, ${r.wrk.split(" [")[0]}; load (1/5/15 min) start ` +
      `${loads(r.machine.load)}, end ${loads(r.loadEnd)}. Method: ${r.method}. The upstream is a stand-in ` +
      "for the ERP (a Node.js HTTP server answering a small JSON body), so these figures measure the router, " +
      `not Odoo; worker_processes ${s.workerProcesses}.`,
    "",
    `| | ${tenants}-tenant map | one tenant | map / one |`,
    "|---|---|---|---|",
    `| requests/s, median of ${t.map.rps.n} runs | ${rps(t.map.rps.median)} | ${rps(t.one.rps.median)} | ` +
      `**${t.ratio.toFixed(3)}** (goal ≥ ${r.goals.ratio.goal}: ${yesNo(r.goals.ratio.met)}) |`,
    `| requests/s, min – max | ${rps(t.map.rps.min)} – ${rps(t.map.rps.max)} | ${rps(t.one.rps.min)} – ` +
      `${rps(t.one.rps.max)} | per round: median ${t.pairedRatio.median.toFixed(3)}, ` +
      `${t.pairedRatio.min.toFixed(3)} – ${t.pairedRatio.max.toFixed(3)} |`,
    `| p50 latency, median | ${lat(t.map.p50Us.median)} | ${lat(t.one.p50Us.median)} | |`,
    `| p99 latency, median (max) | ${lat(t.map.p99Us.median)} (${lat(t.map.p99Us.max)}) | ` +
      `${lat(t.one.p99Us.median)} (${lat(t.one.p99Us.max)}) | |`,
    `| nginx workers' CPU per request (user + system), median | ${us1(t.map.cpuUs?.median)} | ` +
      `${us1(t.one.cpuUs?.median)} | ${Number.isFinite(t.cpuRatio) ? t.cpuRatio.toFixed(3) : "–"} |`,
    `| errors, all runs | ${t.errors} (both sides) | | |`,
    "",
    `Reloading the ${tenants}-tenant router (${r.reload.samples.length} applyRouter calls, adding or removing a ` +
      "tenant each time; medians, max in parentheses):",
    "",
    "| render | `nginx -t` | reload: SIGHUP until every accepting worker runs the new configuration | whole applyRouter |",
    "|---|---|---|---|",
    `| ${msf(r.reload.renderMs.median)} (${msf(r.reload.renderMs.max)}) | ${msf(r.reload.checkMs.median)} ` +
      `(${msf(r.reload.checkMs.max)}) | **${msf(r.reload.reloadMs.median)}** (${msf(r.reload.reloadMs.max)}; goal ≤ ` +
      `${r.goals.reload.goalMs} ms: ${yesNo(r.goals.reload.met)}) | ${msf(r.reload.applyMs.median)} ` +
      `(${msf(r.reload.applyMs.max)}) |`,
    "",
    "The reload includes nginx's own pause of about 100 ms between starting the new workers and telling the old " +
      "ones to stop accepting; applyRouter returns only after that, so a tenant added by it answers from the " +
      `next request: ${ms1(r.newTenant.answerMs.median)} median (max ${ms1(r.newTenant.answerMs.max)}) from ` +
      "applyRouter returning to the new tenant's first 200 from the upstream, answered at attempt " +
      `${[...new Set(r.newTenant.attempts)].join(", ")} of ${r.newTenant.attempts.length} tenants added. ` +
      "(`pulumi up` adds its own engine overhead before the LocalRouter update starts; the router adds nothing after it ends.)",
    "",
    `Under load: ${ul.reloads} reloads during a ${ul.seconds} s wrk run against the ${tenants}-tenant router ` +
      `(${rps(ul.run.rps)} requests/s, ${ul.run.requests.toLocaleString("en")} requests): ${errs(ul.run.errors)}. ` +
      (ul.run.errors.read > 0
        ? "Read errors are keep-alive connections the old workers close when they stop (nginx closes idle " +
          "connections at once on a graceful shutdown): a client that reuses one at that moment sees it closed " +
          "and must retry, as browsers do for idempotent requests. "
        : "") +
      (ul.run.errors.status === 0
        ? "No request was answered with an error status."
        : "Some requests were answered with an error status: see router.json."),
    "",
  ];
}

function rotationSection(r: RotationBenchResult): string[] {
  const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  const rot = r.rotation;
  const pv = r.preview;
  return [
    "## Credential rotation and preview summaries (`bench/rotation.ts`)",
    "",
    `One local stack with ${r.tenants} tenants (the Odoo-shaped fixture template), ${r.rounds} alternating rounds ` +
      `per pair; load (1/5/15 min) start ${loads(r.machine.load)}, end ${loads(r.loadEnd)}; ${r.pulumi}.`,
    "",
    "| scenario | median | min – max | baseline | baseline median | ratio |",
    "|---|---|---|---|---|---|",
    `| \`up\` rotating the superuser's, the ERP role's and ${r.tenants} tenant roles' passwords | ` +
      `${sec(rot.rotatingUp.median)} | ${sec(rot.rotatingUp.min)} – ${sec(rot.rotatingUp.max)} | no-change \`up\` | ` +
      `${sec(rot.noChangeUp.median)} | **${rot.ratio.toFixed(2)}** |`,
    `| \`preview\` + summary (events collected, summarizePreview, Markdown) | ${sec(pv.withSummary.median)} | ` +
      `${sec(pv.withSummary.min)} – ${sec(pv.withSummary.max)} | plain \`preview\` | ${sec(pv.plain.median)} | ` +
      `**${pv.ratio.toFixed(3)}** |`,
    "",
    `Sessions open through every rotating \`up\` (superuser, ERP role, a tenant role; \`SELECT 1\` every 20 ms): ` +
      `**${rot.sessions.failed} failed** of ${rot.sessions.queries.toLocaleString("en")} queries. Building the ` +
      `summary itself from the collected events takes ${pv.withSummary.summaryMs.median.toFixed(1)} ms (median; ` +
      `${pv.withSummary.markdownBytes.toLocaleString("en")} bytes of Markdown for one added tenant and the ` +
      "rotation pending); everything else in the ratio is the engine's own preview and run-to-run noise.",
    "",
  ];
}

function buildSection(cold?: ColdBuildResult): string[] {
  const dirs = fs.existsSync(CACHE_ROOT)
    ? fs.readdirSync(CACHE_ROOT).filter((d) => d.startsWith("pulumi-v"))
    : ([] as string[]);
  const linked = (() => {
    try {
      return fs.realpathSync(path.join(REPO_ROOT, ".tools", "bin"));
    } catch {
      return "";
    }
  })();
  const rows = dirs
    .map((d) => {
      const file = path.join(CACHE_ROOT, d, "build-seconds");
      if (!fs.existsSync(file)) return undefined;
      const seconds = Number(fs.readFileSync(file, "utf8").trim());
      const when = fs
        .statSync(file)
        .mtime.toISOString()
        .replace(/\.\d+Z$/, "Z");
      const current = linked === path.join(CACHE_ROOT, d, "bin") ? " (linked as .tools/bin)" : "";
      return `| \`${d}\`${current} | ${seconds} s | ${when} |`;
    })
    .filter((r): r is string => r !== undefined);
  const out = [
    "## Pulumi CLI build",
    "",
    "No Pulumi binary can be downloaded here: scripts/ensure-pulumi.sh builds the CLI and the Node.js " +
      "language plugin from the pinned Go modules once per machine (cache outside the checkout). " +
      "Warm-cache builds (Go build cache already filled), from each cache directory's `build-seconds`:",
    "",
    "| Cache directory | build time | written |",
    "|---|---|---|",
    ...(rows.length > 0 ? rows : ["| (none found) | – | – |"]),
    "",
  ];
  if (cold?.ok) {
    out.push(
      `Cold build (empty GOCACHE, module cache warm, no network): **${cold.seconds} s** ` +
        `(${(cold.seconds / 60).toFixed(1)} min) for the CLI alone, measured ${cold.date} with load ` +
        `${loads(cold.load)} (\`GOCACHE=$(mktemp -d) go build -trimpath -o /tmp/pulumi-cold ` +
        "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi` in tools/pulumi).",
      "",
    );
  } else {
    out.push(
      `Cold build (empty GOCACHE): not measured${cold?.note ? ` (${cold.note})` : ""}; ` +
        "`bench/run.sh --cold-build` measures it.",
      "",
    );
  }
  return out;
}

/** The `## ` sections of the current BENCHMARKS.md, for benchmarks that have no result file this time. */
class KeptSections {
  private readonly sections: Array<{ heading: string; body: string[] }> = [];
  private preamble = "";

  constructor(markdown: string) {
    for (const line of markdown.split("\n")) {
      if (line.startsWith("## ")) this.sections.push({ heading: line, body: [] });
      else if (this.sections.length === 0) this.preamble += `${line}\n`;
      else this.sections.at(-1)?.body.push(line);
    }
  }

  /** `rendered` when there is a new result (the old section dropped), else the old section, kept. */
  replace(prefix: string, rendered: string[] | undefined): string[] {
    if (rendered === undefined) return this.take(prefix);
    this.drop(prefix);
    return rendered;
  }

  /** The section whose heading starts with `prefix`, marked as kept; "Not run." when there is none. */
  take(prefix: string): string[] {
    const i = this.sections.findIndex((s) => s.heading.startsWith(prefix));
    if (i < 0) return [prefix, "", "Not run.", ""];
    const [section] = this.sections.splice(i, 1);
    const note = "_Kept from an earlier run: this benchmark has no result file in `bench/results/`._";
    const body = section.body[1]?.startsWith("_Kept from an earlier run")
      ? section.body.slice(3)
      : section.body;
    return [section.heading, "", note, ...(body[0] === "" ? body : ["", ...body])];
  }

  drop(...prefixes: string[]): void {
    for (const prefix of prefixes) {
      const i = this.sections.findIndex((s) => s.heading.startsWith(prefix));
      if (i >= 0) this.sections.splice(i, 1);
    }
  }

  /** The date of the "Measured ..." line above the first section. */
  measuredDate(): string | undefined {
    return /^Measured (\S+) by/m.exec(this.preamble)?.[1];
  }

  /** Hand-written sections the report does not render, in their order. */
  rest(): string[] {
    return this.sections.flatMap((s) => [s.heading, ...s.body]);
  }
}

function main(): void {
  const flags = parseFlags(process.argv.slice(2), ["out"]);
  const outFile = path.resolve(REPO_ROOT, flags.out ?? "BENCHMARKS.md");
  const kept = new KeptSections(fs.readFileSync(path.resolve(REPO_ROOT, "BENCHMARKS.md"), "utf8"));
  const tc = readJson<TenantCreateResult>("tenant-create");
  const pu = readJson<PulumiUpResult>("pulumi-up");
  const cold = readJson<ColdBuildResult>("pulumi-cold-build");
  const rs = readJson<RestoreBenchResult>("restore");
  const sc = readJson<SnapshotCreateResult>("snapshot-create");
  const un = readJson<UndoBenchResult>("undo");
  const unErp = readJson<UndoErpResult>("undo-erp");
  const unBefore = readJson<UndoBenchResult>("undo-before");
  const rt = readJson<RouterBenchResult>("router");
  const ro = readJson<RotationBenchResult>("rotation");
  const ku = readJson<K8sUpBenchResult>("k8s-up");
  const scale = readJson<ScaleResult>("scale");
  const machine = machineSection(tc, pu, rs, un);
  const date =
    (tc?.machine ?? pu?.machine ?? rs?.machine ?? un?.machine)?.date ??
    kept.measuredDate() ??
    new Date().toISOString();
  const lines = [
    "# Benchmarks",
    "",
    `Measured ${date.replace(/\.\d+Z$/, "Z")} by \`bench/run.sh\`; this file is rendered by ` +
      "`bench/report.ts` from the result files in `bench/results/`. Timings are measurements of one " +
      "run on one machine, never assertions: rerun `bench/run.sh` to refresh them.",
    "",
    ...kept.replace("## Machine", machine.length > 0 ? machine : undefined),
    ...kept.replace("## Tenant creation", tc && tenantCreateSection(tc)),
    ...kept.replace("## `pulumi up`", pu && pulumiSection(pu)),
    ...kept.replace("## Snapshots and per-tenant restore", rs && restoreSection(rs)),
    ...kept.replace("## Snapshot create without a filestore copy", sc && snapshotCreateSection(sc)),
    ...kept.replace("## Undo capture and undo", un && undoSection(un, unErp, unBefore)),
    ...kept.replace("## Local router", rt && routerSection(rt)),
    ...kept.replace("## Credential rotation and preview summaries", ro && rotationSection(ro)),
    ...kept.replace("## A stack with 500 tenants", scale && scaleSection(scale)),
    ...buildSection(cold),
    ...kept.replace(K8S_UP_HEADING, ku && k8sUpSection(ku, CACHE_ROOT, REPO_ROOT)),
  ];
  // The hand-written section the k8s-up benchmark replaced.
  if (ku) kept.drop("## Kubernetes test pieces");
  kept.drop("## Pulumi CLI build");
  lines.push(...kept.rest());
  fs.writeFileSync(outFile, lines.join("\n").replace(/\n+$/, "\n"));
  console.log(`[report] wrote ${outFile}`);
}

main();
