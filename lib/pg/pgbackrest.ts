import { accessSync, constants as fsConstants } from "node:fs";
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
