import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { BackupSchedule } from "../lib/backup/schedule-defaults";

/**
 * The local target's scheduler daemon (lib/backup/daemon.ts does the work): scheduled full and
 * diff backups (each followed by `expire`), `verify`, and runtime auto snapshots, run by
 * `node bin/infra/ops/jobs.js scheduler` detached from `pulumi up`. create writes
 * `<stateDir>/scheduler/schedule.json` and `cluster.json` and starts the daemon; update rewrites
 * them (the daemon re-reads the schedule on every tick) and starts it when stopped; `refresh`
 * reports `running: false` when its process is gone; delete stops it and removes the directory.
 */
export interface LocalSchedulerArgs {
  stateDir: pulumi.Input<string>;
  port: pulumi.Input<number>;
  stanza: pulumi.Input<string>;
  archiveTimeoutSeconds: pulumi.Input<number>;
  retentionFull: pulumi.Input<number>;
  /** Cron expressions (UTC); see DEFAULT_BACKUP_SCHEDULE in lib/backup/schedule-defaults.ts. */
  schedule: pulumi.Input<BackupSchedule>;
  /** Cron (UTC) of the storage quota check (default every 10 minutes). */
  quotaCheck?: pulumi.Input<string>;
  /** Days the undo log of ended AI operations is kept (pruned by the quota check). */
  undoRetentionDays?: pulumi.Input<number>;
}

export interface LocalSchedulerInputs {
  stateDir: string;
  port: number;
  stanza: string;
  archiveTimeoutSeconds: number;
  retentionFull: number;
  schedule: BackupSchedule;
  quotaCheck?: string;
  undoRetentionDays?: number;
}

export interface LocalSchedulerOutputs extends LocalSchedulerInputs {
  running: boolean;
  pid: number;
  scheduleFile: string;
  jobsLog: string;
}

/** Compiled program: bin/dynamic-providers -> bin/lib/backup/*.js and bin/infra/ops/jobs.js. Only strings are captured. */
const DAEMON_MODULE = path.join(__dirname, "..", "lib", "backup", "daemon");
const DEFAULTS_MODULE = path.join(__dirname, "..", "lib", "backup", "schedule-defaults");
const PATHS_MODULE = path.join(__dirname, "..", "lib", "pg", "paths");
const CRON_MODULE = path.join(__dirname, "..", "lib", "backup", "cron");
const JOBS_SCRIPT = path.join(__dirname, "..", "infra", "ops", "jobs.js");

async function apply(inputs: LocalSchedulerInputs): Promise<LocalSchedulerOutputs> {
  const daemon: typeof import("../lib/backup/daemon") = require(DAEMON_MODULE);
  const defaults: typeof import("../lib/backup/schedule-defaults") = require(DEFAULTS_MODULE);
  const pgPaths: typeof import("../lib/pg/paths") = require(PATHS_MODULE);
  const stateDir = pgPaths.clusterPaths(inputs.stateDir).stateDir;
  const jobs = defaults.platformJobs({
    stateDir,
    schedule: defaults.effectiveSchedule(inputs.schedule),
    jobsScript: JOBS_SCRIPT,
    ...(inputs.quotaCheck ? { quotaCheck: inputs.quotaCheck } : {}),
    ...(inputs.undoRetentionDays ? { undoRetentionDays: inputs.undoRetentionDays } : {}),
  });
  const paths = await daemon.writeSchedulerFiles(stateDir, jobs, {
    stateDir,
    port: inputs.port,
    stanza: inputs.stanza,
    archiveTimeoutSeconds: inputs.archiveTimeoutSeconds,
    retentionFull: inputs.retentionFull,
    socketDir: pgPaths.clusterPaths(stateDir).socketDir,
  });
  const status = await daemon.startDaemon(stateDir, { jobsScript: JOBS_SCRIPT });
  return {
    ...inputs,
    running: status.running,
    pid: status.pid ?? 0,
    scheduleFile: paths.scheduleFile,
    jobsLog: paths.jobsLog,
  };
}

const localSchedulerProvider: pulumi.dynamic.ResourceProvider<LocalSchedulerInputs, LocalSchedulerOutputs> = {
  async check(_olds, news) {
    const cron: typeof import("../lib/backup/cron") = require(CRON_MODULE);
    const failures: pulumi.dynamic.CheckFailure[] = [];
    for (const [key, expr] of Object.entries(news.schedule ?? {})) {
      const problem = cron.cronProblem(String(expr));
      if (problem) failures.push({ property: `schedule.${key}`, reason: problem });
    }
    return { inputs: news, failures };
  },

  async create(inputs) {
    const outs = await apply(inputs);
    return { id: `local-scheduler:${outs.scheduleFile}`, outs };
  },

  async read(id, props) {
    const daemon: typeof import("../lib/backup/daemon") = require(DAEMON_MODULE);
    if (!props) return { id, props };
    const status = await daemon.daemonStatus(props.stateDir);
    return { id, props: { ...props, running: status.running, pid: status.pid ?? 0 } };
  },

  async diff(_id, olds, news) {
    const pgPaths: typeof import("../lib/pg/paths") = require(PATHS_MODULE);
    const moved =
      pgPaths.clusterPaths(olds.stateDir).stateDir !== pgPaths.clusterPaths(news.stateDir).stateDir;
    const changed =
      moved ||
      olds.port !== news.port ||
      olds.stanza !== news.stanza ||
      olds.archiveTimeoutSeconds !== news.archiveTimeoutSeconds ||
      olds.retentionFull !== news.retentionFull ||
      JSON.stringify(olds.schedule) !== JSON.stringify(news.schedule);
    const replaces = moved ? ["stateDir"] : [];
    return { changes: changed || olds.running === false, replaces, deleteBeforeReplace: true };
  },

  async update(_id, _olds, news) {
    return { outs: await apply(news) };
  },

  async delete(_id, props) {
    const daemon: typeof import("../lib/backup/daemon") = require(DAEMON_MODULE);
    await daemon.removeScheduler(props.stateDir);
  },
};

export class LocalScheduler extends pulumi.dynamic.Resource {
  declare readonly stateDir: pulumi.Output<string>;
  declare readonly schedule: pulumi.Output<BackupSchedule>;
  /** False after `refresh` when the daemon's process is gone (the next `up` starts it). */
  declare readonly running: pulumi.Output<boolean>;
  declare readonly pid: pulumi.Output<number>;
  declare readonly scheduleFile: pulumi.Output<string>;
  declare readonly jobsLog: pulumi.Output<string>;

  constructor(name: string, args: LocalSchedulerArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      localSchedulerProvider,
      name,
      { ...args, running: undefined, pid: undefined, scheduleFile: undefined, jobsLog: undefined },
      opts,
      "loomworks",
      "LocalScheduler",
    );
  }
}
