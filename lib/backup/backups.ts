/**
 * Backups of the local cluster: taking them (pgBackRest), retention (`expire`), verification,
 * and their record in the registry table `backups` (loomworks_mgmt), which holds exactly the
 * backups still in the repository. The restore work reads the recovery window from it.
 *
 * Nothing here logs or returns the repository passphrase: pgBackRest output passes through
 * `runPgBackRest`, which redacts the spec's secrets.
 */
import type { Client } from "pg";
import { ensureCluster } from "../pg/ensureCluster";
import {
  localAdminDsn,
  localClusterLayout,
  runBackup,
  type ClusterLog,
  type LocalClusterSpec,
} from "../pg/cluster";
import {
  POSTGRES_USER,
  cleanChildEnv,
  pgbackrestBin,
  redact,
  runPgBackRest,
  stanzaInfo,
  stanzaUsable,
  type BackupType,
  type PgBackRestStanzaInfo,
  type PgBackRestTarget,
} from "../pg/pgbackrest";
import { backupsInRepo, configuredRepos, repoUsable } from "../pg/repositories";
import { CommandError, runCommand } from "../process/run";
import { withRegistry } from "../registry/registry";

export interface BackupRecord {
  /** pgBackRest label, e.g. `20261126-010000F` or `20261126-010000F_20261127-010000D`. */
  label: string;
  type: BackupType;
  startTime: Date;
  stopTime: Date;
  /** `pg_lsn` text, e.g. `0/2000028`. */
  startLsn: string;
  stopLsn: string;
}

export interface SyncResult {
  /** Labels newly recorded. */
  added: string[];
  /** Labels whose rows were deleted because the repository no longer holds them (expired). */
  removed: string[];
  /** Every recorded backup after the sync, oldest first. */
  backups: BackupRecord[];
}

export interface RecoveryWindow {
  /** Start of the oldest backup still in the repository: nothing before it can be restored. */
  earliestTime: Date;
  earliestLsn: string;
  /**
   * Stop of the oldest backup: the first point a restore from it is consistent, i.e. the
   * earliest target a point-in-time restore can actually reach.
   */
  earliestConsistentTime: Date;
  earliestConsistentLsn: string;
  /** The newest backup (by stop time). */
  latestBackup: BackupRecord;
  /** Number of backups in the window. */
  backups: number;
}

/** Advisory lock key (in the registry database) serializing syncs of the `backups` table. */
const SYNC_LOCK_KEY = 7_314_205_101;

interface BackupRow {
  label: string;
  type: BackupType;
  start_time: Date;
  stop_time: Date;
  start_lsn: string;
  stop_lsn: string;
}

const toRecord = (r: BackupRow): BackupRecord => ({
  label: r.label,
  type: r.type,
  startTime: r.start_time,
  stopTime: r.stop_time,
  startLsn: r.start_lsn,
  stopLsn: r.stop_lsn,
});

async function listRows(reg: Client): Promise<BackupRecord[]> {
  const r = await reg.query<BackupRow>(
    "SELECT label, type, start_time, stop_time, start_lsn::text AS start_lsn, stop_lsn::text AS stop_lsn " +
      "FROM backups ORDER BY start_time, label",
  );
  return r.rows.map(toRecord);
}

/** The backups recorded in the registry, oldest first. */
export async function listBackups(adminDsn: string): Promise<BackupRecord[]> {
  return withRegistry(adminDsn, listRows);
}

/**
 * Reads `pgbackrest info`; throws when the stanza cannot be read (never mistake that for "no
 * backups"). With an offsite repository, one readable repository is enough: the registry then
 * holds that repository's backups (a lost repo1 leaves the offsite ones to restore from).
 */
