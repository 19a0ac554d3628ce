/**
 * Tenant quotas (lib/quota) against the real integration cluster (test/integration/global-setup.ts):
 * fresh tenants made by createTenant from the Odoo-shaped FIXTURE template (test/fixtures/odoo-shaped;
 * not Odoo), with the quota API installed by installQuotaApi.
 */
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { beforeAll, describe, expect, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { withPlainClient as withClient } from "../../lib/pg/client";
import { GUARD_OWNER_ROLE } from "../../lib/pg/ownerRole";
import {
  QUOTA_API_VERSION,
  QUOTA_SCHEMA,
  aiResetTime,
  encodeAiCounter,
  installQuotaApi,
  readQuotaStatus,
  utcDayNumber,
  writeQuotaLimits,
} from "../../lib/quota/sql";
import {
  READ_ONLY_REASON_SETTING,
  checkStorage,
  checkTenantStorage,
  type StorageCheckResult,
} from "../../lib/quota/storage";
import { type TenantSpec } from "../../lib/tenant/provision";
import { filestorePath } from "../../lib/pg/names";
import { failure, type PgError } from "../helpers/pg-error";
import { openSession, useFixtureTenants, waitUntilBlocked } from "../helpers/tenants";
import { JOBS_SCRIPT, runNode, writeClusterSchedulerFiles } from "../helpers/jobs";

const tenants = useFixtureTenants("quota");
const pg = tenants.pg;
const ADMIN = pg.adminDsn;
const filestoreRoot = tenants.filestoreRoot;
const GIB = 1024 ** 3;

interface Limits {
  maxUsers: number;
  maxStorageGb: number;
  maxAiOperationsDaily: number;
}
const DEFAULT_LIMITS: Limits = { maxUsers: 10, maxStorageGb: 5, maxAiOperationsDaily: 100 };

const { tenantUrl, adminUrl, asAdmin, asTenant } = tenants;
const connect = (dsn: string): Promise<Client> => openSession(dsn, "quota-it");

async function newTenant(limits: Limits | null = DEFAULT_LIMITS, prefix = "q"): Promise<TenantSpec> {
  const spec = await tenants.create(prefix);
  await asAdmin(spec, async (db) => {
    await installQuotaApi(db);
    await installQuotaApi(db); // idempotent: provisioning installs it again later
    if (limits) await writeQuotaLimits(db, { subdomain: spec.subdomain, tier: spec.tier, limits });
  });
  return spec;
}

const setLimits = (s: TenantSpec, limits: Limits): Promise<{ changed: boolean }> =>
  asAdmin(s, (db) => writeQuotaLimits(db, { subdomain: s.subdomain, tier: s.tier, limits }));

/** Inserts a res_users row; returns its id. */
async function addUser(
  c: Client,
  login: string,
  { active = true, share = false }: { active?: boolean; share?: boolean } = {},
): Promise<number> {
  const r = await c.query<{ id: number }>(
    "INSERT INTO res_users (login, active, share, partner_id, company_id) VALUES ($1, $2, $3, 1, 1) RETURNING id",
    [login, active, share],
  );
  return r.rows[0].id;
}

async function activeInternal(s: TenantSpec): Promise<number> {
  return asAdmin(s, async (db) => {
    const r = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM res_users WHERE active AND NOT share",
    );
    return r.rows[0].n;
  });
}

async function events(
  s: TenantSpec,
  kind?: string,
): Promise<Array<{ kind: string; detail: Record<string, unknown> }>> {
  return asAdmin(s, async (db) => {
    const r = await db.query<{ kind: string; detail: Record<string, unknown> }>(
      `SELECT kind, detail FROM ${QUOTA_SCHEMA}.events WHERE $1::text IS NULL OR kind = $1 ORDER BY id`,
      [kind ?? null],
    );
    return r.rows;
  });
}

const take = (c: Client): Promise<number> =>
  c.query<{ n: number }>(`SELECT ${QUOTA_SCHEMA}.take_ai_operation() AS n`).then((r) => r.rows[0].n);

const checkOf = (s: TenantSpec): Promise<StorageCheckResult> =>
  checkTenantStorage(ADMIN, {
    subdomain: s.subdomain,
    database: s.database,
    filestoreDir: filestorePath(filestoreRoot, s.database),
  });

