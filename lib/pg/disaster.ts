/**
 * Disaster recovery of the local cluster: rebuild the whole cluster (every tenant database and
 * the registry) from the pgBackRest repository after its data directory is lost, replaying every
 * archived WAL segment. What is lost is only the WAL that was never archived: at most
 * `archive_timeout` seconds of commits (the RPO) plus whatever the archiver had not pushed yet.
 *
 * `ensureCluster` calls {@link recoverCluster} itself when the data directory is missing and the
 * repository holds a backup, so `pulumi up` (after `refresh`) rebuilds a lost cluster; see
 * docs/operations/disaster-recovery.md and infra/automation/disaster-recovery.ts.
 */
import { existsSync, promises as fs } from "node:fs";
import * as path from "node:path";
import { runCommand } from "../process/run";
import {
  dataDirInitialized,
  localClusterLayout,
  pgBin,
  prepareRepositoryAccess,
  startCluster,
  stopCluster,
  writeClusterConfigs,
  type ClusterLog,
  type LocalClusterSpec,
} from "./cluster";
import {
  POSTGRES_USER,
  checkStanza,
  cipherPassFromConf,
  cleanChildEnv,
  redact,
  runPgBackRest,
  stanzaCreate,
  stanzaInfo,
  type PgBackRestStanzaInfo,
} from "./pgbackrest";
import { repoOption, restoreSource } from "./repositories";

export interface RecoverOptions {
  /** Replace an existing data directory too (it is stopped and moved aside, never deleted). */
  force?: boolean;
  /** How long WAL replay may take before giving up (default 2 hours). */
  recoveryTimeoutMs?: number;
}

export interface RecoveryReport {
  /** The backup set the restore started from. */
  backupLabel: string;
  /** Where the previous (partial or forced-out) data directory was moved, if there was one. */
  movedAside?: string;
  /** The timeline the cluster runs on after promotion. */
  timeline: number;
  /** Where WAL replay ended (the switch point to the new timeline). */
  recoveryEndLsn?: string;
  /** The newest WAL segment the repository held before the restore. */
  lastArchivedWal: string | null;
  /** Set when replay ended before the newest archived segment (WAL missing from the archive). */
  warning?: string;
  timings: { restoreMs: number; replayMs: number; checkMs: number; totalMs: number };
}

const WAL_SEGMENT_BYTES = 16 * 1024 * 1024;

function secretsOf(spec: LocalClusterSpec): string[] {
  return [spec.encryptionPassphrase ?? "", spec.superuserPassword].filter((s) => s.length > 0);
}

async function repoHasFiles(repoPath: string): Promise<boolean> {
  return (await fs.readdir(repoPath).catch(() => [] as string[])).length > 0;
}

/**
 * Reads the repository with the configuration on disk (which matches the repository, even when
 * the spec's passphrase changed since) or, when there is none yet, with the spec's.
 * Returns undefined when the repository is empty.
 */
async function readRepository(spec: LocalClusterSpec): Promise<PgBackRestStanzaInfo | undefined> {
  const { paths, pgbackrest } = localClusterLayout(spec);
  // With an offsite repository, an empty (or lost) repo1 is no reason to stop looking.
  if (!spec.offsite && !(await repoHasFiles(paths.repoPath))) return undefined;
  const conf = await fs.readFile(paths.pgbackrestConf, "utf8").catch(() => undefined);
  if (conf === undefined) await prepareRepositoryAccess(spec);
  let info: PgBackRestStanzaInfo;
  try {
    info = await stanzaInfo(pgbackrest);
  } catch (err) {
    throw new Error(
      `the repository ${paths.repoPath} cannot be read (${(err as Error).message.split("\n")[0]}); ` +
        "refusing to initialize a new cluster over it",
    );
  }
  if (
    conf !== undefined &&
    cipherPassFromConf(conf) !== (spec.encryptionPassphrase ?? "") &&
    info.backup.length
  ) {
    throw new Error(
      `the data directory ${paths.dataDir} is missing and the repository ${paths.repoPath} holds backups ` +
        "encrypted with another passphrase than backups.encryptionPassphrase: set the passphrase the " +
        "repository was made with to restore the cluster (a new passphrase can be set once it is back)",
    );
  }
  const statuses = info.repo?.length ? info.repo.map((r) => r.status.code) : [info.status.code];
  if (!statuses.every((code) => [0, 1, 2].includes(code))) {
    throw new Error(
      `the repository ${paths.repoPath} is not usable for stanza ${spec.stanza} ` +
        `(status ${info.status.code}: ${info.status.message}); refusing to initialize a new cluster over it`,
    );
  }
  return info;
}

