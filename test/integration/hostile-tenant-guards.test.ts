/**
 * A hostile tenant against the guards (issue 12, items 2–5; docs/operations/security.md): every
 * attack runs as the tenant with nothing but its own DSN (its role's login, a plain session with
 * whatever settings it gives itself), and each is shown to fail. The platform's side runs as it does
 * in production: installGuards and the storage check as the superuser, the operator's undo through
 * undoCommand (lib/ops/commands.ts) with the tenant's DSN.
 *
 * Tenants come from the Odoo-shaped FIXTURE template (test/fixtures/odoo-shaped; not Odoo).
 */
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { installGuards, pruneUndoLog } from "../../lib/guards/install";
import { UNDO_EXIT, undoCommand, type CommandIo } from "../../lib/ops/commands";
import { withClient } from "../../lib/pg/client";
import { clusterPaths } from "../../lib/pg/paths";
import {
  PRE_AI_LIMIT_SQLSTATE,
  READ_ONLY_TRIGGER,
  USER_LIMIT_SQLSTATE,
  USER_TABLE_INHERITANCE_SQLSTATE,
  writeQuotaLimits,
} from "../../lib/quota/sql";
import { checkTenantStorage, type StorageCheckResult } from "../../lib/quota/storage";
import { createTenant, tenantDsn, type TenantSpec } from "../../lib/tenant/provision";
import { filestorePath } from "../../lib/pg/names";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { CAPTURE_TRIGGER, UNDO_ERRORS } from "../../lib/undo/sql";
import { beginOperation, endOperation, listOperations } from "../../lib/undo/undo";
import { failure } from "../helpers/pg-error";
import { fixtureTemplate, randomTenantSpec } from "../helpers/tenants";

const pg = inject("pg");
const ADMIN = pg.adminDsn;
const template = fixtureTemplate(ADMIN, "hostile");
const filestoreRoot = clusterPaths(pg.stateDir).filestoreDir;
const created: TenantSpec[] = [];
const GIB = 1024 ** 3;

interface Limits {
  maxUsers: number;
  maxStorageGb: number;
  maxAiOperationsDaily: number;
  maxSnapshots?: number;
}
const LIMITS: Limits = { maxUsers: 100, maxStorageGb: 10, maxAiOperationsDaily: 1000, maxSnapshots: 20 };

const tenantUrl = (s: TenantSpec): string =>
  tenantDsn(pg.host, pg.port, s.roleName, s.rolePassword, s.database);
const asAdmin = <T>(s: TenantSpec, fn: (c: Client) => Promise<T>): Promise<T> =>
  withClient(dsnWithDatabase(ADMIN, s.database), fn);

