import { existsSync, promises as fs, realpathSync } from "node:fs";
import * as path from "node:path";
import { CommandError, mustRun, runCommand, type RunResult } from "../process/run";
import { renderTemplateFile } from "../templates/render";
import { adminDsn, quoteLiteral, withClient } from "./client";
import { clusterPaths, type ClusterPaths } from "./paths";
import { roleSecret } from "./scram";
import {
  OFFSITE_REPO_KEY,
  offsiteSecrets,
  offsiteUnsupportedReason,
  pgbackrestVersionOf,
  type OffsiteRepo,
} from "./offsite";
import {
  POSTGRES_USER,
  checkStanza,
  cipherPassFromConf,
  cleanChildEnv,
  pgbackrestBin,
  redact,
  renderPgBackRestConf,
  stanzaCreate,
  stanzaInfo,
  stanzaUsable,
  stopStanzaProcesses,
  type BackupType,
  type PgBackRestTarget,
} from "./pgbackrest";
import { backupsInRepo, repoUsable, runBackupCommand, type BackupCommandResult } from "./repositories";
import { PRIVATE_DIR, TRAVERSED_DIR, ensureDirMode } from "../fs/stateModes";

export interface LocalClusterSpec {
  /** Where the cluster lives (see lib/pg/paths.ts); resolved against the current directory. */
  stateDir: string;
  port: number;
  archiveTimeoutSeconds: number;
  superuserPassword: string;
  stanza: string;
  retentionFull: number;
  /** Enables pgBackRest repository encryption (aes-256-cbc). */
  encryptionPassphrase?: string;
  /** The offsite repository (pgBackRest's repo2), written by every backup and archive-push. */
  offsite?: OffsiteRepo;
}

export interface ClusterStatus {
  initialized: boolean;
  running: boolean;
  /** The port the running server listens on (absent when stopped). */
  port?: number;
  stanzaOk: boolean;
  backups: number;
}

export type ClusterLog = (msg: string) => void;

/** PostgreSQL 15 binaries (`$LOOMWORKS_PG_BIN` overrides). */
export const PG_BIN_DIR = process.env.LOOMWORKS_PG_BIN ?? "/usr/lib/postgresql/15/bin";
export const pgBin = (name: string): string => path.join(PG_BIN_DIR, name);

/** The address the local cluster listens on; the host in its DSNs. */
export const LOCAL_HOST = "127.0.0.1";
const START_TIMEOUT_SECONDS = 120;
const STOP_TIMEOUT_SECONDS = 60;

const SAFE_PATH = /^[A-Za-z0-9._/+-]+$/;
const SAFE_STANZA = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

// ---------------------------------------------------------------------------------------------
// postgresql.conf

export interface PostgresqlConfOptions {
  port: number;
  archiveTimeoutSeconds: number;
  stanza: string;
  /** Absolute path of pgbackrest.conf as seen by the server. */
  pgbackrestConfig: string;
  /** Socket directory (unix_socket_directories). */
  socketDir: string;
  /** log_directory (absolute, or relative to the data directory). */
  logDirectory: string;
  listenAddresses?: string;
  pgbackrestBin?: string;
  maxConnections?: number;
  sharedBuffers?: string;
  effectiveCacheSize?: string;
  workMem?: string;
  maintenanceWorkMem?: string;
  logMinDurationStatement?: string;
}

