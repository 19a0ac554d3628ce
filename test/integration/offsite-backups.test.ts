/**
 * The offsite repository (platform.backups.offsite) for real: a private SFTP host (sshd on a
 * loopback port, key authentication only: testkit/sftpHost.ts) mounted with sshfs and used as a
 * `type: path` repo2 of a cluster of this file's own. Every backup writes both repositories, WAL
 * reaches both; then repo1 is deleted entirely and a tenant is restored to a point in time from
 * repo2 alone. Last, the mount goes down: the backup job fails loudly, naming repo2, and sends
 * backup.failed.
 */
import { randomBytes } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ensureClusterWithBackups,
  expireBackups,
  takeBackup,
  verifyRepository,
} from "../../lib/backup/backups";
import { writeNotifyFile, writeSchedulerFiles } from "../../lib/backup/daemon";
import type { Notification } from "../../lib/notify/webhook";
import { withPlainClient as withClient } from "../../lib/pg/client";
import {
  destroyCluster,
  localAdminDsn,
  localClusterLayout,
  stopCluster,
  type LocalClusterSpec,
} from "../../lib/pg/cluster";
import { stanzaInfo } from "../../lib/pg/pgbackrest";
import { backupsInRepo } from "../../lib/pg/repositories";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { mustRun } from "../../lib/process/run";
import { restoreTenant } from "../../lib/restore";
import { createTenant, deleteTenant, type TenantSpec } from "../../lib/tenant/provision";
import { dropTemplate, ensureTemplate } from "../../lib/tenant/template";
import { throwawayClusterSpec } from "../../testkit/cluster";
import { startSftpHost, type SftpHost } from "../../testkit/sftpHost";
import { JOBS_SCRIPT, runNode } from "../helpers/jobs";
import { randomTenantSpec } from "../helpers/tenants";

const SMALL_SQL = `
CREATE TABLE res_partner (id serial PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE res_users (id serial PRIMARY KEY, login text NOT NULL, password text, partner_id int REFERENCES res_partner(id));
CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key text UNIQUE NOT NULL, value text);
CREATE TABLE ir_attachment (id serial PRIMARY KEY, name text, store_fname text);
INSERT INTO res_partner (name) VALUES ('company'), ('admin');
INSERT INTO res_users (id, login, partner_id) VALUES (1, '__system__', 1), (2, 'admin', 2);
INSERT INTO ir_config_parameter (key, value) VALUES ('database.uuid', 'x'), ('database.secret', 'y');
`;
const TEMPLATE = `loomworks_template_offsite_${randomBytes(3).toString("hex")}`;

let sftp: SftpHost;
let spec: LocalClusterSpec;
let admin: string;
let work: string;
let mountPoint: string;
let tenant: TenantSpec;
let server: http.Server;
let webhookUrl: string;
const received: Notification[] = [];

const inTenant = <T>(fn: (c: import("pg").Client) => Promise<T>) =>
  withClient(dsnWithDatabase(admin, tenant.database), fn);

async function idOf(user: string): Promise<{ uid: number; gid: number }> {
  return {
    uid: Number((await mustRun("id", ["-u", user])).stdout.trim()),
    gid: Number((await mustRun("id", ["-g", user])).stdout.trim()),
  };
}