/** The tenant as an attacker connects: its own DSN, a plain session, nothing pinned. */
async function asTenant<T>(s: TenantSpec, fn: (c: Client) => Promise<T>): Promise<T> {
  const c = new Client({ connectionString: tenantUrl(s), application_name: "hostile-tenant" });
  c.on("error", () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

const codeOf = async (c: Client, sql: string): Promise<string | undefined> =>
  (await failure(c.query(sql))).code;

/** Whether `sql` succeeds (the tenant tries; the test does not depend on the answer). */
async function tries(c: Client, sql: string): Promise<boolean> {
  try {
    await c.query(sql);
    return true;
  } catch {
    return false;
  }
}

async function newTenant(limits: Limits = LIMITS, excludeTables: string[] = []): Promise<TenantSpec> {
  const spec = randomTenantSpec("h", template.database, filestoreRoot);
  created.push(spec);
  await createTenant(ADMIN, spec);
  await asAdmin(spec, async (db) => {
    await installGuards(db, { excludeTables });
    await writeQuotaLimits(db, { subdomain: spec.subdomain, tier: spec.tier, limits });
  });
  return spec;
}

/** One AI operation as the ERP runs it (as the tenant). */
async function aiOp(
  c: Client,
  statements: string[],
  kind: "write" | "destructive" = "write",
): Promise<string> {
  await c.query("BEGIN");
  try {
    const id = await beginOperation(c, "hostile", kind, "an AI tool call");
    for (const s of statements) await c.query(s);
    await endOperation(c, id);
    await c.query("COMMIT");
    return id;
  } catch (err) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/** The operator's terminal: the lines printed and the answer given to the question. */
function operatorIo(answer: boolean): CommandIo & { lines: string[]; asked: string[] } {
  const lines: string[] = [];
  const asked: string[] = [];
  return {
    lines,
    asked,
    out: (l) => void lines.push(l),
    confirm: (q) => {
      asked.push(q);
      return Promise.resolve(answer);
    },
  };
}

const checkOf = (s: TenantSpec): Promise<StorageCheckResult> =>
  checkTenantStorage(ADMIN, {
    subdomain: s.subdomain,
    database: s.database,
    filestoreDir: filestorePath(filestoreRoot, s.database),
  });

const roleIsSuper = async (role: string): Promise<boolean> =>
  withClient(ADMIN, async (c) => {
    const r = await c.query<{ s: boolean }>("SELECT rolsuper AS s FROM pg_roles WHERE rolname = $1", [role]);
    return r.rows[0].s;
  });

beforeAll(() => template.create(), 300_000);
afterAll(() => template.destroy(created), 300_000);

describe("forged undo log (item 3)", () => {
  it("the tenant cannot write the undo log, directly or through a trigger of its own", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const op = await aiOp(c, ["UPDATE res_partner SET phone = 'real' WHERE id = 4"]);
      for (const sql of [
        `INSERT INTO loomworks_undo.change_log (operation_id, table_oid, action, row_key)
         VALUES ('${op}', 'pg_catalog.pg_authid'::regclass, 'U', '{"oid": "10"}')`,
        "UPDATE loomworks_undo.change_log SET table_oid = 'pg_catalog.pg_authid'::regclass",
        "DELETE FROM loomworks_undo.change_log",
        "INSERT INTO loomworks_undo.operation_log (id, kind) VALUES (gen_random_uuid(), 'write')",
      ])
        expect(await codeOf(c, sql), sql).toBe("42501");

      // capture() is the platform's: no trigger of the tenant's may call it or take a platform name
      await c.query("CREATE TABLE x_notes (id serial PRIMARY KEY, body text)");
      await c.query("CREATE TEMP TABLE x_scratch (id int PRIMARY KEY)");
      await c.query("CREATE FUNCTION x_noop() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'");
      for (const sql of [
        "CREATE TRIGGER x_forge AFTER INSERT ON x_scratch FOR EACH ROW EXECUTE FUNCTION loomworks_undo.capture('id')",
        "CREATE TRIGGER x_forge AFTER INSERT ON x_notes FOR EACH ROW EXECUTE FUNCTION loomworks_undo.capture('body')",
        `CREATE OR REPLACE TRIGGER ${CAPTURE_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON x_notes FOR EACH ROW EXECUTE FUNCTION x_noop()`,
        `CREATE OR REPLACE TRIGGER ${CAPTURE_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON x_notes FOR EACH ROW
           WHEN (false) EXECUTE FUNCTION loomworks_undo.capture('id')`,
        `CREATE OR REPLACE TRIGGER ${CAPTURE_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON x_notes FOR EACH ROW
           WHEN (pg_catalog.current_setting('loomworks.operation', true) <> '') EXECUTE FUNCTION loomworks_undo.capture('body')`,
        "CREATE TRIGGER loomworks_quota_read_only BEFORE INSERT ON x_notes FOR EACH STATEMENT EXECUTE FUNCTION x_noop()",
      ])
        expect(await codeOf(c, sql), sql).toBe(UNDO_ERRORS.guardedTrigger);
      // the capture function refuses to run from anything but the platform's trigger
      const direct = await failure(c.query("SELECT loomworks_undo.capture()"));
      expect(direct.code).not.toBeUndefined();
      // and the platform's capture on x_notes is intact: an operation's insert is logged
      const ins = await aiOp(c, ["INSERT INTO x_notes (body) VALUES ('n')"]);
      const logged = await c.query(
        "SELECT count(*)::int AS n FROM loomworks_undo.change_log WHERE operation_id = $1",
        [ins],
      );
      expect(logged.rows[0].n).toBe(1);
    });
  });

  it("a log row naming a catalog or an uncaptured table is refused by the undo (LWN02), as the tenant or by the operator", async () => {
    const t = await newTenant(LIMITS, ["x_uncaptured"]);
    const op = await asTenant(t, async (c) => {
      await c.query("CREATE TABLE x_uncaptured (id int PRIMARY KEY, v text)");
      await c.query("INSERT INTO x_uncaptured VALUES (1, 'a')");
      return aiOp(c, ["UPDATE res_partner SET phone = 'p' WHERE id = 4"]);
    });
    // What a v2 database could hold (the tenant could append then): planted by the superuser here.
    const roleOid = await withClient(ADMIN, async (c) =>
      Number(
        (await c.query<{ oid: number }>("SELECT oid FROM pg_roles WHERE rolname = $1", [t.roleName])).rows[0]
          .oid,
      ),
    );
    for (const [table, key, before, after] of [
      [
        "pg_catalog.pg_authid",
        `{"oid": "${roleOid}"}`,
        "rolsuper=>t, rolconnlimit=>7",
        "rolsuper=>f, rolconnlimit=>-1",
      ],
      ["public.x_uncaptured", '{"id": "1"}', "id=>1, v=>forged", "id=>1, v=>a"],
    ]) {
      await asAdmin(t, (db) =>
        db.query(
          `INSERT INTO loomworks_undo.change_log (operation_id, table_oid, action, row_key, old_row, new_row)
           VALUES ($1, $2::regclass, 'U', $3::jsonb, $4::loomworks_undo.hstore, $5::loomworks_undo.hstore)`,
          [op, table, key, before, after],
        ),
      );
      await asTenant(t, async (c) => {
        const e = await failure(c.query("SELECT loomworks_undo.undo_operation($1)", [op]));
        expect(e.code, table).toBe(UNDO_ERRORS.notCaptured);
        expect(e.message).toContain("not a captured user table");
      });
      const io = operatorIo(true);
      const refused = await failure(
        undoCommand(tenantUrl(t), t.subdomain, op, { onConflict: "force", dryRun: false, yes: true }, io),
      );
      expect(refused.code, table).toBe(UNDO_ERRORS.notCaptured);
      await asAdmin(t, (db) =>
        db.query("DELETE FROM loomworks_undo.change_log WHERE table_oid = $1::regclass", [table]),
      );
    }
    expect(await roleIsSuper(t.roleName)).toBe(false);
    const v = await asAdmin(t, (db) => db.query("SELECT v FROM public.x_uncaptured WHERE id = 1"));
    expect(v.rows).toEqual([{ v: "a" }]);
  });

  it("the operator's undo names every table it touches and asks, even for one row", async () => {
    const t = await newTenant();
    const one = await asTenant(t, (c) => aiOp(c, ["UPDATE res_partner SET phone = 'one' WHERE id = 4"]));
    const io = operatorIo(false);
    const code = await undoCommand(
      tenantUrl(t),
      t.subdomain,
      one,
      { onConflict: "abort", dryRun: false, yes: false },
      io,
    );
    expect(code).toBe(UNDO_EXIT.declined);
    expect(io.asked).toHaveLength(1);
    expect(io.lines).toContain("  table res_partner: 1 row(s) — 0 re-inserted, 1 restored, 0 deleted");
    const phone = await asAdmin(t, (db) => db.query("SELECT phone FROM public.res_partner WHERE id = 4"));
    expect(phone.rows).toEqual([{ phone: "one" }]);
  });

  it("the operator's undo refuses the platform's superuser connection: it runs as the tenant", async () => {
    const t = await newTenant();
    const op = await asTenant(t, (c) => aiOp(c, ["UPDATE res_partner SET phone = 'x' WHERE id = 4"]));
    const e = await failure(
      undoCommand(
        dsnWithDatabase(ADMIN, t.database),
        t.subdomain,
        op,
        { onConflict: "abort", dryRun: false, yes: true },
        operatorIo(true),
      ),
    );
    expect(e.message).toMatch(/privileged; the undo runs as the tenant/);
  });
});

