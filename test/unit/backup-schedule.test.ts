import { describe, expect, it } from "vitest";
import { parseVerifyOutput } from "../../lib/backup/backups";
import { diffLocalScheduler } from "../../lib/backup/provider";
import { dueJobs } from "../../lib/backup/scheduler";
import {
  DEFAULT_BACKUP_SCHEDULE,
  effectiveSchedule,
  platformJobs,
  validateScheduleFile,
} from "../../lib/backup/schedule-defaults";

const job = (name: string, cron: string) => ({ name, cron, command: "true" });

describe("schedule", () => {
  it("defaults: weekly full, daily diff, weekly verify, auto snapshots every 6 hours", () => {
    expect(DEFAULT_BACKUP_SCHEDULE).toEqual({
      full: "0 1 * * 0",
      diff: "0 1 * * 1-6",
      verify: "0 3 * * 0",
      autoSnapshots: "0 */6 * * *",
    });
    expect(effectiveSchedule({ full: "0 2 * * 6", diff: undefined })).toEqual({
      ...DEFAULT_BACKUP_SCHEDULE,
      full: "0 2 * * 6",
    });
  });

  it("platform jobs run jobs.js with the state directory (argv, no shell)", () => {
    const jobs = platformJobs({
      stateDir: "/srv/lw",
      schedule: DEFAULT_BACKUP_SCHEDULE,
      jobsScript: "/app/bin/infra/ops/jobs.js",
      node: "/usr/bin/node",
    });
    expect(jobs.map((j) => j.command)).toEqual([
      ["/usr/bin/node", "/app/bin/infra/ops/jobs.js", "backup", "--type", "full", "--state-dir", "/srv/lw"],
      ["/usr/bin/node", "/app/bin/infra/ops/jobs.js", "backup", "--type", "diff", "--state-dir", "/srv/lw"],
      ["/usr/bin/node", "/app/bin/infra/ops/jobs.js", "verify", "--state-dir", "/srv/lw"],
      ["/usr/bin/node", "/app/bin/infra/ops/jobs.js", "snapshot-auto", "--state-dir", "/srv/lw"],
      ["/usr/bin/node", "/app/bin/infra/ops/jobs.js", "quota-check", "--state-dir", "/srv/lw"],
    ]);
    expect(validateScheduleFile({ version: 1, jobs }).jobs).toEqual(jobs);
  });

  it("validateScheduleFile names the problem", () => {
    expect(() => validateScheduleFile([])).toThrow("schedule.json: must be a JSON object");
    expect(() => validateScheduleFile({ version: 2, jobs: [] })).toThrow("version must be 1");
    expect(() => validateScheduleFile({ version: 1, jobs: [job("a b", "* * * * *")] })).toThrow(
      "jobs[0].name",
    );
    expect(() =>
      validateScheduleFile({ version: 1, jobs: [job("a", "* * * * *"), job("a", "0 * * * *")] }),
    ).toThrow('jobs[1].name "a" is used twice');
    expect(() => validateScheduleFile({ version: 1, jobs: [job("a", "61 * * * *")] })).toThrow(
      "minute value 61 is out of range 0-59",
    );
    expect(() =>
      validateScheduleFile({ version: 1, jobs: [{ name: "a", cron: "* * * * *", command: [] }] }),
    ).toThrow("command must be");
  });

  it("dueJobs: a cron time in (since, now], once however many minutes passed", () => {
    const jobs = [job("hourly", "0 * * * *"), job("daily", "0 1 * * *"), job("minute", "* * * * *")];
    const t = (s: string) => new Date(`2026-03-04T${s}Z`);
    expect(dueJobs(jobs, t("00:59:30"), t("01:00:00")).map((j) => j.name)).toEqual([
      "hourly",
      "daily",
      "minute",
    ]);
    expect(dueJobs(jobs, t("01:00:00"), t("01:00:59")).map((j) => j.name)).toEqual([]);
    expect(dueJobs(jobs, t("01:00:00"), t("01:01:00")).map((j) => j.name)).toEqual(["minute"]);
    // a long job blocked the loop for 3 hours: each job is caught up once
    expect(dueJobs(jobs, t("01:00:05"), t("04:10:00")).map((j) => j.name)).toEqual(["hourly", "minute"]);
  });
});

describe("parseVerifyOutput", () => {
  it("reads pgBackRest 2.45's text output", () => {
    const out = [
      "stanza: loomworks",
      "status: error",
      "  archiveId: 15-1, total WAL checked: 5, total valid WAL: 5",
      "    missing: 0, checksum invalid: 0, size invalid: 0, other: 0",
      "  backup: 20261126-012814F, status: invalid, total files checked: 965, total valid files: 964",
      "    missing: 0, checksum invalid: 1, size invalid: 0, other: 0",
    ].join("\n");
    expect(parseVerifyOutput(out)).toEqual({
      status: "error",
      archives: [
        {
          archiveId: "15-1",
          walChecked: 5,
          walValid: 5,
          problems: "missing: 0, checksum invalid: 0, size invalid: 0, other: 0",
        },
      ],
      backups: [
        {
          label: "20261126-012814F",
          status: "invalid",
          filesChecked: 965,
          filesValid: 964,
          problems: "missing: 0, checksum invalid: 1, size invalid: 0, other: 0",
        },
      ],
    });
  });
});

describe("diffLocalScheduler", () => {
  const olds = {
    stateDir: "/s",
    port: 5432,
    stanza: "main",
    schedule: { full: "0 1 * * 0" },
    quotaCheck: "*/5 * * * *",
    undoRetentionDays: 30,
    running: true,
  };

  it.each<[string, Record<string, unknown>, boolean]>([
    ["nothing changed", {}, false],
    ["the quota-check schedule changed", { quotaCheck: "*/10 * * * *" }, true],
    ["the undo retention changed", { undoRetentionDays: 7 }, true],
    ["a backup schedule changed", { schedule: { full: "0 2 * * 0" } }, true],
    ["spares were turned on", { spares: { count: 2 } }, true],
  ])("in place when %s", (_name, change, updates) => {
    const { running: _running, ...news } = { ...olds, ...change };
    const diff = diffLocalScheduler(olds, news);
    expect(diff.changes).toBe(updates);
    expect(diff.replaces).toEqual([]);
  });
});
