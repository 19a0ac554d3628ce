/**
 * `platform.provisioning.spares`: the key's checks, and the `spares` job in the one job list of
 * every target (opsJobSpecs: Kubernetes CronJobs and the docker ops container; platformJobs: the
 * local scheduler). Off (0, the default) leaves every list and rendered file exactly as before.
 */
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { renderCompose } from "../../components/docker/compose";
import { ConfigError, parseStackConfig } from "../../infra/config/load";
import { parseStackFile } from "../../infra/config/stackFile";
import { opsJobSpecs, opsScheduledJobs } from "../../lib/backup/opsJobs";
import {
  DEFAULT_BACKUP_SCHEDULE,
  DEFAULT_SPARES_SCHEDULE,
  platformJobs,
  sparesOption,
  validateScheduleFile,
} from "../../lib/backup/schedule-defaults";
import { parseCron } from "../../lib/backup/cron";
import { repoRoot } from "../../testkit/repo";

const templates = { default: { fromDump: "/srv/loomworks/template.sql" } };

function problemsOf(provisioning: unknown): string[] {
  try {
    parseStackConfig({ platform: { templates, provisioning } });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return [...(e as ConfigError).problems];
  }
  throw new Error("expected a ConfigError");
}

const provisioningOf = (provisioning?: unknown) =>
  parseStackConfig({ platform: { templates, ...(provisioning === undefined ? {} : { provisioning }) } })
    .platform.provisioning;

describe("platform.provisioning", () => {
  it("is off by default and takes a count from 0 to 20 and a cron", () => {
    expect(provisioningOf()).toEqual({ spares: 0 });
    expect(provisioningOf({})).toEqual({ spares: 0 });
    expect(provisioningOf({ spares: 3, sparesSchedule: "*/2 * * * *" })).toEqual({
      spares: 3,
      sparesSchedule: "*/2 * * * *",
    });
    expect(provisioningOf({ spares: 20 }).spares).toBe(20);
  });

  const RULE = "must be an integer from 0 to 20 (ready spares per template; 0 turns them off)";
  it.each<[unknown, string]>([
    [{ spares: -1 }, `platform: key "provisioning.spares": ${RULE} (got -1)`],
    [{ spares: 21 }, `platform: key "provisioning.spares": ${RULE} (got 21)`],
    [{ spares: 1.5 }, `platform: key "provisioning.spares": ${RULE} (got 1.5)`],
    [{ spares: "two" }, `platform: key "provisioning.spares": ${RULE} (got "two")`],
    [
      { spares: 1, sparesSchedule: "often" },
      'platform: key "provisioning.sparesSchedule": must be a 5-field cron expression (minute hour day-of-month month day-of-week, UTC): must have 5 fields (minute hour day-of-month month day-of-week), got 1 (got "often")',
    ],
    [{ spare: 1 }, 'platform: key "provisioning.spare": is not a known key (did you mean "spares"?)'],
    [
      3,
      'platform: key "provisioning": must be a map of provisioning settings (spares, sparesSchedule) (got 3)',
    ],
  ])("refuses %j with a clear error", (provisioning, message) => {
    expect(problemsOf(provisioning)).toEqual([message]);
  });

  it("becomes a job option only above 0", () => {
    expect(sparesOption({ spares: 0 })).toEqual({});
    expect(sparesOption({ spares: 0, sparesSchedule: "* * * * *" })).toEqual({});
    expect(sparesOption({ spares: 2 })).toEqual({ spares: { count: 2 } });
    expect(sparesOption({ spares: 2, sparesSchedule: "* * * * *" })).toEqual({
      spares: { count: 2, schedule: "* * * * *" },
    });
  });
});

