/**
 * Point-in-time restore of one tenant (lib/restore) against the real integration cluster
 * (test/integration/global-setup.ts): real PostgreSQL 15 and pgBackRest, no mocks.
 *
 * Snapshots are simulated with pg_create_restore_point + a hard-link copy of the filestore (the
 * Snapshot resource does the same; it is tested in snapshots.test.ts).
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { localClusterSpec, runBackup, type LocalClusterSpec } from "../../lib/pg/cluster";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { quoteIdent, withPlainClient as withClient } from "../../lib/pg/client";
import { clusterPaths } from "../../lib/pg/paths";
import { UNKNOWN as UNKNOWN_INPUT } from "../../lib/pulumi/unknown";
import { checkPitrRestore } from "../../lib/restore/provider";
import {
  databaseAclSummary,
  listRestores,
  readRestore,
  resumeOrRollback,
  restoreTenant,
  scratchProcesses,
  validateRestoreTarget,
  type RestoreResult,
  type RestoreTarget,
  type RestoreTenantOptions,
} from "../../lib/restore";
import {
  createTenant,
  deleteTenant,
  tenantDsn,
  updateTenant,
  type TenantSpec,
} from "../../lib/tenant/provision";
import { registryDsn, tenantJournal } from "../../lib/registry/registry";
import { retiredRoot } from "../../lib/filestore/retired";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { dropTemplate, ensureTemplate } from "../../lib/tenant/template";
import { randomTenantSpec, restoreOptionsFor } from "../helpers/tenants";

const pg = inject("pg");
const ADMIN = pg.adminDsn;
const CLUSTER: LocalClusterSpec = localClusterSpec(pg);
const FIXTURE_DUMP = path.resolve(__dirname, "..", "fixtures", "odoo-shaped", "template.sql");
const REPO = path.resolve(__dirname, "..", "..");
const VITE_NODE = path.join(REPO, "node_modules", "vite-node", "vite-node.mjs");
const CHILD = path.join(__dirname, "restore-crash-child.ts");

const run = randomBytes(3).toString("hex");
const FIXTURE_TEMPLATE = `loomworks_template_rs_${run}`;
/** A small Odoo-like template for the crash cases (they test the state machine, not the scale). */
const SMALL_TEMPLATE = `loomworks_template_rs_small_${run}`;
const SMALL_SQL = `
CREATE TABLE res_partner (id serial PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE res_users (id serial PRIMARY KEY, login text NOT NULL, password text, partner_id int REFERENCES res_partner(id));
CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key text UNIQUE NOT NULL, value text);
CREATE TABLE ir_attachment (id serial PRIMARY KEY, name text, store_fname text);
INSERT INTO res_partner (name) VALUES ('company'), ('admin');
INSERT INTO res_users (id, login, partner_id) VALUES (1, '__system__', 1), (2, 'admin', 2);
INSERT INTO ir_config_parameter (key, value) VALUES ('database.uuid', 'x'), ('database.secret', 'y');
`;
const filestoreRoot = clusterPaths(pg.stateDir).filestoreDir;
const restoreRoot = path.join(pg.stateDir, "restore");
const created: TenantSpec[] = [];
let workDir: string;
let snapshotRoot: string;

function specFor(template = FIXTURE_TEMPLATE, overrides: Partial<TenantSpec> = {}): TenantSpec {
  const spec = randomTenantSpec("r", template, filestoreRoot, overrides);
  created.push(spec);
  return spec;
}

async function newTenant(
  template = FIXTURE_TEMPLATE,
  overrides: Partial<TenantSpec> = {},
): Promise<TenantSpec> {
  const spec = specFor(template, overrides);
  await createTenant(ADMIN, spec);
  return spec;
}

function restoreOpts(t: TenantSpec, target: RestoreTarget, extra: Partial<RestoreTenantOptions> = {}) {
  return restoreOptionsFor(pg, t, target, extra);
}

const admin = <T>(fn: (c: Client) => Promise<T>): Promise<T> => withClient(ADMIN, fn);
const inDb = <T>(db: string, fn: (c: Client) => Promise<T>): Promise<T> =>
  withClient(dsnWithDatabase(ADMIN, db), fn);

/** Runs `fn` in a database that may refuse connections (pre-restore copies, suspended tenants). */
async function inClosedDb<T>(db: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const allowed = await admin(
    async (c) =>
      (await c.query("SELECT datallowconn FROM pg_database WHERE datname = $1", [db])).rows[0].datallowconn,
  );
  if (!allowed) await admin((c) => c.query(`ALTER DATABASE ${quoteIdent(db)} ALLOW_CONNECTIONS true`));
  try {
    return await inDb(db, fn);
  } finally {
    if (!allowed) await admin((c) => c.query(`ALTER DATABASE ${quoteIdent(db)} ALLOW_CONNECTIONS false`));
  }
}

