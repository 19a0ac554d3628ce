/**
 * The local router's nginx process, under `<stateDir>/router` (its prefix directory: config,
 * pages, logs, pid file, temp directories). nginx daemonizes (`daemon on`): a master process
 * (root when the platform runs as root, the workers then run as `user` from the configuration,
 * www-data on Debian) that outlives `pulumi up`.
 *
 * applyConfig is the only way a configuration gets in: the candidate is written next to the live
 * one, checked with `nginx -t`, and only then moved in place and loaded (start, or SIGHUP to the
 * running master). A rejected candidate leaves the old configuration serving and throws with
 * nginx's own message; it is kept as `nginx.conf.rejected` for a look.
 */
import { spawn } from "node:child_process";
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  promises as fs,
} from "node:fs";
import * as path from "node:path";
import { performance } from "node:perf_hooks";
import { runCommand } from "../process/run";
import {
  renderRouterConfig,
  routerConfigHash,
  routerPaths,
  type RouterOptions,
  type RouterPaths,
} from "./config";
import { PRIVATE_DIR, PRIVATE_FILE, TRAVERSED_DIR, ensureDirMode } from "../fs/stateModes";

/** The nginx binary (Debian package nginx-light / nginx; scripts/setup.sh installs it). */
export const NGINX_BIN = process.env.LOOMWORKS_NGINX_BIN ?? "nginx";
/** How long a start or a reload may take before it counts as failed. */
const DEFAULT_TIMEOUT_MS = 20_000;

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `nginx version: nginx/1.22.1`, or throws when nginx is not installed. */
export async function nginxVersion(): Promise<string> {
  const r = await runCommand(NGINX_BIN, ["-v"]).catch((err: Error) => {
    throw new Error(`nginx is not installed (${err.message}); scripts/setup.sh installs it`);
  });
  return (r.stderr || r.stdout).trim();
}

/**
 * The user the workers run as when nginx is started by root: www-data where it exists (Debian),
 * else nobody. Undefined when not root (nginx then ignores `user`; the workers run as we do).
 */
export function defaultWorkerUser(): string | undefined {
  if (!isRoot()) return undefined;
  try {
    const passwd = readFileSync("/etc/passwd", "utf8");
    if (/^www-data:/m.test(passwd)) return "www-data";
  } catch {
    // no /etc/passwd to read: fall through
  }
  return "nobody";
}

// ---------------------------------------------------------------------------------------------
// nginx -t

export interface NginxCheck {
  ok: boolean;
  /** nginx's error lines ([emerg], [alert], [crit]) without the timestamp; set when !ok. */
  error?: string;
  /** [warn] lines, e.g. "could not build optimal map_hash". */
  warnings: string[];
  /** Everything nginx printed. */
  output: string;
  ms: number;
}

/** Strips nginx's `2026/11/26 05:27:05 [emerg] 11620#11620: ` / `nginx: [emerg] ` prefixes. */
function nginxMessages(output: string, levels: string[]): string[] {
  const re = new RegExp(`\\[(${levels.join("|")})\\]\\s+(?:\\d+#\\d+:\\s*)?(.*)$`);
  return output
    .split("\n")
    .map((line) => re.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `[${m[1]}] ${m[2].trim()}`);
}

/** `nginx -t -p <prefix> -c <file>`: whether nginx accepts the configuration, and what it said. */
export async function checkConfig(configFile: string, prefix: string): Promise<NginxCheck> {
  const start = performance.now();
  const r = await runCommand(NGINX_BIN, [
    "-t",
    "-q",
    "-e",
    "stderr",
    "-p",
    withSlash(prefix),
    "-c",
    configFile,
  ]);
  const output = `${r.stderr}${r.stdout}`.trim();
  const errors = nginxMessages(output, ["emerg", "alert", "crit"]);
  const warnings = nginxMessages(output, ["warn"]);
  const ok = r.code === 0;
  return {
    ok,
    ...(ok ? {} : { error: errors.length > 0 ? errors.join("\n") : output || `nginx -t exited ${r.code}` }),
    warnings,
    output,
    ms: performance.now() - start,
  };
}