/**
 * True when the stanza's repository holds at least one backup to restore the cluster from.
 * Throws (rather than answering false) when the repository holds data it cannot read, so that a
 * caller never runs initdb over a repository holding the tenants' history.
 */
export async function hasRestorableBackup(spec: LocalClusterSpec): Promise<boolean> {
  const info = await readRepository(spec);
  return info !== undefined && restoreSource(info) !== undefined;
}

/** psql as postgres over the unix socket (peer authentication); stdout trimmed, or an error. */
async function psql(spec: LocalClusterSpec, sql: string): Promise<{ ok: boolean; out: string }> {
  const { paths } = localClusterLayout(spec);
  const r = await runCommand(
    pgBin("psql"),
    [
      "-X",
      "-A",
      "-t",
      "-q",
      "-h",
      paths.socketDir,
      "-p",
      String(spec.port),
      "-U",
      "postgres",
      "-d",
      "postgres",
      "-c",
      sql,
    ],
    { asUser: POSTGRES_USER, cwd: "/", env: cleanChildEnv(), timeoutMs: 60_000 },
  );
  return { ok: r.code === 0, out: (r.code === 0 ? r.stdout : r.stderr).trim() };
}

/** The pid in the server's socket lock file, when such a process still runs (a postmaster orphaned by `rm -rf`). */
async function orphanPostmaster(spec: LocalClusterSpec): Promise<number | undefined> {
  const { paths } = localClusterLayout(spec);
  const lock = await fs
    .readFile(path.join(paths.socketDir, `.s.PGSQL.${spec.port}.lock`), "utf8")
    .catch(() => "");
  const pid = Number(lock.split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch {
    return undefined;
  }
  const comm = await fs.readFile(`/proc/${pid}/comm`, "utf8").catch(() => "");
  return comm.trim() === "postgres" ? pid : undefined;
}

function segmentOf(timeline: number, lsn: string): string {
  const [hi, lo] = lsn.split("/").map((x) => parseInt(x, 16));
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, "0");
  return hex(timeline) + hex(hi) + hex(Math.floor(lo / WAL_SEGMENT_BYTES));
}

/**
 * Rebuilds the cluster from its repository: when the data directory is missing (or `force`),
 * moves whatever is left of it aside, `pgbackrest restore` of the newest backup replaying all
 * archived WAL (recovery type default: to the end of the archive, then promotion to a new
 * timeline), starts the server, waits until it is out of recovery, and runs `pgbackrest check`
 * to prove WAL archiving works again. The previous backups stay valid for the new timeline.
 */
