/**
 * The scheduler daemon's lifecycle, for the LocalScheduler provider (dynamic-providers/
 * localScheduler.ts) and `jobs.js scheduler`: the files under `<stateDir>/scheduler`, starting
 * the daemon detached in a session of its own (setsid), its pid file, status and stop.
 */
import { spawn } from "node:child_process";
import { existsSync, openSync, closeSync, promises as fs } from "node:fs";
import * as path from "node:path";
import { mustRun } from "../process/run";
import { POSTGRES_USER } from "../pg/pgbackrest";
import { schedulerPaths, type SchedulerPaths } from "./scheduler";
import { validateScheduleFile, type ScheduleFile, type ScheduledJob } from "./schedule-defaults";
import { PRIVATE_FILE, TRAVERSED_DIR, ensureDirMode } from "../fs/stateModes";

/** What the jobs need to find the cluster: no secret (pgbackrest.conf holds the passphrase). */
export interface ClusterFile {
  stateDir: string;
  port: number;
  stanza: string;
  archiveTimeoutSeconds: number;
  retentionFull: number;
  /** unix_socket_directories of the cluster: the jobs connect there as `postgres` (peer auth). */
  socketDir: string;
}

export interface DaemonStatus {
  running: boolean;
  pid?: number;
}

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

/** Writes a file atomically (temp + rename). */
async function writeAtomic(file: string, content: string, mode: number): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, content, { mode });
  await fs.chmod(tmp, mode);
  await fs.rename(tmp, file);
}

/**
 * Writes schedule.json and cluster.json (0600 both; cluster.json owned by postgres when run as root, since
 * the jobs run as postgres). The daemon re-reads schedule.json on every tick.
 */
export async function writeSchedulerFiles(
  stateDir: string,
  jobs: ScheduledJob[],
  cluster: ClusterFile,
): Promise<SchedulerPaths> {
  const paths = schedulerPaths(stateDir);
  const schedule: ScheduleFile = validateScheduleFile({ version: 1, jobs });
  await ensureDirMode(paths.dir, TRAVERSED_DIR); // the jobs run as postgres read cluster.json
  await writeAtomic(paths.clusterFile, JSON.stringify(cluster, null, 2) + "\n", 0o600);
  await giveToPostgresWhenRoot(paths.clusterFile);
  await writeAtomic(paths.scheduleFile, JSON.stringify(schedule, null, 2) + "\n", PRIVATE_FILE);
  return paths;
}

async function giveToPostgresWhenRoot(file: string): Promise<void> {
  if (!isRoot()) return;
  const uid = Number((await mustRun("id", ["-u", POSTGRES_USER])).stdout.trim());
  const gid = Number((await mustRun("id", ["-g", POSTGRES_USER])).stdout.trim());
  await fs.chown(file, uid, gid);
}

/**
 * Writes notify.json (the webhook settings of lib/notify/settings.ts: a secret, mode 0600, owned
 * like cluster.json), or removes it when `settings` is undefined (no webhook configured).
 */
export async function writeNotifyFile(stateDir: string, settings: object | undefined): Promise<void> {
  const paths = schedulerPaths(stateDir);
  if (settings === undefined) {
    await fs.rm(paths.notifyFile, { force: true });
    return;
  }
  await ensureDirMode(paths.dir, TRAVERSED_DIR);
  await writeAtomic(paths.notifyFile, JSON.stringify(settings, null, 2) + "\n", PRIVATE_FILE);
  await giveToPostgresWhenRoot(paths.notifyFile);
}

/** Reads cluster.json. */
export async function readClusterFile(stateDir: string): Promise<ClusterFile> {
  const file = schedulerPaths(stateDir).clusterFile;
  const text = await fs.readFile(file, "utf8").catch((err: Error) => {
    throw new Error(`cannot read ${file} (written by the LocalScheduler provider): ${err.message}`);
  });
  const c = JSON.parse(text) as ClusterFile;
  if (!c.stateDir || !Number.isInteger(c.port) || !c.stanza || !c.socketDir) {
    throw new Error(`${file}: stateDir, port, stanza and socketDir are required`);
  }
  return c;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** True when `pid` runs `... scheduler --state-dir <stateDir>` (not another process that reused the pid). */
async function isSchedulerProcess(pid: number, stateDir: string): Promise<boolean> {
  if (!processAlive(pid)) return false;
  const cmdline = await fs.readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => undefined);
  if (cmdline === undefined) return true; // no /proc: trust the pid
  const args = cmdline.split("\0");
  const i = args.indexOf("--state-dir");
  return args.includes("scheduler") && i >= 0 && path.resolve(args[i + 1] ?? "") === path.resolve(stateDir);
}

