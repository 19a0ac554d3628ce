/**
 * A hostile tenant against the platform's own sessions (issue 12, docs/operations/security.md): the
 * tenant holds only its DSN. It plants shadows of every built-in function the platform's SQL names
 * (taken from the platform's source files, so a new call is covered by itself) in schema public,
 * tries to put public first on the search_path of its database and of its role, and then the
 * platform runs its own code paths against that database. No shadow may ever run as anyone but
 * the tenant, and every check must still succeed.
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureTenantGuards, pruneUndoLogs, readTenantGuards } from "../../lib/guards/tenant";
import { PLATFORM_SESSION_SETTINGS, withClient, withPlainClient } from "../../lib/pg/client";
import { checkTenantStorage } from "../../lib/quota/storage";
import { restoreTenant } from "../../lib/restore/restore";
import { createSnapshot, closeSnapshotConnections } from "../../lib/snapshot/snapshot";
import { syncRequestedSnapshots } from "../../lib/snapshot/runtime";
import { readTenant, updateTenant, type TenantSpec } from "../../lib/tenant/provision";
import { filestorePath } from "../../lib/pg/names";
import { registryDsn } from "../../lib/registry/registry";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { repoRoot } from "../../testkit/repo";
import { restoreOptionsFor, useFixtureTenants } from "../helpers/tenants";

const tenants = useFixtureTenants("hostile");
const pg = tenants.pg;
const ADMIN = pg.adminDsn;
const run = randomBytes(3).toString("hex");
const filestoreRoot = tenants.filestoreRoot;
const snapshotRoot = path.join(pg.stateDir, `snapshots-hostile-${run}`);
const LIMITS = { maxUsers: 10, maxStorageGb: 5, maxAiOperationsDaily: 100 };

/** Source files whose SQL platform sessions run in tenant databases. */
const PLATFORM_SQL_SOURCES = [
  "lib/quota/storage.ts",
  "lib/quota/sql.ts",
  "lib/guards/install.ts",
  "lib/guards/tenant.ts",
  "lib/snapshot/runtime.ts",
  "lib/snapshot/snapshot.ts",
  "lib/undo/sql.ts",
  "lib/tenant/provision.ts",
  "lib/tenant/sql.ts",
  "lib/restore/restore.ts",
  "lib/restore/copy.ts",
  "lib/restore/loadRole.ts",
  "lib/pg/database.ts",
  "lib/pg/sessions.ts",
];

/** The tenant: a plain session with its own DSN, nothing else. */
const { tenantUrl, asTenant, asAdmin: adminPlain } = tenants;

async function sqlState(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  }
  return "succeeded";
}

/** The SQL files installed in tenant databases (sql/). */
async function sqlFiles(): Promise<string[]> {
  const files = (await fsp.readdir(path.join(repoRoot, "sql"), { recursive: true })) as string[];
  return files.filter((f) => f.endsWith(".sql")).map((f) => path.join("sql", f));
}

