/**
 * The scheduler daemon's loop (no system cron needed): every tick it re-reads
 * `<stateDir>/scheduler/schedule.json`, runs the jobs that came due since the previous tick one
 * after another, and appends JSON lines to `<stateDir>/scheduler/jobs.log`:
 *
 *   {"time":"...","job":"backup-diff","event":"start","pid":1234,"command":[...]}
 *   {"time":"...","job":"backup-diff","event":"end","exit":0,"signal":null,"ok":true,"durationMs":5012,"outputTail":"..."}
 *
 * A job's whole output goes to `<stateDir>/scheduler/output/<job>.log`. A failing job is logged
 * and the loop goes on; a job never runs twice at once (a lock file per job, and jobs run
 * sequentially); a due time missed while another job ran is caught up once, not once per minute.
 *
 * Test hooks: `tickMs` (or `LOOMWORKS_SCHEDULER_TICK_MS`) and an injectable clock `now`.
 */
import { spawn } from "node:child_process";
import { promises as fs, constants as fsConstants } from "node:fs";
import * as path from "node:path";
import { nextRun } from "./cron";
import { validateScheduleFile, type ScheduleFile, type ScheduledJob } from "./schedule-defaults";
import { PRIVATE_DIR, PRIVATE_FILE, TRAVERSED_DIR, ensureDirMode } from "../fs/stateModes";

export interface SchedulerPaths {
  /** `<stateDir>/scheduler` */
  dir: string;
  /** The jobs to run (written by the LocalScheduler provider). */
  scheduleFile: string;
  /** The cluster the jobs act on, without secrets (mode 0600). */
  clusterFile: string;
  /** The webhook of operator notifications (mode 0600, a secret; absent without one). */
  notifyFile: string;
  /** The daemon's pid (written by the daemon itself). */
  pidFile: string;
  /** JSON lines: one `start` and one `end` record per job run, plus the daemon's own events. */
  jobsLog: string;
  /** The daemon's stdout and stderr. */
  daemonLog: string;
  /** `<dir>/output/<job>.log`: each run's output. */
  outputDir: string;
  /** `<dir>/locks/<job>.lock`: held while the job runs. */
  locksDir: string;
}

export function schedulerPaths(stateDir: string): SchedulerPaths {
  const dir = path.join(path.resolve(stateDir), "scheduler");
  return {
    dir,
    scheduleFile: path.join(dir, "schedule.json"),
    clusterFile: path.join(dir, "cluster.json"),
    notifyFile: path.join(dir, "notify.json"),
    pidFile: path.join(dir, "scheduler.pid"),
    jobsLog: path.join(dir, "jobs.log"),
    daemonLog: path.join(dir, "daemon.log"),
    outputDir: path.join(dir, "output"),
    locksDir: path.join(dir, "locks"),
  };
}

export type JobLogRecord = { time: string; event: string; job?: string } & Record<string, unknown>;

/** Appends one JSON line to jobs.log. */
export async function appendJobLog(paths: SchedulerPaths, record: JobLogRecord): Promise<void> {
  await fs.mkdir(paths.dir, { recursive: true, mode: TRAVERSED_DIR });
  await fs.appendFile(paths.jobsLog, JSON.stringify(record) + "\n", { mode: PRIVATE_FILE });
}

/** Reads jobs.log (malformed lines skipped). */
export async function readJobLog(stateDir: string): Promise<JobLogRecord[]> {
  const text = await fs.readFile(schedulerPaths(stateDir).jobsLog, "utf8").catch(() => "");
  const out: JobLogRecord[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as JobLogRecord);
    } catch {
      /* a line cut by a crash */
    }
  }
  return out;
}

/** Reads and checks schedule.json. */
export async function readSchedule(stateDir: string): Promise<ScheduleFile> {
  const file = schedulerPaths(stateDir).scheduleFile;
  const text = await fs.readFile(file, "utf8");
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`schedule.json: not JSON (${(err as Error).message})`);
  }
  return validateScheduleFile(raw);
}

