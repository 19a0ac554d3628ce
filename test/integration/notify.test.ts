/**
 * Operator notifications from the real jobs (compiled bin/infra/ops/jobs.js) on the shared
 * integration cluster, received by a webhook on 127.0.0.1 (node:http): quota-check tells a tenant's
 * crossing of 80 % of its storage limit exactly once (a second run sends nothing) and its reaching
 * the limit; a backup against a broken stanza tells `backup.failed`; the restore Job's command tells
 * `restore.failed`. The local jobs read the webhook from `<state-dir>/scheduler/notify.json` (a
 * state directory of this file's own, pointing at the shared cluster); the URL's token never
 * appears in a job's output.
 */
import { promises as fs } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeNotifyFile } from "../../lib/backup/daemon";
import type { Notification } from "../../lib/notify/webhook";
import { adminDsn } from "../../lib/pg/client";
import { clusterPaths } from "../../lib/pg/paths";
import { filestorePath } from "../../lib/pg/names";
import { checkTenantStorage } from "../../lib/quota/storage";
import { installQuotaApi, writeQuotaLimits } from "../../lib/quota/sql";
import type { TenantSpec } from "../../lib/tenant/provision";
import { makeStateDir } from "../../testkit/cluster";
import { repoRoot } from "../../testkit/repo";
import { JOBS_SCRIPT, runNode, writeClusterSchedulerFiles } from "../helpers/jobs";
import { useFixtureTenants } from "../helpers/tenants";

const tenants = useFixtureTenants("notify");
const pg = tenants.pg;
const GIB = 1024 ** 3;
const TOKEN = "n0tify-t0ken-5ecret";

let server: http.Server;
let webhookUrl: string;
const received: Notification[] = [];
let work: string;

/** A state directory whose scheduler files point at the shared cluster (stanza overridable) and this webhook. */
async function jobsStateDir(name: string, stanza = pg.stanza): Promise<string> {
  const dir = path.join(work, name);
  await fs.mkdir(dir, { mode: 0o755 });
  await writeClusterSchedulerFiles(pg, dir, stanza);
  await writeNotifyFile(dir, { webhookUrl, stack: "integration", timeoutSeconds: 5, attempts: 2 });
  return dir;
}

const eventsFor = (tenant: string | undefined): Notification[] => received.filter((n) => n.tenant === tenant);

beforeAll(async () => {
  work = await makeStateDir("loomworks-notify-it-");
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      if (req.url === `/hook?token=${TOKEN}` && req.headers["content-type"] === "application/json")
        received.push(JSON.parse(body) as Notification);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=${TOKEN}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (work) await fs.rm(work, { recursive: true, force: true });
});

