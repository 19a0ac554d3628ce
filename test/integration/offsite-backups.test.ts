/**
 * The offsite repository (platform.backups.offsite) for real: a private SFTP host (sshd on a
 * loopback port, key authentication only: testkit/sftpHost.ts) mounted with sshfs and used as a
 * `type: path` repo2 of a cluster of this file's own. Every backup writes both repositories, each
 * keeps its own number of full backups, WAL reaches both; then repo1 is deleted entirely and a
 * tenant is restored to a point in time from repo2 alone; then the data directory and repo1 are lost
 * together and the cluster is rebuilt from repo2. Last, the mount goes down: the backup job fails
 * loudly, naming repo2, and sends backup.failed.
 */
import { existsSync, promises as fs } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
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
import { localClusterLayout, stopCluster } from "../../lib/pg/cluster";
import { stanzaInfo } from "../../lib/pg/pgbackrest";
import { backupsInRepo } from "../../lib/pg/repositories";
import { mustRun } from "../../lib/process/run";
import { restoreTenant } from "../../lib/restore";
import { startSftpHost, type SftpHost } from "../../testkit/sftpHost";
import { JOBS_SCRIPT, runNode } from "../helpers/jobs";
import {
  loseRepo1,
  offsiteCluster,
  switchWal,
  waitFor,
  writeAroundTarget,
  type OffsiteCluster,
} from "../helpers/offsite";

let sftp: SftpHost;
let c: OffsiteCluster;
let server: http.Server;
let webhookUrl: string;
const received: Notification[] = [];

async function idOf(user: string): Promise<{ uid: number; gid: number }> {
  return {
    uid: Number((await mustRun("id", ["-u", user])).stdout.trim()),
    gid: Number((await mustRun("id", ["-g", user])).stdout.trim()),
  };
}

/** Archived WAL segment names (without the checksum) under a repository directory. */
async function archivedSegments(repoDir: string): Promise<Set<string>> {
  const dir = path.join(repoDir, "archive", c.spec.stanza);
  const entries = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return new Set(
    entries
      .map((e) => path.basename(String(e)))
      .filter((n) => /^[0-9A-F]{24}-/.test(n))
      .map((n) => n.slice(0, 24)),
  );
}

const inRemote = (segment: string) => async () => (await archivedSegments(sftp.remoteDir)).has(segment);

beforeAll(async () => {
  sftp = await startSftpHost("postgres");
  c = await offsiteCluster("offsite", async (work) => {
    const mountPoint = path.join(work, "offsite");
    await fs.mkdir(mountPoint, { mode: 0o755 });
    await sftp.mount(mountPoint, await idOf("postgres"));
    return { type: "path", path: mountPoint, retentionFull: 2 };
  });

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
  await c?.destroy();
  await sftp?.stop();
}, 120_000);

describe("offsite repository over an sshfs-mounted SFTP host", () => {
  it("the cluster's first backup and every later one are written to both repositories", async () => {
    const { pgbackrest } = localClusterLayout(c.spec);
    const before = await stanzaInfo(pgbackrest);
    expect(backupsInRepo(before, 1)).toHaveLength(1);
    expect(backupsInRepo(before, 2)).toHaveLength(1);

    await takeBackup(c.spec, c.admin, "full");
    const { backup } = await takeBackup(c.spec, c.admin, "full");
    await expireBackups(c.spec, c.admin);
    // Each repository keeps its own number of full backups: repo1 1 (the cluster's), repo2 2 (offsite's).
    const after = await stanzaInfo(pgbackrest);
    expect(backupsInRepo(after, 1).map((b) => b.label)).toEqual([backup.label]);
    expect(backupsInRepo(after, 2)).toHaveLength(2);
    expect(backupsInRepo(after, 2).map((b) => b.label)).not.toContain(backupsInRepo(before, 2)[0].label);
    // The offsite files are on the SFTP host's disk, not under the mount point's own directory.
    expect(existsSync(path.join(sftp.remoteDir, "backup", c.spec.stanza, "backup.info"))).toBe(true);
    const verify = await verifyRepository(c.spec);
    expect(verify.text).toMatch(/^verify ok in 2 repositories: /);
  }, 300_000);

  it("WAL is archived to both repositories", async () => {
    const segment = await switchWal(c.admin);
    const { paths } = localClusterLayout(c.spec);
    await waitFor(`${segment} in repo1`, async () => (await archivedSegments(paths.repoPath)).has(segment));
    await waitFor(`${segment} in repo2`, inRemote(segment));
  }, 120_000);

  it("with repo1 deleted entirely, a tenant is restored to a point in time from repo2 alone", async () => {
    await takeBackup(c.spec, c.admin, "diff");
    const { target, segment } = await writeAroundTarget(c, "before-target", "after-target");
    // The target's WAL must be archived (both repositories) before repo1 goes.
    await waitFor(`${segment} in repo2`, inRemote(segment));
    await loseRepo1(c.spec);

    const logs: string[] = [];
    const result = await restoreTenant(c.restoreOptions(target, (m) => logs.push(m)));
    expect(result.state).toBe("done");
    expect(result.timings.scratchMethod).toBe("selective");
    expect(logs.join("\n")).toMatch(/restoring from the offsite repository repo2: repo1 is not usable/);
    expect(logs.join("\n")).toMatch(/backup set \S+ .* in repo2/);
    const names = await c.partners();
    expect(names).toContain("before-target");
    expect(names).not.toContain("after-target");
    expect(names).toEqual(expect.arrayContaining(["company", "admin"]));
  }, 600_000);

  it("with repo1 and the data directory both lost, the cluster is rebuilt from repo2", async () => {
    await c.inTenant((db) => db.query("INSERT INTO res_partner (name) VALUES ('last-archived')"));
    const segment = await switchWal(c.admin);
    await waitFor(`${segment} in repo2`, inRemote(segment));
    const { paths, pgbackrest } = localClusterLayout(c.spec);
    await stopCluster(c.spec);
    await fs.rm(paths.dataDir, { recursive: true, force: true });
    await fs.rm(paths.repoPath, { recursive: true, force: true });

    const logs: string[] = [];
    await ensureClusterWithBackups(c.spec, (m) => logs.push(m));
    expect(logs.join("\n")).toMatch(/restoring from the offsite repository repo2: repo1 /);
    expect(await c.partners()).toContain("last-archived");
    // repo1 is back: its stanza made again and a first full backup (what `pulumi up` does).
    expect(backupsInRepo(await stanzaInfo(pgbackrest), 1)).toHaveLength(1);
  }, 600_000);

  it("with the offsite mount down, the backup job fails naming repo2 and sends backup.failed", async () => {
    const stateDir = path.join(c.work, "jobs");
    await fs.mkdir(stateDir, { mode: 0o755 });
    await writeSchedulerFiles(stateDir, [], {
      stateDir: c.spec.stateDir,
      port: c.spec.port,
      stanza: c.spec.stanza,
      archiveTimeoutSeconds: c.spec.archiveTimeoutSeconds,
      retentionFull: c.spec.retentionFull,
      socketDir: localClusterLayout(c.spec).paths.socketDir,
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
