/**
 * The BENCHMARKS.md section of bench/scale.ts (rendered by bench/report.ts from bench/results/scale.json).
 */
import type { MachineInfo, Stats } from "./common";
import type { CallStats, EngineBreakdown } from "./engine-log";

export interface ScaleSample {
  ms: number;
  load: number[];
  ok: boolean;
  errors?: string[];
  peak?: { clientConnections: number; locks: number };
}

interface UpUntilDone {
  first: ScaleSample;
  extraUps: ScaleSample[];
}

interface PostgresFacts {
  processes: number;
  rssMiB: number;
  pssMiB: number;
  postmasterRssMiB: number;
  idleCpuPercent: number;
  idleSeconds: number;
  databases: string;
  bytes: string;
  clients: string;
  max_connections: string;
  shared_buffers: string;
  max_locks_per_transaction: string;
  autovacuum_naptime: string;
  dataDir: { bytes: number; files: number };
  load: number[];
}

export interface ScalePhase {
  tenants: number;
  create?: UpUntilDone;
  noChange?: {
    up: ScaleSample[];
    /** The same `up` with LOOMWORKS_PULUMI_SDK_DEBUG=1 (the program before trimSdkOverhead). */
    upSdkDebug?: ScaleSample[];
    readSequential: ScaleSample[];
    readConcurrent: ScaleSample[];
    providerCalls: ScaleSample[];
  };
  addOne?: {
    up: ScaleSample[];
    removeUp: ScaleSample[];
    createTenant: ScaleSample[];
    deleteTenant: ScaleSample[];
    /** The same `up` with PULUMI_SKIP_CHECKPOINTS (a diagnostic). */
    upNoCheckpoints?: ScaleSample[];
  };
  breakdownNoChange?: { up: ScaleSample; breakdown: EngineBreakdown | null };
  breakdownAddOne?: { up: ScaleSample; breakdown: EngineBreakdown | null };
  stateBackend?: { bytes: number; files: number };
  postgres?: PostgresFacts;
  restore?: { backup: ScaleSample; restore: ScaleSample; tenant: string; timings?: Record<string, number> };
  removeAll?: UpUntilDone;
}

export interface ScaleResult {
  complete: boolean;
  machine: MachineInfo;
  loadEnd?: number[];
  pulumi: string;
  totalMs?: number;
  settings: {
    tenants: number;
    baselineTenants: number;
    repeats: number;
    routerTenants: number;
    skip: string[];
    bulkUpsSkipCheckpoints?: boolean;
  };
  parallelism: string;
  template?: { database: string; options: Record<string, number>; tables: number; bytes: number };
  baseUp?: ScaleSample;
  phases: Record<string, ScalePhase>;
  router?: {
    reloads: number;
    load: number[];
    sizes: Array<{ tenants: number; renderMs: Stats; checkMs: Stats; reloadMs: Stats; applyMs: Stats }>;
  };
  /** Facts from earlier runs, added by hand to the result file (rendered as a list). */
  observations?: string[];
}

const sec = (ms: number | undefined): string =>
  ms !== undefined && Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : "–";
const msf = (ms: number | undefined): string =>
  ms !== undefined && Number.isFinite(ms) ? `${ms.toFixed(0)} ms` : "–";
const loads = (l: number[] | undefined): string => (l ? l.map((x) => x.toFixed(1)).join(" / ") : "–");
const ratio = (a: number | undefined, b: number | undefined): string =>
  a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0
    ? `${(a / b).toFixed(2)}×`
    : "–";
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2;
};
const okMs = (xs: ScaleSample[] | undefined): number[] => (xs ?? []).filter((x) => x.ok).map((x) => x.ms);
const med = (xs: ScaleSample[] | undefined): number => median(okMs(xs));
/** "median (n) · load" of samples, failures counted. */
function cell(xs: ScaleSample[] | undefined): string {
  if (!xs || xs.length === 0) return "–";
  const failed = xs.filter((x) => !x.ok).length;
  return `${sec(med(xs))} (n=${xs.length - failed}${failed ? `; ${failed} FAILED` : ""}) · load ${xs.at(-1)?.load[0]?.toFixed(1) ?? "–"}`;
}
const untilDone = (u: UpUntilDone | undefined): ScaleSample[] =>
  u ? [{ ...u.first, ms: u.first.ms + u.extraUps.reduce((a, x) => a + x.ms, 0), ok: true }] : [];