describe("webhook notifications from the jobs", () => {
  let t: TenantSpec;
  let stateDir: string;

  beforeAll(async () => {
    t = await tenants.create("nt");
    await tenants.asAdmin(t, installQuotaApi);
    stateDir = await jobsStateDir("local");
  });

  const setStorageLimit = (maxStorageGb: number) =>
    tenants.asAdmin(t, (db) =>
      writeQuotaLimits(db, {
        subdomain: t.subdomain,
        tier: t.tier,
        limits: { maxUsers: 10, maxStorageGb, maxAiOperationsDaily: 100 },
      }),
    );
  const quotaCheck = () =>
    runNode([
      JOBS_SCRIPT,
      ...["quota-check", "--state-dir", stateDir, "--tenant", t.subdomain],
      ...["--filestore-root", tenants.filestoreRoot],
    ]);

  it("quota-check: one storage.warning when a tenant crosses 80 %, none on the next run, storage.read_only at the limit", async () => {
    await setStorageLimit(100);
    const baseline = await checkTenantStorage(pg.adminDsn, {
      subdomain: t.subdomain,
      database: t.database,
      filestoreDir: filestorePath(tenants.filestoreRoot, t.database),
    });
    expect(baseline.state).toBe("ok");
    // A limit the tenant's present size is 88 % of.
    await setStorageLimit((baseline.bytes as number) / 0.88 / GIB);

    const first = await quotaCheck();
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain(`${t.subdomain}: `);
    expect(first.out).toMatch(
      /notification storage\.warning \(\S+\) delivered to 127\.0\.0\.1:\d+ \(attempt 1\)/,
    );
    expect(eventsFor(t.subdomain)).toEqual([
      {
        event: "storage.warning",
        tenant: t.subdomain,
        severity: "warning",
        message: expect.stringMatching(
          new RegExp(`^${t.subdomain} uses 8\\d(\\.\\d+)? % of its storage limit$`),
        ),
        details: expect.objectContaining({ database: t.database, previousState: "ok", state: "warning" }),
        at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        stack: "integration",
      },
    ]);

    const second = await quotaCheck();
    expect(second.code, second.out).toBe(0);
    expect(second.out).not.toContain("notification");
    expect(eventsFor(t.subdomain)).toHaveLength(1);

    await setStorageLimit((baseline.bytes as number) / 2 / GIB);
    const third = await quotaCheck();
    expect(third.code, third.out).toBe(0);
    expect(eventsFor(t.subdomain).map((n) => [n.event, n.severity])).toEqual([
      ["storage.warning", "warning"],
      ["storage.read_only", "critical"],
    ]);
    for (const r of [first, second, third]) expect(r.out).not.toContain(TOKEN);

    // Writable again for the template's clean-up.
    await setStorageLimit(100);
    expect((await quotaCheck()).code).toBe(0);
  });

  it("backup against a broken stanza: the job fails as before and sends backup.failed", async () => {
    const broken = await jobsStateDir("broken-stanza", "no-such-stanza");
    const before = eventsFor(undefined).length;
    const r = await runNode([JOBS_SCRIPT, "backup", "--state-dir", broken, "--type", "incr"]);
    expect(r.code, r.out).toBe(1);
    expect(r.out).toContain("jobs.js backup: ");
    const sent = eventsFor(undefined).slice(before);
    expect(sent).toEqual([
      expect.objectContaining({
        event: "backup.failed",
        severity: "critical",
        message: expect.stringMatching(/^backup failed: /),
        details: expect.objectContaining({ type: "incr", error: expect.stringContaining("no-such-stanza") }),
        stack: "integration",
      }),
    ]);
    expect(r.out).not.toContain(TOKEN);
  });

  it("the restore Job's command (Kubernetes mode): restore.failed with the error, the URL from the environment", async () => {
    const scratch = path.join(work, "scratch");
    const mounted = path.join(work, "mounted-pgbackrest.conf");
    await fs.copyFile(clusterPaths(pg.stateDir).pgbackrestConf, mounted);
    const env: NodeJS.ProcessEnv = {
      LOOMWORKS_ADMIN_DSN: adminDsn({ host: pg.host, port: pg.port, user: "postgres" }),
      PGPASSWORD: pg.superuserPassword,
      LOOMWORKS_STANZA: pg.stanza,
      LOOMWORKS_LOG_FORMAT: "json",
      LOOMWORKS_NOTIFY_WEBHOOK_URL: webhookUrl,
      LOOMWORKS_NOTIFY_STACK: "prod-like",
    };
    const target = new Date(Date.now() - 1000).toISOString();
    const r = await runNode(
      [
        JOBS_SCRIPT,
        ...["restore", "--tenant", "ghost", "--database", "ghost", "--role", "ghost", "--time", target],
        ...[
          "--pgbackrest-config",
          mounted,
          "--scratch-dir",
          scratch,
          "--filestore-root",
          tenants.filestoreRoot,
        ],
      ],
      env,
    );
    expect(r.code, r.out).toBe(1);
    expect(eventsFor("ghost")).toEqual([
      expect.objectContaining({
        event: "restore.failed",
        severity: "critical",
        message: 'restore of ghost failed: tenant "ghost": database "ghost" does not exist',
        details: { target: { time: target }, error: 'tenant "ghost": database "ghost" does not exist' },
        stack: "prod-like",
      }),
    ]);
    expect(r.out).not.toContain(TOKEN);
    expect(r.out).not.toContain(pg.superuserPassword);
  });

  it("the local PitrRestore provider: restore.failed, the URL from the scheduler's notify.json", async () => {
    const dir = await jobsStateDir("pitr");
    await fs.mkdir(path.join(dir, "pgbackrest"), { mode: 0o755 });
    const conf = path.join(dir, "pgbackrest", "pgbackrest.conf");
    await fs.copyFile(clusterPaths(pg.stateDir).pgbackrestConf, conf);
    await fs.chmod(conf, 0o644); // pgBackRest reads it as postgres (a throw-away copy)
    // The compiled provider, as the engine loads it (its lib modules from bin/lib).
    const { pitrRestoreProvider } = require(
      path.join(repoRoot, "bin", "dynamic-providers", "pitrRestore.js"),
    ) as {
      pitrRestoreProvider: { create(inputs: Record<string, unknown>): Promise<unknown> };
    };
    const target = { time: new Date(Date.now() - 1000).toISOString() };
    await expect(
      pitrRestoreProvider.create({
        adminDsn: pg.adminDsn,
        stateDir: dir,
        stanza: pg.stanza,
        subdomain: "phantom",
        database: "phantom",
        roleName: "phantom",
        tenantState: "active",
        target,
        filestoreRoot: tenants.filestoreRoot,
      }),
    ).rejects.toThrow('database "phantom" does not exist');
    expect(eventsFor("phantom")).toEqual([
      expect.objectContaining({
        event: "restore.failed",
        severity: "critical",
        details: { target, error: 'tenant "phantom": database "phantom" does not exist' },
        stack: "integration",
      }),
    ]);
  });
});