const withSlash = (dir: string): string => (dir.endsWith("/") ? dir : `${dir}/`);

// ---------------------------------------------------------------------------------------------
// The process

export interface RouterStatus {
  running: boolean;
  /** The master's pid when running. */
  pid?: number;
  /** Pids of its worker processes (including old ones still finishing after a reload). */
  workers: number[];
  /**
   * configGeneration() of the configuration the accepting workers run (read from the generation
   * marker file they hold open); undefined when not running or not known.
   */
  generation?: string;
}

interface ProcInfo {
  pid: number;
  ppid: number;
  state: string;
  title: string;
}

function procInfo(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // pid (comm) state ppid ...: comm may contain spaces and parentheses, so split after the last ")".
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const title = readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0+$/, "").replace(/\0/g, " ");
    return { pid, ppid: Number(rest[1]), state: rest[0], title };
  } catch {
    return undefined;
  }
}

/** Live (not zombie) children of a process, with their titles ("nginx: worker process ..."). */
function childrenOf(pid: number): ProcInfo[] {
  let pids: number[];
  try {
    pids = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    // Kernel without CONFIG_PROC_CHILDREN: scan every process.
    pids = [];
    for (const name of readdirSync("/proc")) {
      if (/^\d+$/.test(name) && procInfo(Number(name))?.ppid === pid) pids.push(Number(name));
    }
  }
  return pids
    .map(procInfo)
    .filter((p): p is ProcInfo => p !== undefined && p.ppid === pid && p.state !== "Z");
}

/** Whether `pid` is this router's nginx master (not a zombie, not a recycled pid). */
function isOurMaster(pid: number, paths: RouterPaths): boolean {
  const p = procInfo(pid);
  return (
    p !== undefined &&
    p.state !== "Z" &&
    p.title.startsWith("nginx: master process") &&
    p.title.includes(paths.config)
  );
}