async function repositoryInfo(spec: LocalClusterSpec): Promise<PgBackRestStanzaInfo> {
  const { pgbackrest } = localClusterLayout(spec);
  const info = await stanzaInfo(pgbackrest);
  const anyRepoUsable = (info.repo ?? []).some((r) => repoUsable(info, r.key));
  if (!stanzaUsable(info) && !anyRepoUsable) {
    throw new Error(
      `pgBackRest stanza ${spec.stanza} is not usable (status ${info.status.code}: ${info.status.message}); ` +
        "the backups table was left unchanged",
    );
  }
  return info;
}

/**
 * Makes the registry's `backups` table match `pgbackrest info`: records every backup of the
 * repository not yet recorded, deletes the rows of backups no longer in it (expired).
 */
export async function syncBackups(spec: LocalClusterSpec, adminDsn: string): Promise<SyncResult> {
  const info = await repositoryInfo(spec);
  const inRepo = info.backup.filter((b) => b.lsn?.start && b.lsn?.stop);
  const missingLsn = info.backup.filter((b) => !(b.lsn?.start && b.lsn?.stop)).map((b) => b.label);
  if (missingLsn.length > 0) {
    throw new Error(
      `pgbackrest info lists backups without LSNs (${missingLsn.join(", ")}); cannot record them`,
    );
  }
  return withRegistry(adminDsn, async (reg) => {
    await reg.query("BEGIN");
    try {
      await reg.query("SELECT pg_advisory_xact_lock($1)", [SYNC_LOCK_KEY]);
      const before = new Set((await listRows(reg)).map((b) => b.label));
      const added: string[] = [];
      for (const b of inRepo) {
        if (before.has(b.label)) continue;
        await reg.query(
          `INSERT INTO backups (label, type, start_time, stop_time, start_lsn, stop_lsn)
           VALUES ($1, $2, to_timestamp($3), to_timestamp($4), $5::pg_lsn, $6::pg_lsn)
           ON CONFLICT (label) DO NOTHING`,
          [b.label, b.type, b.timestamp.start, b.timestamp.stop, b.lsn?.start, b.lsn?.stop],
        );
        added.push(b.label);
      }
      const labels = inRepo.map((b) => b.label);
      const removed = await reg.query<{ label: string }>(
        "DELETE FROM backups WHERE NOT (label = ANY($1::text[])) RETURNING label",
        [labels],
      );
      const backups = await listRows(reg);
      await reg.query("COMMIT");
      return { added, removed: removed.rows.map((r) => r.label).sort(), backups };
    } catch (err) {
      await reg.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  });
}

/**
 * Takes a pgBackRest backup of the running cluster (pgBackRest applies retention right after
 * it), then records it, and whatever else changed in the repository, with {@link syncBackups}.
 */
export async function takeBackup(
  spec: LocalClusterSpec,
  adminDsn: string,
  type: BackupType,
  log: ClusterLog = () => undefined,
): Promise<{ backup: BackupRecord; sync: SyncResult }> {
  if (!["full", "diff", "incr"].includes(type)) throw new Error(`unknown backup type ${String(type)}`);
  log(`pgBackRest: ${type} backup of stanza ${spec.stanza}`);
  const started = Date.now();
  const { label } = await runBackup(spec, type);
  const sync = await syncBackups(spec, adminDsn);
  const backup = sync.backups.find((b) => b.label === label);
  if (!backup) throw new Error(`backup ${label} finished but is not listed by pgbackrest info`);
  log(
    `pgBackRest: ${type} backup ${label} done in ${((Date.now() - started) / 1000).toFixed(1)} s ` +
      `(LSN ${backup.startLsn} - ${backup.stopLsn}); recorded ${sync.added.length}, ` +
      `forgot ${sync.removed.length} expired${sync.removed.length ? ` (${sync.removed.join(", ")})` : ""}`,
  );
  return { backup, sync };
}

/** `pgbackrest expire` (retention: `retentionFull` full backups and their WAL), then syncBackups. */
export async function expireBackups(
  spec: LocalClusterSpec,
  adminDsn: string,
  log: ClusterLog = () => undefined,
): Promise<SyncResult> {
  const { pgbackrest } = localClusterLayout(spec);
  await runPgBackRest(pgbackrest, "expire", [], { timeoutMs: 60 * 60_000 });
  const sync = await syncBackups(spec, adminDsn);
  log(
    `pgBackRest: expire done; ${sync.backups.length} backups kept` +
      (sync.removed.length ? `, expired ${sync.removed.join(", ")}` : ""),
  );
  return sync;
}

// ---------------------------------------------------------------------------------------------
// verify

export interface VerifyBackupResult {
  label: string;
  status: string;
  filesChecked: number;
  filesValid: number;
}

export interface VerifyArchiveResult {
  archiveId: string;
  walChecked: number;
  walValid: number;
}

export interface VerifySummary {
  stanza: string;
  status: "ok";
  archives: VerifyArchiveResult[];
  backups: VerifyBackupResult[];
  /** WAL segments present per timeline, checked for gaps (pgBackRest 2.45's verify does not). */
  walSegments: number;
  durationMs: number;
  /** One line: what was checked. */
  text: string;
}

/** Parses `pgbackrest verify --output=text --verbose`. */
export function parseVerifyOutput(output: string): {
  status: string;
  archives: (VerifyArchiveResult & { problems: string })[];
  backups: (VerifyBackupResult & { problems: string })[];
} {
  const lines = output.split("\n").map((l) => l.trim());
  const status = /^status:\s*(\S+)/m.exec(output)?.[1] ?? "unknown";
  const archives: (VerifyArchiveResult & { problems: string })[] = [];
  const backups: (VerifyBackupResult & { problems: string })[] = [];
  for (let i = 0; i < lines.length; i++) {
    const next = lines[i + 1] ?? "";
    const problems = /^missing:|checksum invalid:|size invalid:|other:/.test(next) ? next : "";
    const a = /^archiveId:\s*([^,]+),\s*total WAL checked:\s*(\d+),\s*total valid WAL:\s*(\d+)/.exec(
      lines[i],
    );
    if (a) archives.push({ archiveId: a[1], walChecked: Number(a[2]), walValid: Number(a[3]), problems });
    const b =
      /^backup:\s*([^,]+),\s*status:\s*([^,]+),\s*total files checked:\s*(\d+),\s*total valid files:\s*(\d+)/.exec(
        lines[i],
      );
    if (b) {
      backups.push({
        label: b[1],
        status: b[2],
        filesChecked: Number(b[3]),
        filesValid: Number(b[4]),
        problems,
      });
    }
  }
  return { status, archives, backups };
}

const WAL_SEGMENT = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})-[0-9a-f]{40}(\.[a-z0-9]+)?$/;
/** Segments per "log" of 4 GiB with the default 16 MiB wal_segment_size. */
const SEGMENTS_PER_LOG = 0x100;