/** md5 of every table's rows in a stable order, in one round trip. */
async function digests(c: Client): Promise<Record<string, string>> {
  const r = await c.query<{ t: string; h: string }>(
    `SELECT format('%I.%I', schemaname, tablename) AS t,
            (xpath('/row/h/text()', query_to_xml(format(
               'SELECT md5(coalesce(string_agg(x::text, ''|'' ORDER BY x::text), '''')) AS h FROM %I.%I x',
               schemaname, tablename), false, true, '')))[1]::text AS h
     FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  );
  return Object.fromEntries(r.rows.map((x) => [x.t, x.h]));
}

async function lsnNow(c: Client): Promise<string> {
  return (await c.query<{ l: string }>("SELECT pg_current_wal_lsn()::text AS l")).rows[0].l;
}

async function dbNames(pattern: string): Promise<string[]> {
  return admin(async (c) =>
    (
      await c.query<{ d: string }>("SELECT datname AS d FROM pg_database WHERE datname LIKE $1 ORDER BY 1", [
        pattern,
      ])
    ).rows.map((r) => r.d),
  );
}

async function dbFacts(db: string) {
  return admin(async (c) => {
    const r = await c.query<{ owner: string; allow: boolean; comment: string | null }>(
      `SELECT pg_get_userbyid(datdba)::text AS owner, datallowconn AS allow, shobj_description(oid, 'pg_database') AS comment
       FROM pg_database WHERE datname = $1`,
      [db],
    );
    return r.rows[0] ? { ...r.rows[0], acl: await databaseAclSummary(c, db) } : undefined;
  });
}

async function maintenance(sub: string): Promise<string | null> {
  return withClient(registryDsn(ADMIN), async (c) => {
    const r = await c.query<{ m: string | null }>(
      "SELECT maintenance AS m FROM tenants WHERE subdomain = $1",
      [sub],
    );
    return r.rows[0]?.m ?? null;
  });
}

/** Writes a content-addressed file into a filestore (Odoo's layout: <2 hex>/<sha1>). */
async function putFile(dir: string, content: string): Promise<string> {
  const sha = createHash("sha1").update(content).digest("hex");
  const rel = path.join(sha.slice(0, 2), sha);
  await fs.mkdir(path.join(dir, sha.slice(0, 2)), { recursive: true });
  await fs.writeFile(path.join(dir, rel), content);
  return rel;
}

/** The attachment rows that reference files (as the ERP writes them). */
async function attach(db: string, ...names: string[]): Promise<void> {
  await inDb(db, (c) =>
    c.query("INSERT INTO ir_attachment (name, store_fname) SELECT n, n FROM unnest($1::text[]) n", [names]),
  );
}

/** What the ERP's garbage collector does with an unreferenced file: retire it (lib/filestore/retired.ts). */
async function retireFile(t: TenantSpec, rel: string): Promise<void> {
  await inDb(t.database, (c) => c.query("DELETE FROM ir_attachment WHERE store_fname = $1", [rel]));
  const target = path.join(retiredRoot(filestoreRoot, t.database), String(Date.now()), rel);
  await fs.mkdir(path.dirname(target), { recursive: true });
  await fs.rename(path.join(filestoreRoot, t.database, rel), target);
}

/** A simulated Snapshot: restore point + hard-link copy of the filestore. */
async function takeSnapshot(t: TenantSpec, name: string): Promise<{ lsn: string; filestore: string }> {
  const lsn = await admin(
    async (c) =>
      (await c.query<{ l: string }>("SELECT pg_create_restore_point($1)::text AS l", [name])).rows[0].l,
  );
  const filestore = path.join(snapshotRoot, `${t.database}-${name}`);
  await fs.mkdir(filestore, { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const cp = spawn("cp", ["-al", `${path.join(filestoreRoot, t.database)}/.`, `${filestore}/`]);
    cp.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`cp exited ${code}`))));
  });
  return { lsn, filestore };
}

async function expectNoLeftovers(t: TenantSpec): Promise<void> {
  expect(await dbNames(`${t.database}\\_\\_restore\\_%`)).toEqual([]);
  const scratch = existsSync(restoreRoot) ? await fs.readdir(restoreRoot) : [];
  expect(scratch).toEqual([]);
  expect(await scratchProcesses(restoreRoot)).toEqual([]);
  expect(await maintenance(t.subdomain)).toBeNull();
  const fsEntries = await fs.readdir(filestoreRoot);
  expect(fsEntries.filter((e) => e.startsWith(`${t.database}__restore_`))).toEqual([]);
}

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-restore-it-"));
  snapshotRoot = path.join(pg.stateDir, "snapshots-restore-it");
  await fs.mkdir(snapshotRoot, { recursive: true });
  const small = path.join(workDir, "small.sql");
  await fs.writeFile(small, SMALL_SQL);
  await ensureTemplate(ADMIN, {
    name: "default",
    database: FIXTURE_TEMPLATE,
    fromDump: FIXTURE_DUMP,
    stateDir: workDir,
  });
  await ensureTemplate(ADMIN, {
    name: "small",
    database: SMALL_TEMPLATE,
    fromDump: small,
    stateDir: workDir,
  });
}, 180_000);

/** Deletes the tenants made so far (with their pre-restore databases), keeping later backups small. */
async function deleteCreatedTenants(): Promise<void> {
  for (const s of created.splice(0))
    await deleteTenant(ADMIN, { ...s, forceDestroy: true }).catch(() => undefined);
}

afterAll(async () => {
  await deleteCreatedTenants();
  for (const t of [FIXTURE_TEMPLATE, SMALL_TEMPLATE]) await dropTemplate(ADMIN, t).catch(() => undefined);
  await fs.rm(workDir, { recursive: true, force: true });
  await fs.rm(snapshotRoot, { recursive: true, force: true });
}, 180_000);

describe("restore to a snapshot, with a neighbour writing meanwhile", () => {
  afterAll(deleteCreatedTenants, 120_000);

  let a: TenantSpec;
  let b: TenantSpec;
  let atSnapshot: Record<string, string>;
  let afterChanges: Record<string, string>;
  let before: Awaited<ReturnType<typeof dbFacts>>;
  let result: RestoreResult;
  const files: Record<string, string> = {};
  const neighbour = { committed: [] as number[], errors: [] as string[] };

  beforeAll(async () => {
    [a, b] = await Promise.all([newTenant(), newTenant()]);
    const aFs = path.join(filestoreRoot, a.database);
    files.kept = await putFile(aFs, `kept ${run}`);
    files.deletedLater = await putFile(aFs, `deleted after the snapshot ${run}`);
    await attach(a.database, files.kept, files.deletedLater);
    await inDb(a.database, async (c) => {
      await c.query("CREATE TABLE x_restore_probe (id int PRIMARY KEY, v text)");
      await c.query(`ALTER TABLE x_restore_probe OWNER TO ${quoteIdent(a.roleName)}`);
      await c.query("INSERT INTO x_restore_probe SELECT g, md5(g::text) FROM generate_series(1, 500) g");
      await c.query("UPDATE res_partner SET name = 'At snapshot' WHERE id = 1");
    });
    // A backup newer than the tenants: the scratch restore includes A by name (--db-include).
    await runBackup(CLUSTER, "incr");
    atSnapshot = await inDb(a.database, digests);
    before = await dbFacts(a.database);
    const snap = await takeSnapshot(a, `rs-${run}`);

    // After the snapshot: rows changed and deleted, a table dropped, files deleted and added.
    await inDb(a.database, async (c) => {
      await c.query("UPDATE res_partner SET name = 'Changed later', email = 'later@example.com'");
      await c.query("DELETE FROM mail_message");
      await c.query("DROP TABLE x_restore_probe");
      await c.query("INSERT INTO ir_config_parameter (key, value) VALUES ('later.key', 'later')");
    });
    // Deleted by an ERP without the platform's addon (unlinked): the snapshot's old-layout copy has it.
    await inDb(a.database, (c) =>
      c.query("DELETE FROM ir_attachment WHERE store_fname = $1", [files.deletedLater]),
    );
    await fs.rm(path.join(aFs, files.deletedLater));
    files.addedLater = await putFile(aFs, `added after the snapshot ${run}`);
    await attach(a.database, files.addedLater);
    afterChanges = await inDb(a.database, digests);

    // The neighbour: its own connection as its own role, one commit per row, all through the restore.
    await inDb(b.database, (c) =>
      c.query(`CREATE TABLE nb (id int PRIMARY KEY, at timestamptz DEFAULT now())`),
    );
    await inDb(b.database, (c) => c.query(`ALTER TABLE nb OWNER TO ${quoteIdent(b.roleName)}`));
    let stop = false;
    const writer = withClient(
      tenantDsn(pg.host, pg.port, b.roleName, b.rolePassword, b.database),
      async (c) => {
        for (let i = 1; !stop; i++) {
          try {
            await c.query("INSERT INTO nb (id) VALUES ($1)", [i]);
            neighbour.committed.push(i);
          } catch (err) {
            neighbour.errors.push((err as Error).message);
          }
          await new Promise((r) => setTimeout(r, 5));
        }
      },
    );
    try {
      result = await restoreTenant(
        restoreOpts(
          a,
          { snapshot: `rs-${run}` },
          { snapshotLsn: snap.lsn, snapshotFilestore: snap.filestore },
        ),
      );
    } finally {
      stop = true;
      await writer;
    }
    console.log(`[restore] snapshot restore of a fixture tenant: ${JSON.stringify(result.timings)}`);
  }, 180_000);

  it("brings back exactly the rows and tables of the snapshot (md5 of every table)", async () => {
    expect(result.state).toBe("done");
    expect(afterChanges).not.toEqual(atSnapshot);
    const now = await inDb(a.database, digests);
    expect(Object.keys(now).length).toBeGreaterThan(400);
    expect(now).toEqual(atSnapshot);
  });

  it("keeps the pre-restore database, closed, with the later state", async () => {
    const pre = result.preRestoreDatabase;
    expect(pre).toBe(`${a.database}__pre_${result.id}`);
    const facts = await dbFacts(pre);
    expect(facts).toMatchObject({ owner: "postgres", allow: false });
    expect(await inClosedDb(pre, digests)).toEqual(afterChanges);
  });

  it("gives the tenant its database back as before: owner, privileges, comment, connections, its role logs in", async () => {
    const after = await dbFacts(a.database);
    expect(after).toEqual(before);
    const foreign = await inDb(a.database, async (c) =>
      Number(
        (
          await c.query(
            `SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v') AND pg_get_userbyid(c.relowner) <> $1`,
            [a.roleName],
          )
        ).rows[0].n,
      ),
    );
    expect(foreign).toBe(0);
    const seen = await withClient(
      tenantDsn(pg.host, pg.port, a.roleName, a.rolePassword, a.database),
      async (c) => {
        const r = await c.query(
          "SELECT current_user AS u, (SELECT name FROM res_partner WHERE id = 1) AS name",
        );
        return r.rows[0];
      },
    );
    expect(seen).toEqual({ u: a.roleName, name: "At snapshot" });
    expect(await maintenance(a.subdomain)).toBeNull();
  });

  it("records every step in the journal and the registry, with timings", async () => {
    const rec = await readRestore(ADMIN, result.id);
    expect(rec).toMatchObject({
      state: "done",
      step: "cleanup",
      backup: result.backup,
      targetLsn: result.targetLsn,
    });
    for (const key of [
      "validateMs",
      "scratchRestoreMs",
      "verifyMs",
      "copyMs",
      "swapMs",
      "cleanupMs",
      "totalMs",
      "unavailableMs",
    ]) {
      expect(rec?.timings).toHaveProperty(key);
    }
    expect(rec?.timings.rowCounts?.res_partner).toBeGreaterThan(0);
    const journal = (await withClient(registryDsn(ADMIN), (c) => tenantJournal(c, a.subdomain))).filter((j) =>
      j.step.startsWith(`restore:${result.id}:`),
    );
    expect(journal.map((j) => j.step.split(":")[2])).toEqual([
      "validate",
      "scratch-restore",
      "verify",
      "copy",
      "swap",
      "cleanup",
    ]);
    expect(journal.every((j) => j.finishedAt !== null)).toBe(true);
    await expectNoLeftovers(a);
  });

  it("restores the files of the snapshot (its old-layout copy); the pre-restore filestore keeps the later files", async () => {
    const restored = path.join(filestoreRoot, a.database);
    const pre = path.join(filestoreRoot, result.preRestoreDatabase);
    expect(existsSync(path.join(restored, files.kept))).toBe(true);
    expect(existsSync(path.join(restored, files.deletedLater))).toBe(true);
    expect(existsSync(path.join(restored, files.addedLater))).toBe(false);
    expect(existsSync(path.join(pre, files.addedLater))).toBe(true);
    expect(existsSync(path.join(pre, files.deletedLater))).toBe(false);
    expect((await fs.stat(path.join(restored, files.kept))).nlink).toBeGreaterThan(1); // hard links
  });

  it("leaves the neighbour alone: every row it committed meanwhile is there, no write refused", async () => {
    expect(neighbour.errors).toEqual([]);
    expect(neighbour.committed.length).toBeGreaterThan(20);
    const ids = await inDb(b.database, async (c) =>
      (await c.query<{ id: number }>("SELECT id FROM nb ORDER BY id")).rows.map((r) => r.id),
    );
    expect(ids).toEqual(neighbour.committed);
  });
});