/** Renders templates/postgresql.conf.tmpl (the same file every target uses). Defaults suit a small host. */
export function renderPostgresqlConf(o: PostgresqlConfOptions): string {
  const values = {
    listen_addresses: o.listenAddresses ?? LOCAL_HOST,
    port: o.port,
    unix_socket_directories: o.socketDir,
    max_connections: o.maxConnections ?? 100,
    shared_buffers: o.sharedBuffers ?? "256MB",
    effective_cache_size: o.effectiveCacheSize ?? "768MB",
    work_mem: o.workMem ?? "8MB",
    maintenance_work_mem: o.maintenanceWorkMem ?? "64MB",
    pgbackrest_bin: o.pgbackrestBin ?? pgbackrestBin(),
    pgbackrest_config: o.pgbackrestConfig,
    stanza: o.stanza,
    archive_timeout: o.archiveTimeoutSeconds,
    log_directory: o.logDirectory,
    log_min_duration_statement: o.logMinDurationStatement ?? "2s",
  };
  for (const [key, value] of Object.entries(values)) {
    if (/['\\\r\n\0]/.test(String(value))) throw new Error(`postgresql.conf: unsafe character in ${key}`);
  }
  return renderTemplateFile("postgresql.conf.tmpl", values);
}

// ---------------------------------------------------------------------------------------------
// helpers

function validateSpec(spec: LocalClusterSpec): ClusterPaths {
  if (!spec.stateDir) throw new Error("LocalPostgres: stateDir is required");
  const paths = clusterPaths(spec.stateDir);
  if (!SAFE_PATH.test(paths.stateDir)) {
    throw new Error(
      `LocalPostgres: stateDir ${paths.stateDir} may only contain letters, digits and . _ / + -`,
    );
  }
  if (!Number.isInteger(spec.port) || spec.port < 1024 || spec.port > 65535) {
    throw new Error(`LocalPostgres: port must be an integer in 1024..65535 (got ${spec.port})`);
  }
  if (!Number.isInteger(spec.archiveTimeoutSeconds) || spec.archiveTimeoutSeconds < 0) {
    throw new Error("LocalPostgres: archiveTimeoutSeconds must be a non-negative integer (0 disables)");
  }
  if (!Number.isInteger(spec.retentionFull) || spec.retentionFull < 1 || spec.retentionFull > 9999) {
    throw new Error("LocalPostgres: retentionFull must be an integer in 1..9999");
  }
  if (!SAFE_STANZA.test(spec.stanza ?? "")) {
    throw new Error(
      `LocalPostgres: stanza must match ${SAFE_STANZA.source} (got ${JSON.stringify(spec.stanza)})`,
    );
  }
  if (!spec.superuserPassword || /[\r\n\0]/.test(spec.superuserPassword)) {
    throw new Error("LocalPostgres: superuserPassword must be a non-empty single line");
  }
  return paths;
}

function secretsOf(spec: LocalClusterSpec): string[] {
  return [spec.encryptionPassphrase ?? "", spec.superuserPassword, ...offsiteSecrets(spec.offsite)].filter(
    (s) => s.length > 0,
  );
}

/**
 * Refuses an offsite repository the pgbackrest here cannot use (sftp before 2.46), a `path`
 * repository whose mount point is missing (creating it would put the "offsite" backups on the local
 * disk whenever the mount is down), and one that is the first repository or inside it, or holds it,
 * under another name (a symlink): pgBackRest compares the two paths as strings only, and the same
 * files in two repositories break the archive.
 */
export function checkOffsiteRepo(offsite: OffsiteRepo | undefined, firstRepo?: string): void {
  if (!offsite) return;
  const reason = offsiteUnsupportedReason(offsite, pgbackrestVersionOf(pgbackrestBin()));
  if (reason) throw new Error(reason);
  if (offsite.type !== "path") return;
  const mountPoint = offsite.mountPoint ?? offsite.path;
  if (!existsSync(mountPoint)) {
    throw new Error(
      `backups.offsite.path ${mountPoint} does not exist: mount the offsite storage there first ` +
        "(it is never created, so that backups never land on the local disk while the mount is down)",
    );
  }
  if (firstRepo === undefined || !existsSync(firstRepo)) return;
  const offsiteReal = realpathSync(mountPoint);
  const firstReal = realpathSync(firstRepo);
  const within = (inner: string, outer: string) => inner === outer || inner.startsWith(`${outer}/`);
  if (within(offsiteReal, firstReal) || within(firstReal, offsiteReal)) {
    throw new Error(
      `backups.offsite.path ${mountPoint} is ${offsiteReal}, which is ${within(offsiteReal, firstReal) ? "inside" : "around"} ` +
        `the first repository ${firstReal}: an offsite repository must be other storage`,
    );
  }
}

/** Writes an SFTP private key given as a secret to the file pgbackrest.conf names (mode 0600, postgres). */
async function writeOffsiteKey(spec: LocalClusterSpec): Promise<void> {
  const o = spec.offsite;
  if (o?.type !== "sftp" || !o.privateKey) return;
  await writeIfChanged(
    o.privateKeyFile,
    o.privateKey.endsWith("\n") ? o.privateKey : `${o.privateKey}\n`,
    0o600,
  );
}

function pgbackrestTarget(spec: LocalClusterSpec, paths: ClusterPaths): PgBackRestTarget {
  return { config: paths.pgbackrestConf, stanza: spec.stanza, secrets: secretsOf(spec) };
}

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

let postgresIds: { uid: number; gid: number } | undefined;
async function postgresUser(): Promise<{ uid: number; gid: number }> {
  if (!postgresIds) {
    const uid = Number((await mustRun("id", ["-u", POSTGRES_USER])).stdout.trim());
    const gid = Number((await mustRun("id", ["-g", POSTGRES_USER])).stdout.trim());
    postgresIds = { uid, gid };
  }
  return postgresIds;
}

/** Runs a command as postgres with a clean environment and `/` as working directory. */
function runAsPostgres(file: string, args: string[], timeoutMs: number, input?: string): Promise<RunResult> {
  return runCommand(file, args, { asUser: POSTGRES_USER, cwd: "/", env: cleanChildEnv(), timeoutMs, input });
}

async function chownToPostgres(target: string): Promise<void> {
  if (!isRoot()) return;
  const { uid, gid } = await postgresUser();
  await fs.chown(target, uid, gid);
}

/** Creates (or fixes) a directory of the layout: mode, and owner postgres. */
async function ensureDir(dir: string, mode: number, ownedByPostgres: boolean): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode });
  await fs.chmod(dir, mode);
  if (ownedByPostgres) await chownToPostgres(dir);
}

