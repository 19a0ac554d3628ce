/**
 * The docker target's ops container, run for real on this machine against the shared integration
 * cluster: its main process as rendered (dockerOpsCommand: the uploaded job script, which exports
 * the superuser's password from its file, then `exec`s the scheduler daemon), its environment (dockerOpsEnv: a DSN
 * without a password, pgBackRest run in place, no wrapper) and its schedule.json
 * (renderDockerOpsSchedule: the Kubernetes CronJobs' jobs). What only exists inside the container is
 * mapped to this machine: the secret file, pgbackrest.conf, pgBackRest's directories, the compiled
 * jobs.js, PostgreSQL's network alias and the state directory. A clock running 600 times faster
 * (a minute per 100 ms) brings the jobs due; the backup must land in the registry.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import {
  DOCKER_HOSTS,
  OPS_CONTAINER,
  POSTGRES_CONTAINER,
  dockerOpsCommand,
  dockerOpsEnv,
  renderDockerJobScript,
  renderDockerOpsSchedule,
} from "../../components/docker/config";
import { listBackups } from "../../lib/backup/backups";
import { OPS_IMAGE } from "../../lib/backup/opsJobs";
import { readJobLog, type JobLogRecord } from "../../lib/backup/scheduler";
import { localClusterLayout, localClusterSpec } from "../../lib/pg/cluster";
import { makeStateDir } from "../../testkit/cluster";
import { repoRoot } from "../helpers/compile";

const pg = inject("pg");
const { paths } = localClusterLayout(localClusterSpec(pg));
const EVERY_MINUTE = "* * * * *";
const NEVER_HERE = "0 0 1 1 *"; // 1 January: not reached within the test's simulated hours

let work: string;
let daemon: ChildProcess | undefined;
let daemonOutput = "";

/** The container's value → this machine's, for every path and address only the container has. */
function mapping(): [string, string][] {
  return [
    [`${OPS_IMAGE.workdir}/${OPS_IMAGE.jobsScript}`, path.join(repoRoot, OPS_IMAGE.jobsScript)],
    [OPS_CONTAINER.jobCommand, path.join(work, "loomworks-job")],
    [OPS_CONTAINER.passwordFile, path.join(work, "secrets", "postgres-password")],
    [OPS_CONTAINER.notifyUrlFile, path.join(work, "secrets", "no-webhook")],
    [POSTGRES_CONTAINER.pgbackrestConfig, paths.pgbackrestConf],
    [POSTGRES_CONTAINER.spoolDir, path.join(work, "spool")],
    [POSTGRES_CONTAINER.logDir, path.join(work, "log")],
    [POSTGRES_CONTAINER.lockDir, path.join(work, "lock")],
    [OPS_CONTAINER.stateDir, path.join(work, "ops")],
    [OPS_CONTAINER.filestoreRoot, paths.filestoreDir],
    [OPS_CONTAINER.snapshotRoot, path.join(work, "snapshots")],
    [`@${DOCKER_HOSTS.postgres}:${POSTGRES_CONTAINER.port}/`, `@${pg.host}:${pg.port}/`],
  ];
}
const onHost = (text: string): string => mapping().reduce((t, [from, to]) => t.split(from).join(to), text);

