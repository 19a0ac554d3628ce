/**
 * Scheduled jobs of the local target, and the scheduler daemon that runs them:
 *
 *   node bin/infra/ops/jobs.js backup    --state-dir D [--type full|diff|incr]   backup, expire, record
 *   node bin/infra/ops/jobs.js expire    --state-dir D                           retention, record
 *   node bin/infra/ops/jobs.js verify    --state-dir D                           pgbackrest verify + WAL gaps
 *   node bin/infra/ops/jobs.js sync      --state-dir D                           record backups in the registry
 *   node bin/infra/ops/jobs.js snapshot-auto --state-dir D                       runtime `auto` snapshots
 *   node bin/infra/ops/jobs.js quota-check --state-dir D [--tenant SUB ...] [--undo-retention-days N]
 *                                                       undo log retention, then tenant storage quotas
 *   node bin/infra/ops/jobs.js scheduler --state-dir D                           the daemon (runs schedule.json)
 *
 * The cluster comes from `<D>/scheduler/cluster.json` (no secrets; written by the LocalScheduler
 * provider) and `<D>/pgbackrest/pgbackrest.conf`. Jobs reach PostgreSQL as `postgres` over its
 * unix socket with peer authentication (the cluster's `loomworks_operator` ident map admits root
 * and postgres): no password is stored for them; pgBackRest itself runs as postgres.
 * `LOOMWORKS_ADMIN_DSN` overrides the connection. Exit code 0 on success, 1 on failure (the message on stderr).
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { expireBackups, syncBackups, takeBackup, verifyRepository } from "../../lib/backup/backups";
import { acquirePidFile, readClusterFile } from "../../lib/backup/daemon";
import { runScheduler } from "../../lib/backup/scheduler";
import { pruneUndoLogs } from "../../lib/guards/tenant";
import { operatorAdminDsn } from "../../lib/ops/connect";
import { localClusterLayout, type LocalClusterSpec } from "../../lib/pg/cluster";
import { clusterPaths } from "../../lib/pg/paths";
import { cipherPassFromConf, type BackupType } from "../../lib/pg/pgbackrest";
import { checkStorage } from "../../lib/quota/storage";
import { takeAutoSnapshots } from "../../lib/snapshot/runtime";

const COMMANDS = ["backup", "expire", "verify", "sync", "snapshot-auto", "quota-check", "scheduler"] as const;
type Command = (typeof COMMANDS)[number];

const USAGE = `usage: jobs.js <${COMMANDS.join("|")}> --state-dir DIR [--type full|diff|incr] [--tenant SUBDOMAIN ...] [--undo-retention-days N]`;

/**
 * Jobs authenticate by peer (unix socket) and never use the superuser password; the cluster
 * spec requires one, so they carry this stand-in (long and distinctive: it is also "redacted").
 */
const NO_PASSWORD = "(unused: jobs authenticate as postgres by peer over the unix socket)";

interface Args {
  command: Command;
  stateDir: string;
  type: BackupType;
  /** quota-check: only these tenants (default: all). */
  tenants: string[];
  /** quota-check: also prune the undo log of operations ended this many days ago. */
  undoRetentionDays?: number;
}

function parseArgs(argv: string[]): Args {
  const command = argv[0] as Command;
  if (!COMMANDS.includes(command)) throw new Error(USAGE);
  let stateDir = "";
  let type: BackupType = "diff";
  const tenants: string[] = [];
  let undoRetentionDays: number | undefined;
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--state-dir") stateDir = argv[++i] ?? "";
    else if (arg === "--type") {
      const t = argv[++i];
      if (t !== "full" && t !== "diff" && t !== "incr")
        throw new Error(`--type must be full, diff or incr\n${USAGE}`);
      type = t;
    } else if (arg === "--tenant") {
      const t = argv[++i];
      if (!t) throw new Error(`--tenant needs a subdomain\n${USAGE}`);
      tenants.push(t);
    } else if (arg === "--undo-retention-days") {
      undoRetentionDays = Number(argv[++i]);
      if (!Number.isInteger(undoRetentionDays) || undoRetentionDays < 1)
        throw new Error(`--undo-retention-days needs a whole number of days >= 1\n${USAGE}`);
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
  }
  if (!stateDir) throw new Error(`--state-dir is required\n${USAGE}`);
  return {
    command,
    stateDir: path.resolve(stateDir),
    type,
    tenants,
    ...(undoRetentionDays !== undefined ? { undoRetentionDays } : {}),
  };
}

const log = (msg: string): void => {
  process.stdout.write(`${new Date().toISOString()} ${msg}\n`);
};

