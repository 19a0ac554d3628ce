/**
 * The scheduled jobs of the local target and their default times (UTC, 5-field cron, see cron.ts).
 * `platform.backups.schedule` in the stack file overrides any of the four.
 */
import * as path from "node:path";
import { parseCron } from "./cron";

export interface BackupSchedule {
  /** Full backup (then `expire`). */
  full: string;
  /** Differential backup (then `expire`). */
  diff: string;
  /** `pgbackrest verify` of the whole repository. */
  verify: string;
  /** Runtime `auto` snapshots of every tenant. */
  autoSnapshots: string;
}

/** Default schedule of the storage quota check (`loomworks:platform.quotas.checkSchedule`). */
export const DEFAULT_QUOTA_CHECK_SCHEDULE = "*/10 * * * *";

/** Default schedule of the `spares` job (`loomworks:platform.provisioning.sparesSchedule`). */
export const DEFAULT_SPARES_SCHEDULE = "*/5 * * * *";

/** `platform.provisioning`: how many ready spares per template, and when the job tops them up. */
export interface SparesJob {
  /** Ready spares per template; 0: no job. */
  count: number;
  /** Cron (UTC); default DEFAULT_SPARES_SCHEDULE. */
  schedule?: string;
}

/**
 * `platform.provisioning` as the job lists take it, to spread into their options: nothing at all
 * when spares are off, so that such a stack's resources keep exactly their inputs.
 */
export function sparesOption(p: { spares: number; sparesSchedule?: string }): { spares?: SparesJob } {
  if (p.spares < 1) return {};
  return { spares: { count: p.spares, ...(p.sparesSchedule ? { schedule: p.sparesSchedule } : {}) } };
}

/** The `spares` job's cron and arguments, or undefined when spares are off (count 0 or unset). */
export function sparesJob(spares: SparesJob | undefined): { cron: string; args: string[] } | undefined {
  if (!spares || spares.count < 1) return undefined;
  return {
    cron: spares.schedule ?? DEFAULT_SPARES_SCHEDULE,
    args: ["spares", "--count", String(spares.count)],
  };
}

export const DEFAULT_BACKUP_SCHEDULE: Readonly<BackupSchedule> = Object.freeze({
  full: "0 1 * * 0", // Sunday 01:00
  diff: "0 1 * * 1-6", // Monday to Saturday 01:00
  verify: "0 3 * * 0", // Sunday 03:00, after the full backup
  autoSnapshots: "0 */6 * * *", // every 6 hours
});

/** Time limit of one `spares` run (a template copy each; a killed run is finished by the next). */
export const SPARES_TIMEOUT_MINUTES = 30;

/** One job of `<stateDir>/scheduler/schedule.json`. */
export interface ScheduledJob {
  /** Unique in the schedule: letters, digits, `-` and `_`. */
  name: string;
  /** 5-field cron expression, UTC. */
  cron: string;
  /** argv (run without a shell), or a string run with `/bin/sh -c`. */
  command: string[] | string;
  /** Kill the job after this long (default 6 hours). */
  timeoutMinutes?: number;
}

export interface ScheduleFile {
  version: 1;
  jobs: ScheduledJob[];
}

export const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