/** Writes a file atomically (temp file + rename) unless it already has this content. Returns true when written. */
async function writeIfChanged(file: string, content: string, mode: number): Promise<boolean> {
  const current = await fs.readFile(file, "utf8").catch(() => undefined);
  if (current === content) {
    await fs.chmod(file, mode);
    await chownToPostgres(file);
    return false;
  }
  const tmp = `${file}.tmp-${process.pid}`;
  await fs.writeFile(tmp, content, { mode });
  await fs.chmod(tmp, mode);
  await chownToPostgres(tmp);
  await fs.rename(tmp, file);
  return true;
}

async function isInitialized(paths: ClusterPaths): Promise<boolean> {
  return (
    existsSync(path.join(paths.dataDir, "PG_VERSION")) &&
    existsSync(path.join(paths.dataDir, "global", "pg_control"))
  );
}

interface ServerState {
  running: boolean;
  port?: number;
}

async function serverState(paths: ClusterPaths): Promise<ServerState> {
  if (!existsSync(paths.dataDir)) return { running: false };
  const status = await runAsPostgres(pgBin("pg_ctl"), ["status", "-D", paths.dataDir], 30_000);
  if (status.code !== 0) return { running: false };
  const pid = await fs.readFile(path.join(paths.dataDir, "postmaster.pid"), "utf8").catch(() => "");
  const port = Number(pid.split("\n")[3]);
  return { running: true, port: Number.isInteger(port) && port > 0 ? port : undefined };
}