/** The cluster spec and admin DSN of a job (peer authentication over the socket). */
async function jobContext(stateDir: string): Promise<{ spec: LocalClusterSpec; adminDsn: string }> {
  const cluster = await readClusterFile(stateDir);
  const conf = await fs.readFile(clusterPaths(cluster.stateDir).pgbackrestConf, "utf8");
  const passphrase = cipherPassFromConf(conf);
  const spec: LocalClusterSpec = {
    stateDir: cluster.stateDir,
    port: cluster.port,
    archiveTimeoutSeconds: cluster.archiveTimeoutSeconds,
    superuserPassword: NO_PASSWORD,
    stanza: cluster.stanza,
    retentionFull: cluster.retentionFull,
    ...(passphrase ? { encryptionPassphrase: passphrase } : {}),
  };
  return { spec, adminDsn: await operatorAdminDsn(stateDir) };
}

async function snapshotAuto(stateDir: string): Promise<number> {
  const { spec, adminDsn } = await jobContext(stateDir);
  const { paths, pgbackrest } = localClusterLayout(spec);
  const list = await takeAutoSnapshots(
    adminDsn,
    { filestoreRoot: paths.filestoreDir, snapshotRoot: path.join(paths.stateDir, "snapshots"), pgbackrest },
    log,
  );
  const failed = list.filter((r) => r.error);
  log(`auto snapshots: ${list.length - failed.length} tenants ok, ${failed.length} failed`);
  for (const f of failed) log(`auto snapshot of ${f.subdomain ?? "?"} failed: ${f.error}`);
  return failed.length > 0 ? 1 : 0;
}

async function quotaCheck(stateDir: string, tenants: string[], undoRetentionDays?: number): Promise<number> {
  const { spec, adminDsn } = await jobContext(stateDir);
  // The undo log first: what it frees counts in the storage measure only once it is gone.
  const pruneFailures =
    undoRetentionDays === undefined
      ? []
      : (await pruneUndoLogs(adminDsn, undoRetentionDays, log)).filter((r) => r.error);
  for (const f of pruneFailures) log(`undo log pruning of ${f.subdomain} failed: ${f.error}`);
  const { paths } = localClusterLayout(spec);
  const list = await checkStorage(
    adminDsn,
    { filestoreRoot: paths.filestoreDir, ...(tenants.length > 0 ? { subdomains: tenants } : {}) },
    log,
  );
  const failed = list.filter((r) => r.error);
  for (const r of list) {
    if (r.error) continue;
    const max = r.maxBytes ? ` of ${r.maxBytes} (${r.percent} %)` : " (no limit)";
    log(`${r.subdomain}: ${r.bytes} bytes${max}: ${r.state}`);
  }
  log(`quota check: ${list.length - failed.length} tenants ok, ${failed.length} failed`);
  for (const f of failed) log(`quota check of ${f.subdomain} failed: ${f.error}`);
  return failed.length + pruneFailures.length > 0 ? 1 : 0;
}

async function schedulerDaemon(stateDir: string): Promise<void> {
  const release = await acquirePidFile(stateDir);
  const controller = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    process.on(sig, () => {
      log(`scheduler: ${sig} received, stopping`);
      controller.abort();
    });
  }
  // Test-only: a clock running `factor` times faster than the real one (e.g. 600: a minute per 100 ms).
  const factor = Number(process.env.LOOMWORKS_SCHEDULER_TIME_FACTOR ?? "1");
  const start = Date.now();
  const now = factor > 1 ? () => new Date(start + (Date.now() - start) * factor) : undefined;
  log(`scheduler: running for ${stateDir} (pid ${process.pid})`);
  try {
    await runScheduler({ stateDir, signal: controller.signal, now, log: (m) => log(`scheduler: ${m}`) });
  } finally {
    await release();
  }
  log("scheduler: stopped");
}

async function run(args: Args): Promise<number | void> {
  switch (args.command) {
    case "scheduler":
      return schedulerDaemon(args.stateDir);
    case "snapshot-auto":
      return snapshotAuto(args.stateDir);
    case "quota-check":
      return quotaCheck(args.stateDir, args.tenants, args.undoRetentionDays);
    case "backup": {
      const { spec, adminDsn } = await jobContext(args.stateDir);
      const { backup } = await takeBackup(spec, adminDsn, args.type, log);
      await expireBackups(spec, adminDsn, log);
      log(`backup ${backup.label} (${backup.type}) recorded`);
      return;
    }
    case "expire": {
      const { spec, adminDsn } = await jobContext(args.stateDir);
      await expireBackups(spec, adminDsn, log);
      return;
    }
    case "verify": {
      const { spec } = await jobContext(args.stateDir);
      log((await verifyRepository(spec)).text);
      return;
    }
    case "sync": {
      const { spec, adminDsn } = await jobContext(args.stateDir);
      const sync = await syncBackups(spec, adminDsn);
      log(
        `${sync.backups.length} backups recorded; new ${sync.added.length}, expired ${sync.removed.length}`,
      );
      return;
    }
  }
}

async function main(argv: string[]): Promise<number> {
  return (await run(parseArgs(argv))) ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`jobs.js ${process.argv[2] ?? ""}: ${err.message}\n`);
    process.exitCode = 1;
  },
);