describe("installation and privileges", () => {
  let t: TenantSpec;
  beforeAll(async () => {
    t = await newTenant();
  });

  it("is versioned, owned by the guard owner role, and converges when re-run", async () => {
    await asAdmin(t, async (db) => {
      const comment = await db.query<{ c: string }>(
        `SELECT obj_description('${QUOTA_SCHEMA}'::regnamespace, 'pg_namespace') AS c`,
      );
      expect(comment.rows[0].c).toBe(`loomworks quota api v${QUOTA_API_VERSION}`);
      const owners = await db.query<{ kind: string; name: string; owner: string }>(
        `SELECT 'schema' AS kind, nspname AS name, pg_get_userbyid(nspowner)::text AS owner
           FROM pg_namespace WHERE nspname = $1
         UNION ALL
         SELECT 'relation', relname, pg_get_userbyid(relowner)::text FROM pg_class
          WHERE relnamespace = $1::regnamespace AND relkind IN ('r', 'S')
         UNION ALL
         SELECT 'function', proname, pg_get_userbyid(proowner)::text FROM pg_proc
          WHERE pronamespace = $1::regnamespace
         ORDER BY 1, 2`,
        [QUOTA_SCHEMA],
      );
      expect(owners.rows.map((r) => `${r.kind} ${r.name}`)).toEqual([
        "function active_internal_users",
        "function ai_operations_today",
        "function apply_read_only",
        "function count_today",
        "function enforce_user_limit",
        "function next_in_day",
        "function on_ddl_end",
        "function pre_ai_snapshots_today",
        "function refuse_write",
        "function remaining_user_slots",
        "function status",
        "function storage_read_only",
        "function take_ai_operation",
        "function take_pre_ai_snapshot",
        "relation ai_operations",
        "relation events",
        "relation events_id_seq",
        "relation limits",
        "relation pre_ai_snapshots",
        "relation storage",
        "schema loomworks_quota",
      ]);
      expect(new Set(owners.rows.map((r) => r.owner))).toEqual(new Set([GUARD_OWNER_ROLE]));
      const definers = await db.query<{ proname: string; prosecdef: boolean; proconfig: string[] }>(
        "SELECT proname, prosecdef, proconfig FROM pg_proc WHERE pronamespace = $1::regnamespace",
        [QUOTA_SCHEMA],
      );
      // SECURITY DEFINER, except what runs as the storage check (a superuser) or the tenant's own DDL
      const invoker = new Set(["apply_read_only", "on_ddl_end"]);
      const countsUsers = new Set(["active_internal_users", "enforce_user_limit"]);
      for (const f of definers.rows) {
        expect(f.prosecdef, f.proname).toBe(!invoker.has(f.proname));
        expect(f.proconfig, f.proname).toEqual(
          countsUsers.has(f.proname)
            ? ["search_path=pg_catalog, pg_temp", "row_security=off"]
            : ["search_path=pg_catalog, pg_temp"],
        );
      }
      const trigger = await db.query<{ tgname: string; tgenabled: string }>(
        "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'public.res_users'::regclass AND NOT tgisinternal",
      );
      expect(trigger.rows).toEqual([{ tgname: "loomworks_quota_users", tgenabled: "O" }]);

      // data survives a re-install
      await db.query(`INSERT INTO ${QUOTA_SCHEMA}.events (kind) VALUES ('marker')`);
      await installQuotaApi(db);
      const marker = await db.query(`SELECT 1 FROM ${QUOTA_SCHEMA}.events WHERE kind = 'marker'`);
      expect(marker.rowCount).toBe(1);
      const limits = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${QUOTA_SCHEMA}.limits`);
      expect(limits.rows[0].n).toBe(1);
    });
  });

  it("refuses to install over a newer version", async () => {
    await asAdmin(t, async (db) => {
      await db.query(`COMMENT ON SCHEMA ${QUOTA_SCHEMA} IS 'loomworks quota api v99'`);
      try {
        const err = await failure(installQuotaApi(db));
        expect(err.message).toContain(
          `quota API version 99 is installed in database ${t.database}; this program installs version ${QUOTA_API_VERSION}`,
        );
      } finally {
        await db.query(`COMMENT ON SCHEMA ${QUOTA_SCHEMA} IS 'loomworks quota api v${QUOTA_API_VERSION}'`);
      }
    });
  });

  it("PUBLIC gets nothing; the tenant role may use the schema and call only the tenant-facing functions", async () => {
    await asAdmin(t, async (db) => {
      const r = await db.query<{ fn: string; tenant: boolean; pub: boolean }>(
        `SELECT p.oid::regprocedure::text AS fn,
                has_function_privilege($1, p.oid, 'EXECUTE') AS tenant,
                EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                        WHERE a.grantee = 0) AS pub
         FROM pg_proc p WHERE p.pronamespace = $2::regnamespace ORDER BY 1`,
        [t.roleName, QUOTA_SCHEMA],
      );
      expect(r.rows).toEqual([
        { fn: "loomworks_quota.active_internal_users()", tenant: false, pub: false },
        { fn: "loomworks_quota.ai_operations_today()", tenant: true, pub: false },
        { fn: "loomworks_quota.apply_read_only(boolean)", tenant: false, pub: false },
        { fn: "loomworks_quota.count_today(regclass)", tenant: false, pub: false },
        { fn: "loomworks_quota.enforce_user_limit()", tenant: false, pub: false },
        { fn: "loomworks_quota.next_in_day(regclass,bigint)", tenant: false, pub: false },
        { fn: "loomworks_quota.on_ddl_end()", tenant: false, pub: false },
        { fn: "loomworks_quota.pre_ai_snapshots_today()", tenant: true, pub: false },
        { fn: "loomworks_quota.refuse_write()", tenant: false, pub: false },
        { fn: "loomworks_quota.remaining_user_slots()", tenant: true, pub: false },
        { fn: "loomworks_quota.status()", tenant: true, pub: false },
        { fn: "loomworks_quota.storage_read_only()", tenant: true, pub: false },
        { fn: "loomworks_quota.take_ai_operation()", tenant: false, pub: false },
        { fn: "loomworks_quota.take_pre_ai_snapshot()", tenant: false, pub: false },
      ]);
      const tables = await db.query<{ t: string; any: boolean }>(
        `SELECT c.relname AS t,
                has_table_privilege($1, c.oid, 'SELECT') OR has_table_privilege($1, c.oid, 'INSERT')
                OR has_table_privilege($1, c.oid, 'UPDATE') OR has_table_privilege($1, c.oid, 'DELETE') AS any
         FROM pg_class c WHERE c.relnamespace = $2::regnamespace AND c.relkind = 'r' ORDER BY 1`,
        [t.roleName, QUOTA_SCHEMA],
      );
      expect(tables.rows).toEqual([
        { t: "events", any: false },
        { t: "limits", any: false },
        { t: "storage", any: false },
      ]);
      const schema = await db.query<{ usage: boolean; create: boolean; pub: boolean }>(
        `SELECT has_schema_privilege($1, $2, 'USAGE') AS usage, has_schema_privilege($1, $2, 'CREATE') AS create,
                has_schema_privilege('public', $2, 'USAGE') AS pub`,
        [t.roleName, QUOTA_SCHEMA],
      );
      expect(schema.rows[0]).toEqual({ usage: true, create: false, pub: false });
    });
    await asTenant(t, async (c) => {
      expect((await failure(take(c))).code).toBe("42501");
      expect((await failure(c.query(`UPDATE ${QUOTA_SCHEMA}.limits SET max_users = 1000`))).code).toBe(
        "42501",
      );
      expect(
        (await failure(c.query(`INSERT INTO ${QUOTA_SCHEMA}.events (kind) VALUES ('forged')`))).code,
      ).toBe("42501");
      expect((await failure(c.query(`DELETE FROM ${QUOTA_SCHEMA}.storage`))).code).toBe("42501");
      expect((await failure(c.query(`SELECT * FROM ${QUOTA_SCHEMA}.limits`))).code).toBe("42501");
      expect((await failure(c.query(`SELECT setval('${QUOTA_SCHEMA}.ai_operations', 0)`))).code).toBe(
        "42501",
      );
      expect((await failure(c.query(`DROP SCHEMA ${QUOTA_SCHEMA} CASCADE`))).code).toBe("42501");
      expect((await failure(c.query(`DROP FUNCTION ${QUOTA_SCHEMA}.status()`))).code).toBe("42501");
      expect(
        (await failure(c.query(`CREATE FUNCTION ${QUOTA_SCHEMA}.x() RETURNS int LANGUAGE sql AS 'SELECT 1'`)))
          .code,
      ).toBe("42501");
      // what it may do
      const slots = await c.query<{ n: number }>(`SELECT ${QUOTA_SCHEMA}.remaining_user_slots() AS n`);
      expect(slots.rows[0].n).toBe(9);
    });
  });
});

describe("status()", () => {
  it("reports users, storage and AI operations as docs/configuration.md describes", async () => {
    const t = await newTenant({ maxUsers: 4, maxStorageGb: 5, maxAiOperationsDaily: 100 });
    const before = await asTenant(t, readQuotaStatus);
    const resetsAt = aiResetTime(new Date()).toISOString().replace(".000Z", "Z");
    expect(before).toEqual({
      tenant: t.subdomain,
      tier: "basic",
      users: { used: 1, max: 4, remaining: 3 },
      storage: {
        bytes: null,
        max_bytes: 5 * GIB,
        percent: null,
        read_only: false,
        state: null,
        checked_at: null,
        reason: null,
      },
      ai_operations: { today: 0, max: 100, resets_at: resetsAt },
    });

    await asTenant(t, (c) => addUser(c, "second@x.example"));
    await asAdmin(t, async (db) => {
      expect(await take(db)).toBe(1);
      expect(await take(db)).toBe(2);
    });
    const check = await checkOf(t);
    const after = await asTenant(t, readQuotaStatus);
    expect(after.users).toEqual({ used: 2, max: 4, remaining: 2 });
    expect(after.ai_operations).toEqual({ today: 2, max: 100, resets_at: resetsAt });
    expect(after.storage).toMatchObject({
      bytes: check.bytes,
      max_bytes: 5 * GIB,
      percent: Math.round(((check.bytes ?? 0) * 10_000) / (5 * GIB)) / 100,
      read_only: false,
      state: "ok",
      reason: null,
    });
    expect(Date.parse(after.storage.checked_at ?? "")).toBeGreaterThan(Date.now() - 60_000);
  });

  it("without limits: nothing is limited and the maxima are null", async () => {
    const t = await newTenant(null);
    await asTenant(t, async (c) => {
      for (let i = 0; i < 3; i++) await addUser(c, `u${i}@x.example`);
      const s = await readQuotaStatus(c);
      expect(s.users).toEqual({ used: 4, max: null, remaining: null });
      expect(s.storage.max_bytes).toBeNull();
      expect(s.ai_operations.max).toBeNull();
      const slots = await c.query<{ n: number | null }>(`SELECT ${QUOTA_SCHEMA}.remaining_user_slots() AS n`);
      expect(slots.rows[0].n).toBeNull();
    });
    await asAdmin(t, async (db) => {
      for (let i = 1; i <= 3; i++) expect(await take(db)).toBe(i);
    });
  });
});

describe("limits", () => {
  it("writeQuotaLimits updates in place, records an event per change and nothing when unchanged", async () => {
    const t = await newTenant();
    expect(await setLimits(t, DEFAULT_LIMITS)).toEqual({ changed: false });
    expect(await setLimits(t, { maxUsers: 25, maxStorageGb: 0.5, maxAiOperationsDaily: 7 })).toEqual({
      changed: true,
    });
    const rows = await asAdmin(t, (db) =>
      db.query(
        `SELECT tenant, tier, max_users, max_storage_bytes::text AS bytes, max_ai_operations_daily FROM ${QUOTA_SCHEMA}.limits`,
      ),
    );
    expect(rows.rows).toEqual([
      {
        tenant: t.subdomain,
        tier: "basic",
        max_users: 25,
        bytes: String(GIB / 2),
        max_ai_operations_daily: 7,
      },
    ]);
    const changes = await events(t, "limits_changed");
    expect(changes.map((e) => e.detail)).toEqual([
      {
        from: null,
        to: {
          tenant: t.subdomain,
          tier: "basic",
          max_users: 10,
          max_storage_bytes: 5 * GIB,
          max_ai_operations_daily: 100,
          max_pre_ai_snapshots_daily: null,
        },
      },
      {
        from: {
          tenant: t.subdomain,
          tier: "basic",
          max_users: 10,
          max_storage_bytes: 5 * GIB,
          max_ai_operations_daily: 100,
          max_pre_ai_snapshots_daily: null,
        },
        to: {
          tenant: t.subdomain,
          tier: "basic",
          max_users: 25,
          max_storage_bytes: GIB / 2,
          max_ai_operations_daily: 7,
          max_pre_ai_snapshots_daily: null,
        },
      },
    ]);
    await expect(setLimits(t, { maxUsers: 1.5, maxStorageGb: 1, maxAiOperationsDaily: 1 })).rejects.toThrow(
      "limits.maxUsers must be an integer",
    );
    await expect(setLimits(t, { maxUsers: 1, maxStorageGb: 0, maxAiOperationsDaily: 1 })).rejects.toThrow(
      "maxStorageGb must be a positive number",
    );
  });
});

describe("user limit", () => {
  const message = (t: TenantSpec, max: number, active: number) =>
    `user limit reached: tenant "${t.subdomain}" allows ${max} active internal users (tier basic, limits.maxUsers) ` +
    `and ${active} are active; archive a user or raise the limit`;

  it("refuses an active internal user beyond maxUsers with LWU01 and a clear message", async () => {
    const t = await newTenant({ ...DEFAULT_LIMITS, maxUsers: 3 });
    await asTenant(t, async (c) => {
      await addUser(c, "two@x.example");
      await addUser(c, "three@x.example");
      const err = await failure(addUser(c, "four@x.example"));
      expect(err.code).toBe("LWU01");
      expect(err.message).toBe(message(t, 3, 3));
      expect(err.hint).toContain("archive");
      expect(err.detail).toContain("four@x.example");
      // portal (share) users and archived users do not count
      await addUser(c, "portal@x.example", { share: true });
      const archived = await addUser(c, "old@x.example", { active: false });
      const slots = await c.query<{ n: number }>(`SELECT ${QUOTA_SCHEMA}.remaining_user_slots() AS n`);
      expect(slots.rows[0].n).toBe(0);
      // re-activating an archived user, or making a portal user internal, counts
      const again = await failure(c.query("UPDATE res_users SET active = true WHERE id = $1", [archived]));
      expect(again.code).toBe("LWU01");
      const promoted = await failure(
        c.query("UPDATE res_users SET share = false WHERE login = 'portal@x.example'"),
      );
      expect(promoted.code).toBe("LWU01");
      // a multi-row statement is checked as a whole
      const many = await failure(
        c.query(
          `INSERT INTO res_users (login, partner_id, company_id) VALUES ('m1@x.example', 1, 1), ('m2@x.example', 1, 1)`,
        ),
      );
      expect(many.code).toBe("LWU01");
    });
    expect(await activeInternal(t)).toBe(3);
  });

  it("over a lowered limit, users can still be edited and archived; a freed slot can be used again", async () => {
    const t = await newTenant({ ...DEFAULT_LIMITS, maxUsers: 4 });
    await asTenant(t, async (c) => {
      for (const l of ["b", "c", "d"]) await addUser(c, `${l}@x.example`);
    });
    await setLimits(t, { ...DEFAULT_LIMITS, maxUsers: 2 });
    await asTenant(t, async (c) => {
      // edits that add no active internal user, even ones that write the active/share columns
      await c.query("UPDATE res_users SET signature = 'hello' WHERE login = 'b@x.example'");
      await c.query("UPDATE res_users SET active = true, share = false WHERE login = 'c@x.example'");
      await c.query("UPDATE res_users SET login = 'renamed@x.example' WHERE login = 'd@x.example'");
      // archive two: 4 -> 2 active
      await c.query("UPDATE res_users SET active = false WHERE login IN ('b@x.example', 'c@x.example')");
      const s = await readQuotaStatus(c);
      expect(s.users).toEqual({ used: 2, max: 2, remaining: 0 });
      const err = await failure(c.query("UPDATE res_users SET active = true WHERE login = 'b@x.example'"));
      expect(err.code).toBe("LWU01");
      expect(err.message).toBe(message(t, 2, 2));
      await c.query("UPDATE res_users SET active = false WHERE login = 'renamed@x.example'");
      await c.query("UPDATE res_users SET active = true WHERE login = 'b@x.example'");
    });
    expect(await activeInternal(t)).toBe(2);
  });

  it("READ COMMITTED: two connections adding the last slot: the second waits, then is refused", async () => {
    const t = await newTenant({ ...DEFAULT_LIMITS, maxUsers: 2 });
    const c1 = await connect(tenantUrl(t));
    const c2 = await connect(tenantUrl(t));
    try {
      await c1.query("BEGIN ISOLATION LEVEL READ COMMITTED");
      await c2.query("BEGIN ISOLATION LEVEL READ COMMITTED");
      await addUser(c1, "first@x.example");
      const pid2 = (await c2.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      const second = addUser(c2, "second@x.example").then(
        () => "inserted",
        (e: PgError) => e,
      );
      await waitUntilBlocked(ADMIN, pid2);
      await c1.query("COMMIT");
      const outcome = await second;
      expect(outcome).toMatchObject({ code: "LWU01", message: message(t, 2, 2) });
      await c2.query("ROLLBACK");
    } finally {
      await c1.end().catch(() => undefined);
      await c2.end().catch(() => undefined);
    }
    expect(await activeInternal(t)).toBe(2);
  });

  it("REPEATABLE READ: the second gets a serialization failure (retried by Odoo), then the retry is refused", async () => {
    const t = await newTenant({ ...DEFAULT_LIMITS, maxUsers: 3 });
    const c1 = await connect(tenantUrl(t));
    const c2 = await connect(tenantUrl(t));
    try {
      // (a) the second waits for the first's lock
      await c1.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
      await c2.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
      await c2.query("SELECT count(*) FROM res_users"); // its snapshot: before c1 commits
      await addUser(c1, "first@x.example");
      const pid2 = (await c2.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      const second = addUser(c2, "second@x.example").then(
        () => "inserted",
        (e: PgError) => e,
      );
      await waitUntilBlocked(ADMIN, pid2);
      await c1.query("COMMIT");
      expect(await second).toMatchObject({ code: "40001" });
      await c2.query("ROLLBACK");

      // (b) the first committed after the second's snapshot, before the second inserts
      await c2.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
      await c2.query("SELECT count(*) FROM res_users");
      await addUser(c1, "third@x.example"); // autocommit: the last slot
      const late = await failure(addUser(c2, "fourth@x.example"));
      expect(late.code).toBe("40001");
      await c2.query("ROLLBACK");

      // Odoo's retry: a fresh transaction sees the committed users and is refused
      await c2.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
      expect((await failure(addUser(c2, "fourth@x.example"))).code).toBe("LWU01");
      await c2.query("ROLLBACK");
    } finally {
      await c1.end().catch(() => undefined);
      await c2.end().catch(() => undefined);
    }
    expect(await activeInternal(t)).toBe(3);
  });

  it("many concurrent writers, in both isolation levels, never exceed the limit", async () => {
    for (const iso of ["READ COMMITTED", "REPEATABLE READ"]) {
      const t = await newTenant({ ...DEFAULT_LIMITS, maxUsers: 4 });
      const clients = await Promise.all(Array.from({ length: 8 }, () => connect(tenantUrl(t))));
      try {
        const outcomes = await Promise.all(
          clients.map(async (c, i) => {
            for (let attempt = 0; attempt < 50; attempt++) {
              await c.query(`BEGIN ISOLATION LEVEL ${iso}`);
              try {
                await c.query("SELECT count(*) FROM res_users");
                await addUser(c, `w${i}@x.example`);
                await c.query("COMMIT");
                return "inserted";
              } catch (err) {
                await c.query("ROLLBACK");
                const code = (err as PgError).code;
                if (code !== "40001") return code;
              }
            }
            return "gave up";
          }),
        );
        expect(
          outcomes.filter((o) => o === "inserted"),
          iso,
        ).toHaveLength(3);
        expect(
          outcomes.filter((o) => o === "LWU01"),
          iso,
        ).toHaveLength(5);
      } finally {
        await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      }
      expect(await activeInternal(t)).toBe(4);
    }
  });
});

describe("AI-operation counter", () => {
  it("counts per UTC day; over the limit raises LWA01 with the reset time; refused and rolled back attempts count", async () => {
    const t = await newTenant({ ...DEFAULT_LIMITS, maxAiOperationsDaily: 5 });
    await asAdmin(t, async (db) => {
      for (let i = 1; i <= 4; i++) expect(await take(db)).toBe(i);
      await db.query("BEGIN");
      expect(await take(db)).toBe(5);
      await db.query("ROLLBACK"); // still counted: a sequence is not transactional
      const err = await failure(take(db));
      const reset = aiResetTime(new Date());
      const resetText = reset.toISOString().replace("T", " ").replace(".000Z", "+00");
      expect(err.code).toBe("LWA01");
      expect(err.message).toBe(
        `daily AI-operation limit reached: 5 of 5 operations used today (UTC); the limit resets at ${resetText} (tier basic, limits.maxAiOperationsDaily)`,
      );
      expect(err.hint).toContain("maxAiOperationsDaily");
      expect(err.detail).toContain("attempt 6");
      expect((await failure(take(db))).code).toBe("LWA01");
    });
    const s = await asTenant(t, readQuotaStatus);
    expect(s.ai_operations.today).toBe(7);
    const today = await asTenant(t, (c) =>
      c.query<{ n: number }>(`SELECT ${QUOTA_SCHEMA}.ai_operations_today() AS n`),
    );
    expect(today.rows[0].n).toBe(7);
    // a raised limit applies at once
    await setLimits(t, { ...DEFAULT_LIMITS, maxAiOperationsDaily: 8 });
    expect(await asAdmin(t, take)).toBe(8);
  });

  it("concurrent takers from several connections never exceed the limit in total", async () => {
    const t = await newTenant({ ...DEFAULT_LIMITS, maxAiOperationsDaily: 40 });
    const clients = await Promise.all(Array.from({ length: 8 }, () => connect(adminUrl(t))));
    try {
      const results = await Promise.all(
        clients.map(async (c) => {
          const got: Array<number | string> = [];
          for (let i = 0; i < 10; i++) {
            // each in its own REPEATABLE READ transaction, as Odoo's
            await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
            got.push(await take(c).catch((e: PgError) => e.code ?? e.message));
            await c.query("COMMIT").catch(() => c.query("ROLLBACK"));
          }
          return got;
        }),
      );
      const all = results.flat();
      const ok = all.filter((v): v is number => typeof v === "number").sort((a, b) => a - b);
      expect(ok).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(all.filter((v) => v === "LWA01")).toHaveLength(40);
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
    expect((await asTenant(t, readQuotaStatus)).ai_operations.today).toBe(80);
  });

  it("day rollover: a counter left on an older day restarts at 1, once, however many sessions race", async () => {
    const t = await newTenant({ ...DEFAULT_LIMITS, maxAiOperationsDaily: 100 });
    const today = utcDayNumber(new Date());
    const setDay = (day: number, count: number) =>
      asAdmin(t, (db) =>
        db.query(`SELECT setval('${QUOTA_SCHEMA}.ai_operations', $1::bigint, true)`, [
          encodeAiCounter(day, count).toString(),
        ]),
      );
    await setDay(today - 3, 99);
    expect((await asTenant(t, readQuotaStatus)).ai_operations.today).toBe(0);
    expect(await asAdmin(t, take)).toBe(1);
    expect(await asAdmin(t, take)).toBe(2);

    await setDay(today - 1, 100); // yesterday's limit was used up
    const clients = await Promise.all(Array.from({ length: 8 }, () => connect(adminUrl(t))));
    try {
      const got = await Promise.all(clients.map(async (c) => [await take(c), await take(c)]));
      expect(got.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
      // no session kept the rollover lock
      const locks = await withClient(ADMIN, (c) =>
        c.query(
          "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = $1)",
          [t.database],
        ),
      );
      expect(locks.rowCount).toBe(0);
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
    const value = await asAdmin(t, (db) =>
      db.query<{ v: string }>(`SELECT last_value::text AS v FROM ${QUOTA_SCHEMA}.ai_operations`),
    );
    expect(value.rows[0].v).toBe(encodeAiCounter(today, 16).toString());
  });
});

describe("storage", () => {
  let t: TenantSpec;
  let base: StorageCheckResult;
  const files = 4;
  const fileBytes = 50_000;

  beforeAll(async () => {
    t = await newTenant();
    const dir = filestorePath(filestoreRoot, t.database);
    await fsp.mkdir(path.join(dir, "ab"), { recursive: true });
    for (let i = 0; i < files; i++)
      await fsp.writeFile(path.join(dir, "ab", `f${i}`), Buffer.alloc(fileBytes, i));
    // a hard link inside the filestore is counted once
    await fsp.link(path.join(dir, "ab", "f0"), path.join(dir, "ab", "f0-link"));
  });

  it("measures database (undo log included) + filestore, records it, and stays ok under 80 %", async () => {
    // a stand-in for the undo log: counted (the tenant's writes grow it), its size also shown apart
    await asAdmin(t, async (db) => {
      await db.query("CREATE SCHEMA IF NOT EXISTS loomworks_undo");
      await db.query(
        "CREATE TABLE loomworks_undo.quota_it_filler AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 2000) g",
      );
    });
    base = await checkOf(t);
    expect(base.filestoreBytes).toBe(files * fileBytes);
    expect(base.undoLogBytes).toBeGreaterThan(1_000_000);
    expect(base.bytes).toBe((base.databaseBytes ?? 0) + files * fileBytes);
    expect(base).toMatchObject({ state: "ok", previousState: null, events: [], settingsChanged: false });
    await asAdmin(t, (db) => db.query("DROP TABLE loomworks_undo.quota_it_filler"));
    base = await checkOf(t);
    expect(base.undoLogBytes).toBe(0);
    const row = await asAdmin(t, (db) =>
      db.query(`SELECT bytes::text AS bytes, state, filestore_bytes::int AS fs FROM ${QUOTA_SCHEMA}.storage`),
    );
    expect(row.rows).toEqual([{ bytes: String(base.bytes), state: "ok", fs: files * fileBytes }]);
  });

  it("warning at 80 %: one event per crossing, not one per run", async () => {
    // 85 % of a fractional GB limit
    await setLimits(t, { ...DEFAULT_LIMITS, maxStorageGb: (base.bytes ?? 0) / 0.85 / GIB });
    const first = await checkOf(t);
    expect(first).toMatchObject({ state: "warning", previousState: "ok", events: ["storage_warning"] });
    expect(first.percent).toBeGreaterThanOrEqual(80);
    expect(first.percent).toBeLessThan(100);
    const second = await checkOf(t);
    expect(second).toMatchObject({ state: "warning", previousState: "warning", events: [] });
    expect(await events(t, "storage_warning")).toHaveLength(1);
    expect((await asTenant(t, readQuotaStatus)).storage).toMatchObject({
      state: "warning",
      read_only: false,
    });
  });

  it("read-only at 100 %: new sessions refuse writes with 25006 and carry the reason; old ones are ended", async () => {
    const old = await connect(tenantUrl(t));
    try {
      const oldPid = (await old.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
      await setLimits(t, { ...DEFAULT_LIMITS, maxStorageGb: ((base.bytes ?? 0) * 0.9) / GIB });
      const r = await checkOf(t);
      expect(r).toMatchObject({
        state: "read_only",
        previousState: "warning",
        events: ["storage_read_only"],
        settingsChanged: true,
      });
      expect(r.terminatedSessions).toBeGreaterThanOrEqual(1);
      await failure(old.query("SELECT 1"));
      const gone = await withClient(ADMIN, (c) =>
        c.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [oldPid]),
      );
      expect(gone.rowCount).toBe(0);
    } finally {
      await old.end().catch(() => undefined);
    }
    await asTenant(t, async (c) => {
      const err = await failure(addUser(c, "blocked@x.example"));
      expect(err.code).toBe("25006");
      const shown = await c.query<Record<string, string>>("SHOW loomworks.read_only_reason");
      const reason = shown.rows[0]["loomworks.read_only_reason"];
      expect(reason).toMatch(
        /^storage limit reached: [\d.]+ MB of [\d.]+ MB used \(tier basic, limits\.maxStorageGb\); writes are refused until usage is back under the limit or the limit is raised$/,
      );
      const s = await readQuotaStatus(c);
      expect(s.storage).toMatchObject({ state: "read_only", read_only: true, reason });
      expect(s.storage.percent).toBeGreaterThan(100);
    });
    // idempotent: a second run changes nothing and ends no session
    const again = await checkOf(t);
    expect(again).toMatchObject({
      state: "read_only",
      events: [],
      settingsChanged: false,
      terminatedSessions: 0,
    });
    expect(await events(t, "storage_read_only")).toHaveLength(1);
  });

  it("a read-only setting removed by hand while still over the limit is put back", async () => {
    // The database is the platform's: the tenant cannot reset the default; an operator can.
    const denied = await failure(
      asTenant(t, async (c) => {
        await c.query("SET default_transaction_read_only = off"); // a session may leave it for itself
        await c.query(`ALTER DATABASE "${t.database}" RESET default_transaction_read_only`);
      }),
    );
    expect(denied.code).toBe("42501");
    await asAdmin(t, async (c) => {
      await c.query("SET default_transaction_read_only = off");
      await c.query(`ALTER DATABASE "${t.database}" RESET default_transaction_read_only`);
    });
    const sneaked = await failure(
      asTenant(t, async (c) => {
        await c.query("SET default_transaction_read_only = off");
        return addUser(c, "sneaked@x.example");
      }),
    );
    expect(sneaked.code).toBe("25006");
    const r = await checkOf(t);
    expect(r).toMatchObject({ state: "read_only", events: ["storage_read_only"], settingsChanged: true });
    expect((await events(t, "storage_read_only")).at(-1)?.detail).toMatchObject({ repaired: true });
    expect((await failure(asTenant(t, (c) => addUser(c, "again@x.example")))).code).toBe("25006");
  });

  it("raising the limit makes the tenant writable again (limits written into the read-only database)", async () => {
    expect(await setLimits(t, DEFAULT_LIMITS)).toEqual({ changed: true });
    const r = await checkOf(t);
    expect(r).toMatchObject({
      state: "ok",
      previousState: "read_only",
      events: ["storage_writable"],
      settingsChanged: true,
    });
    await asTenant(t, async (c) => {
      await addUser(c, "writable@x.example");
      const reason = await c.query<{ r: string | null }>(
        "SELECT current_setting('loomworks.read_only_reason', true) AS r",
      );
      expect(reason.rows[0].r ?? "").toBe("");
      expect((await readQuotaStatus(c)).storage).toMatchObject({
        state: "ok",
        read_only: false,
        reason: null,
      });
    });
    expect((await events(t)).map((e) => e.kind).filter((k) => k.startsWith("storage_"))).toEqual([
      "storage_warning",
      "storage_read_only",
      "storage_read_only",
      "storage_writable",
    ]);
  });

  it("an operator's own read-only setting (no storage reason) is left alone", async () => {
    await withClient(ADMIN, (c) =>
      c.query(`ALTER DATABASE "${t.database}" SET default_transaction_read_only = on`),
    );
    try {
      const r = await checkOf(t);
      expect(r).toMatchObject({ state: "ok", settingsChanged: false });
      expect((await failure(asTenant(t, (c) => addUser(c, "op@x.example")))).code).toBe("25006");
    } finally {
      await withClient(ADMIN, (c) =>
        c.query(`ALTER DATABASE "${t.database}" RESET default_transaction_read_only`),
      );
    }
  });

  it("checkStorage and `jobs.js quota-check`: every listed tenant; one failing tenant does not stop the others", async () => {
    const broken = await newTenant(DEFAULT_LIMITS, "qb");
    await asAdmin(broken, (db) => db.query(`DROP SCHEMA ${QUOTA_SCHEMA} CASCADE`));
    // The platform's read-only settings, as a check that made it read-only earlier left them.
    await withClient(ADMIN, async (c) => {
      await c.query(`ALTER DATABASE "${broken.database}" SET default_transaction_read_only = on`);
      await c.query(`ALTER DATABASE "${broken.database}" SET ${READ_ONLY_REASON_SETTING} = 'storage limit'`);
    });
    try {
      const results = await checkStorage(ADMIN, {
        filestoreRoot,
        subdomains: [t.subdomain, broken.subdomain],
      });
      const bySub = new Map(results.map((r) => [r.subdomain, r]));
      expect(results).toHaveLength(2);
      expect(bySub.get(broken.subdomain)?.error).toContain(
        `the quota API (schema ${QUOTA_SCHEMA}) is not installed`,
      );
      expect(bySub.get(t.subdomain)).toMatchObject({ state: "ok" });
      expect(bySub.get(t.subdomain)?.error).toBeUndefined();
      // A failed check still reports the read-only state the catalog shows (the pushed metrics keep it).
      expect(bySub.get(broken.subdomain)?.readOnly).toBe(true);
      expect(bySub.get(t.subdomain)).not.toHaveProperty("readOnly");

      await writeClusterSchedulerFiles(pg);
      const jobs = JOBS_SCRIPT;
      const ok = await runNode([jobs, "quota-check", "--state-dir", pg.stateDir, "--tenant", t.subdomain]);
      expect(ok.code, ok.out).toBe(0);
      expect(ok.out).toContain(`${t.subdomain}: `);
      expect(ok.out).toContain("quota check: 1 tenants ok, 0 failed");
      const bad = await runNode([
        jobs,
        "quota-check",
        "--state-dir",
        pg.stateDir,
        "--tenant",
        t.subdomain,
        "--tenant",
        broken.subdomain,
      ]);
      expect(bad.code, bad.out).toBe(1);
      expect(bad.out).toContain("quota check: 1 tenants ok, 1 failed");
      expect(bad.out).toContain(`quota check of ${broken.subdomain} failed`);
    } finally {
      await withClient(ADMIN, async (c) => {
        await c.query(`ALTER DATABASE "${broken.database}" RESET default_transaction_read_only`);
        await c.query(`ALTER DATABASE "${broken.database}" RESET ${READ_ONLY_REASON_SETTING}`);
      });
      await asAdmin(broken, installQuotaApi);
    }
  });
});
