/**
 * The jobs CLI (compiled bin/infra/ops/jobs.js) in its Kubernetes mode, on the shared integration
 * cluster: no `--state-dir`, the facts from the environment the CronJobs set (components/kubernetes/
 * OpsJobs.ts): a DSN without password plus PGPASSWORD, the stanza, the pgbackrest.conf path, JSON
 * logs, and `LOOMWORKS_PGBACKREST` pointing at a wrapper (here a stand-in for the kubectl-exec one
 * that records its arguments and runs the local pgbackrest). Checks that pgBackRest goes through the
 * wrapper, that every output line is one JSON object, and that the password never appears.
 */
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { listBackups } from "../../lib/backup/backups";
import { adminDsn } from "../../lib/pg/client";
import { localClusterLayout, localClusterSpec } from "../../lib/pg/cluster";
import { pgbackrestBin } from "../../lib/pg/pgbackrest";
import { repoRoot } from "../helpers/compile";
import { makeStateDir } from "../../testkit/cluster";

const pg = inject("pg");
const { paths } = localClusterLayout(localClusterSpec(pg));
const jobs = path.join(repoRoot, "bin", "infra", "ops", "jobs.js");

let work: string;
let callLog: string;
let env: NodeJS.ProcessEnv;

function runJobs(
  args: string[],
  extra: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [jobs, ...args], { env: { ...env, ...extra }, cwd: "/" });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, out, err }));
  });
}

/** Every line one JSON object of the job; returns them. */
function jsonLines(text: string, job: string): Record<string, unknown>[] {
  const lines = text.split("\n").filter(Boolean);
  return lines.map((line) => {
    const o = JSON.parse(line) as Record<string, unknown>;
    expect(o).toMatchObject({ job, level: expect.any(String), msg: expect.any(String) });
    expect(new Date(o.time as string).toISOString()).toBe(o.time);
    return o;
  });
}

beforeAll(async () => {
  work = await makeStateDir("loomworks-ops-k8s-it-");
  // pgBackRest runs as postgres (the jobs run it through runuser when root): the wrapper and its log must be reachable.
  await fs.chmod(work, 0o755);
  callLog = path.join(work, "calls.log");
  await fs.writeFile(callLog, "", { mode: 0o666 });
  await fs.chmod(callLog, 0o666);
  const wrapper = path.join(work, "pgbackrest-in-postgres-pod");
  await fs.writeFile(
    wrapper,
    `#!/bin/sh\nprintf '%s\\n' "$*" >> ${callLog}\nexec ${pgbackrestBin()} "$@"\n`,
    { mode: 0o755 },
  );
  await fs.chmod(wrapper, 0o755);
  const base = { ...process.env };
  for (const key of Object.keys(base))
    if (key.startsWith("LOOMWORKS_") || key.startsWith("PG")) delete base[key];
  env = {
    ...base,
    LOOMWORKS_ADMIN_DSN: adminDsn({ host: pg.host, port: pg.port, user: "postgres" }),
    PGPASSWORD: pg.superuserPassword,
    LOOMWORKS_STANZA: pg.stanza,
    LOOMWORKS_RETENTION_FULL: String(pg.retentionFull),
    LOOMWORKS_PGBACKREST_CONFIG: paths.pgbackrestConf,
    LOOMWORKS_PGBACKREST: wrapper,
    LOOMWORKS_FILESTORE_ROOT: paths.filestoreDir,
    LOOMWORKS_SNAPSHOT_ROOT: path.join(work, "snapshots"),
    LOOMWORKS_LOG_FORMAT: "json",
  };
});