function readPid(paths: RouterPaths): number | undefined {
  try {
    const pid = Number(readFileSync(paths.pidFile, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Generation marker: which configuration do the workers run?
//
// applyConfig appends `error_log "<run>/generation-<id>.log" emerg;` to the configuration, <id>
// derived from the text. The master opens that file when it loads the configuration and its
// workers inherit it, so /proc/<worker>/fd tells which configuration each worker runs: a reload
// is complete when every worker still accepting connections holds the new marker. (Worker
// process titles and environments cannot carry it: nginx overwrites them with its titles.)

const MARKER_COMMENT =
  "# loomworks-router generation marker (added by applyConfig; tells which configuration runs)";

/** The generation id of a configuration text (without its marker). */
export function configGeneration(text: string): string {
  return routerConfigHash(text).slice(0, 16);
}

const generationFile = (paths: RouterPaths, generation: string): string =>
  path.join(paths.runDir, `generation-${generation}.log`);

/** The configuration text with its generation marker appended (main context: the end of the file). */
function withMarker(paths: RouterPaths, text: string): string {
  return `${text}\n${MARKER_COMMENT}\nerror_log "${generationFile(paths, configGeneration(text))}" emerg;\n`;
}

/** The configuration text without the marker applyConfig added. */
export function stripMarker(live: string): string {
  const at = live.lastIndexOf(`\n${MARKER_COMMENT}\n`);
  return at < 0 ? live : live.slice(0, at);
}

/** Generation ids of the marker files a process holds open. */
function heldGenerations(pid: number): string[] {
  const out: string[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /\/generation-([0-9a-f]{16})\.log$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.push(m[1]);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Removes the marker files of other generations (old workers keep theirs open while they finish). */
async function pruneGenerations(paths: RouterPaths, keep: string): Promise<void> {
  const names = await fs.readdir(paths.runDir).catch(() => [] as string[]);
  for (const name of names) {
    if (/^generation-[0-9a-f]{16}\.log$/.test(name) && name !== `generation-${keep}.log`) {
      await fs.rm(path.join(paths.runDir, name), { force: true });
    }
  }
}

const accepting = (p: ProcInfo): boolean => !p.title.includes("shutting down");

/** Whether the router's nginx runs, its master's pid, its workers and their configuration's generation. */
export async function routerStatus(stateDir: string): Promise<RouterStatus> {
  const paths = routerPaths(stateDir);
  const pid = readPid(paths);
  if (pid === undefined || !isOurMaster(pid, paths)) return { running: false, workers: [] };
  const kids = childrenOf(pid);
  const generations = new Set(kids.filter(accepting).flatMap((k) => heldGenerations(k.pid)));
  return {
    running: true,
    pid,
    workers: kids.map((c) => c.pid),
    ...(generations.size === 1 ? { generation: [...generations][0] } : {}),
  };
}

/** Size of a file, 0 when missing. */
async function fileSize(file: string): Promise<number> {
  return fs.stat(file).then(
    (s) => s.size,
    () => 0,
  );
}

/** The error log's [emerg]/[alert] lines written after byte `offset`. */
async function newErrors(paths: RouterPaths, offset: number): Promise<string[]> {
  let text = "";
  try {
    const fh = await fs.open(paths.errorLog, "r");
    try {
      const size = (await fh.stat()).size;
      if (size > offset) {
        const buf = Buffer.alloc(size - offset);
        await fh.read(buf, 0, buf.length, offset);
        text = buf.toString("utf8");
      }
    } finally {
      await fh.close();
    }
  } catch {
    return [];
  }
  return nginxMessages(text, ["emerg", "alert", "crit"]);
}

async function tail(file: string, lines = 15): Promise<string> {
  const text = await fs.readFile(file, "utf8").catch(() => "");
  return text.trim().split("\n").slice(-lines).join("\n");
}

/**
 * The workers (an unprivileged user when nginx runs as root) pass through the router's directory
 * to the error pages, the maintenance flags (`-f` only stats) and their temp directories; the
 * configuration, logs and pid stay private. The log files are created 0600 before nginx opens them.
 */
async function ensureDirs(paths: RouterPaths): Promise<void> {
  for (const dir of [paths.dir, paths.htmlDir, paths.maintenanceDir, paths.tempDir])
    await ensureDirMode(dir, TRAVERSED_DIR);
  for (const dir of [paths.logDir, paths.runDir]) await ensureDirMode(dir, PRIVATE_DIR);
  for (const log of [paths.errorLog, paths.accessLog, paths.startupLog]) {
    await fs.appendFile(log, "", { mode: PRIVATE_FILE });
    await fs.chmod(log, PRIVATE_FILE);
  }
}

/** The error pages are served to anyone: 0644. Everything else the router writes: 0600. */
const PUBLIC_PAGE = 0o644;

async function writeAtomic(file: string, content: string, mode = PRIVATE_FILE): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, content, { mode });
  await fs.chmod(tmp, mode);
  await fs.rename(tmp, file);
}

/**
 * When nginx runs as root with workers as `user`, the workers must reach the pages and the
 * maintenance flags (`if (-f ...)` quietly finds nothing it cannot stat): check it up front.
 */
async function checkWorkerAccess(paths: RouterPaths, configText: string): Promise<void> {
  const user = /^\s*user\s+([^\s;]+)/m.exec(configText)?.[1];
  if (!user || !isRoot()) return;
  const r = await runCommand("runuser", [
    "-u",
    user,
    "--",
    "test",
    "-r",
    path.join(paths.htmlDir, "404.html"),
    "-a",
    "-r",
    path.join(paths.htmlDir, "503.html"),
    "-a",
    "-x",
    paths.maintenanceDir,
  ]);
  if (r.code !== 0) {
    throw new Error(
      `the router's worker user ${user} cannot read ${paths.htmlDir} or search ${paths.maintenanceDir}: ` +
        `make every directory above ${paths.dir} traversable (chmod o+x)${r.stderr ? `: ${r.stderr.trim()}` : ""}`,
    );
  }
}

/** Starts nginx on the live configuration and waits for its workers. */
async function start(paths: RouterPaths, generation: string, timeoutMs: number): Promise<number> {
  const fd = openSync(paths.startupLog, "w", PRIVATE_FILE);
  let code: number | null;
  try {
    code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(NGINX_BIN, ["-p", withSlash(paths.dir), "-c", paths.config, "-e", paths.errorLog], {
        stdio: ["ignore", fd, fd],
        detached: true,
      });
      child.on("error", reject);
      child.on("exit", (c) => resolve(c));
    });
  } finally {
    closeSync(fd);
  }
  if (code !== 0) {
    const detail = nginxMessages(`${await tail(paths.startupLog)}\n${await tail(paths.errorLog)}`, [
      "emerg",
      "alert",
      "crit",
    ]);
    throw new Error(
      `nginx did not start (exit ${code}): ${detail.join("\n") || (await tail(paths.startupLog))}`,
    );
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pid = readPid(paths);
    if (pid !== undefined && isOurMaster(pid, paths)) {
      const kids = childrenOf(pid);
      if (kids.length > 0 && kids.every((k) => heldGenerations(k.pid).includes(generation))) return pid;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `nginx started but no master with workers appeared within ${timeoutMs} ms:\n${await tail(paths.errorLog)}`,
      );
    }
    await sleep(5);
  }
}

/** nginx retries a bind() that failed with EADDRINUSE for 2.5 s before it gives up. */
const BIND_RETRY = /bind\(\) to .* failed \(98: Address already in use\)|try again to bind/;

/**
 * SIGHUP to the master, then waits until the reload is complete: new workers holding the new
 * configuration's generation marker run and every other worker has stopped accepting (gone, or
 * titled "worker process is shutting down"), so the next connection is served by the new
 * configuration. Throws with nginx's message when the master refused the new configuration
 * (it then keeps the old one).
 */
async function reload(
  paths: RouterPaths,
  master: number,
  generation: string,
  timeoutMs: number,
): Promise<void> {
  const offset = await fileSize(paths.errorLog);
  const before = new Set(childrenOf(master).map((k) => k.pid));
  process.kill(master, "SIGHUP");
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await sleep(2);
    const errors = await newErrors(paths, offset);
    const final = errors.filter((e) => !BIND_RETRY.test(e));
    if (final.length > 0) throw new Error(errors.join("\n"));
    if (!isOurMaster(master, paths)) {
      throw new Error(`nginx master ${master} exited during the reload:\n${await tail(paths.errorLog)}`);
    }
    const kids = childrenOf(master).filter(accepting);
    // Workers started by this reload (the same text may already run: a hand edit that was reloaded).
    const current = kids.filter((k) => !before.has(k.pid) && heldGenerations(k.pid).includes(generation));
    if (current.length > 0 && current.length === kids.length) return;
    if (Date.now() > deadline) {
      throw new Error(
        `nginx did not finish reloading within ${timeoutMs} ms${errors.length ? `:\n${errors.join("\n")}` : ""}`,
      );
    }
  }
}