/** Gaps in each timeline's archived WAL from the oldest backup's start on (names of missing segments). */
function walGaps(files: string[], oldestBackupStartWal: string | null): { count: number; gaps: string[] } {
  const byTimeline = new Map<string, number[]>();
  for (const file of files) {
    const m = WAL_SEGMENT.exec(file.split("/").at(-1) ?? "");
    if (!m) continue;
    const index = parseInt(m[2], 16) * SEGMENTS_PER_LOG + parseInt(m[3], 16);
    const list = byTimeline.get(m[1]) ?? [];
    list.push(index);
    byTimeline.set(m[1], list);
  }
  const name = (tli: string, index: number): string =>
    tli +
    Math.floor(index / SEGMENTS_PER_LOG)
      .toString(16)
      .toUpperCase()
      .padStart(8, "0") +
    (index % SEGMENTS_PER_LOG).toString(16).toUpperCase().padStart(8, "0");
  const gaps: string[] = [];
  let count = 0;
  for (const [tli, indexes] of byTimeline) {
    const sorted = [...new Set(indexes)].sort((a, b) => a - b);
    count += sorted.length;
    for (let i = 1; i < sorted.length; i++) {
      for (let missing = sorted[i - 1] + 1; missing < sorted[i]; missing++) {
        const n = name(tli, missing);
        if (oldestBackupStartWal && n.slice(8) < oldestBackupStartWal.slice(8)) continue;
        gaps.push(n);
      }
    }
  }
  return { count, gaps };
}

