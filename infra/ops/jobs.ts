/**
 * The platform's scheduled jobs, restores, and the local target's scheduler daemon:
 *
 *   node bin/infra/ops/jobs.js backup    [--state-dir D] [--type full|diff|incr]   backup, expire, record
 *   node bin/infra/ops/jobs.js expire    [--state-dir D]                           retention, record
 *   node bin/infra/ops/jobs.js verify    [--state-dir D]                           pgbackrest verify + WAL gaps
 *   node bin/infra/ops/jobs.js sync      [--state-dir D]                           record backups in the registry
 *   node bin/infra/ops/jobs.js snapshot-auto [--state-dir D] [--filestore-root F] [--snapshot-root S]
 *                                                                                  runtime `auto` snapshots
 *   node bin/infra/ops/jobs.js quota-check [--state-dir D] [--filestore-root F] [--tenant SUB ...]
 *                                          [--undo-retention-days N]   undo log retention, then storage quotas
 *   node bin/infra/ops/jobs.js spares    [--state-dir D] [--count N]               N ready spares per template (default 1)
 *   node bin/infra/ops/jobs.js scheduler --state-dir D                             the daemon (local target only)
 *   node bin/infra/ops/jobs.js restore --tenant SUB --database DB --role ROLE
 *                                      (--time T | --lsn L | --snapshot NAME [--snapshot-lsn L])
 *                                      --pgbackrest-config PATH --scratch-dir DIR --filestore-root F
 *                                      [--tenant-state active|suspended|archived]   (Kubernetes restore Job)
 *
 * Local target (`--state-dir D`): the cluster comes from `<D>/scheduler/cluster.json` (no secrets;
 * written by the LocalScheduler provider) and `<D>/pgbackrest/pgbackrest.conf`. Jobs reach PostgreSQL
 * as `postgres` over its unix socket with peer authentication (the cluster's `loomworks_operator`
 * ident map admits root and postgres): no password is stored for them; pgBackRest runs as postgres.
 * `LOOMWORKS_ADMIN_DSN` overrides the connection.
 *
 * Kubernetes target (no `--state-dir`, `LOOMWORKS_ADMIN_DSN` set): the facts come from the
 * environment (see KUBERNETES_ENV; components/kubernetes/OpsJobs.ts sets it): the DSN carries no
 * password, `PGPASSWORD` (from the Secret) is added to it in memory only; pgBackRest runs through
 * `LOOMWORKS_PGBACKREST` (a wrapper that runs it inside the PostgreSQL pod, where the repository is).
 *
 * Notifications (lib/notify): with a webhook configured (`platform.notify`), quota-check tells a
 * tenant's crossing of 80 % and of its limit, a failed backup or verify tells its error, a restore
 * its outcome. Local: `<D>/scheduler/notify.json`; Kubernetes: NOTIFY_ENV (the URL from a Secret).
 * Kubernetes with `monitoring.pushgatewayUrl` (PUSHGATEWAY_ENV): the same outcomes as metrics pushed
 * to the Pushgateway (lib/notify/job-metrics.ts) for the alert rules.
 * A notification or push that cannot be delivered is logged; the job's outcome stays its own.
 *
 * Logs: plain lines, or one JSON object a line with `LOOMWORKS_LOG_FORMAT=json` (lib/ops/log.ts);
 * secrets are redacted either way. Exit code 0 on success, 1 on failure (the message on stderr).
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { expireBackups, syncBackups, takeBackup, verifyRepository } from "../../lib/backup/backups";
import { acquirePidFile, readClusterFile } from "../../lib/backup/daemon";
import { runScheduler } from "../../lib/backup/scheduler";
import { pruneUndoLogs } from "../../lib/guards/tenant";
import { operatorAdminDsn } from "../../lib/ops/connect";
import { createJobLogger, logFormatFromEnv, type JobLogger } from "../../lib/ops/log";
import { notifyAll, notifyOnFailure, notifyRestore, storageNotifications } from "../../lib/notify/events";
import { pushStorageMetrics, withOutcomeMetrics } from "../../lib/notify/job-metrics";
import type { MetricsPusher } from "../../lib/notify/metrics";
import { metricsPusherFromEnv, notifierFrom } from "../../lib/notify/settings";
import type { Notifier } from "../../lib/notify/webhook";
import { localClusterLayout, type LocalClusterSpec } from "../../lib/pg/cluster";
import { clusterPaths } from "../../lib/pg/paths";
import {
  POSTGRES_USER,
  cipherPassFromConf,
  secretsFromConf,
  type BackupType,
  type PgBackRestTarget,
} from "../../lib/pg/pgbackrest";
import { runBackupCommand } from "../../lib/pg/repositories";
import { mustRun } from "../../lib/process/run";
import { checkStorage } from "../../lib/quota/storage";
import { restoreTenant, type RestoreResult, type RestoreTarget } from "../../lib/restore";
import type { TenantState } from "../../lib/registry/tenantState";
import { takeAutoSnapshots } from "../../lib/snapshot/runtime";
import { prepareSparesOfAllTemplates } from "../../lib/tenant/spares";

const COMMANDS = [
  "backup",
  "expire",
  "verify",
  "sync",
  "snapshot-auto",
  "quota-check",
  "scheduler",
  "restore",
  "spares",
] as const;
type Command = (typeof COMMANDS)[number];

const USAGE =
  `usage: jobs.js <${COMMANDS.join("|")}> [--state-dir DIR] [--type full|diff|incr] [--tenant SUBDOMAIN ...] ` +
  "[--undo-retention-days N] [--count N] [--filestore-root DIR] [--snapshot-root DIR]\n" +
  "       jobs.js restore --tenant SUB --database DB --role ROLE (--time T | --lsn L | --snapshot NAME " +
  "[--snapshot-lsn L]) --pgbackrest-config PATH --scratch-dir DIR --filestore-root DIR [--tenant-state S]";

/** Environment of the Kubernetes mode (set by components/kubernetes/OpsJobs.ts and RestoreJob.ts). */
export const KUBERNETES_ENV = {
  /** `postgres://postgres@<host>:5432/postgres`: no password. */
  adminDsn: "LOOMWORKS_ADMIN_DSN",
  /** The superuser's password (secretKeyRef), added to the DSN in memory. */
  password: "PGPASSWORD",
  stanza: "LOOMWORKS_STANZA",
  /** pgbackrest.conf where pgBackRest runs (inside the PostgreSQL pod for the scheduled jobs). */
  pgbackrestConfig: "LOOMWORKS_PGBACKREST_CONFIG",
  /** The repository's passphrase (secretKeyRef; only so that it is redacted from every line). */
  cipherPass: "LOOMWORKS_BACKUP_CIPHER_PASS",
  retentionFull: "LOOMWORKS_RETENTION_FULL",
  filestoreRoot: "LOOMWORKS_FILESTORE_ROOT",
  snapshotRoot: "LOOMWORKS_SNAPSHOT_ROOT",
} as const;