describe("time and LSN targets", () => {
  afterAll(deleteCreatedTenants, 120_000);

  it("restores to a time: commits at or before it are there, later ones are not; exactly the files referenced then", async () => {
    const t = await newTenant();
    const nb = await newTenant();
    const tFs = path.join(filestoreRoot, t.database);
    const early = await putFile(tFs, `early ${run}`);
    const retiredLater = await putFile(tFs, `retired after the target ${run}`);
    const lost = path.join("ab", "ab".padEnd(40, "0"));
    await attach(t.database, early, retiredLater, lost);
    // A hostile tenant with only its DSN names files outside its filestore: its neighbour's, the system's.
    const secret = await putFile(path.join(filestoreRoot, nb.database), `neighbour's secret ${run}`);
    await withClient(tenantDsn(pg.host, pg.port, t.roleName, t.rolePassword, t.database), (c) =>
      c.query(
        "INSERT INTO ir_attachment (name, store_fname) VALUES ('x', $1), ('y', '/etc/passwd'), ('z', $2)",
        [`../${nb.database}/${secret}`, path.join(filestoreRoot, nb.database, secret)],
      ),
    );
    await inDb(t.database, (c) => c.query("UPDATE res_partner SET name = 'early' WHERE id = 1"));
    const atTime = await inDb(t.database, digests);
    await new Promise((r) => setTimeout(r, 1100));
    const target = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 1100));
    await inDb(t.database, (c) => c.query("UPDATE res_partner SET name = 'late' WHERE id = 1"));
    const late = await putFile(tFs, `late ${run}`);
    await attach(t.database, late);
    await retireFile(t, retiredLater);
    // The tenant was created after the newest backup: restored by excluding every other database.
    const r = await restoreTenant(restoreOpts(t, { time: target }));
    expect(r.state).toBe("done");
    expect(r.targetLsn).toBeNull();
    expect(await inDb(t.database, digests)).toEqual(atTime);
    // Exactly the files referenced at the target: from the live filestore and the retired area.
    const linked = (await fs.readdir(tFs, { recursive: true })).filter((f) => f.length > 3).sort();
    expect(linked).toEqual([early, retiredLater].sort());
    // The fixture's logo (no file in this test), the lost file and the hostile names: reported, never linked.
    expect(r.timings.filestoreFiles).toBe(2);
    expect(r.timings.filestoreMissingNames).toEqual(
      expect.arrayContaining([lost, `${nb.database}/${secret}`, "etc/passwd"]),
    );
    expect((await fs.stat(path.join(filestoreRoot, nb.database, secret))).nlink).toBe(1);
    expect(existsSync(path.join(filestoreRoot, r.preRestoreDatabase, late))).toBe(true);
    await expectNoLeftovers(t);
  });

  it("reads no attachment table a tenant has turned into a view: its code never runs as the platform", async () => {
    const t = await newTenant(SMALL_TEMPLATE);
    const tenant = tenantDsn(pg.host, pg.port, t.roleName, t.rolePassword, t.database);
    await withClient(tenant, async (c) => {
      await c.query("ALTER TABLE ir_attachment RENAME TO ir_attachment_rows");
      await c.query(`CREATE FUNCTION public.grab() RETURNS text LANGUAGE plpgsql AS $$
        BEGIN EXECUTE 'ALTER ROLE ${t.roleName} SUPERUSER'; RETURN 'x'; END $$`);
      await c.query(
        "CREATE VIEW ir_attachment AS SELECT id, public.grab() AS store_fname FROM ir_attachment_rows",
      );
    });
    const lsn = await admin(lsnNow);
    const r = await restoreTenant(restoreOpts(t, { lsn }));
    expect(r.state).toBe("done");
    expect(r.timings.filestoreRefused).toMatch(/not a plain table \(relkind v\)/);
    const su = await admin(
      async (c) =>
        (await c.query("SELECT rolsuper FROM pg_roles WHERE rolname = $1", [t.roleName])).rows[0].rolsuper,
    );
    expect(su).toBe(false);
    await expectNoLeftovers(t);
  });

  it("restores a suspended tenant to an LSN and leaves it suspended", async () => {
    const t = await newTenant();
    await inDb(t.database, (c) => c.query("UPDATE res_partner SET name = 'at lsn' WHERE id = 1"));
    const atLsn = await inDb(t.database, digests);
    const lsn = await admin(lsnNow);
    await inDb(t.database, (c) => c.query("UPDATE res_partner SET name = 'after lsn' WHERE id = 1"));
    const suspended: TenantSpec = { ...t, state: "suspended" };
    await updateTenant(ADMIN, t, suspended);
    t.state = "suspended";
    const before = await dbFacts(t.database);
    expect(before?.allow).toBe(false);
    const r = await restoreTenant(restoreOpts(t, { lsn }));
    expect(r).toMatchObject({ state: "done", targetLsn: lsn });
    const after = await dbFacts(t.database);
    expect(after).toEqual(before);
    const canLogin = await admin(
      async (c) =>
        (await c.query("SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", [t.roleName])).rows[0]
          .rolcanlogin,
    );
    expect(canLogin).toBe(false);
    expect(await inClosedDb(t.database, digests)).toEqual(atLsn);
    await expectNoLeftovers(t);

    // The Kubernetes Job re-run (a replaced Job) with the same target: done already, nothing rolled back.
    await inClosedDb(t.database, (c) =>
      c.query("UPDATE res_partner SET name = 'after the restore' WHERE id = 1"),
    );
    const later = await inClosedDb(t.database, digests);
    const again = await restoreTenant({ ...restoreOpts(t, { lsn }), oncePerTarget: true });
    expect(again).toMatchObject({ id: r.id, state: "done" });
    expect(await inClosedDb(t.database, digests)).toEqual(later);
  });
});