/** Archived WAL segment files (names without the checksum) under a repository directory. */
async function archivedSegments(repoDir: string): Promise<Set<string>> {
  const dir = path.join(repoDir, "archive", spec.stanza);
  const entries = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return new Set(
    entries
      .map((e) => path.basename(String(e)))
      .filter((n) => /^[0-9A-F]{24}-/.test(n))
      .map((n) => n.slice(0, 24)),
  );
}

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  sftp = await startSftpHost("postgres");
  spec = await throwawayClusterSpec("offsite", "offsite", { archiveTimeoutSeconds: 5 });
  work = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-offsite-it-"));
  await fs.chmod(work, 0o755);
  mountPoint = path.join(work, "offsite");
  await fs.mkdir(mountPoint, { mode: 0o755 });
  await sftp.mount(mountPoint, await idOf("postgres"));
  spec.offsite = { type: "path", path: mountPoint, retentionFull: 2 };
  await ensureClusterWithBackups(spec);
  admin = localAdminDsn(spec);
  const small = path.join(work, "small.sql");
  await fs.writeFile(small, SMALL_SQL);
  await ensureTemplate(admin, { name: "small", database: TEMPLATE, fromDump: small, stateDir: work });
  tenant = randomTenantSpec("off", TEMPLATE, localClusterLayout(spec).paths.filestoreDir);
  await createTenant(admin, tenant);

  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      received.push(JSON.parse(body) as Notification);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  webhookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}, 300_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  if (spec) {
    if (tenant) await deleteTenant(admin, { ...tenant, forceDestroy: true }).catch(() => undefined);
    await dropTemplate(admin, TEMPLATE).catch(() => undefined);
    await destroyCluster(spec).catch(() => undefined);
    await fs.rm(spec.stateDir, { recursive: true, force: true });
  }
  await sftp?.stop();
  if (work) await fs.rm(work, { recursive: true, force: true });
}, 120_000);

