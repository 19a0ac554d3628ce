/**
 * Disaster recovery on a cluster of its own: the data directory is lost (postmaster SIGKILLed,
 * directory removed) and `ensureCluster` rebuilds the whole cluster from the pgBackRest
 * repository: every database, the registry, and the last row written after the last backup
 * (replayed from the archived WAL).
 */
import { randomBytes } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listBackups, recoveryWindow, syncBackups, takeBackup } from "../../lib/backup/backups";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { withPlainClient as withClient } from "../../lib/pg/client";
import {
  clusterStatus,
  destroyCluster,
  localAdminDsn,
  localClusterLayout,
  type LocalClusterSpec,
} from "../../lib/pg/cluster";
import { ensureCluster } from "../../lib/pg/ensureCluster";
import { recoverCluster } from "../../lib/pg/disaster";
import { ensureRegistry, forgetRegistryCache, registryDsn } from "../../lib/registry/registry";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { throwawayClusterSpec } from "../../testkit/cluster";

let spec: LocalClusterSpec;
let dsn: string;
const token = randomBytes(16).toString("hex");

const query = async <T extends Record<string, unknown>>(db: string, text: string): Promise<T[]> =>
  withClient(dsnWithDatabase(dsn, db), async (c) => (await c.query<T>(text)).rows);

beforeAll(async () => {
  spec = await throwawayClusterSpec("dr", "dr");
  dsn = localAdminDsn(spec);
  await ensureCluster(spec);
});

afterAll(async () => {
  if (!spec) return;
  await destroyCluster(spec).catch(() => undefined);
  await fs.rm(spec.stateDir, { recursive: true, force: true });
});

describe("disaster recovery (own cluster)", () => {
  it("rebuilds every database, the registry and the last archived row after the data directory is deleted", async () => {
    const { paths } = localClusterLayout(spec);
    // Two tenant-like databases with data, and the registry with a row.
    for (const db of ["dr_alpha", "dr_beta"]) {
      await query("postgres", `CREATE DATABASE ${db}`);
      await query(db, "CREATE TABLE items (id int PRIMARY KEY, note text NOT NULL)");
      await query(db, `INSERT INTO items SELECT g, '${db}-' || g FROM generate_series(1, 1000) g`);
    }
    await ensureRegistry(dsn);
    await withClient(registryDsn(dsn), (c) =>
      c.query(
        `INSERT INTO tenants (subdomain, database_name, role_name, tier, state, admin_email)
         VALUES ('dr-acme', 'dr_alpha', 'dr_alpha', 'pro', 'active', 'boss@acme.example')`,
      ),
    );
    // A second full backup; with retentionFull 1 the first one expires and its row goes.
    const first = (await syncBackups(spec, dsn)).backups.map((b) => b.label);
    expect(first).toHaveLength(1);
    const { backup, sync } = await takeBackup(spec, dsn, "full");
    expect(sync.removed).toEqual(first);
    expect((await listBackups(dsn)).map((b) => b.label)).toEqual([backup.label]);

    // Written after the last backup: comes back only through WAL replay.
    await query("dr_beta", `INSERT INTO items VALUES (1001, 'last-${token}')`);
    await query("dr_alpha", "DELETE FROM items WHERE id <= 10");
    const [{ wal }] = await query<{ wal: string }>(
      "postgres",
      "SELECT pg_walfile_name(pg_switch_wal()) AS wal",
    );
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [{ last }] = await query<{ last: string | null }>(
        "postgres",
        "SELECT last_archived_wal AS last FROM pg_stat_archiver",
      );
      if (last !== null && last >= wal) break;
      if (Date.now() > deadline) throw new Error(`WAL ${wal} not archived (last ${last})`);
      await new Promise((r) => setTimeout(r, 200));
    }

    // The disaster: the server dies and its data directory is gone.
    const pid = Number((await fs.readFile(`${paths.dataDir}/postmaster.pid`, "utf8")).split("\n")[0]);
    process.kill(pid, "SIGKILL");
    while (existsSync(`/proc/${pid}`)) await new Promise((r) => setTimeout(r, 50));
    await fs.rm(paths.dataDir, { recursive: true, force: true });
    forgetRegistryCache();

    const logs: string[] = [];
    const started = Date.now();
    await ensureCluster(spec, (m) => logs.push(m));
    const seconds = (Date.now() - started) / 1000;
    expect(logs.join("\n")).toContain("restoring the cluster from the repository");
    expect(logs.join("\n")).not.toContain("initdb");
    expect(logs.join("\n")).toContain(`restored from backup ${backup.label}`);
    expect(seconds).toBeLessThan(60);

    const status = await clusterStatus(spec);
    expect(status).toMatchObject({ initialized: true, running: true, stanzaOk: true });
    expect(await query<{ n: number }>("dr_alpha", "SELECT count(*)::int AS n FROM items")).toEqual([
      { n: 990 },
    ]);
    expect(await query<{ n: number }>("dr_beta", "SELECT count(*)::int AS n FROM items")).toEqual([
      { n: 1001 },
    ]);
    expect(await query<{ note: string }>("dr_beta", "SELECT note FROM items WHERE id = 1001")).toEqual([
      { note: `last-${token}` },
    ]);
    const tenants = await withClient(
      registryDsn(dsn),
      async (c) => (await c.query<{ subdomain: string }>("SELECT subdomain FROM tenants")).rows,
    );
    expect(tenants).toEqual([{ subdomain: "dr-acme" }]);
    // The registry's backups came back too and still match the repository.
    const after = await syncBackups(spec, dsn);
    expect(after.backups.map((b) => b.label)).toEqual([backup.label]);
    expect((await recoveryWindow(dsn)).earliestLsn).toBe(backup.startLsn);
    // A new timeline, and archiving works on it.
    const [{ tli }] = await query<{ tli: number }>(
      "postgres",
      "SELECT timeline_id AS tli FROM pg_control_checkpoint()",
    );
    expect(tli).toBeGreaterThan(1);
  });

  it("refuses to restore over a live data directory unless forced", async () => {
    await expect(recoverCluster(spec)).rejects.toThrow(/holds a PostgreSQL cluster; refusing to replace it/);
  });
});
