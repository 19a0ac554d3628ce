/**
 * Tenant provisioning against the real integration cluster (test/integration/global-setup.ts).
 * Tenants are copied from a template built from the Odoo-shaped FIXTURE schema
 * (test/fixtures/odoo-shaped; not Odoo).
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Client } from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { quoteIdent, withPlainClient as withClient } from "../../lib/pg/client";
import { clusterPaths } from "../../lib/pg/paths";
import { verifyPbkdf2Sha512 } from "../../lib/tenant/passlib";
import {
  createTenant,
  deleteTenant,
  readTenant,
  tenantDsn,
  updateTenant,
  type TenantSpec,
} from "../../lib/tenant/provision";
import { diffTenant } from "../../lib/tenant/provider";
import { REGISTRY_DATABASE, registryDsn, tenantJournal } from "../../lib/registry/registry";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { dropTemplate, ensureTemplate, templateSourceHash, templateStatus } from "../../lib/tenant/template";
import { randomTenantSpec, tryConnect } from "../helpers/tenants";

const pg = inject("pg");
const ADMIN = pg.adminDsn;
const FIXTURE_DIR = path.resolve(__dirname, "..", "fixtures", "odoo-shaped");
const TEMPLATE_DUMP = path.join(FIXTURE_DIR, "template.sql");
const CORE_DUMP = path.join(FIXTURE_DIR, "schema.sql");
/** database.uuid seeded in the fixture (and therefore in the template). */
const FIXTURE_UUID = "1b6e6f2a-7c1d-4f3e-9a55-0f1e7c000000";

const run = randomBytes(3).toString("hex");
const TEMPLATE_DB = `loomworks_template_it_${run}`;
const filestoreRoot = clusterPaths(pg.stateDir).filestoreDir;
const created: TenantSpec[] = [];
const scratchTemplates: string[] = [TEMPLATE_DB];
let workDir: string;

function specFor(overrides: Partial<TenantSpec> = {}): TenantSpec {
  const spec = randomTenantSpec("t", TEMPLATE_DB, filestoreRoot, {
    limits: { maxUsers: 10 },
    retentionDays: 30,
    ...overrides,
  });
  created.push(spec);
  return spec;
}

const dsnOf = (s: TenantSpec, database = s.database): string =>
  tenantDsn(pg.host, pg.port, s.roleName, s.rolePassword, database);

const inDb = <T>(database: string, fn: (c: Client) => Promise<T>): Promise<T> =>
  withClient(dsnWithDatabase(ADMIN, database), fn);
const adminQuery = <T>(fn: (c: Client) => Promise<T>): Promise<T> => withClient(ADMIN, fn);

async function dbExists(name: string): Promise<boolean> {
  return adminQuery(
    async (c) => (await c.query("SELECT 1 FROM pg_database WHERE datname = $1", [name])).rowCount === 1,
  );
}

async function roleExists(name: string): Promise<boolean> {
  return adminQuery(
    async (c) => (await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [name])).rowCount === 1,
  );
}

async function registryRow(sub: string): Promise<Record<string, unknown> | undefined> {
  return withClient(
    registryDsn(ADMIN),
    async (c) => (await c.query("SELECT * FROM tenants WHERE subdomain = $1", [sub])).rows[0],
  );
}

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-tenant-it-"));
  const r = await ensureTemplate(ADMIN, {
    name: "default",
    database: TEMPLATE_DB,
    fromDump: TEMPLATE_DUMP,
    stateDir: workDir,
  });
  expect(r.rebuilt).toBe(true);
}, 180_000);

afterAll(async () => {
  for (const s of created) {
    await deleteTenant(ADMIN, { ...s, forceDestroy: true }).catch(() => undefined);
  }
  for (const t of scratchTemplates) await dropTemplate(ADMIN, t).catch(() => undefined);
  await fs.rm(workDir, { recursive: true, force: true });
}, 120_000);