/** The jobs with a cron time in `(since, now]`, in schedule order (each at most once). */
export function dueJobs(jobs: readonly ScheduledJob[], since: Date, now: Date): ScheduledJob[] {
  return jobs.filter((job) => nextRun(job.cron, since).getTime() <= now.getTime());
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes `<locks>/<job>.lock` (exclusive create; a lock of a dead process is taken over). */
async function tryLock(
  paths: SchedulerPaths,
  job: string,
): Promise<{ release: () => Promise<void> } | { heldBy: number }> {
  await ensureDirMode(paths.locksDir, PRIVATE_DIR);
  const file = path.join(paths.locksDir, `${job}.lock`);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await fs.open(
        file,
        fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY,
        0o644,
      );
      await handle.writeFile(`${process.pid}\n`);
      await handle.close();
      return { release: () => fs.rm(file, { force: true }) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number((await fs.readFile(file, "utf8").catch(() => "")).trim());
      if (Number.isInteger(holder) && holder > 0 && alive(holder)) return { heldBy: holder };
      await fs.rm(file, { force: true });
    }
  }
  return { heldBy: -1 };
}

export interface JobResult {
  exit: number | null;
  signal: string | null;
  ok: boolean;
  durationMs: number;
  error?: string;
  outputTail: string;
}

const OUTPUT_TAIL_LINES = 20;
const OUTPUT_MAX_BYTES = 5 * 1024 * 1024;
const DEFAULT_TIMEOUT_MINUTES = 6 * 60;

/** Keeps an output file below OUTPUT_MAX_BYTES by dropping its older part. */
async function trimOutput(file: string): Promise<void> {
  const st = await fs.stat(file).catch(() => undefined);
  if (!st || st.size <= OUTPUT_MAX_BYTES) return;
  const text = await fs.readFile(file, "utf8");
  await fs.writeFile(file, text.slice(-OUTPUT_MAX_BYTES / 5));
}

/** Runs one job to completion (never throws): its output appended to output/<job>.log. */
export async function runJob(
  job: ScheduledJob,
  paths: SchedulerPaths,
  opts: { signal?: AbortSignal; now?: () => Date; onStart?: (pid: number | undefined) => void } = {},
): Promise<JobResult> {
  const now = opts.now ?? (() => new Date());
  const started = Date.now();
  await ensureDirMode(paths.outputDir, PRIVATE_DIR);
  const outFile = path.join(paths.outputDir, `${job.name}.log`);
  await trimOutput(outFile);
  const out = await fs.open(outFile, "a", 0o640);
  await out.write(`\n===== ${now().toISOString()} ${job.name}: ${JSON.stringify(job.command)}\n`);
  let tail = "";
  const [file, args] =
    typeof job.command === "string"
      ? ["/bin/sh", ["-c", job.command]]
      : [job.command[0], job.command.slice(1)];
  const result = await new Promise<Omit<JobResult, "durationMs" | "outputTail">>((resolve) => {
    let settled = false;
    const finish = (r: Omit<JobResult, "durationMs" | "outputTail">) => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    const child = spawn(file, args, {
      cwd: "/",
      env: { ...process.env, LOOMWORKS_JOB_NAME: job.name },
      stdio: ["ignore", "pipe", "pipe"],
    });
    opts.onStart?.(child.pid);
    const onData = (d: Buffer) => {
      void out.write(d);
      tail = (tail + d.toString()).slice(-8192);
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    const stop = () => {
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 30_000).unref();
    };
    const timer = setTimeout(
      () => {
        tail += `\n[scheduler] timeout after ${job.timeoutMinutes ?? DEFAULT_TIMEOUT_MINUTES} minutes: terminating\n`;
        stop();
      },
      (job.timeoutMinutes ?? DEFAULT_TIMEOUT_MINUTES) * 60_000,
    );
    opts.signal?.addEventListener("abort", stop, { once: true });
    child.on("error", (err) => {
      clearTimeout(timer);
      finish({ exit: null, signal: null, ok: false, error: err.message });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener("abort", stop);
      finish({ exit: code, signal, ok: code === 0 });
    });
  });
  if (result.error) await out.write(`[scheduler] could not run: ${result.error}\n`);
  await out.close();
  const outputTail = tail.trimEnd().split("\n").slice(-OUTPUT_TAIL_LINES).join("\n");
  return { ...result, durationMs: Date.now() - started, outputTail };
}