const goal = (valueMs: number, goalMs: number): string =>
  Number.isFinite(valueMs) ? (valueMs <= goalMs ? "**met**" : "**missed**") : "–";

function breakdownRows(
  label: string,
  b: { up: ScaleSample; breakdown: EngineBreakdown | null } | undefined,
): string[] {
  const e = b?.breakdown;
  if (!b || !e) return [`| ${label} | – | | | | |`];
  const top = Object.entries(e.calls)
    .sort((x, y) => y[1].busyMs - x[1].busyMs)
    .slice(0, 5)
    .map(([k, v]: [string, CallStats]) => `${k} ×${v.count} ${sec(v.busyMs)} (median ${msf(v.medianMs)})`)
    .join("; ");
  const programMs = e.registrations.lastMs - e.registrations.firstMs;
  return [
    `| ${label} | ${sec(b.up.ms)} | ${sec(e.logSpanMs)} | ${e.registrations.count} over ${sec(programMs)} | ` +
      `${sec(e.providerBusyMs)} (${top}) | ${sec(e.engineOnlyMs)} | ${e.checkpoints} |`,
  ];
}

export function scaleSection(r: ScaleResult): string[] {
  const n = r.settings.tenants;
  const b = r.settings.baselineTenants;
  const P = r.phases[String(n)] ?? { tenants: n };
  const B = r.phases[String(b)] ?? { tenants: b };
  const noChange500 = med(P.noChange?.up);
  const addOne500 = med(P.addOne?.up);
  const t = r.template;
  const lines = [
    "## A stack with 500 tenants (`bench/scale.ts`)",
    "",
    `One throw-away local stack (Automation API, file:// backend), ${r.parallelism}; ${r.pulumi}. ` +
      `Template: the Odoo-shaped fixture's core only (${t ? `${t.tables} tables, ${(t.bytes / 1e6).toFixed(1)} MB per database` : "–"}; ` +
      "`fixtureSql` with no padding tables), so the figures are the platform's, not the copy's. " +
      `Each size from nothing: ${b} tenants first (the baseline), then ${n}. Load (1/5/15 min) at the start ` +
      `${loads(r.machine.load)}, at the end ${loads(r.loadEnd)} on ${r.machine.nproc} cores; the 1-minute load ` +
      `after each figure is printed beside it.${r.complete ? "" : " **The run did not finish: partial results.**"}`,
    "",
    ...(r.settings.bulkUpsSkipCheckpoints
      ? [
          "The `up`s creating every tenant (and removing the baseline's) ran with `PULUMI_SKIP_CHECKPOINTS=true` " +
            "(the state written once, at the end; see the observations below for why); every other `up` " +
            "checkpointed after each step as usual.",
          "",
        ]
      : []),
    `| scenario | ${b} tenants | ${n} tenants | ${n} / ${b} | baseline in the same run (${n}) | ratio | goal |`,
    "|---|---|---|---|---|---|---|",
    `| \`up\` creating every tenant from nothing (further \`up\`s until done included) | ${cell(untilDone(B.create))} | ${cell(untilDone(P.create))} | ` +
      `${ratio(med(untilDone(P.create)), med(untilDone(B.create)))} | createTenant for one × ${n} | ` +
      `${ratio(med(untilDone(P.create)), med(P.addOne?.createTenant) * n)} | – |`,
    `| no-change \`up\` | ${cell(B.noChange?.up)} | ${cell(P.noChange?.up)} | ${ratio(noChange500, med(B.noChange?.up))} | ` +
      `readTenant × ${n}: ${sec(med(P.noChange?.readSequential))} sequential, ${sec(med(P.noChange?.readConcurrent))} 10 in flight; ` +
      `the dynamic providers' check + diff in-process: ${msf(med(P.noChange?.providerCalls))} | ` +
      `${ratio(noChange500, med(P.noChange?.readSequential))} | ≤ 30 s: ${goal(noChange500, 30_000)} |`,
    `| \`up\` adding one tenant | ${cell(B.addOne?.up)} | ${cell(P.addOne?.up)} | ${ratio(addOne500, med(B.addOne?.up))} | ` +
      `createTenant for one: ${sec(med(P.addOne?.createTenant))} | ${ratio(addOne500, med(P.addOne?.createTenant))} | ` +
      `≤ 15 s: ${goal(addOne500, 15_000)} |`,
    ...(P.noChange?.upSdkDebug?.length
      ? [
          "| no-change `up`, the SDK's source-mapped stack traces and debug lines kept (`LOOMWORKS_PULUMI_SDK_DEBUG=1`: " +
            `the program before lib/pulumi/sdkOverhead.ts) | ${cell(B.noChange?.upSdkDebug)} | ${cell(P.noChange.upSdkDebug)} | ` +
            `${ratio(med(P.noChange.upSdkDebug), med(B.noChange?.upSdkDebug))} | the no-change \`up\` above | ` +
            `${ratio(med(P.noChange.upSdkDebug), noChange500)} | – |`,
        ]
      : []),
    ...(P.addOne?.upNoCheckpoints?.length
      ? [
          "| `up` adding one tenant, the state written once at its end (`PULUMI_SKIP_CHECKPOINTS`; a diagnostic, " +
            `not a setting) | ${cell(B.addOne?.upNoCheckpoints)} | ${cell(P.addOne.upNoCheckpoints)} | ` +
            `${ratio(med(P.addOne.upNoCheckpoints), med(B.addOne?.upNoCheckpoints))} | the checkpointed \`up\` adding one | ` +
            `${ratio(med(P.addOne.upNoCheckpoints), addOne500)} | – |`,
        ]
      : []),
    `| \`up\` removing that tenant | ${cell(B.addOne?.removeUp)} | ${cell(P.addOne?.removeUp)} | ` +
      `${ratio(med(P.addOne?.removeUp), med(B.addOne?.removeUp))} | deleteTenant for one: ${sec(med(P.addOne?.deleteTenant))} | ` +
      `${ratio(med(P.addOne?.removeUp), med(P.addOne?.deleteTenant))} | – |`,
    `| restore of one tenant to a snapshot (restoreTenant) | ${cell(B.restore ? [B.restore.restore] : [])} | ` +
      `${cell(P.restore ? [P.restore.restore] : [])} | ${ratio(P.restore?.restore.ms, B.restore?.restore.ms)} | ` +
      `the same at ${b} tenants | ${ratio(P.restore?.restore.ms, B.restore?.restore.ms)} | – |`,
    `| full backup (pgBackRest) | ${cell(B.restore ? [B.restore.backup] : [])} | ${cell(P.restore ? [P.restore.backup] : [])} | ` +
      `${ratio(P.restore?.backup.ms, B.restore?.backup.ms)} | – | – | – |`,
    "",
    "Where an `up`'s time goes, from the CLI's own log (`--verbose 7 --logflow`, bench/engine-log.ts; these " +
      "runs are slower than the unlogged ones above): the program's RegisterResource calls (first to last), " +
      "the provider calls the engine waits for (union of their intervals; the five largest by type and method; a " +
      "Diff counts from its resource's Check), and the rest of the log's span, the engine alone.",
    "",
    "| `up` | wall | log span | registrations | provider calls in flight | engine alone | checkpoints |",
    "|---|---|---|---|---|---|---|",
    ...breakdownRows(`no change, ${b}`, B.breakdownNoChange),
    ...breakdownRows(`no change, ${n}`, P.breakdownNoChange),
    ...breakdownRows(`one added to ${b}`, B.breakdownAddOne),
    ...breakdownRows(`one added to ${n}`, P.breakdownAddOne),
    "",
  ];
  const pg = (x: ScalePhase): PostgresFacts | undefined => x.postgres;
  const settings = P.postgres ?? B.postgres;
  const peak = (x: ScalePhase, f: "clientConnections" | "locks"): string => {
    const c = x.create?.first.peak?.[f];
    const u = Math.max(...(x.noChange?.up ?? []).map((s) => s.peak?.[f] ?? 0));
    return `${c ?? "–"} / ${Number.isFinite(u) ? u : "–"}`;
  };
  const row = (label: string, f: (p: PostgresFacts) => string): string =>
    `| ${label} | ${B.postgres ? f(B.postgres) : "–"} | ${P.postgres ? f(P.postgres) : "–"} |`;
  if (pg(P) || pg(B)) {
    lines.push(
      `PostgreSQL with ${b} and ${n} tenant databases (settings as rendered from templates/postgresql.conf.tmpl: ` +
        `max_connections ${settings?.max_connections ?? "–"}, shared_buffers ${settings?.shared_buffers ?? "–"}, ` +
        `max_locks_per_transaction ${settings?.max_locks_per_transaction ?? "–"}, autovacuum_naptime ${settings?.autovacuum_naptime ?? "–"}):`,
      "",
      `| | ${b} tenants | ${n} tenants |`,
      "|---|---|---|",
      row("databases (all)", (p) => p.databases),
      row("sum of pg_database_size", (p) => `${(Number(p.bytes) / 1e9).toFixed(2)} GB`),
      row(
        "data directory",
        (p) => `${(p.dataDir.bytes / 1e9).toFixed(2)} GB, ${p.dataDir.files.toLocaleString("en")} files`,
      ),
      row("server processes at rest", (p) => String(p.processes)),
      row(
        "their memory: RSS / PSS (shared buffers counted once in PSS)",
        (p) => `${p.rssMiB.toFixed(0)} MiB / ${p.pssMiB.toFixed(0)} MiB`,
      ),
      row(
        "CPU at rest (autovacuum launcher and workers)",
        (p) => `${p.idleCpuPercent.toFixed(1)} % of a core over ${p.idleSeconds} s`,
      ),
      row("client connections at rest", (p) => p.clients),
      `| peak client connections during the creating / no-change \`up\` | ${peak(B, "clientConnections")} | ${peak(P, "clientConnections")} |`,
      `| peak entries in pg_locks during the creating / no-change \`up\` | ${peak(B, "locks")} | ${peak(P, "locks")} |`,
      `| Pulumi's file backend (the checkpoint, its .bak, history and backups) after the measured \`up\`s | ${B.stateBackend ? `${(B.stateBackend.bytes / 1e6).toFixed(1)} MB` : "–"} | ${P.stateBackend ? `${(P.stateBackend.bytes / 1e6).toFixed(1)} MB` : "–"} |`,
      "",
    );
  }
  if (r.router) {
    lines.push(
      `The router alone (lib/router applyRouter on a throw-away nginx; ${r.router.reloads} reloads per size, each adding or ` +
        `removing one tenant, sizes interleaved; medians, max in parentheses; load ${loads(r.router.load)}):`,
      "",
      "| tenants | render | `nginx -t` | reload (SIGHUP until every worker runs the new configuration) | whole applyRouter |",
      "|---|---|---|---|---|",
      ...r.router.sizes.map(
        (s) =>
          `| ${s.tenants.toLocaleString("en")} | ${msf(s.renderMs.median)} (${msf(s.renderMs.max)}) | ` +
          `${msf(s.checkMs.median)} (${msf(s.checkMs.max)}) | ${msf(s.reloadMs.median)} (${msf(s.reloadMs.max)}) | ` +
          `${msf(s.applyMs.median)} (${msf(s.applyMs.max)}) |`,
      ),
      "",
    );
  }
  if (r.observations?.length) lines.push("Observations:", "", ...r.observations.map((o) => `- ${o}`), "");
  return lines;
}
