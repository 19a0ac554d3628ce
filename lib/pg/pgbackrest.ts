import { accessSync, constants as fsConstants, promises as fs } from "node:fs";
import * as path from "node:path";
import { CommandError, runCommand, type RunResult } from "../process/run";
import { renderTemplateFile } from "../templates/render";
import { renderOffsiteRepo, type OffsiteRepo } from "./offsite";

/** The system user pgBackRest (and PostgreSQL) runs as. */
export const POSTGRES_USER = "postgres";

export type BackupType = "full" | "diff" | "incr";

/** Which pgBackRest configuration and stanza a command acts on. */
export interface PgBackRestTarget {
  /** Absolute path of the pgbackrest.conf to use (`--config`). */
  config: string;
  stanza: string;
  /** Values (passphrases, passwords) that must never appear in an error message. */
  secrets?: readonly string[];
}

export interface PgBackRestBackup {
  label: string;
  type: BackupType;
  prior: string | null;
  error?: boolean;
  timestamp: { start: number; stop: number };
  archive: { start: string | null; stop: string | null };
  lsn?: { start: string; stop: string };
  info?: { size: number; delta: number; repository: { size: number; delta: number } };
  database?: { id: number; "repo-key": number };
  reference?: string[] | null;
}

/** One repository's state in `info` (per repository: 0 ok, 1 missing stanza path, 2 no valid backups, ...). */
export interface PgBackRestRepoStatus {
  key: number;
  cipher: string;
  status: { code: number; message: string };
}

export interface PgBackRestStanzaInfo {
  name: string;
  /**
   * 0 ok, 1 missing stanza path, 2 no valid backups, 3 missing stanza data, 4 different across
   * repositories (one of several is not ok: see `repo`), 99 other.
   */
  status: { code: number; message: string; lock?: { backup?: { held: boolean } } };
  /** Each configured repository's own status. */
  repo?: PgBackRestRepoStatus[];
  cipher: string;
  db: { id: number; "system-id": number; version: string }[];
  backup: PgBackRestBackup[];
  archive: {
    id: string;
    min: string | null;
    max: string | null;
    database: { id: number; "repo-key"?: number };
  }[];
}

/** The pgbackrest executable: `$LOOMWORKS_PGBACKREST`, else the first `pgbackrest` on PATH. */
export function pgbackrestBin(): string {
  const fromEnv = process.env.LOOMWORKS_PGBACKREST;
  if (fromEnv) return fromEnv;
  const dirs = (process.env.PATH ?? "").split(path.delimiter).filter(Boolean);
  for (const dir of [...dirs, "/usr/bin", "/usr/local/bin"]) {
    const candidate = path.join(dir, "pgbackrest");
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      /* next */
    }
  }
  return "pgbackrest";
}

/**
 * The environment for commands run as postgres: the caller's, without libpq (`PG*`) and
 * pgBackRest (`PGBACKREST_*`) variables that would override the generated configuration.
 */
export function cleanChildEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (key.startsWith("PG")) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** Replaces every secret in `text` with `<redacted>`. */
export function redact(text: string, secrets: readonly string[] | undefined): string {
  let out = text;
  for (const secret of secrets ?? []) {
    if (secret) out = out.split(secret).join("<redacted>");
  }
  return out;
}

export interface PgBackRestRunOptions {
  /** Kill the command after this long (default 10 minutes). */
  timeoutMs?: number;
  /** Throw unless the exit code is 0 (default true). */
  check?: boolean;
}

/**
 * Runs `pgbackrest --config=<config> --stanza=<stanza> <args...> <command>` as postgres. Failures
 * throw a CommandError whose message and output have every secret redacted.
 */
export async function runPgBackRest(
  target: PgBackRestTarget,
  command: string,
  args: string[] = [],
  opts: PgBackRestRunOptions = {},
): Promise<RunResult> {
  const argv = [`--config=${target.config}`, `--stanza=${target.stanza}`, ...args, command];
  const raw = await runCommand(pgbackrestBin(), argv, {
    asUser: POSTGRES_USER,
    cwd: "/",
    env: cleanChildEnv(),
    timeoutMs: opts.timeoutMs ?? 10 * 60_000,
  });
  const result: RunResult = {
    code: raw.code,
    stdout: redact(raw.stdout, target.secrets),
    stderr: redact(raw.stderr, target.secrets),
  };
  if (opts.check !== false && result.code !== 0) {
    throw new CommandError(redact(["pgbackrest", ...argv].join(" "), target.secrets), result);
  }
  return result;
}