export async function recoverCluster(
  spec: LocalClusterSpec,
  log: ClusterLog = () => undefined,
  opts: RecoverOptions = {},
): Promise<RecoveryReport> {
  const started = Date.now();
  const { paths, pgbackrest } = localClusterLayout(spec);
  const secrets = secretsOf(spec);

  if (await dataDirInitialized(spec)) {
    if (!opts.force) {
      throw new Error(
        `${paths.dataDir} holds a PostgreSQL cluster; refusing to replace it by a restore (use force)`,
      );
    }
    log(`stopping PostgreSQL in ${paths.dataDir} (forced recovery)`);
    await stopCluster(spec);
  }
  const orphan = await orphanPostmaster(spec);
  if (orphan !== undefined) {
    throw new Error(
      `a PostgreSQL server (pid ${orphan}) still runs on port ${spec.port} without its data directory; ` +
        `stop it (kill -QUIT ${orphan}) and run the recovery again`,
    );
  }

  const before = await readRepository(spec);
  const source = before && restoreSource(before);
  if (!before || !source) {
    throw new Error(
      `the repository ${paths.repoPath}${spec.offsite ? " and the offsite repository hold" : " holds"} ` +
        `no backup of stanza ${spec.stanza}: nothing to restore`,
    );
  }
  if (source.fallback) log(`restoring from the offsite repository repo${source.repo}: ${source.fallback}`);
  await prepareRepositoryAccess(spec);
  const newest = source.backup;
  const lastArchivedWal =
    before.archive
      .map((a) => a.max)
      .filter((m): m is string => !!m)
      .sort()
      .at(-1) ?? null;

  let movedAside: string | undefined;
  if (existsSync(paths.dataDir)) {
    const entries = await fs.readdir(paths.dataDir).catch(() => [] as string[]);
    if (entries.length === 0) {
      await fs.rmdir(paths.dataDir);
    } else {
      movedAside = `${paths.dataDir}.lost-${new Date().toISOString().replace(/[:.]/g, "-")}`;
      log(`moving what is left of the data directory to ${movedAside}`);
      await fs.rename(paths.dataDir, movedAside);
    }
  }

  // A `pgbackrest stop` left behind would refuse the restore.
  await runPgBackRest(pgbackrest, "start", [], { timeoutMs: 60_000, check: false });
  log(
    `pgBackRest: restoring backup ${newest?.label ?? "?"} into ${paths.dataDir}, then replaying the archived WAL` +
      (lastArchivedWal ? ` (up to ${lastArchivedWal})` : ""),
  );
  const restoreStarted = Date.now();
  const restore = await runPgBackRest(
    pgbackrest,
    "restore",
    [...repoOption(before, source.repo), "--log-level-console=info"],
    {
      timeoutMs: 6 * 60 * 60_000,
    },
  );
  const backupLabel =
    /restore backup set (\S+?),?\s/.exec(restore.stdout + restore.stderr)?.[1] ?? newest?.label ?? "unknown";
  const restoreMs = Date.now() - restoreStarted;

  await writeClusterConfigs(spec);
  const replayStarted = Date.now();
  log(`starting PostgreSQL on port ${spec.port} for WAL replay`);
  await startCluster(spec);
  const deadline = Date.now() + (opts.recoveryTimeoutMs ?? 2 * 60 * 60_000);
  let lastReport = Date.now();
  for (;;) {
    const r = await psql(spec, "SELECT pg_is_in_recovery()");
    if (r.ok && r.out === "f") break;
    if (!r.ok) {
      const status = await runCommand(pgBin("pg_ctl"), ["status", "-D", paths.dataDir], {
        asUser: POSTGRES_USER,
        cwd: "/",
        env: cleanChildEnv(),
        timeoutMs: 30_000,
      });
      if (status.code !== 0) {
        throw new Error(
          `PostgreSQL stopped during WAL replay (see the logs in ${paths.logDir}): ${redact(r.out, secrets)}`,
        );
      }
    }
    if (Date.now() > deadline) {
      throw new Error(
        `WAL replay did not finish in time; PostgreSQL in ${paths.dataDir} is still recovering`,
      );
    }
    if (Date.now() - lastReport > 30_000) {
      const lsn = await psql(spec, "SELECT pg_last_wal_replay_lsn()");
      log(`still replaying WAL (at ${lsn.out || "?"})`);
      lastReport = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const replayMs = Date.now() - replayStarted;

  const tli = await psql(spec, "SELECT timeline_id FROM pg_control_checkpoint()");
  const timeline = Number(tli.out);
  let recoveryEndLsn: string | undefined;
  let warning: string | undefined;
  if (Number.isInteger(timeline) && timeline > 1) {
    const historyFile = `pg_wal/${timeline.toString(16).toUpperCase().padStart(8, "0")}.history`;
    const history = await psql(spec, `SELECT pg_read_file('${historyFile}')`);
    const last = history.ok
      ? history.out
          .split("\n")
          .filter((l) => /^\d+\s/.test(l))
          .at(-1)
      : undefined;
    if (last) {
      const [prevTli, lsn] = last.split(/\s+/);
      recoveryEndLsn = lsn;
      const endSegment = segmentOf(Number(prevTli), lsn);
      const archivedOnPrev = before.archive
        .map((a) => a.max)
        .filter((m): m is string => !!m && m.slice(0, 8) === endSegment.slice(0, 8))
        .sort()
        .at(-1);
      if (archivedOnPrev && archivedOnPrev > endSegment) {
        warning =
          `WAL replay ended at ${lsn} (segment ${endSegment}) before the newest archived segment ` +
          `${archivedOnPrev}: the archive has a gap; run \`pgbackrest verify\``;
        log(`WARNING: ${warning}`);
      }
    }
  }

  if (source.fallback) {
    // A lost repo1 gets its stanza back, so that archiving (which writes every repository) works again.
    log("pgBackRest: stanza-create (the repositories that lost the stanza get it again)");
    await stanzaCreate(pgbackrest);
  }
  log("pgBackRest: check (WAL archiving on the new timeline)");
  const checkStarted = Date.now();
  await checkStanza(pgbackrest);
  const checkMs = Date.now() - checkStarted;
  const totalMs = Date.now() - started;
  log(
    `cluster restored from backup ${backupLabel} and the archived WAL` +
      (recoveryEndLsn ? ` up to ${recoveryEndLsn}` : "") +
      `; now on timeline ${timeline} (${(totalMs / 1000).toFixed(1)} s)` +
      (movedAside ? `; the old data directory is in ${movedAside} (delete it once satisfied)` : ""),
  );
  return {
    backupLabel,
    ...(movedAside ? { movedAside } : {}),
    timeline,
    ...(recoveryEndLsn ? { recoveryEndLsn } : {}),
    lastArchivedWal,
    ...(warning ? { warning } : {}),
    timings: { restoreMs, replayMs, checkMs, totalMs },
  };
}
