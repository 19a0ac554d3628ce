import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type * as BackupProvider from "../lib/backup/provider";
import type * as DaemonLib from "../lib/backup/daemon";
import type * as ScheduleDefaults from "../lib/backup/schedule-defaults";
import type { BackupSchedule, SparesJob } from "../lib/backup/schedule-defaults";
import type { NotifySettings } from "../lib/notify/settings";
import type * as PgPaths from "../lib/pg/paths";
import { libModule, providerStub } from "../lib/pulumi/lazyModule";

/**
 * The local target's scheduler daemon (lib/backup/daemon.ts does the work): scheduled full and
 * diff backups (each followed by `expire`), `verify`, and runtime auto snapshots, run by
 * `node bin/infra/ops/jobs.js scheduler` detached from `pulumi up`. create writes
 * `<stateDir>/scheduler/schedule.json` and `cluster.json` and starts the daemon; update rewrites
 * them (the daemon re-reads the schedule on every tick) and starts it when stopped; `notify` (the
 * webhook, a secret in the state) goes to `notify.json`, which each job reads; `refresh`
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
  /** `platform.provisioning`: the `spares` job (absent: none, and no such input in the state). */
  spares?: pulumi.Input<SparesJob>;
  /** `platform.notify` with a webhook (secret: the URL may carry a token). */
  notify?: pulumi.Input<NotifySettings>;
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
  spares?: SparesJob;
  notify?: NotifySettings;
}

export interface LocalSchedulerOutputs extends LocalSchedulerInputs {
  running: boolean;
  pid: number;
  scheduleFile: string;
  jobsLog: string;
}

const daemons = libModule<typeof DaemonLib>("backup/daemon");
const scheduleDefaults = libModule<typeof ScheduleDefaults>("backup/schedule-defaults");
const pgPaths = libModule<typeof PgPaths>("pg/paths");
const support = libModule<typeof BackupProvider>("backup/provider");
/** Compiled program: bin/dynamic-providers -> bin/infra/ops/jobs.js (only the path is captured). */
const JOBS_SCRIPT = path.join(__dirname, "..", "infra", "ops", "jobs.js");

async function apply(inputs: LocalSchedulerInputs): Promise<LocalSchedulerOutputs> {
  const daemon = daemons();
  const defaults = scheduleDefaults();
  const { clusterPaths } = pgPaths();
  const stateDir = clusterPaths(inputs.stateDir).stateDir;
  const jobs = defaults.platformJobs({
    stateDir,
    schedule: defaults.effectiveSchedule(inputs.schedule),
    jobsScript: JOBS_SCRIPT,
    ...(inputs.quotaCheck ? { quotaCheck: inputs.quotaCheck } : {}),
    ...(inputs.undoRetentionDays ? { undoRetentionDays: inputs.undoRetentionDays } : {}),
    ...(inputs.spares ? { spares: inputs.spares } : {}),
  });
  const paths = await daemon.writeSchedulerFiles(stateDir, jobs, {
    stateDir,
    port: inputs.port,
    stanza: inputs.stanza,
    archiveTimeoutSeconds: inputs.archiveTimeoutSeconds,
    retentionFull: inputs.retentionFull,
    socketDir: clusterPaths(stateDir).socketDir,
  });
  await daemon.writeNotifyFile(stateDir, inputs.notify);
  const status = await daemon.startDaemon(stateDir, { jobsScript: JOBS_SCRIPT });
  return {
    ...inputs,
    running: status.running,
    pid: status.pid ?? 0,
    scheduleFile: paths.scheduleFile,
    jobsLog: paths.jobsLog,
  };
}

export const localSchedulerProvider: pulumi.dynamic.ResourceProvider<
  LocalSchedulerInputs,
  LocalSchedulerOutputs
> = {
  async check(_olds, news) {
    return { inputs: news, failures: support().checkLocalScheduler(news) };
  },

  async create(inputs) {
    const outs = await apply(inputs);
    return { id: `local-scheduler:${outs.scheduleFile}`, outs };
  },

  async read(id, props) {
    if (!props) return { id, props };
    const status = await daemons().daemonStatus(props.stateDir);
    return { id, props: { ...props, running: status.running, pid: status.pid ?? 0 } };
  },

  async diff(_id, olds, news) {
    return support().diffLocalScheduler({ ...olds }, { ...news });
  },

  async update(_id, _olds, news) {
    return { outs: await apply(news) };
  },

  async delete(_id, props) {
    await daemons().removeScheduler(props.stateDir);
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
      providerStub(localSchedulerProvider, __filename, "localSchedulerProvider"),
      name,
      { ...args, running: undefined, pid: undefined, scheduleFile: undefined, jobsLog: undefined },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "notify"] },
      "loomworks",
      "LocalScheduler",
    );
  }
}