/** The defaults with `overrides` applied (undefined values ignored). */
export function effectiveSchedule(overrides: Partial<BackupSchedule> = {}): BackupSchedule {
  const out: BackupSchedule = { ...DEFAULT_BACKUP_SCHEDULE };
  for (const key of Object.keys(out) as (keyof BackupSchedule)[]) {
    const v = overrides[key];
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/**
 * The platform's jobs: full and diff backups (each followed by `expire` inside the job), verify,
 * auto snapshots, the storage quota check (which also prunes the undo log), and with
 * `platform.provisioning.spares` > 0 the `spares` job (lib/tenant/spares.ts); each runs
 * `node <jobsScript> <subcommand> --state-dir <stateDir>`.
 */
export function platformJobs(opts: {
  stateDir: string;
  schedule: BackupSchedule;
  /** Compiled `bin/infra/ops/jobs.js`. */
  jobsScript: string;
  /** The Node.js executable (default: the current one). */
  node?: string;
  /** Cron of the job `quota-check` (default DEFAULT_QUOTA_CHECK_SCHEDULE). */
  quotaCheck?: string;
  /** Days the undo log of ended operations is kept; the quota-check job prunes older ones. */
  undoRetentionDays?: number;
  /** `platform.provisioning`: a `spares` job when its count is above 0. */
  spares?: SparesJob;
}): ScheduledJob[] {
  const node = opts.node ?? process.execPath;
  const stateDir = path.resolve(opts.stateDir);
  const job = (name: string, cron: string, args: string[], timeoutMinutes: number): ScheduledJob => ({
    name,
    cron,
    command: [node, opts.jobsScript, ...args, "--state-dir", stateDir],
    timeoutMinutes,
  });
  const jobs = [
    job("backup-full", opts.schedule.full, ["backup", "--type", "full"], 6 * 60),
    job("backup-diff", opts.schedule.diff, ["backup", "--type", "diff"], 6 * 60),
    job("verify", opts.schedule.verify, ["verify"], 6 * 60),
    job("auto-snapshots", opts.schedule.autoSnapshots, ["snapshot-auto"], 60),
  ];
  const retention =
    opts.undoRetentionDays !== undefined ? ["--undo-retention-days", String(opts.undoRetentionDays)] : [];
  jobs.push(
    job("quota-check", opts.quotaCheck ?? DEFAULT_QUOTA_CHECK_SCHEDULE, ["quota-check", ...retention], 30),
  );
  const spares = sparesJob(opts.spares);
  if (spares) jobs.push(job("spares", spares.cron, spares.args, SPARES_TIMEOUT_MINUTES));
  return jobs;
}

/** Checks a schedule file's content; returns it typed, or throws naming the problem. */
export function validateScheduleFile(raw: unknown): ScheduleFile {
  const fail = (msg: string): never => {
    throw new Error(`schedule.json: ${msg}`);
  };
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail("must be a JSON object");
  const obj = raw as Record<string, unknown>;
  if (obj.version !== 1) fail(`version must be 1 (got ${JSON.stringify(obj.version)})`);
  if (!Array.isArray(obj.jobs)) fail("jobs must be a list");
  const names = new Set<string>();
  const jobs = (obj.jobs as unknown[]).map((j, i): ScheduledJob => {
    if (typeof j !== "object" || j === null) return fail(`jobs[${i}] must be an object`);
    const { name, cron, command, timeoutMinutes } = j as Record<string, unknown>;
    if (typeof name !== "string" || !JOB_NAME.test(name))
      fail(`jobs[${i}].name must match ${JOB_NAME.source}`);
    if (names.has(name as string)) fail(`jobs[${i}].name "${String(name)}" is used twice`);
    names.add(name as string);
    if (typeof cron !== "string") return fail(`jobs[${i}] (${String(name)}): cron must be a string`);
    try {
      parseCron(cron);
    } catch (err) {
      fail(`jobs[${i}] (${String(name)}): ${(err as Error).message}`);
    }
    const okCommand =
      (typeof command === "string" && command.trim() !== "") ||
      (Array.isArray(command) && command.length > 0 && command.every((c) => typeof c === "string"));
    if (!okCommand) fail(`jobs[${i}] (${String(name)}): command must be a non-empty string or argv list`);
    if (timeoutMinutes !== undefined && (typeof timeoutMinutes !== "number" || !(timeoutMinutes > 0))) {
      fail(`jobs[${i}] (${String(name)}): timeoutMinutes must be a positive number`);
    }
    return {
      name: name as string,
      cron,
      command: command as string[] | string,
      ...(timeoutMinutes !== undefined ? { timeoutMinutes: timeoutMinutes as number } : {}),
    };
  });
  return { version: 1, jobs };
}
