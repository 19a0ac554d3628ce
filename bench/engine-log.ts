/**
 * Where an `up`'s time goes, from the Pulumi CLI's own log (`--verbose 7 --logflow`: one JSON
 * object a line, `{"time", "level", "msg"}`, in `pulumi.*.log.INFO.*` in the CLI's TMPDIR): every provider call the engine makes
 * (Check, Diff, Create, Read, Update, Delete: "executing" and "success"/"failed" lines with
 * microsecond timestamps), the program's RegisterResource calls and the checkpoint writes.
 *
 * A provider call's time is what the engine waits for it: gRPC, the provider plugin (for dynamic
 * resources the Node.js dynamic provider host) and the provider's method. "Busy" is the union of
 * the calls' intervals (calls overlap when the engine runs steps in parallel); what is left of the
 * log's span is the engine's own work (and the program's, while it registers resources).
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";

export interface CallStats {
  count: number;
  /** Sum of the calls' durations. */
  sumMs: number;
  /** Union of their intervals: wall time during which at least one such call was in flight. */
  busyMs: number;
  medianMs: number;
  maxMs: number;
}

export interface EngineBreakdown {
  /** First to last line of the CLI's log. */
  logSpanMs: number;
  /** The program's RegisterResource calls: how many, first and last (ms after the log's first line). */
  registrations: { count: number; firstMs: number; lastMs: number };
  /** By `<resource type>.<method>` (the type's last URN segment, e.g. `TenantDatabase.Diff`). */
  calls: Record<string, CallStats>;
  /** Union of all provider calls' intervals. */
  providerBusyMs: number;
  /** logSpanMs − providerBusyMs: the engine (and the program) with no provider call in flight. */
  engineOnlyMs: number;
  /** Checkpoints the file backend wrote (the whole state each time). */
  checkpoints: number;
}

// "executing" follows the label directly, or after a colon (Diff).
const CALL = /\]\.(Check|Diff|Create|Read|Update|Delete)\((.*?)\):? (executing|success|failed)/;

/** A log line's time (epoch ms, with the sub-millisecond digits) and message, or undefined. */
function parseLine(line: string): { t: number; msg: string } | undefined {
  if (!line.startsWith("{")) return undefined;
  let rec: { time?: unknown; msg?: unknown };
  try {
    rec = JSON.parse(line) as { time?: unknown; msg?: unknown };
  } catch {
    return undefined;
  }
  if (typeof rec.time !== "string" || typeof rec.msg !== "string") return undefined;
  const m = /^(.{19})(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(rec.time);
  if (!m) return undefined;
  const t = Date.parse(m[1] + m[3]) + Number(`0.${m[2] ?? "0"}`) * 1000;
  return Number.isNaN(t) ? undefined : { t, msg: rec.msg };
}

/** The resource type's own name in a URN (`...::parent$loomworks:index:TenantDatabase::name` → TenantDatabase). */
export function urnTypeName(urn: string): string {
  const qualified = urn.split("::")[2] ?? urn;
  const type = qualified.split("$").at(-1) ?? qualified;
  return type.split(":").at(-1) ?? type;
}

function merge(intervals: Array<[number, number]>): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let start = NaN;
  let end = NaN;
  for (const [s, e] of sorted) {
    if (Number.isNaN(start) || s > end) {
      if (!Number.isNaN(start)) total += end - start;
      start = s;
      end = e;
    } else if (e > end) end = e;
  }
  return Number.isNaN(start) ? 0 : total + (end - start);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = (s.length - 1) / 2;
  return (s[Math.floor(mid)] + s[Math.ceil(mid)]) / 2;
};

/** Parses the text of one CLI log file. */
export function parseEngineLog(text: string): EngineBreakdown {
  let first = NaN;
  let last = NaN;
  const open = new Map<string, number>();
  const done = new Map<string, Array<[number, number]>>();
  const registrations: number[] = [];
  let checkpoints = 0;
  for (const line of text.split("\n")) {
    const parsed = parseLine(line);
    if (!parsed) continue;
    const { t, msg } = parsed;
    if (Number.isNaN(first)) first = t;
    last = t;
    if (msg.startsWith("ResourceMonitor.RegisterResource received")) {
      registrations.push(t - first);
      continue;
    }
    if (/^Saved stack .* checkpoint to/.test(msg)) {
      checkpoints++;
      continue;
    }
    const c = CALL.exec(msg);
    if (!c) continue;
    const urn = c[2].split(",").find((s) => s.startsWith("urn:"));
    if (!urn) continue;
    const key = `${urnTypeName(urn)}.${c[1]}`;
    const id = `${key} ${urn}`;
    if (c[3] === "executing") {
      open.set(id, t);
    } else {
      const start = open.get(id);
      if (start === undefined) continue;
      open.delete(id);
      const list = done.get(key) ?? [];
      list.push([start, t]);
      done.set(key, list);
    }
  }
  const calls: Record<string, CallStats> = {};
  for (const [key, intervals] of [...done.entries()].sort()) {
    const durations = intervals.map(([s, e]) => e - s);
    calls[key] = {
      count: intervals.length,
      sumMs: durations.reduce((a, b) => a + b, 0),
      busyMs: merge(intervals),
      medianMs: median(durations),
      maxMs: Math.max(...durations),
    };
  }
  const providerBusyMs = merge([...done.values()].flat());
  const logSpanMs = Number.isNaN(first) ? 0 : last - first;
  return {
    logSpanMs,
    registrations: {
      count: registrations.length,
      firstMs: registrations[0] ?? NaN,
      lastMs: registrations.at(-1) ?? NaN,
    },
    calls,
    providerBusyMs,
    engineOnlyMs: logSpanMs - providerBusyMs,
    checkpoints,
  };
}

/** The CLI's log files (`pulumi.*.log.INFO.*`, not the plugins') in `dir` written after `sinceMs` (epoch). */
export async function cliLogsSince(dir: string, sinceMs: number): Promise<string[]> {
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  const out: string[] = [];
  for (const name of names) {
    if (!/^pulumi\..*\.log\.INFO\./.test(name)) continue;
    const file = path.join(dir, name);
    const st = await fs.lstat(file);
    if (st.isFile() && st.mtimeMs >= sinceMs) out.push(file);
  }
  return out.sort();
}