describe("upgrade in place", () => {
  it("an older installation (tenant-writable log, callable internals, quota v1) is closed by installGuards", async () => {
    const t = await newTenant();
    // What v2 of the undo API and v1 of the quota API left in a database.
    await asAdmin(t, async (db) => {
      await db.query(`GRANT INSERT ON loomworks_undo.change_log TO "${t.roleName}"`);
      await db.query(
        `GRANT EXECUTE ON FUNCTION loomworks_undo.prune(interval), loomworks_undo.attach_all() TO "${t.roleName}"`,
      );
      await db.query("ALTER FUNCTION loomworks_undo.capture() SECURITY INVOKER");
      await db.query("ALTER TABLE loomworks_quota.limits DROP COLUMN max_pre_ai_snapshots_daily");
      await db.query("COMMENT ON SCHEMA loomworks_undo IS 'loomworks undo api v2'");
      await db.query("COMMENT ON SCHEMA loomworks_quota IS 'loomworks quota api v1'");
    });
    const status = await asAdmin(t, (db) => installGuards(db));
    expect(status.current).toBe(true);
    await asAdmin(t, async (db) => {
      const r = await db.query<{ ins: boolean; prune: boolean; definer: boolean; col: boolean }>(
        `SELECT has_table_privilege($1, 'loomworks_undo.change_log', 'INSERT') AS ins,
                has_function_privilege($1, 'loomworks_undo.prune(interval)', 'EXECUTE') AS prune,
                (SELECT prosecdef FROM pg_proc WHERE oid = 'loomworks_undo.capture()'::regprocedure) AS definer,
                EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'loomworks_quota.limits'::regclass
                        AND attname = 'max_pre_ai_snapshots_daily' AND NOT attisdropped) AS col`,
        [t.roleName],
      );
      expect(r.rows[0]).toEqual({ ins: false, prune: false, definer: true, col: true });
    });
  });
});

