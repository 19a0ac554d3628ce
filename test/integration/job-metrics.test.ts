/**
 * The ops jobs' metrics from the real jobs (compiled bin/infra/ops/jobs.js) on the shared
 * integration cluster, pushed to a Pushgateway stand-in on 127.0.0.1 (node:http) that runs
 * `promtool check metrics` on every body: a successful verify and a failed backup POST their times
 * to their groups, the restore Job's command (Kubernetes mode) its failure with the tenant, and the
 * job's exit code is what it was without metrics. A quota check of some tenants only pushes
 * nothing (the storage group is replaced as a whole). A Pushgateway that is down changes no outcome.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PUSHGATEWAY_ENV } from "../../lib/notify/settings";
import { adminDsn } from "../../lib/pg/client";
import { clusterPaths } from "../../lib/pg/paths";
import { installQuotaApi } from "../../lib/quota/sql";
import { makeStateDir } from "../../testkit/cluster";
import { JOBS_SCRIPT, runNode, writeClusterSchedulerFiles } from "../helpers/jobs";
import { listenOnLoopback, type LoopbackServer } from "../helpers/loopback-server";
import { checkMetrics } from "../helpers/promtool";
import { useFixtureTenants } from "../helpers/tenants";

const tenants = useFixtureTenants("jobmetrics");
const pg = tenants.pg;
const NAMESPACE = "loomworks-it";

interface Push {
  method: string;
  path: string;
  body: string;
  promtool: { status: number | null; output: string };
}

let server: LoopbackServer | undefined;
let gatewayUrl: string;
const pushes: Push[] = [];
let work: string;

/** A state directory whose scheduler files point at the shared cluster (stanza overridable). */
async function jobsStateDir(name: string, stanza = pg.stanza): Promise<string> {
  const dir = path.join(work, name);
  await fs.mkdir(dir, { mode: 0o755 });
  await writeClusterSchedulerFiles(pg, dir, stanza);
  return dir;
}

const pushEnv = (): NodeJS.ProcessEnv => ({
  [PUSHGATEWAY_ENV.url]: gatewayUrl,
  [PUSHGATEWAY_ENV.namespace]: NAMESPACE,
});

/** The one sample line of a single-metric body: its name and value. */
function onlySample(body: string): { name: string; value: number } {
  const lines = body.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  expect(lines).toHaveLength(1);
  const [name, value] = lines[0].split(" ");
  return { name, value: Number(value) };
}

beforeAll(async () => {
  work = await makeStateDir("loomworks-jobmetrics-it-");
  server = await listenOnLoopback((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      pushes.push({ method: req.method ?? "", path: req.url ?? "", body, promtool: checkMetrics(body) });
      res.writeHead(200).end();
    });
  });
  gatewayUrl = server.origin;
});

afterAll(async () => {
  await server?.close();
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe("metrics pushed by the jobs", () => {
  it("verify: its success time, in the group of the namespace", async () => {
    const stateDir = await jobsStateDir("verify");
    const before = pushes.length;
    const started = Math.floor(Date.now() / 1000);
    const r = await runNode([JOBS_SCRIPT, "verify", "--state-dir", stateDir], pushEnv());
    expect(r.code, r.out).toBe(0);
    const sent = pushes.slice(before);
    expect(sent.map((p) => [p.method, p.path])).toEqual([
      ["POST", `/metrics/job/loomworks_verify/namespace/${NAMESPACE}`],
    ]);
    expect(sent[0].promtool.status, sent[0].promtool.output).toBe(0);
    const sample = onlySample(sent[0].body);
    expect(sample.name).toBe("loomworks_verify_last_success_timestamp_seconds");
    expect(sample.value).toBeGreaterThanOrEqual(started);
    expect(r.out).toMatch(/metrics loomworks_verify pushed to 127\.0\.0\.1:\d+/);
  });

  it("backup against a broken stanza: exit 1 as before, its failure time pushed with the type", async () => {
    const broken = await jobsStateDir("broken-stanza", "no-such-stanza");
    const before = pushes.length;
    const r = await runNode([JOBS_SCRIPT, "backup", "--state-dir", broken, "--type", "incr"], pushEnv());
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain("jobs.js backup: ");
    const sent = pushes.slice(before);
    expect(sent.map((p) => [p.method, p.path])).toEqual([
      ["POST", `/metrics/job/loomworks_backup/namespace/${NAMESPACE}/type/incr`],
    ]);
    expect(sent[0].promtool.status, sent[0].promtool.output).toBe(0);
    expect(onlySample(sent[0].body).name).toBe("loomworks_backup_last_failure_timestamp_seconds");
  });

  it("the restore Job's command (Kubernetes mode): its failure time in the tenant's group", async () => {
    const mounted = path.join(work, "mounted-pgbackrest.conf");
    await fs.copyFile(clusterPaths(pg.stateDir).pgbackrestConf, mounted);
    const before = pushes.length;
    const r = await runNode(
      [
        JOBS_SCRIPT,
        ...["restore", "--tenant", "ghost", "--database", "ghost", "--role", "ghost"],
        ...["--time", new Date(Date.now() - 1000).toISOString()],
        ...["--pgbackrest-config", mounted, "--scratch-dir", path.join(work, "scratch")],
        ...["--filestore-root", tenants.filestoreRoot],
      ],
      {
        ...pushEnv(),
        LOOMWORKS_ADMIN_DSN: adminDsn({ host: pg.host, port: pg.port, user: "postgres" }),
        PGPASSWORD: pg.superuserPassword,
        LOOMWORKS_STANZA: pg.stanza,
        LOOMWORKS_LOG_FORMAT: "json",
      },
    );
    expect(r.code, r.out).toBe(1);
    const sent = pushes.slice(before);
    expect(sent.map((p) => [p.method, p.path])).toEqual([
      ["POST", `/metrics/job/loomworks_restore/namespace/${NAMESPACE}/tenant/ghost`],
    ]);
    expect(onlySample(sent[0].body).name).toBe("loomworks_restore_last_failure_timestamp_seconds");
  });

  it("quota-check of one tenant pushes nothing; a Pushgateway that is down fails no job", async () => {
    const t = await tenants.create("jm");
    await tenants.asAdmin(t, installQuotaApi);
    const stateDir = await jobsStateDir("quota");
    const before = pushes.length;
    const subset = await runNode(
      [
        JOBS_SCRIPT,
        ...["quota-check", "--state-dir", stateDir, "--tenant", t.subdomain],
        ...["--filestore-root", tenants.filestoreRoot],
      ],
      pushEnv(),
    );
    expect(subset.code, subset.out).toBe(0);
    expect(pushes.slice(before)).toEqual([]);

    const down = await runNode([JOBS_SCRIPT, "verify", "--state-dir", stateDir], {
      [PUSHGATEWAY_ENV.url]: "http://127.0.0.1:9/",
    });
    expect(down.code, down.out).toBe(0);
    expect(down.out).toMatch(
      /metrics loomworks_verify not pushed to 127\.0\.0\.1:9 after 3 attempt\(s\): ECONNREFUSED/,
    );
  });
});
