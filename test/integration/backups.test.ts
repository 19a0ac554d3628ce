/**
 * Backups on the shared integration cluster: recording in the registry, retention sync, verify,
 * recovery window; the scheduler loop (fast clock) and the daemon's lifecycle; and the jobs CLI
 * compiled into bin/, reaching PostgreSQL by peer authentication over the socket.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { repoRoot } from "../helpers/compile";
import {
  expireBackups,
  listBackups,
  recoveryWindow,
  syncBackups,
  takeBackup,
  verifyRepository,
} from "../../lib/backup/backups";
import {
  daemonStatus,
  removeScheduler,
  startDaemon,
  stopDaemon,
  writeSchedulerFiles,
} from "../../lib/backup/daemon";
import { readJobLog, runScheduler, schedulerPaths, type JobLogRecord } from "../../lib/backup/scheduler";
import { platformJobs, DEFAULT_BACKUP_SCHEDULE, type ScheduledJob } from "../../lib/backup/schedule-defaults";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { withPlainClient as withClient } from "../../lib/pg/client";
import { localClusterLayout, localClusterSpec, type LocalClusterSpec } from "../../lib/pg/cluster";
import { stanzaInfo } from "../../lib/pg/pgbackrest";
import { registryDsn } from "../../lib/registry/registry";
import { makeStateDir } from "../../testkit/cluster";
import { runNode, writeClusterSchedulerFiles } from "../helpers/jobs";

const pg = inject("pg");
const spec: LocalClusterSpec = localClusterSpec(pg);
const { pgbackrest } = localClusterLayout(spec);

let work: string;
let jobsBundle: string;

/** `0/16B3748` -> a comparable BigInt. */
const lsn = (text: string): bigint => {
  const [hi, lo] = text.split("/");
  return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`);
};

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  work = await makeStateDir("loomworks-backups-it-");
  // The jobs CLI as it runs in production: compiled into bin/ by the suite's global setup.
  jobsBundle = path.join(repoRoot, "bin", "infra", "ops", "jobs.js");
});

afterAll(async () => {
  await removeScheduler(pg.stateDir).catch(() => undefined);
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe("backups in the registry (shared cluster)", () => {
  it("syncBackups records every backup of the repository (the first full one included)", async () => {
    const sync = await syncBackups(spec, pg.adminDsn);
    const info = await stanzaInfo(pgbackrest);
    expect(sync.backups.map((b) => b.label).sort()).toEqual(info.backup.map((b) => b.label).sort());
    expect(sync.backups.some((b) => b.type === "full")).toBe(true);
    // idempotent
    const again = await syncBackups(spec, pg.adminDsn);
    expect(again.added).toEqual([]);
    expect(again.removed).toEqual([]);
  });

  it("takeBackup (diff) records a row with sane times and LSNs", async () => {
    const logs: string[] = [];
    const before = Date.now();
    const { backup, sync } = await takeBackup(spec, pg.adminDsn, "diff", (m) => logs.push(m));
    expect(backup.label).toMatch(/^\d{8}-\d{6}F_\d{8}-\d{6}D$/);
    expect(backup.type).toBe("diff");
    expect(sync.added).toContain(backup.label);
    expect(backup.startTime.getTime()).toBeLessThanOrEqual(backup.stopTime.getTime());
    expect(backup.stopTime.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(lsn(backup.startLsn)).toBeLessThan(lsn(backup.stopLsn));
    const current = await withClient(pg.adminDsn, async (c) => {
      const r = await c.query<{ l: string }>("SELECT pg_current_wal_lsn()::text AS l");
      return r.rows[0].l;
    });
    expect(lsn(backup.stopLsn)).toBeLessThanOrEqual(lsn(current));
    const row = await withClient(registryDsn(pg.adminDsn), async (c) => {
      const r = await c.query<{ type: string; start_lsn: string; stop_lsn: string }>(
        "SELECT type, start_lsn::text, stop_lsn::text FROM backups WHERE label = $1",
        [backup.label],
      );
      return r.rows[0];
    });
    expect(row).toEqual({ type: "diff", start_lsn: backup.startLsn, stop_lsn: backup.stopLsn });
    expect(logs.join("\n")).toContain(backup.label);
  });

  it("syncBackups (and expireBackups) delete the rows of backups no longer in the repository", async () => {
    const ghost = "20000101-000000F";
    await withClient(registryDsn(pg.adminDsn), (c) =>
      c.query(
        `INSERT INTO backups (label, type, start_time, stop_time, start_lsn, stop_lsn)
         VALUES ($1, 'full', '2000-01-01', '2000-01-01 00:01', '0/1000000', '0/2000000')`,
        [ghost],
      ),
    );
    expect((await listBackups(pg.adminDsn)).map((b) => b.label)).toContain(ghost);
    const sync = await expireBackups(spec, pg.adminDsn);
    expect(sync.removed).toEqual([ghost]);
    const info = await stanzaInfo(pgbackrest);
    expect(sync.backups.map((b) => b.label).sort()).toEqual(info.backup.map((b) => b.label).sort());
    // retention keeps at most retentionFull full backups
    expect(info.backup.filter((b) => b.type === "full").length).toBeLessThanOrEqual(spec.retentionFull);
  });

  it("recoveryWindow starts at the oldest backup still in the repository", async () => {
    await syncBackups(spec, pg.adminDsn);
    const info = await stanzaInfo(pgbackrest);
    const oldest = [...info.backup].sort((a, b) => a.timestamp.start - b.timestamp.start)[0];
    const newest = [...info.backup].sort((a, b) => a.timestamp.stop - b.timestamp.stop).at(-1);
    const w = await recoveryWindow(pg.adminDsn);
    expect(w.earliestTime.getTime()).toBe(oldest.timestamp.start * 1000);
    expect(w.earliestLsn).toBe(oldest.lsn?.start);
    expect(w.earliestConsistentTime.getTime()).toBe(oldest.timestamp.stop * 1000);
    expect(w.latestBackup.label).toBe(newest?.label);
    expect(w.backups).toBe(info.backup.length);
  });

  it("verifyRepository checks every backup and WAL segment", async () => {
    const summary = await verifyRepository(spec);
    const info = await stanzaInfo(pgbackrest);
    expect(summary.status).toBe("ok");
    expect(summary.backups.map((b) => b.label).sort()).toEqual(info.backup.map((b) => b.label).sort());
    expect(summary.backups.every((b) => b.status === "valid" && b.filesChecked > 0)).toBe(true);
    expect(summary.walSegments).toBeGreaterThan(0);
    expect(summary.text).toMatch(/^verify ok: /);
  });

  it("jobs.js backup runs as postgres (peer auth, no password), records the backup and expires", async () => {
    await writeClusterSchedulerFiles(pg);
    const clusterFile = await fs.readFile(schedulerPaths(pg.stateDir).clusterFile, "utf8");
    expect(clusterFile).not.toContain(pg.superuserPassword);
    expect((await fs.stat(schedulerPaths(pg.stateDir).clusterFile)).mode & 0o777).toBe(0o600);

    const r = await runNode([jobsBundle, "backup", "--state-dir", pg.stateDir, "--type", "incr"]);
    expect(r.code, r.out).toBe(0);
    const label = /backup (\S+I) \(incr\) recorded/.exec(r.out)?.[1];
    expect(label, r.out).toBeDefined();
    expect((await listBackups(pg.adminDsn)).map((b) => b.label)).toContain(label);
    expect(r.out).not.toContain(pg.superuserPassword);

    const v = await runNode([jobsBundle, "verify", "--state-dir", pg.stateDir]);
    expect(v.code, v.out).toBe(0);
    expect(v.out).toContain("verify ok");

    const s = await runNode([jobsBundle, "snapshot-auto", "--state-dir", pg.stateDir]);
    expect(s.code, s.out).toBe(0);
    expect(s.out).toMatch(/auto snapshots: \d+ tenants ok, 0 failed/);

    const bad = await runNode([jobsBundle, "backup", "--state-dir", pg.stateDir, "--type", "weekly"]);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain("--type must be full, diff or incr");
  });
});

describe("scheduler", () => {
  /** A clock running 600 times faster than the real one: one scheduled minute per 100 ms. */
  function fastClock(): () => Date {
    const start = Date.parse("2026-03-01T00:00:30Z");
    const real = Date.now();
    return () => new Date(start + (Date.now() - real) * 600);
  }

  const byJob = (records: JobLogRecord[], job: string, event?: string) =>
    records.filter((r) => r.job === job && (event === undefined || r.event === event));

  it("runs due jobs in order, one at a time, survives failures, re-reads the schedule", async () => {
    const stateDir = await makeStateDir("loomworks-sched-it-");
    try {
      const mark = path.join(stateDir, "ran.txt");
      const jobs: ScheduledJob[] = [
        { name: "fails", cron: "* * * * *", command: [process.execPath, "-e", "process.exit(3)"] },
        {
          name: "writes",
          cron: "* * * * *",
          command: [
            process.execPath,
            "-e",
            `require("fs").appendFileSync(${JSON.stringify(mark)}, "x\\n"); setTimeout(() => {}, 150)`,
          ],
        },
        { name: "missing", cron: "* * * * *", command: ["/nonexistent/loomworks-job"] },
        { name: "never", cron: "0 0 1 1 *", command: "exit 0" },
        { name: "held", cron: "* * * * *", command: "exit 0" },
      ];
      await writeSchedulerFiles(stateDir, jobs, {
        stateDir,
        port: 1,
        stanza: "x",
        archiveTimeoutSeconds: 1,
        retentionFull: 1,
        socketDir: "/nonexistent",
      });
      // "held" is locked by a live process (this one): the scheduler must skip it, not run it twice.
      const { locksDir, scheduleFile } = schedulerPaths(stateDir);
      await fs.mkdir(locksDir, { recursive: true });
      await fs.writeFile(path.join(locksDir, "held.lock"), `${process.pid}\n`);

      const controller = new AbortController();
      const loop = runScheduler({ stateDir, tickMs: 100, now: fastClock(), signal: controller.signal });
      await waitFor("two runs of `writes`", async () => {
        const n = (await fs.readFile(mark, "utf8").catch(() => "")).split("\n").filter(Boolean).length;
        return n >= 2 ? n : undefined;
      });
      // A broken schedule keeps the previous one; then a new job appears in a rewritten schedule.
      await fs.writeFile(scheduleFile, "{ not json");
      await waitFor("schedule-error", async () =>
        (await readJobLog(stateDir)).find((r) => r.event === "schedule-error") ? true : undefined,
      );
      await fs.writeFile(
        scheduleFile,
        JSON.stringify({ version: 1, jobs: [{ name: "added", cron: "*/2 * * * *", command: "exit 0" }] }),
      );
      await waitFor("the added job", async () =>
        byJob(await readJobLog(stateDir), "added", "end").length > 0 ? true : undefined,
      );
      controller.abort();
      await loop;

      const log = await readJobLog(stateDir);
      const fails = byJob(log, "fails", "end");
      expect(fails.length).toBeGreaterThanOrEqual(2);
      expect(fails.every((r) => r.exit === 3 && r.ok === false)).toBe(true);
      expect(byJob(log, "missing", "end").every((r) => r.ok === false && typeof r.error === "string")).toBe(
        true,
      );
      expect(byJob(log, "never")).toEqual([]);
      expect(byJob(log, "held", "start")).toEqual([]);
      expect(byJob(log, "held", "skip").length).toBeGreaterThan(0);
      expect(byJob(log, "added", "end")[0]).toMatchObject({ exit: 0, ok: true });
      // Sequential: every start is followed by its job's end before any other job starts.
      const events = log.filter((r) => r.event === "start" || r.event === "end");
      for (let i = 0; i < events.length; i += 2) {
        expect(events[i].event).toBe("start");
        expect(events[i + 1]).toMatchObject({ event: "end", job: events[i].job });
      }
      expect(log[0].event).toBe("scheduler-start");
      expect(log.at(-1)?.event).toBe("scheduler-stop");
      const output = await fs.readFile(path.join(schedulerPaths(stateDir).outputDir, "missing.log"), "utf8");
      expect(output).toContain("could not run");
    } finally {
      await fs.rm(stateDir, { recursive: true, force: true });
    }
  });

  it("daemon: starts detached with a pid file, runs jobs, is idempotent, stops; refresh sees a killed daemon", async () => {
    const stateDir = await makeStateDir("loomworks-daemon-it-");
    const env = { LOOMWORKS_SCHEDULER_TICK_MS: "100", LOOMWORKS_SCHEDULER_TIME_FACTOR: "600" };
    const command = [process.execPath, jobsBundle, "scheduler", "--state-dir", stateDir];
    try {
      const mark = path.join(stateDir, "ran.txt");
      const jobs = platformJobs({ stateDir, schedule: DEFAULT_BACKUP_SCHEDULE, jobsScript: jobsBundle });
      expect(jobs.map((j) => [j.name, j.cron])).toEqual([
        ["backup-full", "0 1 * * 0"],
        ["backup-diff", "0 1 * * 1-6"],
        ["verify", "0 3 * * 0"],
        ["auto-snapshots", "0 */6 * * *"],
        ["quota-check", "*/10 * * * *"],
      ]);
      const touch: ScheduledJob = {
        name: "touch",
        cron: "* * * * *",
        command: [process.execPath, "-e", `require("fs").appendFileSync(${JSON.stringify(mark)}, "x\\n")`],
      };
      const cluster = {
        stateDir,
        port: 1,
        stanza: "x",
        archiveTimeoutSeconds: 1,
        retentionFull: 1,
        socketDir: "/x",
      };
      await writeSchedulerFiles(stateDir, [touch], cluster);

      expect(await daemonStatus(stateDir)).toEqual({ running: false });
      const started = await startDaemon(stateDir, { command, env });
      expect(started.running).toBe(true);
      const pidFile = schedulerPaths(stateDir).pidFile;
      expect(Number((await fs.readFile(pidFile, "utf8")).trim())).toBe(started.pid);
      // its own session (setsid): the daemon leads it
      const stat = await fs.readFile(`/proc/${started.pid}/stat`, "utf8");
      expect(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3])).toBe(started.pid);
      // idempotent
      expect(await startDaemon(stateDir, { command, env })).toEqual(started);
      // The job's end is logged after its command exits: wait for the record, not just the file.
      const ended = await waitFor(
        "a run of `touch` by the daemon, logged",
        async () => byJob(await readJobLog(stateDir), "touch", "end")[0],
      );
      expect(ended).toMatchObject({ exit: 0, ok: true });
      expect((await fs.readFile(mark, "utf8")).length).toBeGreaterThan(0);

      await stopDaemon(stateDir);
      expect(await daemonStatus(stateDir)).toEqual({ running: false });
      await expect(fs.stat(pidFile)).rejects.toThrow();
      expect(() => process.kill(started.pid ?? 0, 0)).toThrow();

      // refresh drift: a daemon killed behind our back reports running: false; a stale pid file
      // naming some other live process (pid 1) is not mistaken for the daemon.
      const again = await startDaemon(stateDir, { command, env });
      process.kill(again.pid ?? 0, "SIGKILL");
      await waitFor("the killed daemon to be gone", async () =>
        (await daemonStatus(stateDir)).running ? undefined : true,
      );
      await fs.writeFile(pidFile, "1\n");
      expect(await daemonStatus(stateDir)).toEqual({ running: false });
      const restarted = await startDaemon(stateDir, { command, env });
      expect(restarted.running).toBe(true);
      expect(restarted.pid).not.toBe(again.pid);
      await removeScheduler(stateDir);
      expect(await daemonStatus(stateDir)).toEqual({ running: false });
      await expect(fs.stat(schedulerPaths(stateDir).dir)).rejects.toThrow();
    } finally {
      await stopDaemon(stateDir).catch(() => undefined);
      await fs.rm(stateDir, { recursive: true, force: true });
    }
  });
});