async function waitForJobs(jobs: string[], timeoutMs: number): Promise<JobLogRecord[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const log = await readJobLog(path.join(work, "ops"));
    const ended = jobs.filter((j) => log.some((r) => r.event === "end" && r.job === j));
    if (ended.length === jobs.length) return log;
    if (Date.now() > deadline || daemon?.exitCode !== null) {
      throw new Error(
        `jobs ended: ${ended.join(", ") || "none"}; daemon: ${daemonOutput}\n${JSON.stringify(log)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  work = await makeStateDir("loomworks-docker-ops-it-");
  await fs.chmod(work, 0o755);
  await fs.mkdir(path.join(work, "secrets"), { mode: 0o700 });
  await fs.writeFile(path.join(work, "secrets", "postgres-password"), pg.superuserPassword, { mode: 0o400 });
  // The upload of the ops container, at the scheduler's state directory.
  const schedule = renderDockerOpsSchedule({
    schedule: { full: NEVER_HERE, diff: EVERY_MINUTE, verify: NEVER_HERE, autoSnapshots: NEVER_HERE },
    quotaCheckSchedule: EVERY_MINUTE,
    syncSchedule: EVERY_MINUTE,
    undoRetentionDays: 30,
  });
  await fs.mkdir(path.join(work, "ops", "scheduler"), { recursive: true });
  await fs.writeFile(path.join(work, "ops", "scheduler", "schedule.json"), onHost(schedule));

  // The uploaded job script, on this machine.
  await fs.writeFile(path.join(work, "loomworks-job"), onHost(renderDockerJobScript()), { mode: 0o755 });
  const [command, ...args] = dockerOpsCommand().map(onHost);
  const base = { ...process.env };
  for (const key of Object.keys(base))
    if (key.startsWith("LOOMWORKS_") || key.startsWith("PG")) delete base[key];
  const env: NodeJS.ProcessEnv = {
    ...base,
    ...Object.fromEntries(
      dockerOpsEnv({ stanza: pg.stanza, retentionFull: pg.retentionFull }).map((e) => {
        const i = e.indexOf("=");
        return [e.slice(0, i), onHost(e.slice(i + 1))];
      }),
    ),
    LOOMWORKS_SCHEDULER_TICK_MS: "100",
    LOOMWORKS_SCHEDULER_TIME_FACTOR: "600",
  };
  expect(new URL(env.LOOMWORKS_ADMIN_DSN as string).password).toBe("");
  daemon = spawn(command, args, { env, cwd: "/", stdio: ["ignore", "pipe", "pipe"] });
  daemon.stdout?.on("data", (d: Buffer) => (daemonOutput += d.toString()));
  daemon.stderr?.on("data", (d: Buffer) => (daemonOutput += d.toString()));
});

afterAll(async () => {
  if (daemon && daemon.exitCode === null) {
    const exited = new Promise((r) => daemon?.on("exit", r));
    daemon.kill("SIGTERM");
    await exited;
  }
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe("the docker ops container's scheduler, run for real", () => {
  it("runs the backup, quota check and sync the schedule names; the backup lands in the registry", async () => {
    const before = (await listBackups(pg.adminDsn)).map((b) => b.label);
    const log = await waitForJobs(["backup-diff", "quota-check", "sync"], 240_000);
    for (const job of ["backup-diff", "quota-check", "sync"]) {
      const end = log.find((r) => r.event === "end" && r.job === job);
      expect(end, `${job}: ${JSON.stringify(end)}`).toMatchObject({ ok: true, exit: 0 });
    }
    // The jobs ran as the schedule said: the image's node and jobs.js (mapped), no --state-dir.
    const start = log.find((r) => r.event === "start" && r.job === "backup-diff");
    expect(start?.command).toEqual([
      "node",
      path.join(repoRoot, OPS_IMAGE.jobsScript),
      "backup",
      "--type",
      "diff",
    ]);
    const after = (await listBackups(pg.adminDsn)).map((b) => b.label);
    expect(after.filter((l) => !before.includes(l)).length).toBeGreaterThan(0);
    // Never a job the schedule keeps for 1 January.
    expect(log.some((r) => r.job === "verify" || r.job === "backup-full")).toBe(false);
    // The password came from its file into the jobs' environment only: never into an output.
    const outputs = await fs.readdir(path.join(work, "ops", "scheduler", "output"));
    for (const f of outputs) {
      expect(await fs.readFile(path.join(work, "ops", "scheduler", "output", f), "utf8")).not.toContain(
        pg.superuserPassword,
      );
    }
    expect(daemonOutput).not.toContain(pg.superuserPassword);
  });
});
