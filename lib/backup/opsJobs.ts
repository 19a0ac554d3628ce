/**
 * The platform's scheduled jobs as the ops image runs them (docker/ops/Dockerfile): one job per
 * `node bin/infra/ops/jobs.js <command>` in the environment mode (no `--state-dir`: the settings
 * come from the environment). The Kubernetes target makes each a CronJob
 * (components/kubernetes/OpsJobs.ts); the Docker target's ops container runs the same list in the
 * scheduler daemon (scheduler.ts) through `opsScheduledJobs`. Same `platform.backups.schedule`
 * shape and defaults as the local target's `platformJobs` (schedule-defaults.ts), UTC.
 */
import {
  DEFAULT_QUOTA_CHECK_SCHEDULE,
  SPARES_TIMEOUT_MINUTES,
  effectiveSchedule,
  sparesJob,
  type BackupSchedule,
  type ScheduledJob,
  type SparesJob,
} from "./schedule-defaults";

/** The ops image's layout (docker/ops/Dockerfile; test/unit/ops-image-lint.test.ts checks both agree). */
export const OPS_IMAGE = {
  workdir: "/opt/loomworks",
  jobsScript: "bin/infra/ops/jobs.js",
  /** LOOMWORKS_PGBACKREST of the Kubernetes CronJobs: pgbackrest inside the PostgreSQL pod. */
  pgbackrestWrapper: "/usr/local/bin/pgbackrest-in-postgres-pod",
  /** The image's user: postgres of the PostgreSQL image (restores run a scratch PostgreSQL). */
  uid: 999,
  gid: 999,
} as const;

/** Records the repository's backups in the registry: hourly at :30 by default. */
export const DEFAULT_SYNC_SCHEDULE = "30 * * * *";

const HOUR = 3600;

/** One scheduled job: its name, arguments and bounds. */
export interface OpsJobSpec {
  job: string;
  schedule: string;
  args: string[];
  /** The job's time limit (the local scheduler's timeout for the same job). */
  deadlineSeconds: number;
  /** How late a missed run may still start (below the job's period, so runs never pile up). */
  startingDeadlineSeconds: number;
  backoffLimit: number;
  /** The job reads or writes the filestore (runs as its owner, the volume mounted). */
  filestore?: "read" | "write";
}

export interface OpsScheduleArgs {
  /** `platform.backups.schedule` (cron, UTC); unset keys take DEFAULT_BACKUP_SCHEDULE's. */
  schedule?: Partial<BackupSchedule>;
  /** `platform.quotas.checkSchedule` (default every 10 minutes). */
  quotaCheckSchedule?: string;
  /** `platform.undo.retentionDays`: the quota check prunes older undo logs. */
  undoRetentionDays: number;
  /** Default DEFAULT_SYNC_SCHEDULE. */
  syncSchedule?: string;
  /** `platform.provisioning`: a `spares` job when its count is above 0 (none otherwise). */
  spares?: SparesJob;
}

/**
 * The platform's scheduled jobs. `expire` has none of its own: every backup job runs it (as on the
 * local target). Backups may retry once (pgBackRest resumes an interrupted backup); the frequent
 * jobs never retry (the next run is minutes away). `spares` exists only with a count above 0, so
 * a stack without `platform.provisioning` gets exactly the jobs it had.
 */
export function opsJobSpecs(args: OpsScheduleArgs): OpsJobSpec[] {
  const s = effectiveSchedule(args.schedule);
  const spares = sparesJob(args.spares);
  return [
    {
      job: "backup-full",
      schedule: s.full,
      args: ["backup", "--type", "full"],
      deadlineSeconds: 6 * HOUR,
      startingDeadlineSeconds: HOUR,
      backoffLimit: 1,
    },
    {
      job: "backup-diff",
      schedule: s.diff,
      args: ["backup", "--type", "diff"],
      deadlineSeconds: 6 * HOUR,
      startingDeadlineSeconds: HOUR,
      backoffLimit: 1,
    },
    {
      job: "verify",
      schedule: s.verify,
      args: ["verify"],
      deadlineSeconds: 6 * HOUR,
      startingDeadlineSeconds: HOUR,
      backoffLimit: 0,
    },
    {
      job: "snapshot-auto",
      schedule: s.autoSnapshots,
      args: ["snapshot-auto"],
      deadlineSeconds: HOUR,
      startingDeadlineSeconds: 15 * 60,
      backoffLimit: 0,
      filestore: "write",
    },
    {
      job: "quota-check",
      schedule: args.quotaCheckSchedule ?? DEFAULT_QUOTA_CHECK_SCHEDULE,
      args: ["quota-check", "--undo-retention-days", String(args.undoRetentionDays)],
      deadlineSeconds: 30 * 60,
      startingDeadlineSeconds: 5 * 60,
      backoffLimit: 0,
      filestore: "read",
    },
    {
      job: "sync",
      schedule: args.syncSchedule ?? DEFAULT_SYNC_SCHEDULE,
      args: ["sync"],
      deadlineSeconds: 30 * 60,
      startingDeadlineSeconds: 15 * 60,
      backoffLimit: 0,
    },
    ...(spares
      ? [
          {
            job: "spares",
            schedule: spares.cron,
            args: spares.args,
            deadlineSeconds: SPARES_TIMEOUT_MINUTES * 60,
            // Below the default 5-minute period; a missed run is simply the next one's work.
            startingDeadlineSeconds: 4 * 60,
            backoffLimit: 0,
          },
        ]
      : []),
  ];
}

/**
 * The same jobs as the scheduler daemon's schedule.json (`<stateDir>/scheduler/schedule.json`): each
 * runs `node <workdir>/<jobsScript> <args>` in the ops image, killed after its deadline.
 */
export function opsScheduledJobs(args: OpsScheduleArgs, node = "node"): ScheduledJob[] {
  return opsJobSpecs(args).map((spec) => ({
    name: spec.job,
    cron: spec.schedule,
    command: [node, `${OPS_IMAGE.workdir}/${OPS_IMAGE.jobsScript}`, ...spec.args],
    timeoutMinutes: Math.ceil(spec.deadlineSeconds / 60),
  }));
}