describe("trojan triggers on the undo path (item 2)", () => {
  it("a tenant trigger fired by the operator's undo runs as the tenant and cannot escalate", async () => {
    const t = await newTenant();
    const op = await asTenant(t, async (c) => {
      // unlogged: not captured, so the trojan's own writes do not count as changes beyond the plan
      await c.query("CREATE UNLOGGED TABLE x_trojan_log (who text, super boolean, outcome text)");
      await c.query(`CREATE FUNCTION x_trojan() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE outcome text := 'escalated';
        BEGIN
            BEGIN
                RESET ROLE;
                EXECUTE 'RESET SESSION AUTHORIZATION';
                EXECUTE format('ALTER ROLE %I SUPERUSER', '${t.roleName}');
            EXCEPTION WHEN OTHERS THEN outcome := SQLERRM;
            END;
            INSERT INTO x_trojan_log VALUES (current_user, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), outcome);
            RETURN NULL;
        END $fn$`);
      await c.query(
        "CREATE TRIGGER x_trojan AFTER UPDATE ON res_partner FOR EACH ROW EXECUTE FUNCTION x_trojan()",
      );
      const id = await aiOp(c, ["UPDATE res_partner SET phone = 'trojan' WHERE id = 4"]);
      await c.query("TRUNCATE x_trojan_log");
      return id;
    });
    const io = operatorIo(true);
    expect(
      await undoCommand(tenantUrl(t), t.subdomain, op, { onConflict: "abort", dryRun: false, yes: true }, io),
    ).toBe(UNDO_EXIT.applied);
    const log = await asAdmin(t, (db) =>
      db.query<{ who: string; super: boolean; outcome: string }>("SELECT * FROM public.x_trojan_log"),
    );
    expect(log.rows.length).toBeGreaterThan(0);
    for (const row of log.rows) {
      expect(row.who).toBe(t.roleName);
      expect(row.super).toBe(false);
      expect(row.outcome).not.toBe("escalated");
    }
    expect(await roleIsSuper(t.roleName)).toBe(false);
  });
});