async function tail(file: string, lines: number): Promise<string> {
  const text = await fs.readFile(file, "utf8").catch(() => "");
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/** The last lines of the startup log and of the newest server log, for error messages. */
async function serverLogTail(paths: ClusterPaths, secrets: string[]): Promise<string> {
  const parts: string[] = [];
  const startup = await tail(paths.startupLog, 10);
  if (startup) parts.push(`${paths.startupLog}:\n${startup}`);
  const logs = await fs.readdir(paths.logDir).catch(() => [] as string[]);
  const withTimes = await Promise.all(
    logs
      .filter((f) => f.startsWith("postgresql-"))
      .map(async (f) => ({ f, t: (await fs.stat(path.join(paths.logDir, f))).mtimeMs })),
  );
  const newest = withTimes.sort((a, b) => a.t - b.t).at(-1);
  if (newest) {
    const file = path.join(paths.logDir, newest.f);
    parts.push(`${file}:\n${await tail(file, 15)}`);
  }
  return redact(parts.join("\n"), secrets);
}

/** Runs SQL through psql as the postgres OS user over the unix socket (peer authentication). */
async function psqlAsPostgres(paths: ClusterPaths, port: number, sql: string, timeoutMs = 60_000) {
  const args = ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", paths.socketDir, "-p", String(port)];
  return runAsPostgres(
    pgBin("psql"),
    [...args, "-U", "postgres", "-d", "postgres", "-f", "-"],
    timeoutMs,
    sql,
  );
}

async function mustPsql(paths: ClusterPaths, port: number, sql: string): Promise<string> {
  const result = await psqlAsPostgres(paths, port, sql);
  if (result.code !== 0) throw new CommandError(`psql -p ${port} (${sql.trim().split("\n")[0]})`, result);
  return result.stdout.trim();
}

// ---------------------------------------------------------------------------------------------
// lifecycle steps

async function ensureLayout(paths: ClusterPaths): Promise<void> {
  // Traversed, never listed or read, by postgres (and the router's workers): docs/operations/security.md.
  const created = await fs.mkdir(paths.stateDir, { recursive: true, mode: TRAVERSED_DIR });
  if (created) {
    // chmod the directories we just created (mkdir's mode is subject to the umask)
    for (let dir = paths.stateDir; ; dir = path.dirname(dir)) {
      await fs.chmod(dir, TRAVERSED_DIR);
      if (dir === created || dir === path.dirname(dir)) break;
    }
  } else {
    await fs.chmod(paths.stateDir, TRAVERSED_DIR);
  }
  if (isRoot()) {
    const probe = await runCommand("test", ["-x", paths.stateDir], { asUser: POSTGRES_USER, cwd: "/" });
    if (probe.code !== 0) {
      throw new Error(
        `the postgres user cannot reach ${paths.stateDir}: make each parent directory traversable ` +
          "(chmod o+x) or choose another state directory",
      );
    }
  }
  await ensureDir(paths.postgresDir, PRIVATE_DIR, true);
  await ensureDir(paths.socketDir, PRIVATE_DIR, true);
  await ensureDir(paths.logDir, PRIVATE_DIR, true);
  await ensureDir(paths.pgbackrestDir, PRIVATE_DIR, true);
  await ensureDir(paths.repoPath, PRIVATE_DIR, true);
  await ensureDir(paths.spoolPath, PRIVATE_DIR, true);
  await ensureDir(paths.pgbackrestLogPath, PRIVATE_DIR, true);
  await ensureDir(paths.lockPath, PRIVATE_DIR, true);
  await ensureDirMode(paths.filestoreDir, PRIVATE_DIR);
}

/** initdb into a scratch directory renamed into place, so a crash never leaves a half-made data dir. */
async function initdbIfMissing(
  spec: LocalClusterSpec,
  paths: ClusterPaths,
  log: ClusterLog,
): Promise<boolean> {
  if (await isInitialized(paths)) return false;
  if (existsSync(paths.dataDir)) {
    const entries = await fs.readdir(paths.dataDir);
    if (entries.length > 0) {
      throw new Error(`${paths.dataDir} exists but holds no initialized cluster; refusing to touch it`);
    }
    await fs.rmdir(paths.dataDir);
  }
  const scratch = `${paths.dataDir}.initdb`;
  const pwfile = path.join(paths.postgresDir, ".initdb-password");
  await fs.rm(scratch, { recursive: true, force: true });
  log(`initdb ${paths.dataDir} (data checksums, scram-sha-256)`);
  try {
    await writeIfChanged(pwfile, `${spec.superuserPassword}\n`, 0o600);
    const result = await runAsPostgres(
      pgBin("initdb"),
      [
        "-D",
        scratch,
        "--data-checksums",
        "--auth-host=scram-sha-256",
        "--auth-local=peer",
        "-U",
        "postgres",
        `--pwfile=${pwfile}`,
        "--encoding=UTF8",
        "--locale=C.UTF-8",
        "--no-instructions",
      ],
      180_000,
    );
    if (result.code !== 0) throw new CommandError(`initdb -D ${scratch}`, result);
  } finally {
    await fs.rm(pwfile, { force: true });
  }
  await fs.rename(scratch, paths.dataDir);
  return true;
}

/**
 * Moves the repository aside when its encryption no longer matches the spec (a repository's
 * cipher cannot change); a fresh stanza and full backup follow.
 */
async function retireRepoIfCipherChanged(spec: LocalClusterSpec, paths: ClusterPaths, log: ClusterLog) {
  const current = await fs.readFile(paths.pgbackrestConf, "utf8").catch(() => undefined);
  if (current === undefined) return;
  if (cipherPassFromConf(current) === (spec.encryptionPassphrase ?? "")) return;
  const entries = await fs.readdir(paths.repoPath).catch(() => [] as string[]);
  if (entries.length === 0) return;
  const retired = `${paths.repoPath}.retired-${new Date().toISOString().replace(/[:.]/g, "-")}`;
  log(`repository encryption changed: moving the old repository to ${retired} and starting a new one`);
  await fs.rename(paths.repoPath, retired);
  await ensureDir(paths.repoPath, 0o750, true);
  await fs.rm(path.join(paths.spoolPath, "archive"), { recursive: true, force: true });
}

async function writePgBackRestConf(spec: LocalClusterSpec, paths: ClusterPaths): Promise<void> {
  const pgbackrestConf = renderPgBackRestConf({
    repoPath: paths.repoPath,
    retentionFull: spec.retentionFull,
    spoolPath: paths.spoolPath,
    lockPath: paths.lockPath,
    logPath: paths.pgbackrestLogPath,
    stanza: spec.stanza,
    pgPath: paths.dataDir,
    pgPort: spec.port,
    pgSocketPath: paths.socketDir,
    encryptionPassphrase: spec.encryptionPassphrase || undefined,
    ...(spec.offsite ? { offsite: spec.offsite } : {}),
  });
  await writeOffsiteKey(spec);
  await writeIfChanged(paths.pgbackrestConf, pgbackrestConf, 0o600);
}

async function writeConfigs(spec: LocalClusterSpec, paths: ClusterPaths): Promise<boolean> {
  await writePgBackRestConf(spec, paths);
  const postgresqlConf = renderPostgresqlConf({
    port: spec.port,
    archiveTimeoutSeconds: spec.archiveTimeoutSeconds,
    stanza: spec.stanza,
    pgbackrestConfig: paths.pgbackrestConf,
    socketDir: paths.socketDir,
    logDirectory: paths.logDir,
  });
  const writes = [writeIfChanged(paths.postgresqlConf, postgresqlConf, 0o600)];
  // Client authentication lives in the data directory: written once initdb (or a restore) made it.
  if (existsSync(path.join(paths.dataDir, "PG_VERSION"))) {
    const hba = renderTemplateFile("pg_hba.conf.tmpl", { extraHostRules: "" });
    const ident = renderTemplateFile("pg_ident.conf.tmpl", {});
    writes.push(writeIfChanged(path.join(paths.dataDir, "pg_hba.conf"), hba, 0o600));
    writes.push(writeIfChanged(path.join(paths.dataDir, "pg_ident.conf"), ident, 0o600));
  }
  return (await Promise.all(writes)).some(Boolean);
}

async function pgCtlStart(paths: ClusterPaths, secrets: string[], restart: boolean): Promise<void> {
  const args = restart ? ["restart", "-D", paths.dataDir, "-m", "fast"] : ["start", "-D", paths.dataDir];
  const result = await runAsPostgres(
    pgBin("pg_ctl"),
    [...args, "-l", paths.startupLog, "-w", "-t", String(START_TIMEOUT_SECONDS), "-s"],
    (START_TIMEOUT_SECONDS + STOP_TIMEOUT_SECONDS + 30) * 1000,
  );
  if (result.code !== 0) {
    const logs = await serverLogTail(paths, secrets);
    throw new Error(
      `pg_ctl ${args[0]} failed (exit ${result.code}) for ${paths.dataDir}\n${(result.stderr || result.stdout).trim()}\n${logs}`,
    );
  }
}

/** Applies the written postgresql.conf to a running server: reload, or restart for restart-only settings. */
async function applyConfig(spec: LocalClusterSpec, paths: ClusterPaths, state: ServerState, log: ClusterLog) {
  const secrets = secretsOf(spec);
  if (state.port !== spec.port) {
    log(`restarting PostgreSQL: port ${state.port ?? "?"} -> ${spec.port}`);
    await pgCtlStart(paths, secrets, true);
    return;
  }
  const rows = await mustPsql(
    paths,
    spec.port,
    "SELECT name || '|' || coalesce(sourcefile, '') || ':' || coalesce(sourceline::text, '') || '|' || error " +
      "FROM pg_file_settings WHERE error IS NOT NULL;",
  );
  const problems = rows ? rows.split("\n") : [];
  const invalid = problems.filter((r) => !r.endsWith("|setting could not be applied"));
  if (invalid.length > 0) throw new Error(`postgresql.conf has errors: ${invalid.join("; ")}`);
  if (problems.length > 0) {
    const names = problems.map((r) => r.split("|")[0]).join(", ");
    log(`restarting PostgreSQL to apply ${names}`);
    await pgCtlStart(paths, secrets, true);
    return;
  }
  await mustPsql(paths, spec.port, "SELECT pg_reload_conf();");
}

async function ensureRunning(spec: LocalClusterSpec, paths: ClusterPaths, log: ClusterLog): Promise<void> {
  const state = await serverState(paths);
  if (state.running) {
    await applyConfig(spec, paths, state, log);
    return;
  }
  log(`starting PostgreSQL on ${LOCAL_HOST}:${spec.port}`);
  await pgCtlStart(paths, secretsOf(spec), false);
}

async function ensureSuperuserPassword(spec: LocalClusterSpec, paths: ClusterPaths, log: ClusterLog) {
  const dsn = adminDsn({
    host: LOCAL_HOST,
    port: spec.port,
    user: "postgres",
    password: spec.superuserPassword,
    database: "postgres",
  });
  const works = async (): Promise<boolean> => {
    try {
      await withClient(dsn, async (c) => c.query("SELECT 1"));
      return true;
    } catch (err) {
      if ((err as { code?: string }).code === "28P01") return false;
      throw new Error(
        `cannot connect to PostgreSQL on ${LOCAL_HOST}:${spec.port}: ${(err as Error).message}`,
      );
    }
  };
  if (await works()) return;
  log("updating the superuser password");
  // A verifier, so the clear-text password never reaches the server (or its logs).
  const secret = roleSecret(spec.superuserPassword);
  const sql =
    "SET log_statement = 'none';\nSET log_min_error_statement = 'panic';\n" +
    `ALTER ROLE postgres PASSWORD ${quoteLiteral(secret)};\n`;
  const result = await psqlAsPostgres(paths, spec.port, sql);
  if (result.code !== 0)
    throw new Error(`could not update the superuser password (psql exit ${result.code})`);
  if (!(await works())) throw new Error("the superuser password was updated but still does not authenticate");
}

async function ensureStanzaAndBackup(spec: LocalClusterSpec, paths: ClusterPaths, log: ClusterLog) {
  const target = pgbackrestTarget(spec, paths);
  const repos = spec.offsite ? [1, OFFSITE_REPO_KEY] : [1];
  let info = await stanzaInfo(target);
  // stanza-create is idempotent: it makes the stanza in every repository that lacks it (an offsite one just added).
  if (!stanzaUsable(info) || repos.some((r) => !repoUsable(info, r))) {
    log(`pgBackRest: stanza-create ${spec.stanza}`);
    await stanzaCreate(target);
  }
  log("pgBackRest: check (WAL archiving)");
  await checkStanza(target);
  info = await stanzaInfo(target);
  const empty = repos.filter(
    (r) => (repos.length > 1 ? backupsInRepo(info, r).length : info.backup.length) === 0,
  );
  if (empty.length > 0) {
    log(`pgBackRest: first full backup (${empty.map((r) => `repo${r}`).join(", ")})`);
    const { labels } = await runBackupCommand(target, "full", { repos: empty });
    log(`pgBackRest: full backup ${Object.values(labels).join(", ")} done`);
  }
}

// ---------------------------------------------------------------------------------------------
// public API

/** The first step of ensureCluster (lib/pg/ensureCluster.ts): the spec checked, the directory layout made. */
export async function ensureClusterLayout(spec: LocalClusterSpec): Promise<void> {
  const paths = validateSpec(spec);
  checkOffsiteRepo(spec.offsite, paths.repoPath);
  await ensureLayout(paths);
}

/**
 * The rest of ensureCluster once a lost data directory has been restored: initdb when missing,
 * both configuration files, running server (reloaded or restarted for changed settings),
 * superuser password, pgBackRest stanza and check, a first full backup when the repository has none.
 */
export async function ensureClusterStarted(spec: LocalClusterSpec, log: ClusterLog): Promise<void> {
  const paths = validateSpec(spec);
  const created = await initdbIfMissing(spec, paths, log);
  await retireRepoIfCipherChanged(spec, paths, log);
  await writeConfigs(spec, paths);
  await ensureRunning(spec, paths, log);
  if (!created) await ensureSuperuserPassword(spec, paths, log);
  await ensureStanzaAndBackup(spec, paths, log);
  log(`PostgreSQL ready on ${LOCAL_HOST}:${spec.port} (data ${paths.dataDir})`);
}

export async function clusterStatus(spec: LocalClusterSpec): Promise<ClusterStatus> {
  const paths = validateSpec(spec);
  const initialized = await isInitialized(paths);
  const state = initialized ? await serverState(paths) : { running: false };
  let stanzaOk = false;
  let backups = 0;
  if (existsSync(paths.pgbackrestConf)) {
    try {
      const info = await stanzaInfo(pgbackrestTarget(spec, paths));
      stanzaOk = stanzaUsable(info);
      backups = info.backup.length;
    } catch {
      stanzaOk = false;
    }
  }
  return { initialized, running: state.running, port: state.port, stanzaOk, backups };
}

/** Starts an initialized cluster (no-op when running). Use ensureCluster to also (re)write its configuration. */
export async function startCluster(spec: LocalClusterSpec): Promise<void> {
  const paths = validateSpec(spec);
  if (!(await isInitialized(paths))) throw new Error(`no PostgreSQL cluster in ${paths.dataDir}`);
  if ((await serverState(paths)).running) return;
  await pgCtlStart(paths, secretsOf(spec), false);
}

/** Fast shutdown (immediate if that does not finish in time); no error when already stopped or missing. */
export async function stopCluster(spec: LocalClusterSpec): Promise<void> {
  const paths = validateSpec(spec);
  if (!(await serverState(paths)).running) return;
  const stop = (mode: string) =>
    runAsPostgres(
      pgBin("pg_ctl"),
      ["stop", "-D", paths.dataDir, "-m", mode, "-w", "-t", String(STOP_TIMEOUT_SECONDS), "-s"],
      (STOP_TIMEOUT_SECONDS + 30) * 1000,
    );
  const fast = await stop("fast");
  if (fast.code === 0 || !(await serverState(paths)).running) return;
  const immediate = await stop("immediate");
  if (immediate.code !== 0 && (await serverState(paths)).running) {
    throw new CommandError(`pg_ctl stop -D ${paths.dataDir} -m immediate`, immediate);
  }
}

/** Stops the cluster and removes everything it owns: data, logs, repository, spool, configuration, filestores. */
export async function destroyCluster(spec: LocalClusterSpec): Promise<void> {
  const paths = validateSpec(spec);
  await stopCluster(spec);
  if (existsSync(paths.pgbackrestConf)) await stopStanzaProcesses(pgbackrestTarget(spec, paths));
  for (const dir of [paths.postgresDir, paths.pgbackrestDir, paths.filestoreDir]) {
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  }
  await fs.rmdir(paths.stateDir).catch(() => undefined); // only when empty
}

/** Takes a pgBackRest backup of the running cluster; returns its label (e.g. `20261126-101500F`). */
export async function runBackup(
  spec: LocalClusterSpec,
  type: BackupType,
  opts: { timeoutMs?: number } = {},
): Promise<BackupCommandResult> {
  const paths = validateSpec(spec);
  if (!["full", "diff", "incr"].includes(type)) throw new Error(`unknown backup type ${String(type)}`);
  if (!(await serverState(paths)).running)
    throw new Error(`cannot back up: PostgreSQL in ${paths.dataDir} is not running`);
  return runBackupCommand(pgbackrestTarget(spec, paths), type, opts);
}

/**
 * For disaster recovery (lib/pg/disaster.ts), before a data directory exists: the directory
 * layout and pgbackrest.conf (postgresql.conf lives in the data directory and is written later).
 */
export async function prepareRepositoryAccess(spec: LocalClusterSpec): Promise<ClusterPaths> {
  const paths = validateSpec(spec);
  await ensureLayout(paths);
  await writePgBackRestConf(spec, paths);
  return paths;
}

/** Rewrites pgbackrest.conf and postgresql.conf of an existing data directory (e.g. one just restored). */
export async function writeClusterConfigs(spec: LocalClusterSpec): Promise<void> {
  const paths = validateSpec(spec);
  await writeConfigs(spec, paths);
}

/** True when the data directory holds an initialized cluster (PG_VERSION and global/pg_control). */
export async function dataDirInitialized(spec: LocalClusterSpec): Promise<boolean> {
  return isInitialized(validateSpec(spec));
}

/** Paths and pgBackRest target of a spec, for modules that act on the local cluster (snapshots, restores). */
export function localClusterLayout(spec: LocalClusterSpec): {
  paths: ClusterPaths;
  pgbackrest: PgBackRestTarget;
} {
  const paths = validateSpec(spec);
  return { paths, pgbackrest: pgbackrestTarget(spec, paths) };
}

/** The spec fields of a larger object (e.g. a provider's inputs or outputs); an empty passphrase means none. */
export function localClusterSpec(o: LocalClusterSpec): LocalClusterSpec {
  const spec: LocalClusterSpec = {
    stateDir: o.stateDir,
    port: o.port,
    archiveTimeoutSeconds: o.archiveTimeoutSeconds,
    superuserPassword: o.superuserPassword,
    stanza: o.stanza,
    retentionFull: o.retentionFull,
  };
  if (o.encryptionPassphrase) spec.encryptionPassphrase = o.encryptionPassphrase;
  if (o.offsite) spec.offsite = o.offsite;
  return spec;
}

/** What the LocalPostgres resource records for a cluster that ensureCluster just brought up. */
export function runningClusterOutputs(spec: LocalClusterSpec, configHash?: string) {
  const paths = validateSpec(spec);
  return {
    ...spec,
    configHash,
    host: LOCAL_HOST,
    adminDsn: localAdminDsn(spec),
    running: true,
    dataDir: paths.dataDir,
    repoPath: paths.repoPath,
  };
}

/** The absolute state directory a spec's `stateDir` stands for. */
export function resolveStateDir(stateDir: string): string {
  return path.resolve(stateDir);
}

/** The superuser DSN of a local cluster (TCP, 127.0.0.1). */
export function localAdminDsn(
  spec: Pick<LocalClusterSpec, "port" | "superuserPassword">,
  database = "postgres",
): string {
  return adminDsn({
    host: LOCAL_HOST,
    port: spec.port,
    user: "postgres",
    password: spec.superuserPassword,
    database,
  });
}