describe("fixture template", () => {
  it("is a complete, connection-less template recording the dump's hash; ensuring it again is a no-op", async () => {
    const st = await templateStatus(ADMIN, TEMPLATE_DB);
    expect(st).toMatchObject({ exists: true, isTemplate: true, allowConnections: false, building: false });
    expect(st.hash).toBe(templateSourceHash({ fromDump: TEMPLATE_DUMP }));
    const again = await ensureTemplate(ADMIN, {
      name: "default",
      database: TEMPLATE_DB,
      fromDump: TEMPLATE_DUMP,
      stateDir: workDir,
    });
    expect(again.rebuilt).toBe(false);
    const acl = await adminQuery(
      async (c) =>
        (await c.query("SELECT datacl::text AS acl FROM pg_database WHERE datname = $1", [TEMPLATE_DB]))
          .rows[0].acl,
    );
    expect(acl).not.toMatch(/[{,]=/); // no PUBLIC entry
  });
});

describe("createTenant", () => {
  let a: TenantSpec;
  let b: TenantSpec;

  beforeAll(async () => {
    a = specFor();
    b = specFor();
    await Promise.all([createTenant(ADMIN, a), createTenant(ADMIN, b)]);
  }, 120_000);

  it("writes the ERP admin (login = email, passlib pbkdf2-sha512 password) and a fresh identity", async () => {
    const rows = await inDb(a.database, async (c) => ({
      user: (
        await c.query(
          "SELECT u.login, u.password, p.email FROM res_users u JOIN res_partner p ON p.id = u.partner_id WHERE u.id = 2",
        )
      ).rows[0],
      params: Object.fromEntries(
        (await c.query("SELECT key, value FROM ir_config_parameter")).rows.map(
          (r: { key: string; value: string }) => [r.key, r.value],
        ),
      ),
    }));
    expect(rows.user.login).toBe(a.adminEmail);
    expect(rows.user.email).toBe(a.adminEmail);
    expect(rows.user.password).toMatch(/^\$pbkdf2-sha512\$600000\$/);
    expect(await verifyPbkdf2Sha512(a.adminPassword, rows.user.password)).toBe(true);
    expect(await verifyPbkdf2Sha512("admin", rows.user.password)).toBe(false);
    expect(rows.params["database.uuid"]).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(rows.params["database.uuid"]).not.toBe(FIXTURE_UUID);
    expect(rows.params["database.secret"]).not.toBe("fixture-secret-not-for-production");
    const other = await inDb(
      b.database,
      async (c) =>
        (await c.query("SELECT value FROM ir_config_parameter WHERE key = 'database.uuid'")).rows[0].value,
    );
    expect(other).not.toBe(rows.params["database.uuid"]);
  });

  it("keeps the database the platform's; the tenant role owns schema public and every object in it; PUBLIC may not connect", async () => {
    const r = await inDb(a.database, async (c) => ({
      owner: (
        await c.query(
          `SELECT pg_get_userbyid(datdba) AS o, datacl::text AS acl,
                  (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public') AS public_owner,
                  has_database_privilege($1, oid, 'CONNECT, TEMPORARY') AS connect_temp,
                  has_database_privilege($1, oid, 'CREATE') AS can_create
           FROM pg_database WHERE datname = current_database()`,
          [a.roleName],
        )
      ).rows[0],
      foreign: (
        await c.query(
          `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S', 'v', 'm', 'p') AND pg_get_userbyid(c.relowner) <> $1`,
          [a.roleName],
        )
      ).rows[0].n,
      tables: (await c.query("SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0]
        .n,
    }));
    expect(r.owner.o).toBe("postgres");
    expect(r.owner.public_owner).toBe(a.roleName);
    expect(r.owner.acl).not.toMatch(/[{,]=/);
    expect(r.owner).toMatchObject({ connect_temp: true, can_create: false });
    expect(r.foreign).toBe(0);
    expect(r.tables).toBeGreaterThan(400);
  });

  it("gives a working tenant DSN (the role can write its own tables), a 0750 filestore and a final registry row", async () => {
    const who = await withClient(dsnOf(a), async (c) => {
      await c.query("INSERT INTO res_partner (name) VALUES ('via tenant dsn')");
      await c.query("ALTER TABLE x_fixture_module_001 ADD COLUMN x_note text"); // owner-only
      return (await c.query("SELECT current_user AS u, current_database() AS d")).rows[0];
    });
    expect(who).toEqual({ u: a.roleName, d: a.database });
    const st = await fs.stat(path.join(filestoreRoot, a.database));
    expect(st.isDirectory()).toBe(true);
    expect(st.mode & 0o777).toBe(0o750);
    const row = await registryRow(a.subdomain);
    expect(row).toMatchObject({
      state: "active",
      database_name: a.database,
      role_name: a.roleName,
      tier: "basic",
    });
    expect(row?.provisioning_step).toBeNull();
    expect(row?.limits).toEqual({ maxUsers: 10 });
    const journal = await withClient(registryDsn(ADMIN), (c) => tenantJournal(c, a.subdomain));
    expect(journal.map((j) => j.step)).toEqual(
      expect.arrayContaining([
        "registry-row",
        "role",
        "database",
        "ownership",
        "erp-admin",
        "registry-final",
      ]),
    );
    expect(journal.every((j) => j.finishedAt !== null)).toBe(true);
  });

  it("isolates tenants: no access to other tenants' databases, postgres or template1; registry rows are their own", async () => {
    expect(await tryConnect(dsnOf(a, b.database))).toBe("42501");
    expect(await tryConnect(dsnOf(a, "postgres"))).toBe("42501");
    expect(await tryConnect(dsnOf(a, "template1"))).toBe("42501");
    expect(await tryConnect(dsnOf(b, a.database))).toBe("42501");
    await withClient(registryDsn(ADMIN), async (c) => {
      await c.query(
        "INSERT INTO snapshots (subdomain, name, kind) VALUES ($1, 'mine', 'manual'), ($2, 'theirs', 'auto')",
        [a.subdomain, b.subdomain],
      );
    });
    const seen = await withClient(dsnOf(a, REGISTRY_DATABASE), async (c) => ({
      tenants: (await c.query("SELECT subdomain FROM tenants")).rows.map(
        (r: { subdomain: string }) => r.subdomain,
      ),
      snapshots: (await c.query("SELECT name FROM snapshots")).rows.map((r: { name: string }) => r.name),
      insert: await c
        .query(
          "INSERT INTO tenants (subdomain, database_name, role_name, tier, state, admin_email) VALUES ('x', 'x', 'x', 'x', 'active', 'x')",
        )
        .then(
          () => "ok",
          (e: { code?: string }) => e.code,
        ),
      journal: await c.query("SELECT 1 FROM tenant_steps").then(
        () => "ok",
        (e: { code?: string }) => e.code,
      ),
    }));
    expect(seen.tenants).toEqual([a.subdomain]);
    expect(seen.snapshots).toEqual(["mine"]);
    expect(seen.insert).toBe("42501");
    expect(seen.journal).toBe("42501");
    // A tenant cannot widen its view by switching to the group role.
    const viaGroup = await withClient(dsnOf(a, REGISTRY_DATABASE), async (c) => {
      await c.query("SET ROLE loomworks_tenant");
      return (await c.query("SELECT count(*)::int AS n FROM tenants")).rows[0].n;
    });
    expect(viaGroup).toBe(0);
  });

  it("suspends (existing sessions killed, new ones refused, role cannot re-open it) and resumes", async () => {
    const session = await withClientHeld(dsnOf(a));
    await updateTenant(ADMIN, a, { ...a, state: "suspended" });
    await expect(session.query("SELECT 1")).rejects.toThrow();
    await session.end().catch(() => undefined);
    expect(await tryConnect(dsnOf(a))).not.toBe("ok");
    expect(await tryConnect(dsnOf(a, REGISTRY_DATABASE))).not.toBe("ok"); // NOLOGIN everywhere
    const row = await registryRow(a.subdomain);
    expect(row?.state).toBe("suspended");
    expect(row?.suspended_at).toBeInstanceOf(Date);
    const st = await readTenant(ADMIN, a.subdomain, a.database, a.roleName);
    expect(st).toMatchObject({ allowConnections: false, roleCanLogin: false, observedState: "suspended" });

    await updateTenant(ADMIN, { ...a, state: "suspended" }, a);
    expect(await tryConnect(dsnOf(a))).toBe("ok");
    expect((await registryRow(a.subdomain))?.suspended_at).toBeNull();
  });

  it("updates admin email (ERP login), tier, limits and the role password in place", async () => {
    const next: TenantSpec = {
      ...a,
      adminEmail: `new-boss@${a.subdomain}.example`,
      tier: "pro",
      limits: { maxUsers: 25 },
      rolePassword: randomBytes(18).toString("base64url"),
    };
    await updateTenant(ADMIN, a, next);
    expect(await tryConnect(dsnOf(a))).toBe("28P01"); // old password
    const login = await withClient(
      dsnOf(next),
      async (c) => (await c.query("SELECT login, password FROM res_users WHERE id = 2")).rows[0],
    );
    expect(login.login).toBe(next.adminEmail);
    expect(await verifyPbkdf2Sha512(a.adminPassword, login.password)).toBe(true); // the ERP password is untouched
    expect(await registryRow(a.subdomain)).toMatchObject({
      tier: "pro",
      limits: { maxUsers: 25 },
      admin_email: next.adminEmail,
    });
    Object.assign(a, next);
  });

  it("archives with a retention date, refuses deletion before it unless forceDestroy, then deletes everything", async () => {
    const archived: TenantSpec = { ...b, state: "archived", retentionDays: 7 };
    const info = await updateTenant(ADMIN, b, archived);
    expect(info.state).toBe("archived");
    const until = new Date(info.retentionUntil as string).getTime();
    expect(Math.abs(until - (Date.now() + 7 * 86_400_000))).toBeLessThan(120_000);
    expect(await tryConnect(dsnOf(b))).not.toBe("ok");

    await expect(deleteTenant(ADMIN, { ...archived, forceDestroy: false })).rejects.toThrow(
      new RegExp(
        `tenant "${b.subdomain}" is archived and retained until ${info.retentionUntil?.slice(0, 10)}.*forceDestroy`,
      ),
    );
    expect(await dbExists(b.database)).toBe(true);

    await deleteTenant(ADMIN, { ...archived, forceDestroy: true });
    expect(await dbExists(b.database)).toBe(false);
    expect(await roleExists(b.roleName)).toBe(false);
    await expect(fs.stat(path.join(filestoreRoot, b.database))).rejects.toThrow();
    expect(await registryRow(b.subdomain)).toBeUndefined();
    // Idempotent: deleting again is fine.
    await deleteTenant(ADMIN, { ...archived, forceDestroy: false });
  });
});

describe("crash idempotency and drift", () => {
  it("adopts a database created from the template before the role existed", async () => {
    const s = specFor();
    await adminQuery((c) =>
      c.query(`CREATE DATABASE ${quoteIdent(s.database)} TEMPLATE ${quoteIdent(TEMPLATE_DB)}`),
    );
    await createTenant(ADMIN, s);
    const st = await readTenant(ADMIN, s.subdomain, s.database, s.roleName, filestoreRoot);
    expect(st).toMatchObject({
      databaseExists: true,
      roleExists: true,
      databaseOwner: "postgres",
      initialized: true,
      filestoreExists: true,
    });
    const login = await withClient(
      dsnOf(s),
      async (c) => (await c.query("SELECT login FROM res_users WHERE id = 2")).rows[0].login,
    );
    expect(login).toBe(s.adminEmail);
  });

  it("adopts a role created before the database (and resets its password and attributes)", async () => {
    const s = specFor();
    await adminQuery((c) =>
      c.query(`CREATE ROLE ${quoteIdent(s.roleName)} LOGIN CREATEDB PASSWORD 'stale-password'`),
    );
    await createTenant(ADMIN, s);
    expect(await tryConnect(dsnOf(s))).toBe("ok");
    const attrs = await adminQuery(
      async (c) =>
        (await c.query("SELECT rolcreatedb FROM pg_roles WHERE rolname = $1", [s.roleName])).rows[0],
    );
    expect(attrs.rolcreatedb).toBe(false);
  });

  it("finishes a tenant whose registry row is stuck in provisioning halfway through", async () => {
    const s = specFor();
    // A run that crashed after the database step: row, role and database exist, nothing else.
    await withClient(registryDsn(ADMIN), (c) =>
      c.query(
        `INSERT INTO tenants (subdomain, database_name, role_name, tier, state, admin_email, provisioning_step)
         VALUES ($1, $2, $3, 'basic', 'provisioning', $4, 'database')`,
        [s.subdomain, s.database, s.roleName, s.adminEmail],
      ),
    );
    await adminQuery(async (c) => {
      await c.query(`CREATE ROLE ${quoteIdent(s.roleName)} LOGIN PASSWORD 'x'`);
      await c.query(
        `CREATE DATABASE ${quoteIdent(s.database)} OWNER ${quoteIdent(s.roleName)} TEMPLATE ${quoteIdent(TEMPLATE_DB)}`,
      );
    });
    const info = await createTenant(ADMIN, s);
    expect(info.state).toBe("active");
    expect(await registryRow(s.subdomain)).toMatchObject({ state: "active", provisioning_step: null });
    expect(await tryConnect(dsnOf(s))).toBe("ok");
    // Running it once more changes nothing visible (and does not re-initialize the admin user).
    const before = await inDb(
      s.database,
      async (c) => (await c.query("SELECT password FROM res_users WHERE id = 2")).rows[0].password,
    );
    await createTenant(ADMIN, s);
    const after = await inDb(
      s.database,
      async (c) => (await c.query("SELECT password FROM res_users WHERE id = 2")).rows[0].password,
    );
    expect(after).toBe(before);
  });

  it("reports a database dropped by hand as drift and recreates it", async () => {
    const s = specFor({ state: "suspended" });
    await createTenant(ADMIN, s);
    await adminQuery((c) => c.query(`DROP DATABASE ${quoteIdent(s.database)} WITH (FORCE)`));
    const st = await readTenant(ADMIN, s.subdomain, s.database, s.roleName);
    expect(st).toMatchObject({ databaseExists: false, roleExists: true, registryState: "suspended" });
    const d = diffTenant({ ...s, databaseExists: st.databaseExists, roleExists: st.roleExists }, { ...s });
    expect(d).toMatchObject({ changes: true, drift: true, replaces: [] });
    await updateTenant(ADMIN, s, s); // what the provider's update does after such a refresh
    const fixed = await readTenant(ADMIN, s.subdomain, s.database, s.roleName);
    expect(fixed).toMatchObject({
      databaseExists: true,
      initialized: true,
      allowConnections: false,
      observedState: "suspended",
    });
  });

  it("rebuilds a template whose build was interrupted, and finishes one that was fully loaded", async () => {
    const t = `loomworks_template_it_${run}_core`;
    scratchTemplates.push(t);
    // Interrupted mid-load: a scratch database with part of the content and no completion mark.
    await adminQuery((c) => c.query(`CREATE DATABASE ${quoteIdent(`${t}__building`)}`));
    await inDb(`${t}__building`, (c) => c.query("CREATE TABLE half_loaded (id int)"));
    expect((await templateStatus(ADMIN, t)).building).toBe(true);
    const logs: string[] = [];
    const r = await ensureTemplate(
      ADMIN,
      { name: "core", database: t, fromDump: CORE_DUMP, stateDir: workDir },
      (m) => logs.push(m),
    );
    expect(r.rebuilt).toBe(true);
    expect(logs.join("\n")).toMatch(/dropping incomplete/);
    const st = await templateStatus(ADMIN, t);
    expect(st).toMatchObject({
      exists: true,
      building: false,
      isTemplate: true,
      hash: templateSourceHash({ fromDump: CORE_DUMP }),
    });
    await adminQuery((c) => c.query(`ALTER DATABASE ${quoteIdent(t)} ALLOW_CONNECTIONS true`));
    const tables = await inDb(
      t,
      async (c) =>
        (await c.query("SELECT to_regclass('half_loaded') AS h, to_regclass('res_users') AS u")).rows[0],
    );
    await adminQuery((c) => c.query(`ALTER DATABASE ${quoteIdent(t)} ALLOW_CONNECTIONS false`));
    expect(tables).toEqual({ h: null, u: "res_users" });

    // Crash between "loaded" and "renamed": the complete scratch copy is swapped in without reloading.
    await adminQuery(async (c) => {
      await c.query(`ALTER DATABASE ${quoteIdent(t)} IS_TEMPLATE false`);
      await c.query(`ALTER DATABASE ${quoteIdent(t)} RENAME TO ${quoteIdent(`${t}__building`)}`);
    });
    logs.length = 0;
    const again = await ensureTemplate(
      ADMIN,
      { name: "core", database: t, fromDump: CORE_DUMP, stateDir: workDir },
      (m) => logs.push(m),
    );
    expect(again.rebuilt).toBe(true);
    expect(logs.join("\n")).toMatch(/finishing an interrupted build/);
    expect(logs.join("\n")).not.toMatch(/loading/);
    expect(await templateStatus(ADMIN, t)).toMatchObject({ exists: true, building: false, isTemplate: true });
  });

  it("builds a template by running a command ({db} and PG* connection variables provided)", async () => {
    const t = `loomworks_template_it_${run}_cmd`;
    scratchTemplates.push(t);
    const fromCommand = `psql -X -q -v ON_ERROR_STOP=1 -d {db} -c "CREATE TABLE made_by_command (db text DEFAULT current_database())" -c "INSERT INTO made_by_command DEFAULT VALUES"`;
    const r = await ensureTemplate(ADMIN, { name: "cmd", database: t, fromCommand, stateDir: workDir });
    expect(r.hash).toBe(templateSourceHash({ fromCommand }));
    await adminQuery((c) => c.query(`ALTER DATABASE ${quoteIdent(t)} ALLOW_CONNECTIONS true`));
    const made = await inDb(t, async (c) => (await c.query("SELECT db FROM made_by_command")).rows);
    await adminQuery((c) => c.query(`ALTER DATABASE ${quoteIdent(t)} ALLOW_CONNECTIONS false`));
    expect(made).toEqual([{ db: `${t}__building` }]);
    expect(await fs.readFile(path.join(workDir, "templates", "cmd.build.log"), "utf8")).toContain("# exit 0");
  });

  it("notices a changed dump and rebuilds; a failing dump leaves the old template in place", async () => {
    const t = `loomworks_template_it_${run}_changed`;
    scratchTemplates.push(t);
    const dump = path.join(workDir, "changed.sql");
    await fs.writeFile(dump, "CREATE TABLE v1 (id int);\n");
    const first = await ensureTemplate(ADMIN, {
      name: "changed",
      database: t,
      fromDump: dump,
      stateDir: workDir,
    });
    await fs.writeFile(dump, "CREATE TABLE v2 (id int);\n");
    expect((await templateStatus(ADMIN, t)).hash).toBe(first.hash);
    const second = await ensureTemplate(ADMIN, {
      name: "changed",
      database: t,
      fromDump: dump,
      stateDir: workDir,
    });
    expect(second.rebuilt).toBe(true);
    expect(second.hash).not.toBe(first.hash);
    expect((await templateStatus(ADMIN, t)).hash).toBe(second.hash);

    await fs.writeFile(dump, "CREATE TABLE v3 (id int);\nTHIS IS NOT SQL;\n");
    await expect(
      ensureTemplate(ADMIN, { name: "changed", database: t, fromDump: dump, stateDir: workDir }),
    ).rejects.toThrow(/building .*__building failed/);
    expect(await templateStatus(ADMIN, t)).toMatchObject({ exists: true, hash: second.hash, building: true });
    // The provider's delete of a replaced resource leaves a template built from another source alone.
    await dropTemplate(ADMIN, t, { onlyIfHash: first.hash });
    expect((await templateStatus(ADMIN, t)).exists).toBe(true);
    await dropTemplate(ADMIN, t, { onlyIfHash: second.hash });
    expect(await templateStatus(ADMIN, t)).toMatchObject({ exists: false, building: false });
  });
});

/** A connected client the test ends itself (to observe it being terminated). */
async function withClientHeld(dsn: string): Promise<Client> {
  const { Client: PgClient } = await import("pg");
  const c = new PgClient({ connectionString: dsn });
  c.on("error", () => undefined);
  await c.connect();
  await c.query("SELECT 1");
  return c;
}

describe("parallel provisioning", () => {
  it("creates 8 tenants of the ~400-table fixture at once without exhausting the lock table", async () => {
    // Giving a tenant its objects locks every relation of its database in one transaction; with
    // PostgreSQL's default lock table only about two such creations fit at once (BENCHMARKS.md).
    const specs = Array.from({ length: 8 }, () => specFor());
    const results = await Promise.allSettled(specs.map((s) => createTenant(ADMIN, s)));
    const failures = results.flatMap((r) => (r.status === "rejected" ? [(r.reason as Error).message] : []));
    expect(failures).toEqual([]);
    for (const s of specs) expect(await tryConnect(dsnOf(s))).toBe("ok");
  });
});
