/**
 * Helpers shared by the benchmarks: timing, statistics, machine facts, result files, and a
 * throw-away local cluster (its own state directory in /tmp and its own port).
 *
 * Benchmarks measure and record; they never assert on timings.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Client } from "pg";
import { destroyCluster, type LocalClusterSpec } from "../lib/pg/cluster";
import type { TenantSpec } from "../lib/tenant/provision";

import { findFreePort as findPort, makeStateDir } from "../testkit/cluster";
import { repoRoot } from "../testkit/repo";

/** The checkout's root (from bench/ or bin/bench/). */
export const REPO_ROOT = repoRoot;
/** Where result files go (ignored by git, like everything under .loomworks/). */
/** Committed, so BENCHMARKS.md can be re-rendered from the last run of every benchmark. */
export const RESULTS_DIR = path.join(REPO_ROOT, "bench", "results");

export const now = (): number => performance.now();

/** Milliseconds `fn` took, and its result. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = now();
  const value = await fn();
  return { ms: now() - start, value };
}

export interface Stats {
  n: number;
  median: number;
  /** 95th percentile, linear interpolation between closest ranks (as numpy's default). */
  p95: number;
  min: number;
  max: number;
  mean: number;
}

/** The q-quantile (0..1) of sorted values, linear interpolation between closest ranks. */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function stats(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: quantile(sorted, 0.5),
    p95: quantile(sorted, 0.95),
    min: sorted[0] ?? NaN,
    max: sorted[sorted.length - 1] ?? NaN,
    mean: sorted.reduce((s, v) => s + v, 0) / (sorted.length || 1),
  };
}

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export interface MachineInfo {
  date: string;
  hostname: string;
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  /** 1, 5 and 15 minute load averages. */
  load: number[];
  node: string;
}

export function machineInfo(): MachineInfo {
  return {
    date: new Date().toISOString(),
    hostname: os.hostname(),
    nproc: os.availableParallelism(),
    cpuModel: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    load: os.loadavg().map((l) => Math.round(l * 100) / 100),
    node: process.version,
  };
}

/** The load averages right now (recorded next to each measurement phase). */
export const loadNow = (): number[] => os.loadavg().map((l) => Math.round(l * 100) / 100);

/** `pulumi version` of the project's CLI (.tools/bin), or "unknown". */
export function pulumiVersion(): string {
  try {
    return execFileSync(path.join(REPO_ROOT, ".tools", "bin", "pulumi"), ["version"], {
      encoding: "utf8",
      env: { ...process.env, PULUMI_SKIP_UPDATE_CHECK: "true" },
    }).trim();
  } catch {
    return "unknown";
  }
}

export async function writeResult(name: string, data: unknown): Promise<string> {
  await fs.mkdir(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `${name}.json`);
  await fs.writeFile(file, JSON.stringify(data, null, 2) + "\n");
  return file;
}

/** `--name value` flags; numbers only where asked for. Unknown flags are an error. */
export function parseFlags(argv: string[], known: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (!flag.startsWith("--") || !known.includes(flag.slice(2))) {
      throw new Error(`unknown option ${flag} (known: ${known.map((k) => `--${k}`).join(", ")})`);
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`missing value for ${flag}`);
    out[flag.slice(2)] = value;
  }
  return out;
}

/**
 * `--name N` integer flags, each with its default (the keys of `defaults` are the only flags known):
 * `const { rounds, "warmup-seconds": warmupSeconds } = intFlags(process.argv.slice(2), { rounds: 8, "warmup-seconds": 3 })`.
 */
export function intFlags<T extends Record<string, number>>(argv: string[], defaults: T): T {
  const flags = parseFlags(argv, Object.keys(defaults));
  return Object.fromEntries(
    Object.entries(defaults).map(([name, fallback]) => [name, intFlag(flags, name, fallback)]),
  ) as T;
}

/** Runs a benchmark's main function: an error is printed and the process exits with 1. */
export function runBenchmark(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}

/** Stops and removes a benchmark's throw-away cluster; a failure is logged (the results are already written). */
export async function removeThrowawayCluster(
  spec: LocalClusterSpec,
  stateDir: string,
  log: (message: string) => void,
): Promise<void> {
  log("destroying the throw-away cluster");
  await destroyCluster(spec).catch((err: Error) => log(`destroyCluster failed: ${err.message}`));
  await fs.rm(stateDir, { recursive: true, force: true });
  if (existsSync(stateDir)) log(`could not remove ${stateDir}`);
}

export function intFlag(flags: Record<string, string>, name: string, fallback: number): number {
  const raw = flags[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} needs a non-negative integer, got ${raw}`);
  return n;
}

// ---------------------------------------------------------------------------------------------
// Throw-away cluster (same approach as test/integration/global-setup.ts)

/** The first free port from `start` up (outside the integration tests' range starting at 25432). */
export const findFreePort = (start = 26432, attempts = 500): Promise<number> => findPort(start, attempts);
export { makeStateDir };

export const fmtMs = (ms: number): string =>
  ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`;

/** Waits until the cluster is quiet: a checkpoint, then no WAL segment left waiting for the archiver. */
export async function settle(admin: Client, timeoutMs = 180_000): Promise<void> {
  await admin.query("CHECKPOINT");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await admin.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'",
    );
    if (Number(r.rows[0].n) === 0 || Date.now() > deadline) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Files and bytes under a directory (regular files; not followed symlinks). */
export async function treeFacts(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  const walk = async (d: string): Promise<void> => {
    const entries = await fs.readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) {
        files++;
        bytes += (await fs.lstat(p).catch(() => ({ size: 0 }))).size;
      }
    }
  };
  await walk(dir);
  return { files, bytes };
}

/**
 * A tenant for the lib-level scenarios: database and role named after it, fresh random passwords.
 * `tier` "pro" (50 users) unless told; the admin e-mail's domain is the name with `_` made `-`.
 */
export function benchTenantSpec(
  name: string,
  opts: { template: string; filestoreRoot: string; tier?: "basic" | "pro" },
): TenantSpec {
  const tier = opts.tier ?? "pro";
  return {
    subdomain: name,
    database: name,
    roleName: name,
    rolePassword: randomBytes(24).toString("base64url"),
    template: opts.template,
    tier,
    state: "active",
    adminEmail: `owner@${name.replace(/_/g, "-")}.example`,
    adminPassword: randomBytes(15).toString("base64url"),
    limits: { maxUsers: tier === "basic" ? 10 : 50 },
    filestoreRoot: opts.filestoreRoot,
    retentionDays: 30,
  };
}