afterAll(async () => {
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe("jobs.js on Kubernetes (environment instead of --state-dir)", () => {
  it("backup: pgBackRest through the wrapper, recorded in the registry, JSON lines, no password", async () => {
    expect(new URL(env.LOOMWORKS_ADMIN_DSN as string).password).toBe("");
    const r = await runJobs(["backup", "--type", "incr"]);
    expect(r.code, r.out + r.err).toBe(0);
    const lines = jsonLines(r.out, "backup");
    const done = lines.find((l) => /^backup \S+ \(incr\) recorded$/.test(l.msg as string));
    expect(done, r.out).toMatchObject({ level: "info", type: "incr" });
    expect((await listBackups(pg.adminDsn)).map((b) => b.label)).toContain(done?.backup);
    const calls = await fs.readFile(callLog, "utf8");
    expect(calls).toContain(`--config=${paths.pgbackrestConf} --stanza=${pg.stanza} --type=incr`);
    expect(calls).toMatch(/ expire$/m);
    expect(r.out + r.err).not.toContain(pg.superuserPassword);
  });

  it("sync and quota-check run on the same facts", async () => {
    const s = await runJobs(["sync"]);
    expect(s.code, s.out + s.err).toBe(0);
    const summary = jsonLines(s.out, "sync").at(-1);
    expect(summary?.backups).toBe((await listBackups(pg.adminDsn)).length);

    const q = await runJobs(["quota-check", "--tenant", "no-such-tenant-k8s", "--undo-retention-days", "30"]);
    expect(q.code, q.out + q.err).toBe(0);
    expect(jsonLines(q.out, "quota-check").at(-1)).toMatchObject({
      msg: "quota check: 0 tenants ok, 0 failed",
    });
  });

  it("fails with one JSON error line naming what is missing, and never prints the password", async () => {
    const r = await runJobs(["verify"], {
      LOOMWORKS_STANZA: "",
      LOOMWORKS_ADMIN_DSN: `postgres://postgres:${encodeURIComponent(pg.superuserPassword)}@${pg.host}:${pg.port}/postgres`,
    });
    expect(r.code).toBe(1);
    expect(r.out).toBe("");
    const [line] = jsonLines(r.err, "verify");
    expect(line).toMatchObject({ level: "error" });
    expect(line.msg).toContain("LOOMWORKS_STANZA is required");
    expect(r.err).not.toContain(pg.superuserPassword);

    const restore = await runJobs(["restore", "--tenant", "acme", "--time", "2026-11-26T10:00:00Z"]);
    expect(restore.code).toBe(1);
    expect(jsonLines(restore.err, "restore")[0].msg).toContain(
      "restore needs --database, --role, --pgbackrest-config, --scratch-dir, --filestore-root",
    );
  });

  it("restore: pgBackRest reads the rewritten configuration in the scratch directory, then restoreTenant decides", async () => {
    const scratch = path.join(work, "scratch");
    const mounted = path.join(work, "mounted-pgbackrest.conf");
    await fs.copyFile(paths.pgbackrestConf, mounted);
    const target = new Date(Date.now() - 1000).toISOString();
    const r = await runJobs([
      ...["restore", "--tenant", "ghost", "--database", "ghost", "--role", "ghost", "--time", target],
      ...["--pgbackrest-config", mounted, "--scratch-dir", scratch, "--filestore-root", paths.filestoreDir],
    ]);
    expect(r.code, r.out + r.err).toBe(1);
    // Past the target's validation against `pgbackrest info` (which read the rewritten file): the
    // refusal comes from the live cluster, where no database "ghost" exists.
    const errors = jsonLines(r.err, "restore");
    expect(errors.at(-1)?.msg).toBe('tenant "ghost": database "ghost" does not exist');
    const conf = await fs.readFile(path.join(scratch, "pgbackrest", "pgbackrest.conf"), "utf8");
    expect(conf).toContain(`lock-path=${path.join(scratch, "pgbackrest", "lock")}`);
    expect(conf).toContain(`repo1-path=${paths.repoPath}`);
    expect(r.out + r.err).not.toContain(pg.superuserPassword);
  });

  it("without --state-dir and without LOOMWORKS_ADMIN_DSN, the local target's rule holds", async () => {
    const r = await runJobs(["backup"], { LOOMWORKS_ADMIN_DSN: "", LOOMWORKS_LOG_FORMAT: "" });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^jobs\.js backup: --state-dir is required/);
  });
});