interface RepoVerifyResult {
  repo: number;
  problems: string[];
  archives: VerifyArchiveResult[];
  backups: VerifyBackupResult[];
  walSegments: number;
}

/** `pgbackrest verify` and the WAL continuity check of one repository. */
async function verifyOneRepo(
  spec: LocalClusterSpec,
  pgbackrest: PgBackRestTarget,
  repo: number,
  repoCount: number,
): Promise<RepoVerifyResult> {
  const repoArgs = repoCount > 1 ? [`--repo=${repo}`] : [];
  const result = await runPgBackRest(pgbackrest, "verify", [...repoArgs, "--output=text", "--verbose"], {
    timeoutMs: 6 * 60 * 60_000,
  });
  const parsed = parseVerifyOutput(result.stdout);
  const problems: string[] = [];
  if (parsed.status !== "ok") problems.push(`status ${parsed.status}`);
  for (const a of parsed.archives) {
    if (a.walValid !== a.walChecked)
      problems.push(`WAL ${a.archiveId}: ${a.walChecked - a.walValid} invalid (${a.problems})`);
  }
  for (const b of parsed.backups) {
    if (b.status !== "valid" || b.filesValid !== b.filesChecked) {
      problems.push(
        `backup ${b.label}: ${b.status}, ${b.filesChecked - b.filesValid} bad files (${b.problems})`,
      );
    }
  }
  // WAL continuity (the verify of pgBackRest 2.45 does not report a missing segment).
  const info = await stanzaInfo(pgbackrest);
  const inRepo = repoCount > 1 ? backupsInRepo(info, repo) : info.backup;
  const oldest = [...inRepo].sort((a, b) => a.timestamp.start - b.timestamp.start)[0];
  // `repo-ls` takes its path after the command word (runPgBackRest puts options before it).
  const listing = await runCommand(
    pgbackrestBin(),
    [
      `--config=${pgbackrest.config}`,
      ...repoArgs,
      "--recurse",
      "--output=json",
      "repo-ls",
      `archive/${spec.stanza}`,
    ],
    { asUser: POSTGRES_USER, cwd: "/", env: cleanChildEnv(), timeoutMs: 30 * 60_000 },
  );
  if (listing.code !== 0) {
    throw new CommandError(`pgbackrest repo-ls archive/${spec.stanza} (repo${repo})`, {
      ...listing,
      stdout: redact(listing.stdout, pgbackrest.secrets),
      stderr: redact(listing.stderr, pgbackrest.secrets),
    });
  }
  let files: string[] = [];
  try {
    const entries = JSON.parse(listing.stdout) as Record<string, { type: string }>;
    files = Object.entries(entries)
      .filter(([, e]) => e.type === "file")
      .map(([name]) => name);
  } catch {
    problems.push("repo-ls output is not JSON");
  }
  const { count, gaps } = walGaps(files, oldest?.archive.start ?? null);
  if (gaps.length > 0) {
    const shown = gaps.slice(0, 10).join(", ") + (gaps.length > 10 ? `, ... (${gaps.length} in all)` : "");
    problems.push(`archived WAL has gaps: missing ${shown}`);
  }
  if (inRepo.length === 0) problems.push("the repository holds no backup");
  return {
    repo,
    problems: repoCount > 1 ? problems.map((p) => `repo${repo}: ${p}`) : problems,
    archives: parsed.archives.map(({ archiveId, walChecked: c, walValid }) => ({
      archiveId,
      walChecked: c,
      walValid,
    })),
    backups: parsed.backups.map(({ label, status, filesChecked: c, filesValid }) => ({
      label,
      status,
      filesChecked: c,
      filesValid,
    })),
    walSegments: count,
  };
}