async function readPid(paths: SchedulerPaths): Promise<number | undefined> {
  const pid = Number((await fs.readFile(paths.pidFile, "utf8").catch(() => "")).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether the daemon of this state directory runs (a stale pid file counts as not running). */
export async function daemonStatus(stateDir: string): Promise<DaemonStatus> {
  const paths = schedulerPaths(stateDir);
  const pid = await readPid(paths);
  if (pid !== undefined && (await isSchedulerProcess(pid, stateDir))) return { running: true, pid };
  return { running: false };
}

/**
 * For the daemon itself: records this process in the pid file, unless another live daemon of the
 * same state directory holds it (then throws). Returns a release function.
 */
export async function acquirePidFile(stateDir: string): Promise<() => Promise<void>> {
  const paths = schedulerPaths(stateDir);
  await ensureDirMode(paths.dir, TRAVERSED_DIR);
  const current = await readPid(paths);
  if (current !== undefined && current !== process.pid && (await isSchedulerProcess(current, stateDir))) {
    throw new Error(`the scheduler of ${path.resolve(stateDir)} already runs (pid ${current})`);
  }
  await writeAtomic(paths.pidFile, `${process.pid}\n`, PRIVATE_FILE);
  return async () => {
    if ((await readPid(paths)) === process.pid) await fs.rm(paths.pidFile, { force: true });
  };
}

/**
 * The daemon's environment: PATH, locale, HOME and the LOOMWORKS_* settings only. Nothing of the
 * caller's (a `pulumi up` has PULUMI_CONFIG_PASSPHRASE and other secrets in its environment).
 */
export function daemonEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const keep = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"];
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && (keep.includes(key) || key.startsWith("LOOMWORKS_"))) out[key] = value;
  }
  out.PATH ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  return out;
}

export interface StartOptions {
  /** argv of the daemon; must contain `scheduler --state-dir <stateDir>`. Default: node <jobsScript> scheduler ... */
  command?: string[];
  /** The compiled jobs.js (used when `command` is not given). */
  jobsScript?: string;
  env?: NodeJS.ProcessEnv;
  /** How long to wait for the daemon's pid file (default 20 s). */
  timeoutMs?: number;
}

/**
 * Starts the daemon detached (a session of its own, like `setsid`: it outlives `pulumi up`),
 * stdout and stderr to daemon.log; waits until it wrote its pid file. No-op when it runs already.
 */
export async function startDaemon(stateDir: string, opts: StartOptions = {}): Promise<DaemonStatus> {
  const status = await daemonStatus(stateDir);
  if (status.running) return status;
  const paths = schedulerPaths(stateDir);
  const resolved = path.resolve(stateDir);
  if (!opts.command && !opts.jobsScript) throw new Error("startDaemon: command or jobsScript is required");
  const command = opts.command ?? [
    process.execPath,
    opts.jobsScript ?? "",
    "scheduler",
    "--state-dir",
    resolved,
  ];
  await ensureDirMode(paths.dir, TRAVERSED_DIR);
  await fs.rm(paths.pidFile, { force: true });
  const logFd = openSync(paths.daemonLog, "a", PRIVATE_FILE);
  await fs.chmod(paths.daemonLog, PRIVATE_FILE);
  let exited: string | undefined;
  try {
    const child = spawn(command[0], command.slice(1), {
      cwd: "/",
      detached: true, // setsid(): its own session and process group
      stdio: ["ignore", logFd, logFd],
      env: { ...daemonEnv(), ...opts.env },
    });
    child.on("error", (err) => (exited = err.message));
    child.on("exit", (code, signal) => (exited = `exited (${code ?? signal})`));
    child.unref();
  } finally {
    closeSync(logFd);
  }
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  while (Date.now() < deadline) {
    const now = await daemonStatus(stateDir);
    if (now.running) return now;
    if (exited) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const tail = (await fs.readFile(paths.daemonLog, "utf8").catch(() => ""))
    .trimEnd()
    .split("\n")
    .slice(-10)
    .join("\n");
  throw new Error(
    `the scheduler daemon did not start (${exited ?? "no pid file"}); ${paths.daemonLog}:\n${tail}`,
  );
}

/**
 * Stops the daemon: SIGTERM (it terminates a running job and exits), then SIGKILL of its whole
 * process group after `timeoutMs` (default 40 s). No error when it is not running.
 */
export async function stopDaemon(stateDir: string, timeoutMs = 40_000): Promise<void> {
  const paths = schedulerPaths(stateDir);
  const status = await daemonStatus(stateDir);
  if (!status.running || status.pid === undefined) {
    await fs.rm(paths.pidFile, { force: true });
    return;
  }
  const pid = status.pid;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    /* gone */
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && processAlive(pid)) await new Promise((r) => setTimeout(r, 100));
  if (processAlive(pid)) {
    try {
      process.kill(-pid, "SIGKILL"); // the daemon leads its process group (detached)
    } catch {
      process.kill(pid, "SIGKILL");
    }
    while (processAlive(pid) && Date.now() < deadline + 10_000) await new Promise((r) => setTimeout(r, 100));
  }
  await fs.rm(paths.pidFile, { force: true });
}

/** Stops the daemon and removes `<stateDir>/scheduler` (schedule, logs, locks). */
export async function removeScheduler(stateDir: string): Promise<void> {
  await stopDaemon(stateDir);
  const { dir } = schedulerPaths(stateDir);
  if (existsSync(dir)) await fs.rm(dir, { recursive: true, force: true });
}