export interface SchedulerOptions {
  stateDir: string;
  /** Time between ticks (default `$LOOMWORKS_SCHEDULER_TICK_MS`, else 30 s). */
  tickMs?: number;
  /** The clock jobs are scheduled by (tests inject one; default: the system clock). */
  now?: () => Date;
  /** Stops the loop (and terminates a running job). */
  signal?: AbortSignal;
  /** Stop after this many ticks (tests). */
  maxTicks?: number;
  /** Diagnostics (default: none; jobs.log gets every job event anyway). */
  log?: (msg: string) => void;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

export function defaultTickMs(env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = Number(env.LOOMWORKS_SCHEDULER_TICK_MS);
  return Number.isFinite(fromEnv) && fromEnv >= 10 ? fromEnv : 30_000;
}

/** The daemon's loop; returns when `signal` aborts (or after `maxTicks`). */
export async function runScheduler(opts: SchedulerOptions): Promise<void> {
  const paths = schedulerPaths(opts.stateDir);
  const now = opts.now ?? (() => new Date());
  const tickMs = opts.tickMs ?? defaultTickMs();
  const log = opts.log ?? (() => undefined);
  const record = (r: Omit<JobLogRecord, "time">) =>
    appendJobLog(paths, { time: now().toISOString(), ...r } as JobLogRecord).catch((err: Error) =>
      log(`cannot write ${paths.jobsLog}: ${err.message}`),
    );
  let since = now();
  let schedule: ScheduleFile | undefined;
  let lastProblem = "";
  await record({ event: "scheduler-start", pid: process.pid, tickMs });
  for (let tick = 0; opts.maxTicks === undefined || tick < opts.maxTicks; tick++) {
    await sleep(tickMs, opts.signal);
    if (opts.signal?.aborted) break;
    const at = now();
    try {
      schedule = await readSchedule(opts.stateDir);
      lastProblem = "";
    } catch (err) {
      const problem = (err as Error).message;
      if (problem !== lastProblem) {
        await record({
          event: "schedule-error",
          error: problem,
          keeping: schedule ? "previous schedule" : "none",
        });
        lastProblem = problem;
      }
    }
    let due: ScheduledJob[] = [];
    try {
      due = schedule ? dueJobs(schedule.jobs, since, at) : [];
    } catch (err) {
      await record({ event: "schedule-error", error: (err as Error).message });
    }
    since = at;
    for (const job of due) {
      if (opts.signal?.aborted) break;
      const lock = await tryLock(paths, job.name).catch((err: Error) => ({ heldBy: -1, error: err.message }));
      if ("heldBy" in lock) {
        await record({ event: "skip", job: job.name, reason: `already running (pid ${lock.heldBy})` });
        continue;
      }
      try {
        let startRecorded: Promise<void> = Promise.resolve();
        const result = await runJob(job, paths, {
          signal: opts.signal,
          now,
          onStart: (pid) => {
            startRecorded = record({ event: "start", job: job.name, pid, command: job.command });
          },
        });
        await startRecorded;
        await record({ event: "end", job: job.name, ...result });
        log(
          `${job.name}: ${result.ok ? "ok" : `failed (exit ${result.exit ?? result.signal ?? result.error})`}`,
        );
      } finally {
        await lock.release();
      }
    }
  }
  await record({ event: "scheduler-stop", pid: process.pid });
}