/** pgBackRest's exit code when another process (e.g. an asynchronous archive-push) holds the lock. */
export const LOCK_ERROR_CODE = 50;

/**
 * `stanza-create`: idempotent (succeeds when the stanza already exists and matches the cluster).
 * Retries, for up to `lockWaitMs`, while an archive-push holds the stanza's archive lock.
 */
export async function stanzaCreate(target: PgBackRestTarget, lockWaitMs = 60_000): Promise<void> {
  const deadline = Date.now() + lockWaitMs;
  for (;;) {
    const result = await runPgBackRest(target, "stanza-create", [], { timeoutMs: 5 * 60_000, check: false });
    if (result.code === 0) return;
    if (result.code !== LOCK_ERROR_CODE || Date.now() > deadline) {
      throw new CommandError(
        `pgbackrest --config=${target.config} --stanza=${target.stanza} stanza-create`,
        result,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** `check`: configuration, connectivity, and that a freshly switched WAL segment gets archived. */
export async function checkStanza(target: PgBackRestTarget): Promise<void> {
  await runPgBackRest(target, "check", [], { timeoutMs: 3 * 60_000 });
}

/** `info --output=json` for the stanza (a stanza that does not exist yet comes back with status code 1). */
export async function stanzaInfo(target: PgBackRestTarget): Promise<PgBackRestStanzaInfo> {
  const result = await runPgBackRest(target, "info", ["--output=json"], { timeoutMs: 2 * 60_000 });
  let parsed: unknown;
  try {
    parsed = JSON.parse(result.stdout);
  } catch {
    throw new Error(`pgbackrest info for stanza ${target.stanza}: output is not JSON`);
  }
  const stanzas = Array.isArray(parsed) ? (parsed as PgBackRestStanzaInfo[]) : [];
  const found = stanzas.find((s) => s.name === target.stanza);
  if (!found) throw new Error(`pgbackrest info: stanza ${target.stanza} missing from the output`);
  found.backup ??= [];
  found.archive ??= [];
  found.db ??= [];
  return found;
}

/** True when the stanza exists and is readable (status "ok" or "no valid backups"). */
export function stanzaUsable(info: PgBackRestStanzaInfo): boolean {
  return info.status.code === 0 || info.status.code === 2;
}

/** The newest backup in `info` (by stop time), if any. */
export function latestBackup(info: PgBackRestStanzaInfo, type?: BackupType): PgBackRestBackup | undefined {
  const list = info.backup.filter((b) => !type || b.type === type);
  return [...list].sort((a, b) => a.timestamp.stop - b.timestamp.stop).at(-1);
}

/**
 * The repository keys a pgbackrest.conf configures (`repo<N>-*` options), ascending; [1] when it
 * names none (repo1 is pgBackRest's default).
 */
export function reposInConf(conf: string): number[] {
  const keys = new Set<number>();
  for (const m of conf.matchAll(/^repo(\d+)-[a-z0-9-]+=/gm)) keys.add(Number(m[1]));
  return keys.size ? [...keys].sort((a, b) => a - b) : [1];
}

/**
 * The repository keys of a target: from its configuration file, or, where that file is not here
 * (kubernetes: the jobs run pgbackrest inside the PostgreSQL pod), from pgBackRest's `info`.
 */
export async function configuredRepos(target: PgBackRestTarget): Promise<number[]> {
  const conf = await fs.readFile(target.config, "utf8").catch(() => undefined);
  if (conf !== undefined) return reposInConf(conf);
  const info = await stanzaInfo(target);
  return info.repo?.length ? info.repo.map((r) => r.key).sort((a, b) => a - b) : [1];
}

/** True when the stanza is readable in repository `key` (ok, or no backups yet). */
export function repoUsable(info: PgBackRestStanzaInfo, key: number): boolean {
  const repo = info.repo?.find((r) => r.key === key);
  const code = repo ? repo.status.code : info.status.code;
  return code === 0 || code === 2;
}

/** The backups `info` lists in repository `key`. */
export function backupsInRepo(info: PgBackRestStanzaInfo, key: number): PgBackRestBackup[] {
  return info.backup.filter((b) => (b.database?.["repo-key"] ?? 1) === key);
}

/** One repository's backup: its label. */
async function backupToRepo(
  target: PgBackRestTarget,
  type: BackupType,
  repo: number,
  repoCount: number,
  timeoutMs: number,
): Promise<string> {
  // `--repo` only with several repositories: a single-repository stack runs exactly what it always ran.
  const repoArgs = repoCount > 1 ? [`--repo=${repo}`] : [];
  const result = await runPgBackRest(
    target,
    "backup",
    [...repoArgs, `--type=${type}`, "--log-level-console=info"],
    { timeoutMs },
  );
  const match = /new backup label = (\S+)/.exec(result.stdout + "\n" + result.stderr);
  if (match) return match[1];
  const info = await stanzaInfo(target);
  const listed = latestBackup({ ...info, backup: backupsInRepo(info, repo) });
  if (!listed)
    throw new Error(`pgbackrest backup (${type}) to repo${repo} succeeded but no backup is listed`);
  return listed.label;
}

/** Where a restore reads from: the repository and, in it, the backup set. */
export interface RestoreSource {
  repo: number;
  backup: PgBackRestBackup;
  /** Set when a repository before `repo` was passed over, and why (for the log). */
  fallback?: string;
}

/**
 * The repository a restore reads from, made explicit rather than left to pgBackRest's search: the
 * repository holding `label` when one is given, else the first usable repository (repo1 before
 * the offsite repo2) that holds a backup, with its newest backup. Undefined when no repository
 * holds one.
 */
export function restoreSource(info: PgBackRestStanzaInfo, label?: string): RestoreSource | undefined {
  const keys = info.repo?.length ? info.repo.map((r) => r.key).sort((a, b) => a - b) : [1];
  const passed: string[] = [];
  for (const key of keys) {
    const status = info.repo?.find((r) => r.key === key)?.status ?? info.status;
    const backups = repoUsable(info, key) ? backupsInRepo(info, key) : [];
    const backup = label
      ? backups.find((b) => b.label === label)
      : latestBackup({ ...info, backup: backups });
    if (backup) {
      return passed.length ? { repo: key, backup, fallback: passed.join("; ") } : { repo: key, backup };
    }
    passed.push(
      repoUsable(info, key)
        ? `repo${key} holds ${label ? `no backup ${label}` : "no backup"}`
        : `repo${key} is not usable (${status.message})`,
    );
  }
  return undefined;
}

/**
 * True when repository `repo` holds WAL segment `segment` (24 hex digits) in one of the stanza's
 * archive ids: what archive-get would find there.
 */
export async function segmentInRepo(
  target: PgBackRestTarget,
  repo: number,
  segment: string,
): Promise<boolean> {
  const info = await stanzaInfo(target);
  const ids = info.archive.filter((a) => (a.database?.["repo-key"] ?? 1) === repo).map((a) => a.id);
  for (const id of ids) {
    const dir = `archive/${target.stanza}/${id}/${segment.slice(0, 16)}`;
    const listing = await runCommand(
      pgbackrestBin(),
      [`--config=${target.config}`, `--repo=${repo}`, "--output=json", "repo-ls", dir],
      { asUser: POSTGRES_USER, cwd: "/", env: cleanChildEnv(), timeoutMs: 5 * 60_000 },
    );
    if (listing.code !== 0) continue;
    const names = Object.keys(JSON.parse(listing.stdout || "{}") as Record<string, unknown>);
    if (names.some((n) => n.startsWith(`${segment}-`))) return true;
  }
  return false;
}

/** `--repo=<N>` when the configuration has several repositories (pgBackRest's default otherwise). */
export function repoOption(info: PgBackRestStanzaInfo, repo: number): string[] {
  return (info.repo?.length ?? 1) > 1 ? [`--repo=${repo}`] : [];
}

export interface BackupCommandResult {
  /** The first repository's backup (the one restores prefer). */
  label: string;
  /** Every repository's new backup label. */
  labels: Record<number, string>;
}

/**
 * Runs a backup into every configured repository, one after the other (pgBackRest writes one
 * repository per `backup`), and returns the labels. A repository that fails does not stop the
 * others: the error, naming every failed repository, is thrown after all of them were tried.
 * (A diff or incr backup into a repository without a full one is made full by pgBackRest.)
 */
export async function runBackupCommand(
  target: PgBackRestTarget,
  type: BackupType,
  opts: { timeoutMs?: number; repos?: readonly number[] } = {},
): Promise<BackupCommandResult> {
  const all = await configuredRepos(target);
  const repos = opts.repos ?? all;
  const labels: Record<number, string> = {};
  const failures: string[] = [];
  for (const repo of repos) {
    try {
      labels[repo] = await backupToRepo(target, type, repo, all.length, opts.timeoutMs ?? 4 * 60 * 60_000);
    } catch (err) {
      failures.push(`repo${repo}: ${(err as Error).message}`);
    }
  }
  if (failures.length > 0) {
    const done = Object.entries(labels).map(([repo, label]) => `repo${repo} ${label}`);
    throw new Error(
      `pgbackrest ${type} backup failed in ${failures.length} of ${repos.length} repositories` +
        (done.length ? ` (written: ${done.join(", ")})` : "") +
        `:\n${failures.join("\n")}`,
    );
  }
  const label = labels[repos[0]];
  return { label, labels };
}

/**
 * `stop --force`: refuses new pgBackRest processes for the stanza and terminates running ones
 * (e.g. an asynchronous archive-push); used before a cluster's files are removed.
 */
export async function stopStanzaProcesses(target: PgBackRestTarget): Promise<void> {
  await runPgBackRest(target, "stop", ["--force"], { timeoutMs: 60_000, check: false });
}

export interface PgBackRestConfValues {
  repoPath: string;
  retentionFull: number;
  spoolPath: string;
  lockPath: string;
  logPath: string;
  stanza: string;
  pgPath: string;
  pgPort: number;
  pgSocketPath: string;
  /** Enables repository encryption (aes-256-cbc). */
  encryptionPassphrase?: string;
  /** The offsite repository (repo2); absent: exactly the single-repository file. */
  offsite?: OffsiteRepo;
}

/** Renders templates/pgbackrest.conf.tmpl. */
export function renderPgBackRestConf(v: PgBackRestConfValues): string {
  const pass = v.encryptionPassphrase;
  if (pass !== undefined && pass !== "") {
    if (/[\r\n\0]/.test(pass) || pass.trim() !== pass) {
      throw new Error("encryption passphrase must be one line without leading or trailing whitespace");
    }
  }
  const cipher = pass ? `repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=${pass}` : "";
  // The placeholder keeps its name (and the template its bytes) so that existing stacks render the same file.
  const repoOptions = v.offsite ? [cipher, ...renderOffsiteRepo(v.offsite)].join("\n") : cipher;
  return renderTemplateFile("pgbackrest.conf.tmpl", {
    repo_path: v.repoPath,
    retention_full: v.retentionFull,
    repo_cipher: repoOptions,
    spool_path: v.spoolPath,
    lock_path: v.lockPath,
    log_path: v.logPath,
    stanza: v.stanza,
    pg_path: v.pgPath,
    pg_port: v.pgPort,
    pg_socket_path: v.pgSocketPath,
  });
}

/** Reads `repo<N>-cipher-pass` from a rendered pgbackrest.conf ("" when the repository is not encrypted). */
export function cipherPassFromConf(conf: string, repo = 1): string {
  const m = new RegExp(`^repo${repo}-cipher-pass=(.*)$`, "m").exec(conf);
  return m ? m[1] : "";
}

/** Every secret a rendered pgbackrest.conf holds (cipher passphrases, S3 keys), for redaction. */
export function secretsFromConf(conf: string): string[] {
  const out: string[] = [];
  for (const m of conf.matchAll(/^repo\d+-(?:cipher-pass|s3-key|s3-key-secret)=(.*)$/gm)) {
    if (m[1]) out.push(m[1]);
  }
  return out;
}