describe("targets outside the recovery window", () => {
  afterAll(deleteCreatedTenants, 120_000);

  it("refuses them with a clear error naming tenant and key, changing nothing", async () => {
    const t = await newTenant(SMALL_TEMPLATE);
    const state = await inDb(t.database, digests);
    const future = new Date(Date.now() + 3600_000).toISOString();
    const cases: Array<[RestoreTarget, string | undefined, RegExp]> = [
      [
        { time: "2001-01-01T00:00:00Z" },
        undefined,
        /^tenant "r-[0-9a-f]+": key "restore\.time": 2001-01-01T00:00:00\.000Z is before the recovery window, which starts at \d{4}-/,
      ],
      [{ time: future }, undefined, /^tenant "r-[0-9a-f]+": key "restore\.time": .* is in the future/],
      [
        { lsn: "0/10" },
        undefined,
        /key "restore\.lsn": 0\/10 is before the recovery window, which starts at .* \(LSN /,
      ],
      [{ lsn: "FFFF/0" }, undefined, /key "restore\.lsn": FFFF\/0 is in the future/],
      [
        { snapshot: "gone" },
        "0/10",
        /key "restore\.snapshot": snapshot "gone" \(LSN 0\/10\) is before the recovery window/,
      ],
      [
        { snapshot: "never-made" },
        undefined,
        /key "restore\.snapshot": snapshot "never-made" has no recorded LSN/,
      ],
    ];
    for (const [target, snapshotLsn, message] of cases) {
      const opts = restoreOpts(t, target, snapshotLsn ? { snapshotLsn } : {});
      await expect(validateRestoreTarget(opts)).rejects.toThrow(message);
      await expect(restoreTenant(opts)).rejects.toThrow(message);
    }
    expect(await listRestores(ADMIN, t.subdomain)).toEqual([]);
    expect(await inDb(t.database, digests)).toEqual(state);
    await expectNoLeftovers(t);
  });

  it("fails the provider's check (so `pulumi preview` fails) only for a new or changed target", async () => {
    const t = await newTenant(SMALL_TEMPLATE);
    const inputs = { ...restoreOpts(t, { time: "2001-01-01T00:00:00Z" }) } as Record<string, unknown>;
    const refused = await checkPitrRestore({}, inputs);
    expect(refused).toMatchObject({ validated: true, failures: [{ property: "target" }] });
    expect(refused.failures[0].reason).toMatch(
      /^tenant "r-[0-9a-f]+": key "restore\.time": .* is before the recovery window, which starts at /,
    );
    // Unchanged since the last up: not validated again (the window moves on after a restore).
    expect(await checkPitrRestore(inputs, { ...inputs })).toEqual({ failures: [], validated: false });
    // A snapshot created in the same update: its LSN is not known in the preview.
    const pending = { ...inputs, target: { snapshot: "new" }, snapshotLsn: UNKNOWN_INPUT };
    expect(await checkPitrRestore({}, pending)).toEqual({ failures: [], validated: false });
    const lsn = await admin(lsnNow);
    expect(await checkPitrRestore({}, { ...inputs, target: { lsn } })).toEqual({
      failures: [],
      validated: true,
    });
    expect(await listRestores(ADMIN, t.subdomain)).toEqual([]);
  });
});

describe("a restored copy is in the WAL: restore, write, then restore to after the first restore", () => {
  afterAll(deleteCreatedTenants, 120_000);

  let t: TenantSpec;
  const extensions = (db: string) =>
    inDb(db, async (c) =>
      (await c.query<{ e: string }>("SELECT extname AS e FROM pg_extension ORDER BY 1")).rows.map((r) => r.e),
    );
  let extensionsBefore: string[];
  let extensionsAfterFirst: string[];
  let afterFirst: Record<string, string>;
  let first: RestoreResult;
  let second: RestoreResult;
  let atFirstTarget: Record<string, string>;
  let afterWrites: Record<string, string>;
  let firstTarget: string;

  beforeAll(async () => {
    // The fixture's ~400 tables have foreign keys in a cycle (res_partner, res_users, res_company):
    // the overlapped pipeline builds their indexes with parallel jobs and the keys apart.
    t = await newTenant();
    await runBackup(CLUSTER, "incr");
    extensionsBefore = await extensions(t.database);
    await inDb(t.database, (c) => c.query("UPDATE res_partner SET name = 'first target' WHERE id = 1"));
    atFirstTarget = await inDb(t.database, digests);
    firstTarget = await admin(lsnNow);
    await inDb(t.database, (c) => c.query("DELETE FROM mail_message"));
    first = await restoreTenant(restoreOpts(t, { lsn: firstTarget }, { pipeline: "overlapped" }));
    afterFirst = await inDb(t.database, digests);
    extensionsAfterFirst = await extensions(t.database);

    // Writes into the restored copy, then a target after them, then more changes.
    await inDb(t.database, async (c) => {
      await c.query("UPDATE res_partner SET email = 'after-first-restore@example.com' WHERE id % 2 = 0");
      await c.query("INSERT INTO ir_config_parameter (key, value) VALUES ('after.first.restore', 'kept')");
      await c.query("DELETE FROM x_fixture_module_001 WHERE id % 3 = 0");
    });
    afterWrites = await inDb(t.database, digests);
    const secondTarget = await admin(lsnNow);
    await inDb(t.database, (c) => c.query("UPDATE res_partner SET name = 'too late'"));
    // The sequential pipeline reads the same WAL: nothing of the first copy came from a backup.
    second = await restoreTenant(restoreOpts(t, { lsn: secondTarget }, { pipeline: "sequential" }));
    console.log(
      `[restore] overlapped: ${JSON.stringify(first.timings)}; then sequential: ${JSON.stringify(second.timings)}`,
    );
  }, 300_000);

  it("the first restore (overlapped) brings back the target, without the extension its verify installed", () => {
    expect(first).toMatchObject({ state: "done", timings: { pipeline: "overlapped" } });
    expect(first.timings.indexesMs).toBeGreaterThan(0);
    expect(first.timings.schemaLoadMs).toBeGreaterThan(0);
    expect(afterFirst).toEqual(atFirstTarget);
    expect(extensionsBefore).not.toContain("amcheck");
    expect(extensionsAfterFirst).toEqual(extensionsBefore);
  });

  it("the second restore, to after the writes into the first copy, has exactly those writes (replayed from WAL)", async () => {
    expect(second).toMatchObject({ state: "done", timings: { pipeline: "sequential" } });
    expect(afterWrites).not.toEqual(atFirstTarget);
    expect(await inDb(t.database, digests)).toEqual(afterWrites);
    expect(await extensions(t.database)).toEqual(extensionsBefore);
    // its verify ran pg_amcheck over every heap and index of the replayed copy
    expect(second.timings.amcheckMs).toBeGreaterThan(0);
  });
});

describe("crash at every step boundary, then resume", () => {
  afterAll(deleteCreatedTenants, 120_000);

  const POINTS = [
    "validate",
    "scratch-restore",
    "verify",
    "schema-loaded",
    "copy",
    "copy-loaded",
    "copy-filestore",
    "swap",
    "swap-committed",
    "cleanup",
  ];
  /** The step a crash point lies in (the journal's `restores.step`). */
  const STEP_OF: Record<string, string> = {
    "swap-committed": "swap",
    "copy-loaded": "copy",
    "copy-filestore": "copy",
    "schema-loaded": "verify",
  };
  const loadRoles = (id: string) =>
    admin(
      async (c) =>
        (await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [`loomworks_restore_${id}`])).rowCount,
    );

  beforeAll(async () => {
    // The crash cases use the small template only: drop the fixture template first, so that the
    // scratch restores do not zero its ~1,600 files (the cost grows with the cluster's file count),
    // and take a backup so the WAL each scratch instance replays stays short.
    await dropTemplate(ADMIN, FIXTURE_TEMPLATE);
    await runBackup(CLUSTER, "incr");
  }, 120_000);

  function runChild(
    opts: RestoreTenantOptions,
    point: string,
  ): Promise<{ signal: string | null; out: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [VITE_NODE, CHILD], {
        cwd: REPO,
        env: {
          ...process.env,
          LOOMWORKS_CRASH_AT: `restore:${point}`,
          LOOMWORKS_CRASH_SELF: "1",
          LOOMWORKS_RESTORE_OPTS: JSON.stringify(opts),
        },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      child.stderr.on("data", (d: Buffer) => (out += d.toString()));
      child.on("error", reject);
      child.on("close", (_code, signal) => resolve({ signal, out }));
    });
  }

  for (const point of POINTS) {
    const committed = point === "swap-committed" || point === "cleanup";
    const title = committed
      ? "the next restoreTenant finishes it (no second restore); tenant fully restored, nothing behind"
      : "resumeOrRollback leaves the tenant as before, nothing behind; a new restore then restores it";
    it(`crash at restore:${point}: ${title}`, async () => {
      const started = Date.now();
      const t = await newTenant(SMALL_TEMPLATE);
      const file = await putFile(path.join(filestoreRoot, t.database), `crash at ${point} ${run}`);
      await attach(t.database, file);
      await inDb(t.database, (c) => c.query("UPDATE res_partner SET name = 'target' WHERE id = 1"));
      const atTarget = await inDb(t.database, digests);
      const lsn = await admin(lsnNow);
      await inDb(t.database, (c) => c.query("INSERT INTO res_partner (name) VALUES ('after the target')"));
      const current = await inDb(t.database, digests);
      const opts = restoreOpts(t, { lsn });

      const crashed = await runChild(opts, point);
      expect(crashed.signal, crashed.out).toBe("SIGKILL");
      const [row] = await listRestores(ADMIN, t.subdomain);
      expect(row).toMatchObject({ state: "running", step: STEP_OF[point] ?? point });
      // Killed while the copy's tenant rows were just loaded: its load role is still there.
      if (point === "copy-loaded") expect(await loadRoles(row.id)).toBe(1);

      let result: RestoreResult;
      if (committed) {
        // restoreTenant resumes first: the interrupted restore (same target) is finished, not redone.
        result = await restoreTenant(opts);
        expect(result).toMatchObject({ id: row.id, state: "done" });
        expect((await listRestores(ADMIN, t.subdomain)).map((x) => x.state)).toEqual(["done"]);
      } else {
        const outcomes = await resumeOrRollback({ ...opts });
        expect(outcomes.map((o) => [o.id, o.action])).toEqual([[row.id, "rolled_back"]]);
        expect(await dbFacts(t.database)).toMatchObject({ owner: "postgres", allow: true });
        expect(await inDb(t.database, digests)).toEqual(current);
        expect(await dbNames(`${t.database}\\_\\_pre\\_%`)).toEqual([]);
        await expectNoLeftovers(t);
        expect(await loadRoles(row.id)).toBe(0);
        result = await restoreTenant(opts);
        expect(result.state).toBe("done");
        expect(result.id).not.toBe(row.id);
      }
      expect(await inDb(t.database, digests)).toEqual(atTarget);
      expect(existsSync(path.join(filestoreRoot, t.database, file))).toBe(true);
      expect(await dbNames(`${t.database}\\_\\_pre\\_%`)).toEqual([`${t.database}__pre_${result.id}`]);
      await expectNoLeftovers(t);
      expect(await loadRoles(result.id)).toBe(0);
      const connects = await withClient(
        tenantDsn(pg.host, pg.port, t.roleName, t.rolePassword, t.database),
        (c) => c.query("SELECT 1"),
      );
      expect(connects.rowCount).toBe(1);
      console.log(
        `[restore] crash at ${point}: case took ${Date.now() - started} ms; ${JSON.stringify(result.timings)}`,
      );
    });
  }
});
