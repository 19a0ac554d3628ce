/**
 * Snapshots against the real integration cluster (test/integration/global-setup.ts): fresh tenants
 * made by createTenant from the Odoo-shaped FIXTURE template (test/fixtures/odoo-shaped; not Odoo).
 */
import { createHash, randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { afterAll, describe, expect, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { withPlainClient as withClient } from "../../lib/pg/client";
import { clusterPaths } from "../../lib/pg/paths";
import type { PgBackRestTarget } from "../../lib/pg/pgbackrest";
import { retiredRoot } from "../../lib/filestore/retired";
import {
  SNAPSHOT_OWNER_ROLE,
  pruneRetiredFiles,
  pruneSnapshots,
  syncRequestedSnapshots,
  takeAutoSnapshots,
} from "../../lib/snapshot/runtime";
import {
  backupFromPgBackRest,
  closeSnapshotConnections,
  createSnapshot,
  forgetSnapshot,
  listSnapshots,
  parseLsn,
  restorePointName,
  snapshotStatus,
  type SnapshotKind,
} from "../../lib/snapshot/snapshot";
import { deleteTenant, type TenantSpec } from "../../lib/tenant/provision";
import { REGISTRY_DATABASE, registryDsn, tenantJournal } from "../../lib/registry/registry";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { sqlStateOf as codeOf, useFixtureTenants } from "../helpers/tenants";

// Every test makes the tenants it needs: any one of them runs alone (`-t`).
const tenants = useFixtureTenants("snap", { deleteAfterEach: true });
const pg = tenants.pg;
const ADMIN = pg.adminDsn;
const run = randomBytes(3).toString("hex");
const paths = clusterPaths(pg.stateDir);
const filestoreRoot = tenants.filestoreRoot;
const snapshotRoot = path.join(pg.stateDir, `snapshots-it-${run}`);
const pgbackrest: PgBackRestTarget = { config: paths.pgbackrestConf, stanza: pg.stanza };
const FAKE_BACKUP = `it-snap-${run}`;

const newTenant = (): Promise<TenantSpec> =>
  tenants.create("s", { limits: { maxUsers: 10 }, retentionDays: 30 });
const dsnOf = tenants.tenantUrl;
const reg = <T>(fn: (c: Client) => Promise<T>): Promise<T> => withClient(registryDsn(ADMIN), fn);
const admin = <T>(fn: (c: Client) => Promise<T>): Promise<T> => withClient(ADMIN, fn);

/** Odoo-style content-addressed files: `<sha1[0:2]>/<sha1>`. Returns their relative paths. */
async function addFiles(database: string, n: number, bytes = 64, salt = ""): Promise<string[]> {
  const dir = path.join(filestoreRoot, database);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const body = `${salt}${database}:${i}:`.padEnd(bytes, "x");
    const sha = createHash("sha1").update(body).digest("hex");
    await fsp.mkdir(path.join(dir, sha.slice(0, 2)), { recursive: true });
    await fsp.writeFile(path.join(dir, sha.slice(0, 2), sha), body);
    out.push(path.join(sha.slice(0, 2), sha));
  }
  return out;
}

const snap = (s: TenantSpec, name: string, kind: SnapshotKind = "manual", withFallback = true) =>
  createSnapshot(ADMIN, {
    subdomain: s.subdomain,
    database: s.database,
    name,
    kind,
    filestoreRoot,
    snapshotRoot,
    ...(withFallback ? { pgbackrest } : {}),
  });

afterAll(async () => {
  await closeSnapshotConnections();
  await reg((c) => c.query("DELETE FROM backups WHERE label = $1", [FAKE_BACKUP])).catch(() => undefined);
  await fsp.rm(snapshotRoot, { recursive: true, force: true });
}, 120_000);

describe("manual snapshots", () => {
  it("records a restore point with its LSN, WAL file, time, size and backup set; the filestore is left alone", async () => {
    const a = await newTenant();
    const files = await addFiles(a.database, 50);
    const before = Date.now();
    const first = await snap(a, "before-upgrade");
    expect(first).toMatchObject({
      created: true,
      subdomain: a.subdomain,
      database: a.database,
      name: "before-upgrade",
      kind: "manual",
      state: "ready",
      restorePoint: restorePointName(a.subdomain, first.id),
      filestorePath: "",
    });
    expect(first.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const facts = await admin(
      async (c) =>
        (
          await c.query<{ wal: string; size: string; here: string }>(
            "SELECT pg_walfile_name($1::pg_lsn) AS wal, pg_database_size($2::name)::text AS size, pg_current_wal_lsn()::text AS here",
            [first.lsn, a.database],
          )
        ).rows[0],
    );
    expect(first.walFile).toBe(facts.wal);
    expect(parseLsn(first.lsn) <= parseLsn(facts.here)).toBe(true);
    expect(first.sizeBytes).toBeGreaterThan(Number(facts.size) * 0.9);
    expect(Math.abs(new Date(first.createdAt).getTime() - before)).toBeLessThan(60_000);
    // The cluster's first full backup (global setup), from the registry or pgbackrest info.
    expect(first.backup).toMatch(/^\d{8}-\d{6}F/);
    expect(Object.keys(first.timings ?? {}).sort()).toEqual(["record", "register", "restorePoint", "total"]);

    // O(1): no copy, no link; the live files keep their single name.
    expect(fs.existsSync(path.join(snapshotRoot, a.subdomain))).toBe(false);
    expect(fs.statSync(path.join(filestoreRoot, a.database, files[0])).nlink).toBe(1);
    const row = await reg(
      async (c) =>
        (
          await c.query("SELECT state, lsn::text AS lsn, filestore_path FROM snapshots WHERE id = $1", [
            first.id,
          ])
        ).rows[0],
    );
    expect(row).toEqual({ state: "ready", lsn: first.lsn, filestore_path: null });
  });

  it("moves forward: a later snapshot has a larger LSN; the registry backup set is used when recorded", async () => {
    const a = await newTenant();
    const first = await snap(a, "before-upgrade");
    await withClient(dsnOf(a), (c) =>
      c.query("INSERT INTO res_partner (name) VALUES ('after the first snapshot')"),
    );
    await reg((c) =>
      c.query(
        `INSERT INTO backups (label, type, start_time, stop_time, start_lsn, stop_lsn)
         VALUES ($1, 'full', now(), now(), pg_current_wal_lsn(), pg_current_wal_lsn())`,
        [FAKE_BACKUP],
      ),
    );
    try {
      const second = await snap(a, "second", "manual", false);
      expect(parseLsn(second.lsn) > parseLsn(first.lsn)).toBe(true);
      expect(second.walFile >= first.walFile).toBe(true);
      expect(second.backup).toBe(FAKE_BACKUP);
      expect(second.id).not.toBe(first.id);
    } finally {
      await reg((c) => c.query("DELETE FROM backups WHERE label = $1", [FAKE_BACKUP]));
    }
  });

  it("is idempotent: a ready manual snapshot is returned as is; a pending one left by a crash is finished", async () => {
    const a = await newTenant();
    const first = await snap(a, "before-upgrade");
    const again = await snap(a, "before-upgrade");
    expect(again.created).toBe(false);
    expect(again).toMatchObject({ id: first.id, lsn: first.lsn, createdAt: first.createdAt, state: "ready" });

    // A crash after the row was written: pending, no LSN, a partial copy on disk.
    const pendingId = await reg(
      async (c) =>
        (
          await c.query<{ id: string }>(
            "INSERT INTO snapshots (subdomain, name, kind, state) VALUES ($1, 'crashed', 'manual', 'pending') RETURNING id::text AS id",
            [a.subdomain],
          )
        ).rows[0].id,
    );
    const partial = path.join(snapshotRoot, a.subdomain, pendingId, "filestore", "zz");
    await fsp.mkdir(partial, { recursive: true });
    const finished = await snap(a, "crashed");
    expect(finished).toMatchObject({ id: pendingId, created: true, state: "ready" });
    expect(finished.lsn).not.toBe("");
    expect(fs.existsSync(partial)).toBe(false);
    const names = (await listSnapshots(ADMIN, a.subdomain)).map((s) => s.name);
    expect(names).toEqual(["before-upgrade", "crashed"]);
  });

  it("forgets a snapshot: row gone, and the filestore copy of one taken before issue 16; again is a no-op", async () => {
    const a = await newTenant();
    const [file] = await addFiles(a.database, 2);
    const kept = await snap(a, "kept");
    const old = await snap(a, "old-layout");
    // A snapshot of the old layout: a hard-link copy recorded in filestore_path.
    const copy = path.join(snapshotRoot, a.subdomain, old.id, "filestore");
    await fsp.mkdir(path.join(copy, path.dirname(file)), { recursive: true });
    await fsp.link(path.join(filestoreRoot, a.database, file), path.join(copy, file));
    await reg((c) => c.query("UPDATE snapshots SET filestore_path = $2 WHERE id = $1", [old.id, copy]));
    expect(await snapshotStatus(ADMIN, old.id)).toMatchObject({
      state: "ready",
      filestorePath: copy,
      filestorePresent: true,
    });
    expect(await snapshotStatus(ADMIN, kept.id)).toMatchObject({
      filestorePath: "",
      filestorePresent: false,
    });
    expect(await forgetSnapshot(ADMIN, old.id)).toBe(true);
    expect(await snapshotStatus(ADMIN, old.id)).toBeUndefined();
    expect(fs.existsSync(path.dirname(copy))).toBe(false);
    expect(fs.existsSync(path.join(filestoreRoot, a.database, file))).toBe(true);
    expect(await forgetSnapshot(ADMIN, old.id)).toBe(false);
    expect(await forgetSnapshot(ADMIN, "not-a-uuid")).toBe(false);
    expect(await forgetSnapshot(ADMIN, kept.id)).toBe(true);
  });

  it("refuses a database that does not exist (no row left behind)", async () => {
    const a = await newTenant();
    await expect(
      createSnapshot(ADMIN, {
        subdomain: a.subdomain,
        database: "no_such_db",
        name: "ghost",
        kind: "manual",
        filestoreRoot,
        snapshotRoot,
      }),
    ).rejects.toThrow(/database "no_such_db" does not exist/);
    expect((await listSnapshots(ADMIN, a.subdomain)).map((s) => s.name)).not.toContain("ghost");
  });

  it("finds the backup set through pgbackrest info (the cached fallback)", async () => {
    const lsn = await admin(async (c) => (await c.query("SELECT pg_current_wal_lsn()::text AS l")).rows[0].l);
    expect(await backupFromPgBackRest(pgbackrest, lsn)).toMatch(/^\d{8}-\d{6}F/);
    expect(await backupFromPgBackRest(pgbackrest, "0/1")).toBeNull();
  });
});

describe("pre_ai snapshots requested from the tenant database", () => {
  const request = async (s: TenantSpec, note: string): Promise<string> =>
    withClient(
      dsnOf(s),
      async (c) =>
        (await c.query("SELECT loomworks_snapshot.request('pre_ai', $1) AS id", [note])).rows[0].id,
    );

  it("installs the API at provisioning (journaled step snapshot-api), owned by an inert role", async () => {
    const a = await newTenant();
    const journal = await reg((c) => tenantJournal(c, a.subdomain));
    const steps = journal.map((j) => j.step);
    expect(steps.indexOf("snapshot-api")).toBe(steps.indexOf("database-identity") + 1);
    const facts = await withClient(dsnWithDatabase(ADMIN, a.database), async (c) => ({
      owner: (
        await c.query(
          "SELECT pg_get_userbyid(nspowner) AS o FROM pg_namespace WHERE nspname = 'loomworks_snapshot'",
        )
      ).rows[0].o,
      role: (
        await c.query("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = $1", [SNAPSHOT_OWNER_ROLE])
      ).rows[0],
      definer: (
        await c.query(
          "SELECT prosecdef FROM pg_proc WHERE oid = 'loomworks_snapshot.request(text,text)'::regprocedure",
        )
      ).rows[0].prosecdef,
    }));
    expect(facts).toEqual({
      owner: SNAPSHOT_OWNER_ROLE,
      role: { rolcanlogin: false, rolsuper: false },
      definer: true,
    });
  });

  it("lets the tenant role request one, and nothing else", async () => {
    const [a, b] = await Promise.all([newTenant(), newTenant()]);
    const requestId = await request(a, "x");
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    const mine = await withClient(
      dsnOf(a),
      async (c) => (await c.query("SELECT * FROM loomworks_snapshot.requested")).rows,
    );
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({
      id: requestId,
      kind: "pre_ai",
      note: "x",
      restore_point: restorePointName(a.database, requestId),
      requested_by: a.roleName,
    });
    const t = dsnOf(a);
    expect(await codeOf(t, "SELECT pg_create_restore_point('mine')")).toBe("42501");
    expect(await codeOf(t, "SELECT loomworks_snapshot.request('auto', 'x')")).toBe("22023");
    expect(await codeOf(t, `SELECT loomworks_snapshot.request('pre_ai', repeat('n', 1001))`)).toBe("22001");
    expect(
      await codeOf(
        t,
        "INSERT INTO loomworks_snapshot.requested (id, kind, lsn, restore_point) VALUES (gen_random_uuid(), 'pre_ai', '0/1', 'x')",
      ),
    ).toBe("42501");
    expect(await codeOf(t, "DELETE FROM loomworks_snapshot.requested")).toBe("42501");
    expect(await codeOf(t, "DROP SCHEMA loomworks_snapshot CASCADE")).toBe("42501");
    expect(await codeOf(t, "ALTER FUNCTION loomworks_snapshot.request(text, text) SECURITY INVOKER")).toBe(
      "42501",
    );
    expect(
      await codeOf(
        t,
        "CREATE OR REPLACE FUNCTION loomworks_snapshot.request(kind text, note text DEFAULT NULL) RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid'",
      ),
    ).toBe("42501");
    expect(
      await codeOf(t, "CREATE FUNCTION loomworks_snapshot.evil() RETURNS int LANGUAGE sql AS 'SELECT 1'"),
    ).toBe("42501");
    expect(await codeOf(t, `SET ROLE ${SNAPSHOT_OWNER_ROLE}`)).toBe("42501");
    // Another tenant cannot reach this database, nor call anything of it.
    expect(await codeOf(dsnOf(b, a.database), "SELECT 1")).toBe("42501");
  });

  it("syncs requests into the registry (same id and restore point) and deletes them locally", async () => {
    const a = await newTenant();
    await addFiles(a.database, 2);
    const requestId = await request(a, "x");
    const synced = await syncRequestedSnapshots(ADMIN, a.subdomain, a.database, {
      filestoreRoot,
      snapshotRoot,
    });
    expect(synced).toHaveLength(1);
    const s = synced[0];
    expect(s).toMatchObject({
      id: requestId,
      kind: "pre_ai",
      state: "ready",
      restorePoint: restorePointName(a.database, requestId),
    });
    expect(s.name).toMatch(/^pre-ai-\d{8}t\d{6}z: x$/);
    const wal = await admin(
      async (c) => (await c.query("SELECT pg_walfile_name($1::pg_lsn) AS w", [s.lsn])).rows[0].w,
    );
    expect(s.walFile).toBe(wal);
    expect(s.filestorePath).toBe("");
    const left = await withClient(dsnWithDatabase(ADMIN, a.database), async (c) =>
      Number((await c.query("SELECT count(*) AS n FROM loomworks_snapshot.requested")).rows[0].n),
    );
    expect(left).toBe(0);
    expect(
      await syncRequestedSnapshots(ADMIN, a.subdomain, a.database, { filestoreRoot, snapshotRoot }),
    ).toEqual([]);
  });

  it("shows each tenant only its own snapshots in the registry", async () => {
    const [a, b] = await Promise.all([newTenant(), newTenant()]);
    await snap(a, "a-only");
    await snap(b, "b-only");
    const seen = async (s: TenantSpec) =>
      withClient(dsnOf(s, REGISTRY_DATABASE), async (c) =>
        (await c.query<{ subdomain: string }>("SELECT DISTINCT subdomain FROM snapshots")).rows.map(
          (r) => r.subdomain,
        ),
      );
    expect(await seen(a)).toEqual([a.subdomain]);
    expect(await seen(b)).toEqual([b.subdomain]);
  });
});

describe("auto snapshots and retention", () => {
  const runtime = async (s: TenantSpec) =>
    (await listSnapshots(ADMIN, s.subdomain)).filter((x) => x.kind !== "manual");

  it("takes one auto snapshot per active tenant (syncing requests first), then prunes to maxSnapshots", async () => {
    const [a, b] = await Promise.all([newTenant(), newTenant()]);
    await snap(a, "manual");
    await reg((c) =>
      c.query(`UPDATE tenants SET limits = limits || '{"maxSnapshots": 3}'::jsonb WHERE subdomain = $1`, [
        a.subdomain,
      ]),
    );
    await withClient(dsnOf(a), (c) => c.query("SELECT loomworks_snapshot.request('pre_ai', 'queued')"));
    const manualBefore = (await listSnapshots(ADMIN, a.subdomain)).filter((x) => x.kind === "manual");

    const first = await takeAutoSnapshots(ADMIN, { filestoreRoot, snapshotRoot, pgbackrest });
    const mineA = first.find((r) => r.subdomain === a.subdomain);
    const mineB = first.find((r) => r.subdomain === b.subdomain);
    expect(mineA?.error).toBeUndefined();
    expect(mineA?.synced.map((x) => x.name)).toEqual([expect.stringMatching(/: queued$/)]);
    expect(mineA?.snapshot).toMatchObject({ kind: "auto", state: "ready" });
    expect(mineB?.snapshot).toMatchObject({ kind: "auto", state: "ready" });

    for (let i = 0; i < 3; i++) {
      const r = await takeAutoSnapshots(ADMIN, {
        filestoreRoot,
        snapshotRoot,
        subdomains: [a.subdomain, b.subdomain],
      });
      expect(r.map((x) => x.error)).toEqual([undefined, undefined]);
    }
    const left = await runtime(a);
    expect(left).toHaveLength(3);
    expect(left.every((x) => x.kind === "auto")).toBe(true); // the pre_ai one was the oldest
    // B keeps its four (default limit 20); manual snapshots are untouched.
    expect((await runtime(b)).filter((x) => x.kind === "auto")).toHaveLength(4);
    expect((await listSnapshots(ADMIN, a.subdomain)).filter((x) => x.kind === "manual")).toEqual(
      manualBefore,
    );
    expect(mineA?.retiredPruned).toEqual([]);
  });

  it("prunes runtime snapshots older than maxAgeDays (default 30)", async () => {
    const a = await newTenant();
    for (let i = 0; i < 3; i++) await snap(a, `auto-${i}`, "auto");
    const [oldest, , newest] = await runtime(a);
    await reg((c) =>
      c.query("UPDATE snapshots SET created_at = now() - interval '40 days' WHERE id = $1", [oldest.id]),
    );
    await reg((c) =>
      c.query("UPDATE snapshots SET created_at = now() - interval '10 days' WHERE id = $1", [newest.id]),
    );
    expect(await pruneSnapshots(ADMIN, a.subdomain)).toEqual([oldest.id]);
    expect(await pruneSnapshots(ADMIN, a.subdomain, { maxAgeDays: 7 })).toEqual([newest.id]);
    expect(await runtime(a)).toHaveLength(1);
  });

  it("removes retired files once no snapshot and no backup is older than their retirement", async () => {
    const a = await newTenant();
    const area = retiredRoot(filestoreRoot, a.database);
    const batch = (ms: number) => path.join(area, String(ms));
    const put = async (ms: number) => {
      await fsp.mkdir(path.join(batch(ms), "ab"), { recursive: true });
      await fsp.writeFile(path.join(batch(ms), "ab", "abcd"), "retired");
    };
    // Nothing is pruned while the registry knows no backup (the recovery window is unknown).
    await put(1000);
    const known = await reg(async (c) => (await c.query("SELECT count(*)::int AS n FROM backups")).rows[0].n);
    if (known === 0) {
      expect(await pruneRetiredFiles(ADMIN, a.subdomain, a.database, filestoreRoot)).toEqual([]);
    }
    await reg((c) =>
      c.query(
        `INSERT INTO backups (label, type, start_time, stop_time, start_lsn, stop_lsn)
         VALUES ($1, 'full', now() - interval '1 day', now() - interval '1 day', '0/1', '0/1')`,
        [FAKE_BACKUP],
      ),
    );
    const oldestBackup = await reg(
      async (c) => (await c.query<{ t: Date }>("SELECT min(start_time) AS t FROM backups")).rows[0].t,
    );
    const tooOld = oldestBackup.getTime() - 60_000;
    await put(tooOld);
    await put(Date.now());
    try {
      expect(await pruneRetiredFiles(ADMIN, a.subdomain, a.database, filestoreRoot)).toEqual([tooOld, 1000]);
      expect(fs.existsSync(batch(tooOld))).toBe(false);

      // A snapshot older than the backups keeps what was retired after it.
      const s = await snap(a, "old", "manual");
      const snapAt = oldestBackup.getTime() - 3_600_000;
      await reg((c) =>
        c.query("UPDATE snapshots SET created_at = $2 WHERE id = $1", [s.id, new Date(snapAt)]),
      );
      await put(tooOld);
      await put(snapAt - 1000);
      expect(await pruneRetiredFiles(ADMIN, a.subdomain, a.database, filestoreRoot)).toEqual([snapAt - 1000]);
      expect(fs.existsSync(batch(tooOld))).toBe(true);
    } finally {
      await reg((c) => c.query("DELETE FROM backups WHERE label = $1", [FAKE_BACKUP]));
    }
    await deleteTenant(ADMIN, { ...a, forceDestroy: true });
    expect(fs.existsSync(area)).toBe(false);
  });
});
