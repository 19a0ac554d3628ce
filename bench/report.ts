/**
 * Renders BENCHMARKS.md from the result files the benchmarks wrote to .loomworks/bench/
 * (tenant-create.json, pulumi-up.json, optionally pulumi-cold-build.json) and the Pulumi CLI
 * build cache (~/.cache/loomworks-hosting/pulumi-v*\/build-seconds).
 *
 *   node bin/bench/report.js [--out BENCHMARKS.md]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPO_ROOT, RESULTS_DIR, parseFlags, type MachineInfo, type Stats } from "./common";

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
  };
  breakdown: Array<Stats & { name: string }>;
  paired?: {
    createDatabaseInCreateTenant: Stats;
    createDatabaseMinusBaseline: Stats;
    restOfCreateTenant: Stats;
  };
  statements?: Array<Stats & { name: string }>;
  pbkdf2: Stats & { rounds: number };
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

const CACHE_ROOT =
  process.env.LOOMWORKS_TOOLS_CACHE ??
  path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), ".cache"), "loomworks-hosting");
/** The lead's cold-build figure, used when this run did not measure one. */
const LEAD_COLD_BUILD = { seconds: 242, note: "measured 2026-11-26 by the lead while other builds ran" };

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

function machineSection(tc?: TenantCreateResult, pu?: PulumiUpResult): string[] {
  const m = tc?.machine ?? pu?.machine;
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
  if (tc) out.push(`| PostgreSQL | ${tc.postgres} |`);
  if (pu) out.push(`| Pulumi | ${pu.pulumi} (project CLI in .tools/bin) |`);
  if (tc) {
    out.push(
      `| Load (1/5/15 min), tenant-create | start ${loads(tc.machine.load)}, end ${loads(tc.loadEnd)} |`,
    );
  }
  if (pu)
    out.push(`| Load (1/5/15 min), pulumi-up | start ${loads(pu.machine.load)}, end ${loads(pu.loadEnd)} |`);
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
  const row = (name: string, s: Stats): string =>
    `| ${name} | ${msf(s.median)} | ${msf(s.p95)} | ${msf(s.min)} | ${msf(s.max)} | ${s.n} |`;
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
    "| Scenario | median | p95 | min | max | n |",
    "|---|---|---|---|---|---|",
    row(`(a) baseline: ${r.baseline.name}`, r.baseline),
    row(`(b) ${r.createTenant.name}`, r.createTenant),
    "",
    "| Goal | Target | Measured | |",
    "|---|---|---|---|",
    `| median(b) / median(a) | ≤ ${r.goals.ratio.goal} | ${r.ratio.toFixed(2)} | ${yesNo(r.goals.ratio.met)} |`,
    `| p95(b) | ≤ ${sec(r.goals.p95.goalMs)} | ${sec(r.goals.p95.valueMs)} | ${yesNo(r.goals.p95.met)} |`,
    "",
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

function pulumiSection(r: PulumiUpResult): string[] {
  const lt = r.lockTable;
  const out = [
    "## `pulumi up` vs the same work straight from lib (`bench/pulumi-up.ts`)",
    "",
    `A throw-away stack (test/e2e/local-stack.ts, Automation API, file:// backend) already up with its ` +
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
        "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi` in tools/pulumi). For comparison, the lead measured " +
        `${LEAD_COLD_BUILD.seconds} s (${LEAD_COLD_BUILD.note}).`,
      "",
    );
  } else {
    out.push(
      `Cold build (empty GOCACHE): **${LEAD_COLD_BUILD.seconds} s** (4 min 2 s) for the CLI, ` +
        `${LEAD_COLD_BUILD.note}; not re-measured in this run${cold?.note ? ` (${cold.note})` : ""}.`,
      "",
    );
  }
  return out;
}

function main(): void {
  const flags = parseFlags(process.argv.slice(2), ["out"]);
  const outFile = path.resolve(REPO_ROOT, flags.out ?? "BENCHMARKS.md");
  const tc = readJson<TenantCreateResult>("tenant-create");
  const pu = readJson<PulumiUpResult>("pulumi-up");
  const cold = readJson<ColdBuildResult>("pulumi-cold-build");
  const date = (tc?.machine ?? pu?.machine)?.date ?? new Date().toISOString();
  const lines = [
    "# Benchmarks",
    "",
    `Measured ${date.replace(/\.\d+Z$/, "Z")} by \`bench/run.sh\`; this file is rendered by ` +
      "`bench/report.ts` from the result files in `.loomworks/bench/`. Timings are measurements of one " +
      "run on one machine, never assertions: rerun `bench/run.sh` to refresh them.",
    "",
    ...machineSection(tc, pu),
    ...(tc ? tenantCreateSection(tc) : ["## Tenant creation", "", "Not run.", ""]),
    ...(pu ? pulumiSection(pu) : ["## `pulumi up`", "", "Not run.", ""]),
    ...buildSection(cold),
  ];
  fs.writeFileSync(outFile, lines.join("\n").replace(/\n+$/, "\n"));
  console.log(`[report] wrote ${outFile}`);
}

main();