/**
 * Jobs authenticate by peer (unix socket) and never use the superuser password; the cluster
 * spec requires one, so they carry this stand-in (long and distinctive: it is also "redacted").
 */
const NO_PASSWORD = "(unused: jobs authenticate as postgres by peer over the unix socket)";

interface Args {
  command: Command;
  /** Absent: Kubernetes mode. */
  stateDir?: string;
  type: BackupType;
  /** quota-check: only these tenants (default: all); restore: the one tenant. */
  tenants: string[];
  /** quota-check: also prune the undo log of operations ended this many days ago. */
  undoRetentionDays?: number;
  /** spares: ready spares to keep per template (default 1). */
  spareCount?: number;
  filestoreRoot?: string;
  snapshotRoot?: string;
  restore: {
    database?: string;
    role?: string;
    target: RestoreTarget;
    snapshotLsn?: string;
    pgbackrestConfig?: string;
    scratchDir?: string;
    tenantState?: TenantState;
  };
}

const VALUE_OPTIONS: Record<string, (a: Args, v: string) => void> = {
  "--state-dir": (a, v) => (a.stateDir = path.resolve(v)),
  "--filestore-root": (a, v) => (a.filestoreRoot = path.resolve(v)),
  "--snapshot-root": (a, v) => (a.snapshotRoot = path.resolve(v)),
  "--database": (a, v) => (a.restore.database = v),
  "--role": (a, v) => (a.restore.role = v),
  "--time": (a, v) => (a.restore.target.time = v),
  "--lsn": (a, v) => (a.restore.target.lsn = v),
  "--snapshot": (a, v) => (a.restore.target.snapshot = v),
  "--snapshot-lsn": (a, v) => (a.restore.snapshotLsn = v),
  "--pgbackrest-config": (a, v) => (a.restore.pgbackrestConfig = path.resolve(v)),
  "--scratch-dir": (a, v) => (a.restore.scratchDir = path.resolve(v)),
  "--tenant": (a, v) => a.tenants.push(v),
  "--type": (a, v) => {
    if (v !== "full" && v !== "diff" && v !== "incr")
      throw new Error(`--type must be full, diff or incr\n${USAGE}`);
    a.type = v;
  },
  "--undo-retention-days": (a, v) => {
    const days = Number(v);
    if (!Number.isInteger(days) || days < 1)
      throw new Error(`--undo-retention-days needs a whole number of days >= 1\n${USAGE}`);
    a.undoRetentionDays = days;
  },
  "--count": (a, v) => {
    const count = Number(v);
    if (!Number.isInteger(count) || count < 1) throw new Error(`--count needs a whole number >= 1\n${USAGE}`);
    a.spareCount = count;
  },
  "--tenant-state": (a, v) => {
    if (v !== "active" && v !== "suspended" && v !== "archived")
      throw new Error(`--tenant-state must be active, suspended or archived\n${USAGE}`);
    a.restore.tenantState = v;
  },
};