export interface ApplyResult {
  /** started: nginx was not running; reloaded: SIGHUP; unchanged: same configuration already running. */
  action: "started" | "reloaded" | "unchanged";
  pid: number;
  configFile: string;
  /** routerConfigHash of what is now serving. */
  hash: string;
  /** nginx -t of the candidate. */
  checkMs: number;
  /** Start, or SIGHUP until the old workers stopped accepting. */
  reloadMs: number;
  totalMs: number;
}

export interface ApplyOptions {
  /** Limit for a start or a reload (default 20 s). */
  timeoutMs?: number;
}

/** Serializes applyConfig per router directory within this process. */
const applying = new Map<string, Promise<unknown>>();

/**
 * Checks and loads a configuration: the candidate goes to a temporary file beside the live one
 * and through `nginx -t`; only when it passes is it moved in place and nginx started or
 * reloaded. A rejected candidate, or a reload the master refuses, leaves the previous
 * configuration in place and serving, and throws with nginx's message. `config` is the text of
 * nginx.conf, or a rendered configuration with its pages (written to `<router>/html` first).
 */
export async function applyConfig(
  stateDir: string,
  config: string | { text: string; pages?: Record<string, string> },
  opts: ApplyOptions = {},
): Promise<ApplyResult> {
  const paths = routerPaths(stateDir);
  const previous = applying.get(paths.dir) ?? Promise.resolve();
  const run = previous.catch(() => undefined).then(() => applyNow(paths, config, opts));
  applying.set(paths.dir, run);
  try {
    return await run;
  } finally {
    if (applying.get(paths.dir) === run) applying.delete(paths.dir);
  }
}