describe("offsite repository over an sshfs-mounted SFTP host", () => {
  it("the cluster's first backup and every later one are written to both repositories", async () => {
    const { pgbackrest } = localClusterLayout(spec);
    const before = await stanzaInfo(pgbackrest);
    expect(backupsInRepo(before, 1)).toHaveLength(1);
    expect(backupsInRepo(before, 2)).toHaveLength(1);

    await takeBackup(spec, admin, "full");
    const { backup } = await takeBackup(spec, admin, "full");
    await expireBackups(spec, admin);
    // Each repository keeps its own number of full backups: repo1 1 (the cluster's), repo2 2 (offsite's).
    const after = await stanzaInfo(pgbackrest);
    expect(backupsInRepo(after, 1).map((b) => b.label)).toEqual([backup.label]);
    expect(backupsInRepo(after, 2)).toHaveLength(2);
    expect(backupsInRepo(after, 2).map((b) => b.label)).not.toContain(backupsInRepo(before, 2)[0].label);
    // The offsite files are on the SFTP host's disk, not under the mount point's own directory.
    expect(existsSync(path.join(sftp.remoteDir, "backup", spec.stanza, "backup.info"))).toBe(true);
    const verify = await verifyRepository(spec);
    expect(verify.text).toMatch(/^verify ok in 2 repositories: /);
  }, 300_000);

  it("WAL is archived to both repositories", async () => {
    const segment = await withClient(admin, async (c) => {
      const r = await c.query<{ w: string }>("SELECT pg_walfile_name(pg_current_wal_lsn()) AS w");
      await c.query("SELECT pg_switch_wal()");
      return r.rows[0].w;
    });
    const { paths } = localClusterLayout(spec);
    await waitFor(`${segment} in repo1`, async () => (await archivedSegments(paths.repoPath)).has(segment));
    await waitFor(`${segment} in repo2`, async () => (await archivedSegments(sftp.remoteDir)).has(segment));
  }, 120_000);

  it("with repo1 deleted entirely, a tenant is restored to a point in time from repo2 alone", async () => {
    await takeBackup(spec, admin, "diff");
    await inTenant((c) => c.query("INSERT INTO res_partner (name) VALUES ('before-target')"));
    await new Promise((r) => setTimeout(r, 1100));
    const target = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 1100));
    await inTenant((c) => c.query("INSERT INTO res_partner (name) VALUES ('after-target')"));
    // The target's WAL must be archived (both repositories) before repo1 goes.
    const segment = await withClient(admin, async (c) => {
      const r = await c.query<{ w: string }>("SELECT pg_walfile_name(pg_current_wal_lsn()) AS w");
      await c.query("SELECT pg_switch_wal()");
      return r.rows[0].w;
    });
    await waitFor(`${segment} in repo2`, async () => (await archivedSegments(sftp.remoteDir)).has(segment));

    const { paths } = localClusterLayout(spec);
    await fs.rm(paths.repoPath, { recursive: true, force: true });
    await fs.mkdir(paths.repoPath, { mode: 0o700 });
    await mustRun("chown", ["postgres:postgres", paths.repoPath]);
    expect(await fs.readdir(paths.repoPath)).toEqual([]);

    const logs: string[] = [];
    const result = await restoreTenant({
      adminDsn: admin,
      stateDir: spec.stateDir,
      stanza: spec.stanza,
      subdomain: tenant.subdomain,
      database: tenant.database,
      roleName: tenant.roleName,
      tenantState: "active",
      target: { time: target },
      filestoreRoot: paths.filestoreDir,
      log: (m) => logs.push(m),
    });
    expect(result.state).toBe("done");
    expect(result.timings.scratchMethod).toBe("selective");
    expect(logs.join("\n")).toMatch(/restoring from the offsite repository repo2: repo1 is not usable/);
    expect(logs.join("\n")).toMatch(/backup set \S+ .* in repo2/);
    const names = await inTenant(async (c) =>
      (await c.query<{ name: string }>("SELECT name FROM res_partner ORDER BY id")).rows.map((r) => r.name),
    );
    expect(names).toContain("before-target");
    expect(names).not.toContain("after-target");
    expect(names).toEqual(expect.arrayContaining(["company", "admin"]));
  }, 600_000);

  it("with repo1 and the data directory both lost, the cluster is rebuilt from repo2", async () => {
    await inTenant((c) => c.query("INSERT INTO res_partner (name) VALUES ('last-archived')"));
    const segment = await withClient(admin, async (c) => {
      const r = await c.query<{ w: string }>("SELECT pg_walfile_name(pg_current_wal_lsn()) AS w");
      await c.query("SELECT pg_switch_wal()");
      return r.rows[0].w;
    });
    await waitFor(`${segment} in repo2`, async () => (await archivedSegments(sftp.remoteDir)).has(segment));
    const { paths } = localClusterLayout(spec);
    await stopCluster(spec);
    await fs.rm(paths.dataDir, { recursive: true, force: true });
    await fs.rm(paths.repoPath, { recursive: true, force: true });

    const logs: string[] = [];
    await ensureClusterWithBackups(spec, (m) => logs.push(m));
    expect(logs.join("\n")).toMatch(/restoring from the offsite repository repo2: repo1 /);
    const names = await inTenant(async (c) =>
      (await c.query<{ name: string }>("SELECT name FROM res_partner")).rows.map((r) => r.name),
    );
    expect(names).toContain("last-archived");
    // repo1 is back: its stanza made again and a first full backup (what `pulumi up` does).
    expect(backupsInRepo(await stanzaInfo(localClusterLayout(spec).pgbackrest), 1)).toHaveLength(1);
  }, 600_000);

  it("with the offsite mount down, the backup job fails naming repo2 and sends backup.failed", async () => {
    const stateDir = path.join(work, "jobs");
    await fs.mkdir(stateDir, { mode: 0o755 });
    await writeSchedulerFiles(stateDir, [], {
      stateDir: spec.stateDir,
      port: spec.port,
      stanza: spec.stanza,
      archiveTimeoutSeconds: spec.archiveTimeoutSeconds,
      retentionFull: spec.retentionFull,
      socketDir: localClusterLayout(spec).paths.socketDir,
    });
    await writeNotifyFile(stateDir, { webhookUrl, stack: "offsite-it", timeoutSeconds: 5, attempts: 2 });
    await sftp.unmount();
    const r = await runNode([JOBS_SCRIPT, "backup", "--state-dir", stateDir, "--type", "full"]);
    expect(r.code, r.out).not.toBe(0);
    expect(r.out).toMatch(/backup failed in 1 of 2 repositories \(written: repo1 \S+\)/);
    expect(r.out).toContain("repo2: ");
    expect(received).toEqual([
      expect.objectContaining({
        event: "backup.failed",
        message: expect.stringMatching(
          /^backup failed: pgbackrest full backup failed in 1 of 2 repositories/,
        ),
      }),
    ]);
  }, 300_000);
});