/** Every identifier written as a call (`name(`) in the platform's SQL sources. */
async function calledNames(): Promise<string[]> {
  const names = new Set<string>();
  for (const file of [...PLATFORM_SQL_SOURCES, ...(await sqlFiles())]) {
    const text = await fsp.readFile(path.join(repoRoot, file), "utf8");
    for (const m of text.matchAll(/\b([a-z_][a-z0-9_]*)\s*\(/g)) names.add(m[1]);
  }
  return [...names].sort();
}

interface BuiltIn {
  name: string;
  args: string[];
  returns: string;
}

/**
 * The pg_catalog functions among `names` a tenant can shadow with a PL/pgSQL function: plain
 * functions, no pseudo-type, set-returning, variadic or OUT signature.
 */
async function shadowableBuiltIns(c: Client, names: string[]): Promise<BuiltIn[]> {
  const r = await c.query<{ name: string; args: string[]; returns: string }>(
    `SELECT p.proname AS name,
            ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes::oid[]) t) AS args,
            format_type(p.prorettype, NULL) AS returns
     FROM pg_proc p
     WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.proname = ANY($1) AND p.prokind = 'f'
       AND NOT p.proretset AND p.provariadic = 0 AND p.proallargtypes IS NULL
       AND (p.prorettype = 'void'::regtype OR (SELECT typtype FROM pg_type WHERE oid = p.prorettype) <> 'p')
       AND NOT EXISTS (SELECT 1 FROM unnest(p.proargtypes::oid[]) t JOIN pg_type y ON y.oid = t WHERE y.typtype = 'p')
     ORDER BY 1, 2`,
    [names],
  );
  return r.rows;
}

/**
 * The tenant's trap, created through its own DSN: `public.hostile_record()` counts (in a sequence:
 * it survives a rollback) and logs every call made by anyone but the tenant; each shadow calls it,
 * then returns what the built-in would. Besides exact signatures, reg* arguments get an `oid`
 * variant: `public.pg_total_relation_size(oid)` matches `c.oid` better than pg_catalog's regclass
 * version, whatever the search_path order.
 */
async function plantShadows(s: TenantSpec, builtIns: BuiltIn[]): Promise<string[]> {
  const signatures = new Map<string, { shadow: BuiltIn; original: string[] }>();
  for (const b of builtIns) {
    signatures.set(`${b.name}(${b.args.join(",")})`, { shadow: b, original: b.args });
    if (b.args.some((a) => a.startsWith("reg"))) {
      const args = b.args.map((a) => (a.startsWith("reg") ? "oid" : a));
      signatures.set(`${b.name}(${args.join(",")})`, { shadow: { ...b, args }, original: b.args });
    }
  }
  return asTenant(s, async (c) => {
    await c.query(`CREATE SEQUENCE public.hostile_hits;
      CREATE TABLE public.hostile_calls (fn text, current_role_name text, session_role_name text);
      GRANT USAGE ON SEQUENCE public.hostile_hits TO PUBLIC;
      GRANT INSERT ON public.hostile_calls TO PUBLIC;
      CREATE FUNCTION public.hostile_record(fn text) RETURNS void LANGUAGE plpgsql AS $f$
      BEGIN
          IF current_user <> '${s.roleName}' THEN
              PERFORM pg_catalog.nextval('public.hostile_hits');
              INSERT INTO public.hostile_calls VALUES (fn, current_user, session_user);
          END IF;
      END $f$;
      GRANT EXECUTE ON FUNCTION public.hostile_record(text) TO PUBLIC;`);
    const made: string[] = [];
    for (const [signature, { shadow, original }] of signatures) {
      const params = shadow.args.map((t, i) => `a${i} ${t}`).join(", ");
      const call = original.map((t, i) => `a${i}::${t}`).join(", ");
      try {
        await c.query(`CREATE FUNCTION public.${shadow.name}(${params}) RETURNS ${shadow.returns}
          LANGUAGE plpgsql AS $f$
          BEGIN
              PERFORM public.hostile_record('${signature}');
              ${shadow.returns === "void" ? "PERFORM" : "RETURN"} pg_catalog.${shadow.name}(${call});
          END $f$`);
        made.push(signature);
      } catch (err) {
        // A name PL/pgSQL cannot declare as written (e.g. a reserved word) is no shadow either.
        if ((err as { code?: string }).code !== "42601") throw err;
      }
    }
    return made;
  });
}

async function hits(s: TenantSpec): Promise<{ count: number; calls: string[] }> {
  return adminPlain(s, async (c) => {
    const seq = await c.query<{ n: string }>(
      "SELECT CASE WHEN is_called THEN last_value ELSE 0 END AS n FROM public.hostile_hits",
    );
    const calls = await c.query<{ line: string }>(
      "SELECT fn || ' as ' || current_role_name || ' (session ' || session_role_name || ')' AS line FROM public.hostile_calls",
    );
    return { count: Number(seq.rows[0].n), calls: calls.rows.map((r) => r.line) };
  });
}

afterAll(async () => {
  await closeSnapshotConnections();
  await fsp.rm(snapshotRoot, { recursive: true, force: true });
}, 120_000);

async function newTenant(prefix: string): Promise<TenantSpec> {
  const spec = await tenants.create(prefix);
  await ensureTenantGuards(ADMIN, guardsSpec(spec));
  return spec;
}

const guardsSpec = (s: TenantSpec) => ({
  subdomain: s.subdomain,
  database: s.database,
  tier: s.tier,
  limits: LIMITS,
  excludeTables: [],
});

describe("a tenant with only its DSN", () => {
  let t: TenantSpec;
  let shadows: string[];

  beforeAll(async () => {
    t = await newTenant("ht");
    shadows = await plantShadows(
      t,
      await adminPlain(t, async (c) => shadowableBuiltIns(c, await calledNames())),
    );
  }, 120_000);

  it("shadows every built-in the platform's SQL calls (the list comes from the platform's sources)", () => {
    expect(shadows).toContain("pg_total_relation_size(oid)");
    for (const f of ["pg_database_size(name)", "current_database()", "to_regclass(text)", "pg_backend_pid()"])
      expect(shadows).toContain(f);
    expect(shadows.length).toBeGreaterThan(40);
  });

  it("cannot change its database's settings: the database is the platform's", async () => {
    for (const setting of [
      "search_path = public, pg_catalog",
      "statement_timeout = '1ms'",
      "lock_timeout = '1ms'",
      "idle_in_transaction_session_timeout = '1ms'",
      "default_transaction_read_only = off",
    ]) {
      expect(
        await sqlState(asTenant(t, (c) => c.query(`ALTER DATABASE "${t.database}" SET ${setting}`))),
        setting,
      ).toBe("42501");
    }
    expect(
      await sqlState(asTenant(t, (c) => c.query(`ALTER DATABASE "${t.database}" ALLOW_CONNECTIONS true`))),
    ).toBe("42501");
    expect(
      await sqlState(asTenant(t, (c) => c.query(`ALTER DATABASE "${t.database}" OWNER TO "${t.roleName}"`))),
    ).toBe("42501");
  });

  it("settings on its own role or left on the database never reach a platform session", async () => {
    await asTenant(t, (c) =>
      c.query(`ALTER ROLE "${t.roleName}" SET search_path = public, pg_catalog;
               ALTER ROLE "${t.roleName}" SET statement_timeout = '1ms';
               ALTER ROLE "${t.roleName}" SET default_transaction_read_only = on`),
    );
    // As if left from before the platform owned the database (or set by a careless operator).
    await adminPlain(t, (c) =>
      c.query(`ALTER DATABASE "${t.database}" SET search_path = public, pg_catalog;
               ALTER DATABASE "${t.database}" SET lock_timeout = '1ms';
               ALTER DATABASE "${t.database}" SET idle_in_transaction_session_timeout = '1ms';
               ALTER DATABASE "${t.database}" SET plpgsql.variable_conflict = use_column`),
    );
    const show = `SELECT current_setting('search_path') AS search_path, current_setting('statement_timeout') AS statement_timeout,
                         current_setting('lock_timeout') AS lock_timeout,
                         current_setting('idle_in_transaction_session_timeout') AS idle_in_transaction_session_timeout,
                         current_setting('default_transaction_read_only') AS default_transaction_read_only,
                         current_setting('plpgsql.variable_conflict') AS "plpgsql.variable_conflict"`;
    const pinned = Object.fromEntries(
      Object.entries(PLATFORM_SESSION_SETTINGS).filter(([k]) =>
        [
          "search_path",
          "statement_timeout",
          "lock_timeout",
          "idle_in_transaction_session_timeout",
          "default_transaction_read_only",
          "plpgsql.variable_conflict",
        ].includes(k),
      ),
    );
    // The platform as the superuser, and as the tenant's own role (a platform session may log in as it).
    expect((await withClient(dsnWithDatabase(ADMIN, t.database), (c) => c.query(show))).rows[0]).toEqual(
      pinned,
    );
    expect((await withClient(tenantUrl(t), (c) => c.query(show))).rows[0]).toEqual(pinned);
    // The settings are real: stored for the tenant's role and database, so the tenant's own sessions
    // get them (read from the catalog: a 1 ms statement_timeout cancels a query of the tenant's own on a
    // loaded machine).
    const stored = await adminPlain(t, (c) =>
      c.query<{ settings: string[] }>(
        `SELECT array_agg(s ORDER BY s) AS settings
           FROM pg_db_role_setting d, unnest(d.setconfig) AS s
          WHERE (d.setrole = (SELECT oid FROM pg_roles WHERE rolname = $1) AND d.setdatabase = 0)
             OR (d.setdatabase = (SELECT oid FROM pg_database WHERE datname = $2) AND d.setrole = 0)`,
        [t.roleName, t.database],
      ),
    );
    expect(stored.rows[0]?.settings).toEqual(
      expect.arrayContaining([
        "search_path=public, pg_catalog",
        "statement_timeout=1ms",
        "default_transaction_read_only=on",
        "lock_timeout=1ms",
      ]),
    );
  });

  it("the platform's code paths run, succeed, and never run a shadow with the platform's rights", async () => {
    const storage = await checkTenantStorage(ADMIN, {
      subdomain: t.subdomain,
      database: t.database,
      filestoreDir: filestorePath(filestoreRoot, t.database),
    });
    expect(storage).toMatchObject({ state: "ok" });
    expect(storage.databaseBytes).toBeGreaterThan(0);

    const guards = await ensureTenantGuards(ADMIN, guardsSpec(t));
    expect(guards).toMatchObject({ uncapturedTables: 0, databaseExists: true });
    expect((await readTenantGuards(ADMIN, t.database)).version).toBe(guards.version);
    const pruned = await pruneUndoLogs(ADMIN, 30);
    expect(pruned.find((p) => p.subdomain === t.subdomain)).toEqual({ subdomain: t.subdomain, pruned: 0 });

    const snapshot = await createSnapshot(ADMIN, {
      subdomain: t.subdomain,
      database: t.database,
      name: "hostile",
      kind: "manual",
      filestoreRoot,
      snapshotRoot,
    });
    expect(snapshot).toMatchObject({ created: true, state: "ready" });
    await asTenant(t, async (c) => {
      await c.query("SET statement_timeout = 0; SET default_transaction_read_only = off");
      await c.query("SELECT loomworks_snapshot.request('pre_ai', 'hostile')");
    });
    const synced = await syncRequestedSnapshots(ADMIN, t.subdomain, t.database, {
      filestoreRoot,
      snapshotRoot,
    });
    expect(synced).toHaveLength(1);

    await updateTenant(ADMIN, t, { ...t, adminEmail: `new@${t.subdomain}.example`, tier: "pro" });
    expect(await readTenant(ADMIN, t.subdomain, t.database, t.roleName)).toMatchObject({
      databaseOwner: "postgres",
      initialized: true,
    });

    expect(await hits(t)).toEqual({ count: 0, calls: [] });
  });

  it("an AI operation and its undo in the tenant's own session, shadows first on its path, run no shadow as the platform", async () => {
    const before = await hits(t);
    const op = await asTenant(t, async (c) => {
      // The database's 1 ms timeouts (left by an earlier test) would end this session's transactions.
      await c.query(
        "SET statement_timeout = 0; SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0; SET default_transaction_read_only = off",
      );
      await c.query("SET search_path = public, pg_catalog");
      await c.query("BEGIN");
      // begin_operation is inlined into this statement (undo API v4); the capture below is the
      // SECURITY DEFINER trigger; both must resolve every name without the tenant's path.
      const id = (
        await c.query<{ id: string }>("SELECT loomworks_undo.begin_operation('hostile', 'write', 'x') AS id")
      ).rows[0].id;
      await c.query("UPDATE res_partner SET phone = 'shadowed' WHERE id = (SELECT min(id) FROM res_partner)");
      await c.query("COMMIT");
      await c.query("BEGIN");
      const undone = await c.query<{ r: { applied: boolean } }>(
        "SELECT loomworks_undo.undo_operation($1) AS r",
        [id],
      );
      await c.query("COMMIT");
      expect(undone.rows[0].r.applied).toBe(true);
      return id;
    });
    const logged = await adminPlain(t, (c) =>
      c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM loomworks_undo.change_log WHERE operation_id = $1",
        [op],
      ),
    );
    expect(logged.rows[0].n).toBe(1);
    expect(await hits(t)).toEqual(before);
  });

  it("a point-in-time restore (verification in the scratch, dump, copy, swap) never runs a shadow", async () => {
    const lsn = await withPlainClient(
      ADMIN,
      async (c) => (await c.query<{ l: string }>("SELECT pg_current_wal_lsn()::text AS l")).rows[0].l,
    );
    const r = await restoreTenant(restoreOptionsFor(pg, t, { lsn }));
    expect(r).toMatchObject({ state: "done" });
    // The restored database carries whatever the shadows did in the scratch (the dump copies the
    // sequence and the log), and whatever they did in the live cluster since.
    expect(await hits(t)).toEqual({ count: 0, calls: [] });
  });

  it("the trap is live: the same shadows do run in a plain superuser session", async () => {
    // Proves the assertion above can fail: a session without the platform's pinned settings falls in.
    await adminPlain(t, (c) => c.query("SELECT pg_total_relation_size(c.oid) FROM pg_class c LIMIT 1"));
    const seen = await hits(t);
    expect(seen.count).toBe(1);
    expect(seen.calls).toEqual(["pg_total_relation_size(oid) as postgres (session postgres)"]);
  });
});