describe("internals (item 4)", () => {
  it("prune, attach_all and the other internals are not the tenant's; a faked undo is not recorded", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const op = await aiOp(c, ["UPDATE res_partner SET phone = 'kept' WHERE id = 4"]);
      for (const sql of [
        "SELECT loomworks_undo.prune('0 seconds')",
        "SELECT loomworks_undo.attach_all()",
        `SELECT loomworks_undo.undone_by('${op}')`,
        `SELECT loomworks_undo.change_summary('${op}')`,
        "SELECT loomworks_quota.take_ai_operation()",
        "SELECT loomworks_quota.take_pre_ai_snapshot()",
        "SELECT loomworks_quota.apply_read_only(false)",
      ])
        expect(await codeOf(c, sql), sql).toBe("42501");
      // Opening an undo and closing it without restoring anything: refused, the operation stays in effect.
      await c.query("BEGIN");
      const u = (await c.query<{ u: string }>("SELECT loomworks_undo.open_undo($1)::text AS u", [op])).rows[0]
        .u;
      expect((await failure(c.query("SELECT loomworks_undo.close_undo($1)", [u]))).code).toBe(
        UNDO_ERRORS.verification,
      );
      await c.query("ROLLBACK");
      await c.query("BEGIN");
      const u2 = (await c.query<{ u: string }>("SELECT loomworks_undo.open_undo($1)::text AS u", [op]))
        .rows[0].u;
      expect((await failure(c.query("SELECT loomworks_undo.end_operation($1)", [u2]))).code).toBe(
        UNDO_ERRORS.badOperation,
      );
      await c.query("ROLLBACK");
      // An undo opened and left open changes nothing either.
      await c.query("SELECT loomworks_undo.open_undo($1)", [op]);
      const mine = (await listOperations(c)).find((o) => o.id === op);
      expect(mine).toMatchObject({ undone: false, undone_by: null });
      const phone = await c.query("SELECT phone FROM public.res_partner WHERE id = 4");
      expect(phone.rows).toEqual([{ phone: "kept" }]);
      // The real undo still works (and is recorded).
      const r = await c.query<{ r: { applied: boolean } }>("SELECT loomworks_undo.undo_operation($1) AS r", [
        op,
      ]);
      expect(r.rows[0].r.applied).toBe(true);
      expect((await listOperations(c)).find((o) => o.id === op)).toMatchObject({ undone: true });
    });
  });

  it("changes captured under an operation id of the tenant's own making are pruned", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      await c.query("BEGIN");
      await c.query("SELECT set_config('loomworks.operation', gen_random_uuid()::text, true)");
      await c.query("UPDATE res_partner SET phone = 'orphan' WHERE id = 4");
      await c.query("COMMIT");
    });
    const count = () =>
      asAdmin(
        t,
        async (db) =>
          (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM loomworks_undo.change_log")).rows[0]
            .n,
      );
    expect(await count()).toBe(1);
    await asAdmin(t, (db) => pruneUndoLog(db, 30));
    expect(await count()).toBe(0);
  });

  it("pre_ai restore points are counted per UTC day and refused over the limit (LWS01)", async () => {
    const t = await newTenant({ ...LIMITS, maxSnapshots: 2 });
    await asTenant(t, async (c) => {
      await c.query("SELECT loomworks_snapshot.request('pre_ai', 'one')");
      await aiOp(c, ["UPDATE res_partner SET phone = 'd' WHERE id = 4"], "destructive");
      const e = await failure(c.query("SELECT loomworks_snapshot.request('pre_ai', 'three')"));
      expect(e.code).toBe(PRE_AI_LIMIT_SQLSTATE);
      expect(e.message).toMatch(/^daily pre_ai restore point limit reached: 2 of 2 used today \(UTC\)/);
      const d = await failure(aiOp(c, ["UPDATE res_partner SET phone = 'e' WHERE id = 4"], "destructive"));
      expect(d.code).toBe(PRE_AI_LIMIT_SQLSTATE);
      const today = await c.query<{ n: number }>("SELECT loomworks_quota.pre_ai_snapshots_today() AS n");
      expect(today.rows[0].n).toBe(4);
      const points = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM loomworks_snapshot.requested",
      );
      expect(points.rows[0].n).toBe(2);
    });
  });
});