/**
 * `pgbackrest verify` of every repository (every backup's files and every archived WAL segment
 * against their checksums), plus a check that the archived WAL has no gap. Returns a summary;
 * throws an Error listing every problem of every repository when anything is invalid.
 */
export async function verifyRepository(spec: LocalClusterSpec): Promise<VerifySummary> {
  const { pgbackrest } = localClusterLayout(spec);
  const started = Date.now();
  const repos = await configuredRepos(pgbackrest);
  const results: RepoVerifyResult[] = [];
  for (const repo of repos) results.push(await verifyOneRepo(spec, pgbackrest, repo, repos.length));
  const problems = results.flatMap((r) => r.problems);
  if (problems.length > 0) {
    throw new Error(`pgBackRest verify of stanza ${spec.stanza} found problems:\n- ${problems.join("\n- ")}`);
  }
  const backups = results.flatMap((r) => r.backups);
  const archives = results.flatMap((r) => r.archives);
  const walSegments = results.reduce((n, r) => n + r.walSegments, 0);
  const filesChecked = backups.reduce((n, b) => n + b.filesChecked, 0);
  const walChecked = archives.reduce((n, a) => n + a.walChecked, 0);
  const durationMs = Date.now() - started;
  const where = repos.length > 1 ? ` in ${repos.length} repositories` : "";
  return {
    stanza: spec.stanza,
    status: "ok",
    archives,
    backups,
    walSegments,
    durationMs,
    text:
      `verify ok${where}: ${backups.length} backups (${filesChecked} files) and ${walChecked} WAL segments ` +
      `valid, no gap in ${walSegments} archived segments (${(durationMs / 1000).toFixed(1)} s)`,
  };
}

// ---------------------------------------------------------------------------------------------
// recovery window

/**
 * The range a restore can reach, from the registry's `backups` (the oldest backup still in the
 * repository bounds it: its WAL and everything older is expired). Throws when no backup is
 * recorded. Call {@link syncBackups} first for an up-to-the-second answer.
 */
export async function recoveryWindow(adminDsn: string): Promise<RecoveryWindow> {
  const backups = await listBackups(adminDsn);
  if (backups.length === 0) {
    throw new Error(
      "no backup is recorded in the registry: nothing can be restored yet (take a backup first)",
    );
  }
  const oldest = backups[0];
  const latest = [...backups].sort((a, b) => a.stopTime.getTime() - b.stopTime.getTime()).at(-1) ?? oldest;
  return {
    earliestTime: oldest.startTime,
    earliestLsn: oldest.startLsn,
    earliestConsistentTime: oldest.stopTime,
    earliestConsistentLsn: oldest.stopLsn,
    latestBackup: latest,
    backups: backups.length,
  };
}

// ---------------------------------------------------------------------------------------------
// cluster path

/**
 * `ensureCluster` followed by {@link syncBackups}, so the first full backup (and a cluster
 * restored from its repository) is recorded in the registry. What the LocalPostgres provider runs.
 */
export async function ensureClusterWithBackups(
  spec: LocalClusterSpec,
  log: ClusterLog = () => undefined,
): Promise<SyncResult> {
  await ensureCluster(spec, log);
  const sync = await syncBackups(spec, localAdminDsn(spec));
  if (sync.added.length > 0 || sync.removed.length > 0) {
    log(
      `registry: ${sync.backups.length} backups recorded` +
        (sync.added.length ? ` (new: ${sync.added.join(", ")})` : "") +
        (sync.removed.length ? ` (expired: ${sync.removed.join(", ")})` : ""),
    );
  }
  return sync;
}
