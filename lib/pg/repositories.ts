/**
 * Several pgBackRest repositories (repo1 next to the database, the offsite repo2: lib/pg/offsite.ts):
 * which ones a configuration has, a backup into each, and the repository a restore reads from.
 */
import { promises as fs } from "node:fs";
import {
  POSTGRES_USER,
  cleanChildEnv,
  latestBackup,
  pgbackrestBin,
  runPgBackRest,
  stanzaInfo,
  type BackupType,
  type PgBackRestBackup,
  type PgBackRestStanzaInfo,
  type PgBackRestTarget,
} from "./pgbackrest";
import { runCommand } from "../process/run";

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
 * The repository a restore of the whole cluster reads from, made explicit rather than left to
 * pgBackRest's search: the first usable repository (repo1 before the offsite repo2) that holds a
 * backup, with its newest backup. Undefined when no repository holds one.
 */
export function restoreSource(info: PgBackRestStanzaInfo): RestoreSource | undefined {
  const keys = info.repo?.length ? info.repo.map((r) => r.key).sort((a, b) => a - b) : [1];
  const passed: string[] = [];
  for (const key of keys) {
    const status = info.repo?.find((r) => r.key === key)?.status ?? info.status;
    const backups = repoUsable(info, key) ? backupsInRepo(info, key) : [];
    const backup = latestBackup({ ...info, backup: backups });
    if (backup) {
      return passed.length ? { repo: key, backup, fallback: passed.join("; ") } : { repo: key, backup };
    }
    passed.push(
      repoUsable(info, key) ? `repo${key} holds no backup` : `repo${key} is not usable (${status.message})`,
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