function parseArgs(argv: string[], env: NodeJS.ProcessEnv): Args {
  const command = argv[0] as Command;
  if (!COMMANDS.includes(command)) throw new Error(USAGE);
  const args: Args = { command, type: "diff", tenants: [], restore: { target: {} } };
  for (let i = 1; i < argv.length; i++) {
    const option = VALUE_OPTIONS[argv[i]];
    if (!option) throw new Error(`unknown argument ${JSON.stringify(argv[i])}\n${USAGE}`);
    const value = argv[++i];
    if (value === undefined || value === "") throw new Error(`${argv[i - 1]} needs a value\n${USAGE}`);
    option(args, value);
  }
  const kubernetes = !args.stateDir && Boolean(env[KUBERNETES_ENV.adminDsn]);
  if (command === "scheduler" && !args.stateDir) throw new Error(`--state-dir is required\n${USAGE}`);
  if (command !== "restore" && !args.stateDir && !kubernetes) {
    throw new Error(`--state-dir is required (or ${KUBERNETES_ENV.adminDsn} on Kubernetes)\n${USAGE}`);
  }
  return args;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name} is required in the Kubernetes mode (no --state-dir)`);
  return value;
}

/** The admin DSN with the password from `PGPASSWORD` when the DSN has none (never printed). */
export function kubernetesAdminDsn(env: NodeJS.ProcessEnv): string {
  const url = new URL(required(env, KUBERNETES_ENV.adminDsn));
  const password = env[KUBERNETES_ENV.password];
  if (!url.password && password) url.password = encodeURIComponent(password);
  return url.toString();
}

/**
 * lib/backup locates pgbackrest.conf as `<stateDir>/pgbackrest/pgbackrest.conf`; the PostgreSQL
 * image keeps it at /etc/pgbackrest/pgbackrest.conf, i.e. "stateDir" /etc for that purpose only
 * (nothing else of the spec's layout is touched by the jobs that use it: pgBackRest runs in the
 * PostgreSQL pod, which has the data directory).
 */
export function stateDirForPgBackRestConfig(config: string): string {
  const dir = path.dirname(config);
  if (path.basename(config) !== "pgbackrest.conf" || path.basename(dir) !== "pgbackrest") {
    throw new Error(
      `${KUBERNETES_ENV.pgbackrestConfig} must be <dir>/pgbackrest/pgbackrest.conf (got ${config})`,
    );
  }
  return path.dirname(dir);
}

interface JobContext {
  spec: LocalClusterSpec;
  adminDsn: string;
  pgbackrest: PgBackRestTarget;
  filestoreRoot: string;
  snapshotRoot: string;
  /** The local target: the server's data directory is here (Kubernetes: inside the PostgreSQL pod). */
  local: boolean;
}

/** The cluster spec and admin DSN of a job (local: peer authentication over the socket). */
async function jobContext(args: Args, env: NodeJS.ProcessEnv, log: JobLogger): Promise<JobContext> {
  if (!args.stateDir) return kubernetesContext(args, env, log, await readableConfSecrets(env));
  const cluster = await readClusterFile(args.stateDir);
  const conf = await fs.readFile(clusterPaths(cluster.stateDir).pgbackrestConf, "utf8");
  const passphrase = cipherPassFromConf(conf);
  const confSecrets = secretsFromConf(conf);
  log.addSecrets(...confSecrets);
  const spec: LocalClusterSpec = {
    stateDir: cluster.stateDir,
    port: cluster.port,
    archiveTimeoutSeconds: cluster.archiveTimeoutSeconds,
    superuserPassword: NO_PASSWORD,
    stanza: cluster.stanza,
    retentionFull: cluster.retentionFull,
    ...(passphrase ? { encryptionPassphrase: passphrase } : {}),
  };
  const { paths, pgbackrest } = localClusterLayout(spec);
  return {
    spec,
    adminDsn: await operatorAdminDsn(args.stateDir),
    // The offsite repository's keys too (the spec names only repo1's passphrase).
    pgbackrest: { ...pgbackrest, secrets: [...(pgbackrest.secrets ?? []), ...confSecrets] },
    filestoreRoot: args.filestoreRoot ?? paths.filestoreDir,
    snapshotRoot: args.snapshotRoot ?? path.join(paths.stateDir, "snapshots"),
    local: true,
  };
}

/**
 * The secrets of pgbackrest.conf where the job can read it (the docker ops container: the offsite
 * repository's keys and passphrase, which pgBackRest's errors may echo, e.g. an S3 error body
 * naming the access key); none where it is in another pod (kubernetes).
 */
async function readableConfSecrets(env: NodeJS.ProcessEnv): Promise<string[]> {
  const config = env[KUBERNETES_ENV.pgbackrestConfig] || "/etc/pgbackrest/pgbackrest.conf";
  const conf = await fs.readFile(config, "utf8").catch(() => "");
  return secretsFromConf(conf);
}

function kubernetesContext(
  args: Args,
  env: NodeJS.ProcessEnv,
  log: JobLogger,
  confSecrets: string[],
): JobContext {
  const cipherPass = env[KUBERNETES_ENV.cipherPass] ?? "";
  log.addSecrets(env[KUBERNETES_ENV.password] ?? "", cipherPass, ...confSecrets);
  const adminDsn = kubernetesAdminDsn(env);
  const config = env[KUBERNETES_ENV.pgbackrestConfig] || "/etc/pgbackrest/pgbackrest.conf";
  const spec: LocalClusterSpec = {
    stateDir: stateDirForPgBackRestConfig(config),
    port: Number(new URL(adminDsn).port || "5432"),
    archiveTimeoutSeconds: 60,
    superuserPassword: NO_PASSWORD,
    stanza: required(env, KUBERNETES_ENV.stanza),
    retentionFull: Number(env[KUBERNETES_ENV.retentionFull] || "2"),
    ...(cipherPass ? { encryptionPassphrase: cipherPass } : {}),
  };
  const { pgbackrest } = localClusterLayout(spec);
  const filestoreRoot = args.filestoreRoot ?? env[KUBERNETES_ENV.filestoreRoot] ?? "";
  return {
    spec,
    adminDsn,
    pgbackrest: { ...pgbackrest, secrets: [...(pgbackrest.secrets ?? []), ...confSecrets] },
    filestoreRoot,
    snapshotRoot: args.snapshotRoot ?? env[KUBERNETES_ENV.snapshotRoot] ?? "",
    local: false,
  };
}

function needDir(value: string, what: string): string {
  if (!value)
    throw new Error(
      `${what} is required (--${what} or ${KUBERNETES_ENV.filestoreRoot}/${KUBERNETES_ENV.snapshotRoot})`,
    );
  return value;
}

async function snapshotAuto(ctx: JobContext, log: JobLogger): Promise<number> {
  const list = await takeAutoSnapshots(
    ctx.adminDsn,
    {
      filestoreRoot: needDir(ctx.filestoreRoot, "filestore-root"),
      snapshotRoot: needDir(ctx.snapshotRoot, "snapshot-root"),
      pgbackrest: ctx.pgbackrest,
    },
    log,
  );
  const failed = list.filter((r) => r.error);
  log(`auto snapshots: ${list.length - failed.length} tenants ok, ${failed.length} failed`, {
    ok: list.length - failed.length,
    failed: failed.length,
  });
  for (const f of failed)
    log.error(`auto snapshot of ${f.subdomain ?? "?"} failed: ${f.error}`, { tenant: f.subdomain });
  return failed.length > 0 ? 1 : 0;
}

interface Reporters {
  notifier: Notifier;
  /** Kubernetes with `monitoring.pushgatewayUrl`: the metrics the alert rules read; else silent. */
  metrics: MetricsPusher;
}

async function quotaCheck(ctx: JobContext, args: Args, log: JobLogger, report: Reporters): Promise<number> {
  // The undo log first: what it frees counts in the storage measure only once it is gone.
  const pruneFailures =
    args.undoRetentionDays === undefined
      ? []
      : (await pruneUndoLogs(ctx.adminDsn, args.undoRetentionDays, log)).filter((r) => r.error);
  for (const f of pruneFailures)
    log.error(`undo log pruning of ${f.subdomain} failed: ${f.error}`, { tenant: f.subdomain });
  const list = await checkStorage(
    ctx.adminDsn,
    {
      filestoreRoot: needDir(ctx.filestoreRoot, "filestore-root"),
      ...(args.tenants.length > 0 ? { subdomains: args.tenants } : {}),
    },
    log,
  );
  await notifyAll(report.notifier, storageNotifications(list));
  // The group is replaced as a whole: only a run over every tenant may push it.
  if (args.tenants.length === 0) await pushStorageMetrics(report.metrics, list);
  const failed = list.filter((r) => r.error);
  for (const r of list) {
    if (r.error) continue;
    const max = r.maxBytes ? ` of ${r.maxBytes} (${r.percent} %)` : " (no limit)";
    log(`${r.subdomain}: ${r.bytes} bytes${max}: ${r.state}`, {
      tenant: r.subdomain,
      bytes: r.bytes,
      maxBytes: r.maxBytes,
      state: r.state,
    });
  }
  log(`quota check: ${list.length - failed.length} tenants ok, ${failed.length} failed`, {
    ok: list.length - failed.length,
    failed: failed.length,
  });
  for (const f of failed)
    log.error(`quota check of ${f.subdomain} failed: ${f.error}`, { tenant: f.subdomain });
  return failed.length + pruneFailures.length > 0 ? 1 : 0;
}

async function backup(ctx: JobContext, type: BackupType, log: JobLogger): Promise<void> {
  let label: string;
  if (ctx.local) {
    label = (await takeBackup(ctx.spec, ctx.adminDsn, type, log)).backup.label;
  } else {
    // takeBackup first checks the local data directory; on Kubernetes the server runs in its own pod.
    log(`pgBackRest: ${type} backup of stanza ${ctx.spec.stanza}`);
    label = (await runBackupCommand(ctx.pgbackrest, type)).label;
    await syncBackups(ctx.spec, ctx.adminDsn);
  }
  await expireBackups(ctx.spec, ctx.adminDsn, log);
  log(`backup ${label} (${type}) recorded`, { backup: label, type });
}

/**
 * The restore Job's pgbackrest.conf: the mounted one with its spool, lock and log paths moved into
 * the scratch directory (they point into the PostgreSQL pod's filesystem, read-only here).
 */
export function restoreJobPgBackRestConf(source: string, scratchDir: string): string {
  const dirs: Record<string, string> = { "spool-path": "spool", "lock-path": "lock", "log-path": "log" };
  let out = source;
  for (const [key, sub] of Object.entries(dirs)) {
    const line = `${key}=${path.join(scratchDir, "pgbackrest", sub)}`;
    const re = new RegExp(`^${key}=.*$`, "m");
    out = re.test(out) ? out.replace(re, line) : out.replace(/^\[global\]$/m, `[global]\n${line}`);
  }
  return out;
}

/** Run as root (not in the restore Job), pgBackRest runs as postgres: it must own its configuration. */
async function giveToPostgresWhenRoot(dir: string): Promise<void> {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return;
  const uid = Number((await mustRun("id", ["-u", POSTGRES_USER])).stdout.trim());
  const gid = Number((await mustRun("id", ["-g", POSTGRES_USER])).stdout.trim());
  for (const entry of [dir, ...(await fs.readdir(dir)).map((e) => path.join(dir, e))]) {
    await fs.chown(entry, uid, gid);
  }
}

/** The restore Job's work: its pgBackRest configuration in the scratch directory, then restoreTenant. */
async function restoreInJob(
  args: Args,
  env: NodeJS.ProcessEnv,
  log: JobLogger,
  subdomain: string,
): Promise<RestoreResult> {
  const r = args.restore;
  const scratchDir = r.scratchDir as string;
  const source = await fs.readFile(r.pgbackrestConfig as string, "utf8");
  log.addSecrets(...secretsFromConf(source), env[KUBERNETES_ENV.password] ?? "");
  // restoreTenant reads `<stateDir>/pgbackrest/pgbackrest.conf` and scratches under `<stateDir>/restore`.
  const conf = clusterPaths(scratchDir).pgbackrestConf;
  await fs.mkdir(scratchDir, { recursive: true, mode: 0o755 });
  for (const sub of ["spool", "lock", "log"]) {
    await fs.mkdir(path.join(path.dirname(conf), sub), { recursive: true, mode: 0o700 });
  }
  await fs.writeFile(conf, restoreJobPgBackRestConf(source, scratchDir), { mode: 0o600 });
  await giveToPostgresWhenRoot(path.dirname(conf));
  return restoreTenant({
    adminDsn: kubernetesAdminDsn(env),
    stateDir: scratchDir,
    stanza: required(env, KUBERNETES_ENV.stanza),
    subdomain,
    database: r.database as string,
    roleName: r.role as string,
    target: r.target,
    ...(r.snapshotLsn ? { snapshotLsn: r.snapshotLsn } : {}),
    ...(r.tenantState ? { tenantState: r.tenantState } : {}),
    filestoreRoot: args.filestoreRoot as string,
    // The declared restore's Job: Kubernetes re-runs it when its pod template changes.
    oncePerTarget: true,
    log,
  });
}

async function restore(args: Args, env: NodeJS.ProcessEnv, log: JobLogger, report: Reporters): Promise<void> {
  const r = args.restore;
  const subdomain = args.tenants.length === 1 ? args.tenants[0] : undefined;
  const missing = [
    subdomain ? "" : "--tenant (exactly one)",
    r.database ? "" : "--database",
    r.role ? "" : "--role",
    r.pgbackrestConfig ? "" : "--pgbackrest-config",
    r.scratchDir ? "" : "--scratch-dir",
    args.filestoreRoot ? "" : "--filestore-root",
  ].filter(Boolean);
  if (missing.length > 0 || !subdomain) throw new Error(`restore needs ${missing.join(", ")}\n${USAGE}`);
  await withOutcomeMetrics(report.metrics, "restore", { tenant: subdomain }, async () => {
    const result = await notifyRestore(
      report.notifier,
      { subdomain, target: r.target },
      () => restoreInJob(args, env, log, subdomain),
      log.redact,
    );
    log(`restore ${result.id} of ${result.subdomain}: ${result.state}`, {
      restore: result.id,
      tenant: result.subdomain,
      state: result.state,
      targetLsn: result.targetLsn,
      backup: result.backup,
      preRestoreDatabase: result.preRestoreDatabase,
      totalMs: result.timings.totalMs,
    });
    if (result.state !== "done") throw new Error(`restore ${result.id} ended ${result.state}`);
  });
}

async function schedulerDaemon(stateDir: string, log: JobLogger): Promise<void> {
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

/** The job's notifier: local, the scheduler's notify.json (`--state-dir`); Kubernetes, the environment. */
function jobNotifier(args: Args, env: NodeJS.ProcessEnv, log: JobLogger): Promise<Notifier> {
  return notifierFrom(args.stateDir ? { stateDir: args.stateDir } : { env }, log, (url) =>
    log.addSecrets(url),
  );
}

async function run(args: Args, env: NodeJS.ProcessEnv, log: JobLogger): Promise<number | void> {
  if (args.command === "scheduler") return schedulerDaemon(args.stateDir as string, log);
  const notifier = await jobNotifier(args, env, log);
  const report: Reporters = { notifier, metrics: metricsPusherFromEnv(env, log) };
  switch (args.command) {
    case "restore":
      return restore(args, env, log, report);
    case "backup":
      return withOutcomeMetrics(report.metrics, "backup", { type: args.type }, () =>
        notifyOnFailure(
          notifier,
          "backup.failed",
          { type: args.type },
          async () => backup(await jobContext(args, env, log), args.type, log),
          log.redact,
        ),
      );
    case "verify":
      return withOutcomeMetrics(report.metrics, "verify", {}, () =>
        notifyOnFailure(
          notifier,
          "verify.failed",
          {},
          async () => {
            const summary = await verifyRepository((await jobContext(args, env, log)).spec);
            log(summary.text, { backups: summary.backups.length, walSegments: summary.walSegments });
          },
          log.redact,
        ),
      );
    default:
  }
  const ctx = await jobContext(args, env, log);
  switch (args.command) {
    case "snapshot-auto":
      return snapshotAuto(ctx, log);
    case "spares": {
      const count = args.spareCount ?? 1;
      const made = await prepareSparesOfAllTemplates(ctx.adminDsn, log, count);
      log(
        `spares: ${made.filter((m) => m.ready >= count).length} of ${made.length} template(s) have ${count}; ` +
          `${made.filter((m) => m.made).length} topped up now`,
        { templates: made.map((m) => m.template), made: made.filter((m) => m.made).map((m) => m.spare) },
      );
      return;
    }
    case "quota-check":
      return quotaCheck(ctx, args, log, report);
    case "expire":
      await expireBackups(ctx.spec, ctx.adminDsn, log);
      return;
    case "sync": {
      const sync = await syncBackups(ctx.spec, ctx.adminDsn);
      log(
        `${sync.backups.length} backups recorded; new ${sync.added.length}, expired ${sync.removed.length}`,
        {
          backups: sync.backups.length,
          added: sync.added,
          removed: sync.removed,
        },
      );
      return;
    }
  }
}

async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const job = argv[0] ?? "";
  let format: ReturnType<typeof logFormatFromEnv> = "text";
  let formatProblem: Error | undefined;
  try {
    format = logFormatFromEnv(env);
  } catch (err) {
    formatProblem = err as Error;
  }
  const log = createJobLogger({ job, format });
  try {
    if (formatProblem) throw formatProblem;
    return (await run(parseArgs(argv, env), env, log)) ?? 0;
  } catch (err) {
    const message = (err as Error).message;
    // The plain format keeps the historical `jobs.js <command>: <message>` (no time stamp).
    if (format === "text") process.stderr.write(`jobs.js ${job}: ${log.redact(message)}\n`);
    else log.error(message);
    return 1;
  }
}

// Run as a program (not when a test imports the helpers above).
if (typeof require !== "undefined" && require.main === module) {
  void main(process.argv.slice(2), process.env).then((code) => {
    process.exitCode = code;
  });
}