describe("the spares job", () => {
  const opsBase = { undoRetentionDays: 30, quotaCheckSchedule: "*/15 * * * *" };
  const localBase = {
    stateDir: "/srv/lw",
    schedule: DEFAULT_BACKUP_SCHEDULE,
    jobsScript: "/app/jobs.js",
    node: "/n",
  };

  it("is absent with spares off: the job lists are exactly those without the key", () => {
    const off = sparesOption({ spares: 0 });
    expect(JSON.stringify(opsJobSpecs({ ...opsBase, ...off }))).toBe(JSON.stringify(opsJobSpecs(opsBase)));
    expect(JSON.stringify(opsScheduledJobs({ ...opsBase, ...off }))).toBe(
      JSON.stringify(opsScheduledJobs(opsBase)),
    );
    expect(JSON.stringify(platformJobs({ ...localBase, ...off }))).toBe(
      JSON.stringify(platformJobs(localBase)),
    );
    expect(opsJobSpecs({ ...opsBase, spares: { count: 0 } }).map((j) => j.job)).not.toContain("spares");
    expect(platformJobs({ ...localBase, spares: { count: 0 } }).map((j) => j.name)).not.toContain("spares");
  });

  it("tops up N spares per template every 5 minutes by default, on the ops targets", () => {
    const without = opsJobSpecs(opsBase);
    const withSpares = opsJobSpecs({ ...opsBase, spares: { count: 3 } });
    expect(withSpares.slice(0, -1)).toEqual(without);
    const spares = withSpares.at(-1);
    expect(spares).toEqual({
      job: "spares",
      schedule: DEFAULT_SPARES_SCHEDULE,
      args: ["spares", "--count", "3"],
      deadlineSeconds: 30 * 60,
      startingDeadlineSeconds: 4 * 60,
      backoffLimit: 0,
    });
    expect(() => parseCron(DEFAULT_SPARES_SCHEDULE)).not.toThrow();
    // A missed run may start late only within the default period (runs never pile up).
    expect(spares?.startingDeadlineSeconds).toBeLessThan(5 * 60);
    expect(opsScheduledJobs({ ...opsBase, spares: { count: 3, schedule: "*/2 * * * *" } }).at(-1)).toEqual({
      name: "spares",
      cron: "*/2 * * * *",
      command: ["node", "/opt/loomworks/bin/infra/ops/jobs.js", "spares", "--count", "3"],
      timeoutMinutes: 30,
    });
  });

  it("is the local scheduler's last job, with the state directory", () => {
    const jobs = platformJobs({ ...localBase, spares: { count: 2, schedule: "* * * * *" } });
    expect(jobs.slice(0, -1)).toEqual(platformJobs(localBase));
    expect(jobs.at(-1)).toEqual({
      name: "spares",
      cron: "* * * * *",
      command: ["/n", "/app/jobs.js", "spares", "--count", "2", "--state-dir", "/srv/lw"],
      timeoutMinutes: 30,
    });
    expect(validateScheduleFile({ version: 1, jobs }).jobs).toEqual(jobs);
  });
});

describe("the rendered Compose files", () => {
  const fixture = path.join(repoRoot, "test", "fixtures", "compose", "Pulumi.docker-dev.yaml");
  const text = readFileSync(fixture, "utf8");
  const withProvisioning = (block: string) =>
    text.replace("  loomworks:platform:\n", `  loomworks:platform:\n    provisioning:\n${block}`);
  const render = (stackText: string) =>
    renderCompose({
      stack: "docker-dev",
      project: "loomworks-hosting",
      config: parseStackFile(stackText, "Pulumi.docker-dev.yaml"),
      checkoutDir: "../..",
    }).files;

  it("are byte-identical with spares 0 and without the key", () => {
    const explicitOff = withProvisioning("      spares: 0\n");
    expect(explicitOff).not.toBe(text);
    expect(render(explicitOff)).toEqual(render(text));
  });

  it("schedule the spares job in the ops container when spares > 0", () => {
    const files = render(withProvisioning("      spares: 2\n"));
    const schedule = JSON.parse(files.find((f) => f.path === "ops/schedule.json")?.content ?? "{}") as {
      jobs: { name: string; cron: string; command: string[] }[];
    };
    const spares = schedule.jobs.find((j) => j.name === "spares");
    expect(spares?.cron).toBe(DEFAULT_SPARES_SCHEDULE);
    expect(spares?.command.slice(1)).toEqual([
      "/opt/loomworks/bin/infra/ops/jobs.js",
      "spares",
      "--count",
      "2",
    ]);
  });
});