describe("a tenant provisioned as its database's owner", () => {
  it("is converted on its next update: the platform owns the database, the tenant keeps public and CONNECT", async () => {
    const s = await newTenant("hc");
    // The shape tenants had before: the database theirs, PUBLIC allowed in by the tenant.
    await withPlainClient(ADMIN, (c) => c.query(`ALTER DATABASE "${s.database}" OWNER TO "${s.roleName}"`));
    await adminPlain(s, (c) => c.query("ALTER SCHEMA public OWNER TO pg_database_owner"));
    await asTenant(s, (c) =>
      c.query(`GRANT CONNECT, TEMPORARY, CREATE ON DATABASE "${s.database}" TO PUBLIC`),
    );
    expect(
      await sqlState(asTenant(s, (c) => c.query(`ALTER DATABASE "${s.database}" SET work_mem = '1MB'`))),
    ).toBe("succeeded");
    await asTenant(s, (c) => c.query(`ALTER DATABASE "${s.database}" RESET work_mem`));

    await updateTenant(ADMIN, s, { ...s, tier: "pro" });

    const facts = await adminPlain(
      s,
      async (c) =>
        (
          await c.query<Record<string, unknown>>(
            `SELECT pg_get_userbyid(d.datdba) AS owner,
                  (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'public') AS public_owner,
                  ARRAY(SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END || ':' || a.privilege_type
                        FROM aclexplode(d.datacl) a WHERE a.grantee <> d.datdba ORDER BY 1) AS grants
           FROM pg_database d WHERE d.datname = current_database()`,
          )
        ).rows[0],
    );
    expect(facts).toEqual({
      owner: "postgres",
      public_owner: s.roleName,
      grants: [`${s.roleName}:CONNECT`, `${s.roleName}:TEMPORARY`],
    });
    expect(
      await sqlState(asTenant(s, (c) => c.query(`ALTER DATABASE "${s.database}" SET work_mem = '1MB'`))),
    ).toBe("42501");
    // Its tables are still its own to create and alter (what the ERP needs).
    await asTenant(s, (c) =>
      c.query(
        "CREATE TABLE public.x_after_conversion (id int); ALTER TABLE public.res_partner ADD COLUMN x_note text",
      ),
    );
    const journal = await withPlainClient(registryDsn(ADMIN), (c) =>
      c.query<{ step: string }>(
        "SELECT step FROM tenant_steps WHERE subdomain = $1 AND finished_at IS NOT NULL",
        [s.subdomain],
      ),
    );
    expect(journal.rows.map((r) => r.step)).toContain("update:ownership");
  });
});