describe("quota evasion (item 5)", () => {
  it("a row-level security policy on res_users does not shrink the user count", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const used = (await c.query<{ s: { users: { used: number } } }>("SELECT loomworks_quota.status() AS s"))
        .rows[0].s.users.used;
      // one slot left: without the guard, hiding every row would leave the limit far away
      await asAdmin(t, (db) =>
        writeQuotaLimits(db, {
          subdomain: t.subdomain,
          tier: t.tier,
          limits: { ...LIMITS, maxUsers: used + 1 },
        }),
      );
      await c.query(
        "INSERT INTO res_users (login, active, share, partner_id, company_id) VALUES ('last@x.example', true, false, 1, 1)",
      );
      await c.query("ALTER TABLE res_users ENABLE ROW LEVEL SECURITY");
      await c.query(`CREATE POLICY x_hide ON res_users USING (current_user = '${t.roleName}')`);
      const e = await failure(
        c.query(
          "INSERT INTO res_users (login, active, share, partner_id, company_id) VALUES ('rls@x.example', true, false, 1, 1)",
        ),
      );
      expect(e.code).toBe(USER_LIMIT_SQLSTATE);
      expect(e.message).toContain("row-level security");
      await c.query("ALTER TABLE res_users FORCE ROW LEVEL SECURITY");
      expect(
        (
          await failure(
            c.query(
              "INSERT INTO res_users (login, active, share, partner_id, company_id) VALUES ('rls2@x.example', true, false, 1, 1)",
            ),
          )
        ).code,
      ).toBe(USER_LIMIT_SQLSTATE);
    });
  });

  it("no table may inherit from res_users (its rows would escape the limit trigger)", async () => {
    const t = await newTenant({ ...LIMITS, maxUsers: 1 });
    await asTenant(t, async (c) => {
      expect(await codeOf(c, "CREATE TABLE x_more_users () INHERITS (res_users)")).toBe(
        USER_TABLE_INHERITANCE_SQLSTATE,
      );
      await c.query("CREATE TABLE x_shadow (LIKE res_users)");
      expect(await codeOf(c, "ALTER TABLE x_shadow INHERIT res_users")).toBe(USER_TABLE_INHERITANCE_SQLSTATE);
      const kids = await c.query("SELECT 1 FROM pg_inherits WHERE inhparent = 'res_users'::regclass");
      expect(kids.rowCount).toBe(0);
      // the guard itself never gets in the way of DDL where there is no res_users (yet)
      await c.query("ALTER TABLE res_users RENAME TO x_users_away");
      await c.query("CREATE TABLE x_while_away (id int PRIMARY KEY)");
      await c.query("ALTER TABLE x_users_away RENAME TO res_users");
    });
  });

  it("read-only holds against BEGIN READ WRITE, session, role and database settings; deleting stays possible", async () => {
    const t = await newTenant();
    await asTenant(t, (c) => c.query("CREATE TABLE x_bulk (id serial PRIMARY KEY, pad text)"));
    const base = await checkOf(t);
    await asAdmin(t, (db) =>
      writeQuotaLimits(db, {
        subdomain: t.subdomain,
        tier: t.tier,
        limits: { ...LIMITS, maxStorageGb: ((base.bytes ?? 0) * 0.5) / GIB },
      }),
    );
    const ro = await checkOf(t);
    expect(ro).toMatchObject({ state: "read_only" });
    expect(ro.readOnlyTriggersChanged).toBeGreaterThan(0);
    await asTenant(t, async (c) => {
      // whatever the tenant is allowed to change about its defaults, it tries
      await tries(c, `ALTER DATABASE "${t.database}" RESET default_transaction_read_only`);
      await tries(c, `ALTER DATABASE "${t.database}" SET default_transaction_read_only = off`);
      await tries(c, `ALTER ROLE "${t.roleName}" SET default_transaction_read_only = off`);
    });
    await asTenant(t, async (c) => {
      await c.query("SET default_transaction_read_only = off");
      await c.query("BEGIN READ WRITE");
      expect(await codeOf(c, "INSERT INTO x_bulk (pad) VALUES ('x')")).toBe("25006");
      await c.query("ROLLBACK");
      await c.query("BEGIN READ WRITE");
      expect(await codeOf(c, "UPDATE res_partner SET phone = 'ro' WHERE id = 4")).toBe("25006");
      await c.query("ROLLBACK");
      await c.query("BEGIN READ WRITE");
      expect(await codeOf(c, "CREATE TABLE x_more AS SELECT g FROM generate_series(1, 10) g")).toBe("25006");
      await c.query("ROLLBACK");
      // the platform's trigger stays: the DDL guards refuse (LWG01; 25006 first for ALTER TABLE while read-only)
      for (const sql of [
        `DROP TRIGGER ${READ_ONLY_TRIGGER} ON x_bulk`,
        `ALTER TABLE x_bulk DISABLE TRIGGER ${READ_ONLY_TRIGGER}`,
        "ALTER TABLE x_bulk DISABLE TRIGGER ALL",
        `ALTER TRIGGER ${READ_ONLY_TRIGGER} ON x_bulk RENAME TO x_gone`,
        `CREATE OR REPLACE TRIGGER ${READ_ONLY_TRIGGER} BEFORE INSERT ON x_bulk FOR EACH STATEMENT EXECUTE FUNCTION suppress_redundant_updates_trigger()`,
      ]) {
        await c.query("BEGIN READ WRITE");
        expect([UNDO_ERRORS.guardedTrigger, "25006"], sql).toContain(await codeOf(c, sql));
        await c.query("ROLLBACK");
      }
      const guard = await c.query(
        `SELECT tgenabled, tgfoid::regproc::text AS fn FROM pg_trigger WHERE tgrelid = 'x_bulk'::regclass AND tgname = $1`,
        [READ_ONLY_TRIGGER],
      );
      expect(guard.rows).toEqual([{ tgenabled: "O", fn: "loomworks_quota.refuse_write" }]);
      // freeing space is allowed
      await c.query("BEGIN READ WRITE");
      await c.query("DELETE FROM x_bulk");
      await c.query("COMMIT");
    });
    // A later check keeps it so (repairing any setting the tenant removed) and lifting it removes the triggers.
    expect(await checkOf(t)).toMatchObject({ state: "read_only" });
    await asAdmin(t, (db) => writeQuotaLimits(db, { subdomain: t.subdomain, tier: t.tier, limits: LIMITS }));
    const back = await checkOf(t);
    expect(back.state).not.toBe("read_only");
    await asTenant(t, async (c) => {
      await c.query("BEGIN READ WRITE");
      await c.query("INSERT INTO x_bulk (pad) VALUES ('writable again')");
      await c.query("COMMIT");
      const left = await c.query("SELECT 1 FROM pg_trigger WHERE tgname = $1", [READ_ONLY_TRIGGER]);
      expect(left.rowCount).toBe(0);
    });
  });

  it("the undo log counts against storage, and the check survives the tenant's settings and shadowed built-ins", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      await aiOp(c, ["UPDATE res_partner SET street = repeat('u', 20000) WHERE true"]);
      // A shadowing function that would run as the platform if it were ever called.
      await c.query("CREATE TABLE x_pwned (who text)");
      await c.query(`CREATE FUNCTION public.pg_total_relation_size(oid) RETURNS bigint LANGUAGE plpgsql AS $fn$
        BEGIN INSERT INTO public.x_pwned VALUES (current_user); RETURN 0; END $fn$`);
      await c.query(`CREATE FUNCTION public.pg_database_size(name) RETURNS bigint LANGUAGE plpgsql AS $fn$
        BEGIN INSERT INTO public.x_pwned VALUES (current_user); RETURN 0; END $fn$`);
      await tries(c, `ALTER DATABASE "${t.database}" SET search_path = public, pg_catalog`);
      await tries(c, `ALTER DATABASE "${t.database}" SET statement_timeout = '1ms'`);
      await tries(c, `ALTER DATABASE "${t.database}" SET lock_timeout = '1ms'`);
      await tries(c, `ALTER ROLE "${t.roleName}" SET statement_timeout = '1ms'`);
    });
    const r = await checkOf(t);
    expect(r.state).toBe("ok");
    expect(r.undoLogBytes).toBeGreaterThan(0);
    expect(r.bytes).toBe((r.databaseBytes ?? 0) + (r.filestoreBytes ?? 0));
    const pwned = await asAdmin(t, (db) => db.query("SELECT who FROM public.x_pwned"));
    expect(pwned.rows).toEqual([]);
  });
});
