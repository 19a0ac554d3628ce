/**
 * The scratch instance of a restore: a selective restore of the cluster (only the tenant's and the
 * system databases' files: lib/restore/selective.ts, or `pgbackrest restore --db-include` as the
 * fallback) into `<stateDir>/restore/<id>/data`, started on a private unix socket (no TCP) until it has recovered
 * to the target and promoted, then stopped and removed.
 *
 * Layout of `<stateDir>/restore/<id>` (owned by postgres, mode 0700):
 *   data/   the restored data directory     run/   its socket directory
 *   log/    postgres.log (server output)    dump/  pg_dump -Fd of the tenant database
 *   schema/ its definitions alone (pre-data), when dumped apart
 *
 * Nothing here can touch the live cluster: archiving is off (pgBackRest `--archive-mode=off` and
 * `archive_mode = off`), no TCP listener, `archive-get` runs synchronously so it shares no spool
 * or lock with the live cluster's asynchronous `archive-push`.
 */
import { existsSync, promises as fs, readFileSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type { ClientConfig } from "pg";
import { pgBin } from "../pg/cluster";
import { PLATFORM_SESSION_OPTIONS, withClient } from "../pg/client";
import {
  POSTGRES_USER,
  cleanChildEnv,
  pgbackrestBin,
  runPgBackRest,
  type PgBackRestTarget,
} from "../pg/pgbackrest";
import { CommandError, mustRun, runCommand, type RunResult } from "../process/run";
import {
  FIRST_USER_OID,
  SelectiveRestoreUnsupported,
  selectiveRestore,
  type Decompress,
  type SelectiveRestoreParams,
  type SelectiveRestoreStats,
} from "./selective";
import { TRAVERSED_DIR, ensureDirMode } from "../fs/stateModes";

export interface ScratchInstance {
  dir: string;
  dataDir: string;
  runDir: string;
  logDir: string;
  logFile: string;
  dumpDir: string;
  /** The overlapped pipeline's schema-only dump (pre-data). */
  schemaDumpDir: string;
  port: number;
}

export function scratchLayout(dir: string, port: number): ScratchInstance {
  return {
    dir,
    dataDir: path.join(dir, "data"),
    runDir: path.join(dir, "run"),
    logDir: path.join(dir, "log"),
    logFile: path.join(dir, "log", "postgres.log"),
    dumpDir: path.join(dir, "dump"),
    schemaDumpDir: path.join(dir, "schema"),
    port,
  };
}

/** A TCP port nobody listens on right now (the scratch instance listens on a unix socket only). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen({ port: 0, host: "127.0.0.1", exclusive: true }, () => {
      const addr = server.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

let postgresIds: Promise<{ uid: number; gid: number }> | undefined;

/** The postgres user's uid and gid (looked up once: the selective restore chowns many files). */
function postgresUser(): Promise<{ uid: number; gid: number }> {
  postgresIds ??= (async () => ({
    uid: Number((await mustRun("id", ["-u", POSTGRES_USER])).stdout.trim()),
    gid: Number((await mustRun("id", ["-g", POSTGRES_USER])).stdout.trim()),
  }))();
  postgresIds.catch(() => (postgresIds = undefined));
  return postgresIds;
}

async function chownPostgres(target: string): Promise<void> {
  if (!isRoot()) return;
  const { uid, gid } = await postgresUser();
  await fs.chown(target, uid, gid);
}

function asPostgres(file: string, args: string[], timeoutMs: number): Promise<RunResult> {
  // Client programs among them (psql, pg_dump, pg_amcheck) open platform sessions.
  const env = cleanChildEnv({ PGOPTIONS: PLATFORM_SESSION_OPTIONS });
  return runCommand(file, args, { asUser: POSTGRES_USER, cwd: "/", env, timeoutMs });
}

/** Creates `<stateDir>/restore/<id>` (empty) with its log and run directories, owned by postgres. */
export async function prepareScratch(s: ScratchInstance): Promise<void> {
  const parent = path.dirname(s.dir);
  await ensureDirMode(parent, TRAVERSED_DIR); // postgres passes through to its scratch
  await fs.rm(s.dir, { recursive: true, force: true });
  await fs.mkdir(s.dir, { mode: 0o700 });
  await chownPostgres(s.dir);
  for (const d of [s.runDir, s.logDir]) {
    await fs.mkdir(d, { mode: 0o700 });
    await chownPostgres(d);
  }
}

export interface BackupDatabase {
  name: string;
  oid: number;
}

/** The databases recorded in a backup's manifest (`info --set=<label>`: database-ref). */
export async function backupDatabases(
  pgbr: PgBackRestTarget,
  label: string,
  repo?: number,
): Promise<BackupDatabase[]> {
  const result = await runPgBackRest(pgbr, "info", [...repoArgs(repo), "--output=json", `--set=${label}`], {
    timeoutMs: 2 * 60_000,
  });
  const parsed = JSON.parse(result.stdout) as Array<{
    name: string;
    backup?: Array<{ label: string; "database-ref"?: BackupDatabase[] }>;
  }>;
  const stanza = parsed.find((x) => x.name === pgbr.stanza);
  const backup = stanza?.backup?.find((b) => b.label === label);
  if (!backup) throw new Error(`pgbackrest info: backup ${label} not found in stanza ${pgbr.stanza}`);
  return backup["database-ref"] ?? [];
}

/** `--repo=<N>` when the restore names a repository (an offsite one is configured). */
const repoArgs = (repo: number | undefined): string[] => (repo === undefined ? [] : [`--repo=${repo}`]);

/** PostgreSQL's first OID for user objects: databases below it (postgres, template0/1) are always restored. */
const FIRST_NORMAL_OID = FIRST_USER_OID;

/**
 * The `--db-include`/`--db-exclude` options restoring only `database` (plus the system databases),
 * and the database under its `formerNames` (a spare it was claimed from: lib/tenant/spares.ts).
 * When the backup lists none of them (the database was created, or swapped in by an earlier
 * restore, after the backup), every other user database is excluded instead: the tenant's files
 * then come entirely from WAL replay (tenant databases and spares are created with STRATEGY WAL_LOG).
 */
export function selectiveRestoreOptions(
  database: string,
  inBackup: readonly BackupDatabase[],
  formerNames: readonly string[] = [],
): string[] {
  const listed = [database, ...formerNames].filter((n) => inBackup.some((d) => d.name === n));
  if (listed.length > 0) return listed.map((n) => `--db-include=${n}`);
  return inBackup.filter((d) => d.oid >= FIRST_NORMAL_OID).map((d) => `--db-exclude=${d.name}`);
}

/**
 * How the scratch data directory is restored:
 *   selective   only the files the scratch instance needs, straight from the repository
 *               (lib/restore/selective.ts): costs what the tenant weighs;
 *   pgbackrest  `pgbackrest restore --db-include` (writes every other database as zeroed files:
 *               costs what the cluster weighs). The reference, and the fallback.
 */
export type ScratchMethod = "selective" | "pgbackrest";

/**
 * `LOOMWORKS_RESTORE_METHOD`: `pgbackrest` (always pgBackRest), `selective` (never fall back:
 * for tests), else `auto` (selective, falling back to pgBackRest when it cannot be used).
 */
export function scratchMethodSetting(env: NodeJS.ProcessEnv = process.env): ScratchMethod | "auto" {
  const v = (env.LOOMWORKS_RESTORE_METHOD ?? "").trim().toLowerCase();
  if (v === "pgbackrest" || v === "selective") return v;
  if (v === "" || v === "auto") return "auto";
  throw new Error(`LOOMWORKS_RESTORE_METHOD must be auto, selective or pgbackrest (got "${v}")`);
}

export interface ScratchRestoreOptions {
  database: string;
  /** Names the database had in earlier backups (spares it was claimed from); restored too when listed. */
  formerNames?: readonly string[];
  backupLabel: string;
  type: "lsn" | "time";
  value: string;
  exclusive: boolean;
  /** The repository holding `backupLabel` (set when an offsite repository is configured). */
  repo?: number;
  timeoutMs?: number;
  /** Default: {@link scratchMethodSetting}. */
  method?: ScratchMethod | "auto";
}

export interface ScratchRestoreResult {
  /** pgBackRest's options for the same selection (`--db-include=<db>` or the `--db-exclude`s). */
  selection: string[];
  /** The method that restored the data directory. */
  method: ScratchMethod;
  /** Why the selective method was not used (when it was wanted). */
  fallbackReason?: string;
  /** Figures of the selective method. */
  selective?: SelectiveRestoreStats;
}

/** `pgbackrest restore` of the backup set into the scratch data directory, only `database` included. */
export async function restoreWithPgBackRest(
  s: ScratchInstance,
  pgbr: PgBackRestTarget,
  o: ScratchRestoreOptions,
): Promise<{ selection: string[] }> {
  const selection = selectiveRestoreOptions(
    o.database,
    await backupDatabases(pgbr, o.backupLabel, o.repo),
    o.formerNames,
  );
  await runPgBackRest(
    pgbr,
    "restore",
    [
      ...repoArgs(o.repo),
      `--pg1-path=${s.dataDir}`,
      `--set=${o.backupLabel}`,
      ...selection,
      `--type=${o.type}`,
      `--target=${o.value}`,
      ...(o.exclusive ? ["--target-exclusive"] : []),
      "--target-action=promote",
      "--archive-mode=off",
    ],
    { timeoutMs: o.timeoutMs ?? 60 * 60_000 },
  );
  return { selection };
}

/** The current value of a pgBackRest option for the stanza (`pgbackrest help restore <option>`). */
async function pgbackrestOption(pgbr: PgBackRestTarget, option: string): Promise<string | undefined> {
  const result = await runCommand(
    pgbackrestBin(),
    [`--config=${pgbr.config}`, `--stanza=${pgbr.stanza}`, "help", "restore", option],
    { asUser: POSTGRES_USER, cwd: "/", env: cleanChildEnv(), timeoutMs: 60_000 },
  );
  if (result.code !== 0) {
    throw new SelectiveRestoreUnsupported(`pgbackrest help restore ${option} exited ${result.code}`);
  }
  const lines = result.stdout.split("\n");
  const current = lines.find((l) => l.startsWith("current: "));
  const fallback = lines.find((l) => l.startsWith("default: "));
  return (current ?? fallback)?.replace(/^(current|default): /, "").trim();
}

/** An option's value in a pgbackrest.conf (`key=value` lines; the last one wins, as in pgBackRest). */
export function confOption(conf: string, key: string): string | undefined {
  const escaped = key.replace(/[-]/g, "\\-");
  return [...conf.matchAll(new RegExp(`^${escaped}=(.*)$`, "gm"))].at(-1)?.[1].trim();
}

/** Where repository `repo` is, and whether the selective method can read it (posix, not encrypted). */
export async function plainRepositoryPath(pgbr: PgBackRestTarget, repo = 1): Promise<string> {
  // `pgbackrest help` reports repo1's value for every indexed repo option: read another repository's from the file.
  const read =
    repo === 1
      ? (o: string) => pgbackrestOption(pgbr, `repo1-${o}`)
      : async (o: string) => confOption(await fs.readFile(pgbr.config, "utf8"), `repo${repo}-${o}`);
  const [type, cipher, repoPath] = await Promise.all(["type", "cipher-type", "path"].map(read));
  if (cipher && cipher !== "none") {
    throw new SelectiveRestoreUnsupported(`the repository is encrypted (repo${repo}-cipher-type=${cipher})`);
  }
  if ((type ?? "posix") !== "posix") {
    throw new SelectiveRestoreUnsupported(
      `the repository is not a local file system (repo${repo}-type=${type})`,
    );
  }
  if (!repoPath || !path.isAbsolute(repoPath)) {
    throw new SelectiveRestoreUnsupported(`no absolute repo${repo}-path (${repoPath ?? "none"})`);
  }
  return repoPath;
}

/** The zstd executable: `$LOOMWORKS_ZSTD`, else `zstd` on PATH. */
const zstdBin = (): string => process.env.LOOMWORKS_ZSTD || "zstd";

/** One `zstd -d` of many files of one backup directory into the data directory, as postgres. */
function zstdDecompress(timeoutMs: number): Decompress {
  return async (cwd, files, dataDir) => {
    const args = ["-d", "-q", "--output-dir-mirror", dataDir, "--", ...files];
    const result = await runCommand(zstdBin(), args, {
      asUser: POSTGRES_USER,
      cwd,
      env: cleanChildEnv(),
      timeoutMs,
    });
    if (result.code !== 0) {
      throw new CommandError(
        `zstd -d -q --output-dir-mirror ${dataDir} -- (${files.length} files of ${cwd}, first ${files[0]})`,
        result,
      );
    }
  };
}

/** The selective method (lib/restore/selective.ts) into the scratch data directory. */
export async function restoreSelectively(
  s: ScratchInstance,
  pgbr: PgBackRestTarget,
  o: ScratchRestoreOptions,
  extra: Partial<Pick<SelectiveRestoreParams, "verify" | "parallel" | "emptyExcludedDirectories">> = {},
): Promise<SelectiveRestoreStats> {
  const repoPath = await plainRepositoryPath(pgbr, o.repo);
  return selectiveRestore({
    dataDir: s.dataDir,
    repoPath,
    stanza: pgbr.stanza,
    label: o.backupLabel,
    database: o.database,
    ...(o.formerNames ? { formerNames: o.formerNames } : {}),
    target: { type: o.type, value: o.value, exclusive: o.exclusive },
    restoreCommand: scratchRestoreCommand(s, pgbr),
    chown: chownPostgres,
    decompress: zstdDecompress(o.timeoutMs ?? 60 * 60_000),
    ...extra,
  });
}

/**
 * Restores the scratch data directory for `o.database` from the backup set: the selective method,
 * falling back to `pgbackrest restore --db-include` when it cannot be used (encrypted or remote
 * repository, manifest unreadable, a needed file missing, any failure while copying) — or only one
 * of them, by `o.method` / `LOOMWORKS_RESTORE_METHOD`.
 */
export async function pgbackrestRestore(
  s: ScratchInstance,
  pgbr: PgBackRestTarget,
  o: ScratchRestoreOptions,
): Promise<ScratchRestoreResult> {
  const wanted = o.method ?? scratchMethodSetting();
  if (wanted === "pgbackrest") {
    return { ...(await restoreWithPgBackRest(s, pgbr, o)), method: "pgbackrest" };
  }
  let fallbackReason: string;
  try {
    const stats = await restoreSelectively(s, pgbr, o);
    return {
      selection: selectiveRestoreOptions(o.database, stats.databases, o.formerNames),
      method: "selective",
      selective: stats,
    };
  } catch (err) {
    if (wanted === "selective") throw err;
    fallbackReason = (err as Error).message.split("\n")[0];
  }
  await stopScratch(s);
  await fs.rm(s.dataDir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  return { ...(await restoreWithPgBackRest(s, pgbr, o)), method: "pgbackrest", fallbackReason };
}

/** The scratch's restore_command: a synchronous archive-get (no spool or lock shared with the live cluster). */
export function scratchRestoreCommand(s: ScratchInstance, pgbr: PgBackRestTarget): string {
  return (
    `${pgbackrestBin()} --config=${pgbr.config} --stanza=${pgbr.stanza} --pg1-path=${s.dataDir} ` +
    `--no-archive-async archive-get %f "%p"`
  );
}

const confLiteral = (v: string): string => {
  if (/['\\\r\n\0]/.test(v)) throw new Error(`unsafe character in a scratch setting: ${v}`);
  return `'${v}'`;
};

/** The settings appended to the scratch's postgresql.auto.conf (after pgBackRest's recovery settings). */
export function scratchSettings(s: ScratchInstance, pgbr: PgBackRestTarget): string {
  const restoreCommand = scratchRestoreCommand(s, pgbr);
  const settings: Array<[string, string]> = [
    ["port", String(s.port)],
    ["listen_addresses", confLiteral("")],
    ["unix_socket_directories", confLiteral(s.runDir)],
    ["unix_socket_permissions", "0700"],
    ["restore_command", confLiteral(restoreCommand)],
    // The databases left out are zeroes (pgBackRest) or absent (selective): WAL touching them must
    // not stop replay (references to missing pages are tolerated, missing relations are created).
    ["ignore_invalid_pages", "on"],
    ["archive_mode", "off"],
    ["hot_standby", "off"],
    ["max_connections", "20"],
    ["max_wal_senders", "0"],
    ["max_replication_slots", "0"],
    ["shared_buffers", "128MB"],
    ["work_mem", "4MB"],
    ["maintenance_work_mem", "64MB"],
    // A scratch copy is thrown away after a crash: no need to make it durable.
    ["fsync", "off"],
    ["synchronous_commit", "off"],
    ["full_page_writes", "off"],
    ["autovacuum", "off"],
    ["jit", "off"],
    ["shared_preload_libraries", confLiteral("")],
    ["logging_collector", "off"],
    ["log_destination", confLiteral("stderr")],
    ["log_min_duration_statement", "-1"],
    ["log_checkpoints", "off"],
    ["log_line_prefix", confLiteral("%m [%p] ")],
  ];
  return (
    "\n# Loomworks Hosting: scratch instance of a point-in-time restore (appended after pgBackRest's settings)\n" +
    settings.map(([k, v]) => `${k} = ${v}`).join("\n") +
    "\n"
  );
}

/** Appends the scratch settings and replaces pg_hba.conf: local socket only (the directory is 0700). */
export async function configureScratch(s: ScratchInstance, pgbr: PgBackRestTarget): Promise<void> {
  await fs.appendFile(path.join(s.dataDir, "postgresql.auto.conf"), scratchSettings(s, pgbr));
  const hba = path.join(s.dataDir, "pg_hba.conf");
  await fs.writeFile(
    hba,
    "# scratch instance of a restore: its socket directory is private\nlocal all all trust\n",
    {
      mode: 0o600,
    },
  );
  await chownPostgres(hba);
}

async function tail(file: string, lines: number): Promise<string> {
  const text = await fs.readFile(file, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * Starts the scratch instance and waits (bounded) until recovery reached the target and the server
 * promoted. A recovery that ends before the target (WAL missing) fails with the tail of its log.
 * (With hot_standby off, `pg_ctl -w` may return while recovery still runs; the server refuses
 * connections until it has promoted, which is what we wait for.)
 */
export async function startScratch(s: ScratchInstance, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const seconds = Math.max(10, Math.ceil(timeoutMs / 1000));
  const failure = async (what: string, detail = ""): Promise<Error> => {
    const log = await tail(s.logFile, 20);
    const reason = /recovery ended before configured recovery target was reached/.test(log)
      ? "recovery ended before the restore target was reached (is the WAL up to the target archived?)"
      : what;
    return new Error(`${reason}${detail ? `\n${detail}` : ""}\n${s.logFile} (last lines):\n${log}`);
  };
  const result = await asPostgres(
    pgBin("pg_ctl"),
    ["start", "-D", s.dataDir, "-l", s.logFile, "-w", "-t", String(seconds), "-s"],
    (seconds + 30) * 1000,
  );
  if (result.code !== 0) {
    throw await failure(
      "the scratch instance did not start",
      `pg_ctl: ${(result.stderr || result.stdout).trim()}`,
    );
  }
  for (;;) {
    try {
      const inRecovery = await withClient(
        { ...scratchClientConfig(s, "postgres"), connectionTimeoutMillis: 5000 },
        (c) => c.query<{ r: boolean }>("SELECT pg_is_in_recovery() AS r"),
      );
      if (!inRecovery.rows[0].r) return;
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      // 57P03: starting up / recovering; ENOENT/ECONNREFUSED: no socket yet or gone.
      if (!["57P03", "ENOENT", "ECONNREFUSED"].includes(code)) throw err;
    }
    if (!postmasterAlive(s)) throw await failure("the scratch instance stopped during recovery");
    if (Date.now() > deadline) {
      throw await failure(`the scratch instance did not finish recovery within ${seconds} s`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function postmasterAlive(s: ScratchInstance): boolean {
  let pid = 0;
  try {
    pid = Number(readFileSync(path.join(s.dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    return false;
  }
  return Number.isInteger(pid) && pid > 0 && alive(pid) && readCmdline(String(pid)).includes(s.dataDir);
}

/** Connection settings for the scratch instance (unix socket, trust). */
export function scratchClientConfig(s: ScratchInstance, database: string): ClientConfig {
  return { host: s.runDir, port: s.port, user: "postgres", database };
}

function readCmdline(pid: string): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const deadline = Date.now() + ms;
  let left = pids.filter(alive);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = left.filter(alive);
  }
  return left;
}

/** Processes whose command line mentions the scratch directory (pgBackRest, pg_dump, pg_restore, postgres...). */
export async function scratchProcesses(dir: string): Promise<number[]> {
  const needle = dir.endsWith("/") ? dir : `${dir}/`;
  const entries = await fs.readdir("/proc").catch(() => [] as string[]);
  return entries
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .filter((p) => {
      const cmd = readCmdline(p);
      return cmd.includes(needle) || cmd.endsWith(` ${dir}`);
    })
    .map(Number);
}

/**
 * Stops the scratch instance and everything working on its directory: `pg_ctl stop -m immediate`,
 * else SIGQUIT/SIGKILL to the postmaster from its pid file (verified against its command line),
 * then SIGKILL to any other process naming the directory. No error when nothing runs.
 */
export async function stopScratch(s: ScratchInstance): Promise<void> {
  await stopScratchServer(s);
  const others = await scratchProcesses(s.dir);
  for (const p of others) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // gone already
    }
  }
  const left = await waitGone(others, 10_000);
  if (left.length > 0) throw new Error(`processes still working in ${s.dir}: ${left.join(", ")}`);
}

/**
 * Stops the scratch's PostgreSQL only (`pg_ctl stop -m immediate`, else signals to the postmaster
 * of its pid file): a pg_restore still reading the dump in the scratch directory keeps running.
 */
export async function stopScratchServer(s: ScratchInstance): Promise<void> {
  const pidFile = path.join(s.dataDir, "postmaster.pid");
  if (existsSync(pidFile)) {
    const stopped = await asPostgres(
      pgBin("pg_ctl"),
      ["stop", "-D", s.dataDir, "-m", "immediate", "-w", "-t", "20", "-s"],
      40_000,
    ).catch(() => undefined);
    const pid = Number((await fs.readFile(pidFile, "utf8").catch(() => "")).split("\n")[0]);
    if ((!stopped || stopped.code !== 0) && Number.isInteger(pid) && pid > 0 && alive(pid)) {
      if (readCmdline(String(pid)).includes(s.dataDir)) {
        process.kill(pid, "SIGQUIT");
        const left = await waitGone([pid], 5_000);
        for (const p of left) process.kill(p, "SIGKILL");
        await waitGone(left, 5_000);
      }
    }
  }
}

/** Stops the scratch instance and removes its directory (and `<stateDir>/restore` when empty). */
export async function removeScratch(s: ScratchInstance): Promise<void> {
  await stopScratch(s);
  await fs.rm(s.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  await fs.rmdir(path.dirname(s.dir)).catch(() => undefined);
}

/**
 * `pg_dump -Fd -j <jobs>` of the scratch's tenant database into `<scratch>/dump` (as postgres), or
 * into `dir` and only `sections` (the overlapped pipeline dumps the definitions apart, to load them
 * while the rows are still being dumped: the scratch is never written meanwhile, so both agree).
 */
export async function dumpScratchDatabase(
  s: ScratchInstance,
  database: string,
  jobs: number,
  part: { dir?: string; sections?: Array<"pre-data" | "data" | "post-data"> } = {},
): Promise<void> {
  const dir = part.dir ?? s.dumpDir;
  await fs.rm(dir, { recursive: true, force: true });
  const args = [
    "-Fd",
    "-j",
    String(jobs),
    "--no-sync",
    "--no-publications",
    "--no-subscriptions",
    ...(part.sections ?? []).map((x) => `--section=${x}`),
    "-f",
    dir,
    ...scratchConnectionArgs(s),
    "-d",
    database,
  ];
  const result = await asPostgres(pgBin("pg_dump"), args, 60 * 60_000);
  if (result.code !== 0) throw new CommandError(`pg_dump ${args.join(" ")}`, result);
}

/** libpq client flags reaching the scratch instance: its private socket, as postgres. */
function scratchConnectionArgs(s: ScratchInstance): string[] {
  return ["-h", s.runDir, "-p", String(s.port), "-U", "postgres"];
}

export interface AmcheckResult {
  ok: boolean;
  output: string;
}

/**
 * `pg_amcheck` (heap and B-tree checks) of the scratch's tenant database. The amcheck extension is
 * installed for the check and dropped again when it was not there before, so the dump does not
 * carry it into the tenant.
 */
export async function amcheckScratch(
  s: ScratchInstance,
  database: string,
  hadExtension: boolean,
  jobs: number,
): Promise<AmcheckResult> {
  const args = [...scratchConnectionArgs(s), "--install-missing", "-j", String(jobs), database];
  const result = await asPostgres(pgBin("pg_amcheck"), args, 60 * 60_000);
  if (!hadExtension) {
    const drop = await asPostgres(
      pgBin("psql"),
      ["-X", "-q", ...scratchConnectionArgs(s), "-d", database, "-c", "DROP EXTENSION IF EXISTS amcheck"],
      60_000,
    );
    if (drop.code !== 0) throw new CommandError("psql -c 'DROP EXTENSION amcheck' (scratch)", drop);
  }
  return { ok: result.code === 0, output: (result.stdout + result.stderr).trim() };
}