async function applyNow(
  paths: RouterPaths,
  config: string | { text: string; pages?: Record<string, string> },
  opts: ApplyOptions,
): Promise<ApplyResult> {
  const t0 = performance.now();
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const text = typeof config === "string" ? config : config.text;
  const pages = typeof config === "string" ? {} : (config.pages ?? {});
  await ensureDirs(paths);
  for (const [name, content] of Object.entries(pages)) {
    if (!/^[A-Za-z0-9_.-]+\.html$/.test(name))
      throw new Error(`router page name ${name} is not a plain .html name`);
    await writeAtomic(path.join(paths.htmlDir, name), content, PUBLIC_PAGE);
  }
  const hash = routerConfigHash(text, pages);
  const generation = configGeneration(text);
  const live = withMarker(paths, text);
  const current = await fs.readFile(paths.config, "utf8").catch(() => undefined);
  const status = await routerStatus(paths.stateDir);
  if (current === live && status.running && status.pid !== undefined && status.generation === generation) {
    return {
      action: "unchanged",
      pid: status.pid,
      configFile: paths.config,
      hash,
      checkMs: 0,
      reloadMs: 0,
      totalMs: performance.now() - t0,
    };
  }

  const candidate = `${paths.config}.candidate-${process.pid}-${Date.now()}`;
  await fs.writeFile(candidate, live, { mode: PRIVATE_FILE });
  const check = await checkConfig(candidate, paths.dir);
  if (!check.ok) {
    const rejected = `${paths.config}.rejected`;
    await fs.rename(candidate, rejected);
    const message = (check.error ?? check.output).split(candidate).join(rejected);
    throw new Error(
      `nginx -t rejected the new router configuration (kept as ${rejected}); ` +
        `${status.running ? "the previous configuration keeps serving" : "the router is not running"}:\n${message}`,
    );
  }
  try {
    await checkWorkerAccess(paths, text);
  } catch (err) {
    await fs.rm(candidate, { force: true });
    throw err;
  }

  const backup = `${paths.config}.previous`;
  if (current !== undefined) {
    await fs.copyFile(paths.config, backup);
    await fs.chmod(backup, PRIVATE_FILE);
  }
  await fs.rename(candidate, paths.config);
  const restorePrevious = async (): Promise<void> => {
    if (current !== undefined) await fs.rename(backup, paths.config);
    else await fs.rm(paths.config, { force: true });
  };

  const t1 = performance.now();
  if (status.running && status.pid !== undefined) {
    try {
      await reload(paths, status.pid, generation, timeoutMs);
    } catch (err) {
      await restorePrevious();
      throw new Error(
        `nginx refused to reload the router configuration; the previous configuration keeps serving:\n${(err as Error).message}`,
      );
    }
    await pruneGenerations(paths, generation);
    const t2 = performance.now();
    return {
      action: "reloaded",
      pid: status.pid,
      configFile: paths.config,
      hash,
      checkMs: check.ms,
      reloadMs: t2 - t1,
      totalMs: t2 - t0,
    };
  }
  let pid: number;
  try {
    pid = await start(paths, generation, timeoutMs);
  } catch (err) {
    await restorePrevious();
    throw err;
  }
  await pruneGenerations(paths, generation);
  const t2 = performance.now();
  return {
    action: "started",
    pid,
    configFile: paths.config,
    hash,
    checkMs: check.ms,
    reloadMs: t2 - t1,
    totalMs: t2 - t0,
  };
}

