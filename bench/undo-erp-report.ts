/**
 * The real-ERP part of BENCHMARKS.md's undo section, from bench/undo-erp.ts's result file: the goal
 * row (with the load during the batches) and the subsection with every scenario.
 */
import type { Stats } from "./common";

export interface UndoErpScenario {
  name: "plain" | "idle" | "op";
  label: string;
  wallMs: Stats;
  ratio: number;
  pairedRatio: Stats;
  pythonCpuMs: Stats;
  backendCpuMs: Stats;
  walBytes: Stats;
  records: number;
  capturedRows?: number;
  /** 1/5/15-minute load after each of the scenario's batches. */
  load: number[][];
}

export interface UndoErpResult {
  machine: { load: number[]; nproc: number };
  loadEnd: number[];
  totalMs: number;
  odoo: { version: string; command: string; python: string };
  undoApiVersion: number;
  rounds: number;
  warmup: number;
  partners: number;
  setup: { initMs: number; capturedTables: number; databaseBytes: number };
  workload: string;
  method: string;
  scenarios: UndoErpScenario[];
  goal: { goal: number; value: number; pairedMedian: number; met: boolean };
}

const median = (xs: number[]): number => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = (v.length - 1) / 2;
  return (v[Math.floor(mid)] + v[Math.ceil(mid)]) / 2;
};
const loadText = (ls: number[][]): string =>
  ls.length === 0 ? "–" : [0, 1, 2].map((i) => median(ls.map((l) => l[i])).toFixed(2)).join(" / ");
const ms = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(0)} ms` : "–");
const met = (ok: boolean): string => (ok ? "**met**" : "**missed**");

/** CPU (the ERP's Python and its database backend) of `s` over that of the batch without capture. */
function cpuRatio(r: UndoErpResult, s: UndoErpScenario): number {
  const plain = r.scenarios.find((x) => x.name === "plain");
  const cpu = (x: UndoErpScenario): number => x.pythonCpuMs.median + x.backendCpuMs.median;
  return plain ? cpu(s) / cpu(plain) : NaN;
}

/** The goal row of the undo section's goal table. */
export function erpGoalRow(r: UndoErpResult): string {
  const op = r.scenarios.find((s) => s.name === "op");
  const plain = r.scenarios.find((s) => s.name === "plain");
  return (
    `| real ERP (Odoo ${r.odoo.version}): wall time of an ORM batch inside an operation / without capture | ` +
    `≤ ${r.goal.goal.toFixed(2)} | ${r.goal.value.toFixed(3)} (per round: ${r.goal.pairedMedian.toFixed(3)}; ` +
    `CPU: ${op ? cpuRatio(r, op).toFixed(3) : "–"}) | ${met(r.goal.met)} | ` +
    `${loadText([...(op?.load ?? []), ...(plain?.load ?? [])])} |`
  );
}

/** The subsection: the workload, every scenario with its ratio, CPU, WAL and load. */
export function erpSection(r: UndoErpResult): string[] {
  const mb = (b: number): string => `${(b / 1e6).toFixed(2)} MB`;
  return [
    "### A real ERP workload (`bench/undo-erp.ts`)",
    "",
    `Odoo ${r.odoo.version} (\`${r.odoo.command}\` with ${r.odoo.python}), undo API v${r.undoApiVersion}. ` +
      `Workload: ${r.workload}. Method: ${r.method}; ${r.rounds} rounds. The database: ` +
      `${mb(r.setup.databaseBytes)}, initialized in ${(r.setup.initMs / 1000).toFixed(0)} s; ` +
      `${r.setup.capturedTables} tables captured in the guarded copy. One run of ` +
      `${(r.totalMs / 60_000).toFixed(1)} min; load ${loadText([r.machine.load])} at the start, ` +
      `${loadText([r.loadEnd])} at the end on ${r.machine.nproc} cores.`,
    "",
    "| Scenario | wall time median | min–max | / without capture | per-round ratio: median (min–max) | CPU: ERP (Python) + database backend | / without capture | WAL per batch | rows captured | Load (1/5/15 min) after the batches |",
    "|---|---|---|---|---|---|---|---|---|---|",
    ...r.scenarios.map(
      (s) =>
        `| ${s.label} | ${ms(s.wallMs.median)} | ${ms(s.wallMs.min)}–${ms(s.wallMs.max)} | ${s.ratio.toFixed(3)} | ` +
        `${s.name === "plain" ? "–" : `${s.pairedRatio.median.toFixed(3)} (${s.pairedRatio.min.toFixed(3)}–${s.pairedRatio.max.toFixed(3)})`} | ` +
        `${ms(s.pythonCpuMs.median)} + ${ms(s.backendCpuMs.median)} | ${cpuRatio(r, s).toFixed(3)} | ` +
        `${mb(s.walBytes.median)} | ${s.capturedRows ?? "–"} | ${loadText(s.load)} |`,
    ),
    "",
    `Per batch, ${r.scenarios[0]?.records ?? 0} partners are created. The wall time includes waiting for a ` +
      "CPU: on this shared machine that wait is most of it, so the CPU ratio is the steadier estimate of the " +
      "cost of capture to the ERP.",
    "",
  ];
}
