/** The ops job CLI as the integration tests run it: compiled, in a child process, against the shared cluster. */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { writeSchedulerFiles } from "../../lib/backup/daemon";
import type { SchedulerPaths } from "../../lib/backup/scheduler";
import type { ScheduledJob } from "../../lib/backup/schedule-defaults";
import { clusterPaths } from "../../lib/pg/paths";
import { repoRoot } from "../../testkit/repo";
import type { ProvidedPg } from "./pg-context";

/** bin/infra/ops/jobs.js (the integration global set-up compiles the program). */
export const JOBS_SCRIPT = path.join(repoRoot, "bin", "infra", "ops", "jobs.js");

/**
 * The scheduler's files for the shared cluster, `jobs` (default none): what jobs.js reads to reach
 * the cluster. In `dir` (default the cluster's own state directory), naming `stanza` (default the
 * cluster's).
 */
export function writeClusterSchedulerFiles(
  pg: ProvidedPg,
  dir: string = pg.stateDir,
  stanza: string = pg.stanza,
  jobs: ScheduledJob[] = [],
): Promise<SchedulerPaths> {
  return writeSchedulerFiles(dir, jobs, {
    stateDir: pg.stateDir,
    port: pg.port,
    stanza,
    archiveTimeoutSeconds: pg.archiveTimeoutSeconds,
    retentionFull: pg.retentionFull,
    socketDir: clusterPaths(pg.stateDir).socketDir,
  });
}

/** Runs `node <args>` from `/`; its exit code and its stdout and stderr together. */
export function runNode(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, cwd: "/" });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, out }));
  });
}