/** Renders the configuration for these options (workers as defaultWorkerUser()) and applies it. */
export async function applyRouter(
  options: RouterOptions,
  opts: ApplyOptions = {},
): Promise<ApplyResult & { tenantCount: number; hostCount: number; renderMs: number; configHash: string }> {
  const t0 = performance.now();
  const rendered = renderRouterConfig(withDefaultUser(options));
  const renderMs = performance.now() - t0;
  const result = await applyConfig(options.stateDir, rendered, opts);
  return {
    ...result,
    totalMs: result.totalMs + renderMs,
    renderMs,
    tenantCount: rendered.tenantCount,
    hostCount: rendered.hostCount,
    configHash: rendered.hash,
  };
}

/** The options with `workerUser` filled in from defaultWorkerUser() when not given. */
export function withDefaultUser(options: RouterOptions): RouterOptions {
  if (options.workerUser !== undefined) return options;
  const user = defaultWorkerUser();
  return user ? { ...options, workerUser: user } : options;
}

/** routerConfigHash of the live configuration file and pages, or undefined when there is none. */
export async function liveConfigHash(stateDir: string): Promise<string | undefined> {
  const paths = routerPaths(stateDir);
  const live = await fs.readFile(paths.config, "utf8").catch(() => undefined);
  if (live === undefined) return undefined;
  const text = stripMarker(live);
  const pages: Record<string, string> = {};
  for (const name of ["404.html", "503.html"]) {
    const page = await fs.readFile(path.join(paths.htmlDir, name), "utf8").catch(() => undefined);
    if (page !== undefined) pages[name] = page;
  }
  return routerConfigHash(text, pages);
}

function alive(pid: number): boolean {
  const p = procInfo(pid);
  return p !== undefined && p.state !== "Z";
}

async function waitGone(pids: number[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (pids.some(alive)) {
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
  return true;
}

/**
 * Stops the router: SIGQUIT (graceful: requests in flight finish), SIGTERM after `timeoutMs`,
 * SIGKILL to the master and its workers 3 s later. Idempotent.
 */
export async function stopRouter(stateDir: string, opts: { timeoutMs?: number } = {}): Promise<void> {
  const paths = routerPaths(stateDir);
  const status = await routerStatus(stateDir);
  if (status.running && status.pid !== undefined) {
    const pids = [status.pid, ...status.workers];
    const signal = (sig: NodeJS.Signals, targets: number[]): void => {
      for (const pid of targets) {
        try {
          process.kill(pid, sig);
        } catch {
          // already gone
        }
      }
    };
    signal("SIGQUIT", [status.pid]);
    if (!(await waitGone(pids, opts.timeoutMs ?? 10_000))) {
      signal("SIGTERM", [status.pid]);
      if (!(await waitGone(pids, 3_000))) {
        signal("SIGKILL", pids.filter(alive));
        await waitGone(pids, 3_000);
      }
    }
  }
  if (existsSync(paths.pidFile)) await fs.rm(paths.pidFile, { force: true });
}

/** Stops the router and removes `<stateDir>/router` (configuration, pages, logs, maintenance flags). */
export async function removeRouter(stateDir: string): Promise<void> {
  await stopRouter(stateDir);
  await fs.rm(routerPaths(stateDir).dir, { recursive: true, force: true });
}
