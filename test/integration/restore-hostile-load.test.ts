/**
 * A hostile tenant against the data load of a point-in-time restore (issue 12,
 * docs/operations/security.md §1): with only its DSN, the tenant hides calls to its own functions
 * in a CHECK constraint, a domain's CHECK, a stored generated column, an expression index, a
 * materialized view and a trigger. Each records who ran it. A restore with either scratch method
 * must complete with every recorded call made without superuser rights: the rows are loaded by the
 * restore's short-lived load role, indexes and materialized views are built as the table's owner,
 * triggers do not fire during the load, and the load role is gone afterwards.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Client } from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
// The test's own sessions are plain ones (the tenant's, or ad-hoc admin SQL).
import { PLATFORM_SESSION_OPTIONS, withPlainClient } from "../../lib/pg/client";
import { pgBin } from "../../lib/pg/cluster";
import { clusterPaths } from "../../lib/pg/paths";
import { cleanChildEnv } from "../../lib/pg/pgbackrest";
import { CommandError, runCommand } from "../../lib/process/run";
import { restoreTenant } from "../../lib/restore";
import { createRestoreDatabase, databaseFacts, restoreDump } from "../../lib/restore/copy";
import { createLoadRole, dropLoadRole } from "../../lib/restore/loadRole";
import type { ScratchMethod } from "../../lib/restore/scratch";
import { createTenant, tenantDsn, type TenantSpec } from "../../lib/tenant/provision";
import { dsnToPgEnv, dsnWithDatabase } from "../../lib/pg/dsn";
import { fixtureTemplate, randomTenantSpec, restoreOptionsFor } from "../helpers/tenants";

const pg = inject("pg");
const ADMIN = pg.adminDsn;
const template = fixtureTemplate(ADMIN, "hostile_load");
const filestoreRoot = clusterPaths(pg.stateDir).filestoreDir;
const created: TenantSpec[] = [];
let t: TenantSpec;

const asTenant = <T>(s: TenantSpec, fn: (c: Client) => Promise<T>): Promise<T> =>
  withPlainClient(tenantDsn(pg.host, pg.port, s.roleName, s.rolePassword, s.database), fn);
const asAdmin = <T>(db: string, fn: (c: Client) => Promise<T>): Promise<T> =>
  withPlainClient(dsnWithDatabase(ADMIN, db), fn);

/**
 * The traps, all created through the tenant's DSN. Every name is schema-qualified: pg_restore runs
 * with an empty search_path. `trap_pure` claims to be IMMUTABLE (generated columns and index
 * expressions demand it) and calls the volatile recorder anyway.
 */
const TRAPS_SQL = `
CREATE TABLE public.trap_log (
    kind text, current_role_name text, session_role_name text,
    current_is_super boolean, session_is_super boolean, db text, port int);
GRANT INSERT ON public.trap_log TO PUBLIC;
CREATE FUNCTION public.trap_record(kind text, x int) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO public.trap_log VALUES (kind, current_user::text, session_user::text,
        (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user),
        (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = session_user),
        pg_catalog.current_database()::text, pg_catalog.inet_server_port());
    IF kind = 'check' AND session_user::text LIKE 'loomworks\\_restore\\_%' THEN
        PERFORM public.trap_escalate();
    END IF;
    RETURN x IS NOT NULL;
END $f$;
-- Run as the restore's load role: tries to climb, and leaves a table behind (owned by the load role).
CREATE FUNCTION public.trap_escalate() RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    attempt text;
BEGIN
    FOREACH attempt IN ARRAY ARRAY['SET ROLE postgres', 'SET SESSION AUTHORIZATION postgres',
                                   'ALTER ROLE CURRENT_USER SUPERUSER', 'CREATE ROLE load_role_child',
                                   'COPY public.trap_log TO PROGRAM ''true''']
    LOOP
        BEGIN
            EXECUTE attempt;
            INSERT INTO public.trap_log (kind) VALUES ('escalate: ' || attempt || ': succeeded');
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO public.trap_log (kind) VALUES ('escalate: ' || attempt || ': ' || SQLSTATE);
        END;
    END LOOP;
    CREATE TABLE IF NOT EXISTS public.left_by_load_role (id int);
END $f$;
CREATE FUNCTION public.trap_pure(kind text, x int) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    PERFORM public.trap_record(kind, x);
    RETURN x IS NOT NULL;
END $f$;
CREATE FUNCTION public.trap_trigger() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM public.trap_record('trigger', NEW.id);
    RETURN NEW;
END $f$;
CREATE DOMAIN public.trapped_int AS int CHECK (public.trap_record('domain', VALUE));
CREATE TABLE public.trapped (
    id int PRIMARY KEY,
    checked int CHECK (public.trap_record('check', checked)),
    dom public.trapped_int,
    gen boolean GENERATED ALWAYS AS (public.trap_pure('generated', id)) STORED);
CREATE INDEX trapped_expr ON public.trapped ((public.trap_pure('index', id)));
CREATE TRIGGER trapped_insert BEFORE INSERT ON public.trapped
    FOR EACH ROW EXECUTE FUNCTION public.trap_trigger();
INSERT INTO public.trapped (id, checked, dom) SELECT g, g, g FROM pg_catalog.generate_series(1, 3) g;
CREATE MATERIALIZED VIEW public.trapped_view AS
    SELECT id FROM public.trapped WHERE public.trap_record('matview', id);
`;

interface TrapCall {
  kind: string;
  current_role_name: string;
  session_role_name: string;
  current_is_super: boolean;
  session_is_super: boolean;
  db: string | null;
  port: number | null;
}

const trapCalls = (db: string): Promise<TrapCall[]> =>
  asAdmin(db, async (c) => (await c.query<TrapCall>("SELECT * FROM public.trap_log")).rows);

const currentLsn = (): Promise<string> =>
  asAdmin(
    "postgres",
    async (c) => (await c.query<{ l: string }>("SELECT pg_current_wal_lsn()::text AS l")).rows[0].l,
  );

async function restoreWith(method: ScratchMethod, s: TenantSpec, lsn: string) {
  const before = process.env.LOOMWORKS_RESTORE_METHOD;
  process.env.LOOMWORKS_RESTORE_METHOD = method;
  try {
    return await restoreTenant(restoreOptionsFor(pg, s, { lsn }));
  } finally {
    if (before === undefined) delete process.env.LOOMWORKS_RESTORE_METHOD;
    else process.env.LOOMWORKS_RESTORE_METHOD = before;
  }
}

beforeAll(async () => {
  await template.create();
  t = randomTenantSpec("hl", template.database, filestoreRoot);
  created.push(t);
  await createTenant(ADMIN, t);
  await asTenant(t, (c) => c.query(TRAPS_SQL));
}, 300_000);

afterAll(async () => {
  await template.destroy(created);
}, 120_000);

describe("a restore of a tenant whose constraints, columns, indexes and views call its own functions", () => {
  it("the traps are live: the tenant's own writes ran every one of them", async () => {
    const kinds = new Set((await trapCalls(t.database)).map((r) => r.kind));
    expect([...kinds].sort()).toEqual(["check", "domain", "generated", "index", "matview", "trigger"]);
  });

  for (const method of ["selective", "pgbackrest"] as const) {
    it(`restored with the ${method} scratch method, no trap ran with superuser rights`, async () => {
      const before = (await trapCalls(t.database)).length;
      const r = await restoreWith(method, t, await currentLsn());
      expect(r).toMatchObject({ state: "done" });
      expect(r.timings.scratchMethod).toBe(method);

      const calls = await trapCalls(t.database);
      const loadRole = `loomworks_restore_${r.id}`;
      // Rows written while the copy was filled (the only database of that name is the copy).
      const duringCopy = calls.slice(before).filter((c) => c.db?.endsWith(`__restore_${r.id}`));
      const summary = (c: TrapCall) =>
        `${c.kind} as ${c.current_role_name} (session ${c.session_role_name})` +
        (c.current_is_super ? " WITH SUPERUSER RIGHTS" : "");
      const summaries = [...new Set(duringCopy.map(summary))].sort();
      expect(summaries).toEqual([
        `check as ${loadRole} (session ${loadRole})`,
        `domain as ${loadRole} (session ${loadRole})`,
        `generated as ${loadRole} (session ${loadRole})`,
        // Built in post-data by the superuser's session, run as the table's owner (a
        // security-restricted operation: no SET ROLE, no SET SESSION AUTHORIZATION).
        `index as ${t.roleName} (session postgres)`,
        `matview as ${t.roleName} (session postgres)`,
      ]);
      // The load role's attempts to climb were refused (the log rows of the copy have no db).
      const attempts = [
        ...new Set(
          calls
            .slice(before)
            .filter((c) => c.db === null)
            .map((c) => c.kind),
        ),
      ];
      expect(attempts.sort()).toEqual([
        "escalate: ALTER ROLE CURRENT_USER SUPERUSER: 42501",
        "escalate: COPY public.trap_log TO PROGRAM 'true': 42501",
        "escalate: CREATE ROLE load_role_child: 42501",
        "escalate: SET ROLE postgres: 42501",
        "escalate: SET SESSION AUTHORIZATION postgres: 42501",
      ]);
      // Wherever a trap ran (scratch verification, dump, copy), never with the rights of a superuser.
      expect(calls.filter((c) => c.current_is_super).map(summary)).toEqual([]);
      // Triggers are created after the load: the restore fired none.
      expect(duringCopy.filter((c) => c.kind === "trigger")).toEqual([]);

      const roles = await asAdmin("postgres", (c) =>
        c.query("SELECT rolname FROM pg_roles WHERE rolname LIKE 'loomworks\\_restore\\_%'"),
      );
      expect(roles.rows).toEqual([]);
      // What it left behind went with it (DROP OWNED before DROP ROLE).
      const left = await asAdmin(t.database, (c) =>
        c.query("SELECT to_regclass('public.left_by_load_role') IS NULL AS gone"),
      );
      expect(left.rows[0]).toEqual({ gone: true });
      const rows = await asTenant(t, (c) =>
        c.query<{ n: number; gen: boolean }>(
          "SELECT count(*)::int AS n, bool_and(gen) AS gen FROM public.trapped",
        ),
      );
      expect(rows.rows[0]).toEqual({ n: 3, gen: true });
    }, 600_000);
  }

  it("a large database (pg_restore -j 2) is loaded the same way", async () => {
    const id = randomBytes(4).toString("hex");
    const copy = `${t.database}__restore_${id}`;
    const dumpDir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-hostile-load-")), "dump");
    try {
      const env = cleanChildEnv({
        ...dsnToPgEnv(dsnWithDatabase(ADMIN, t.database)),
        PGOPTIONS: PLATFORM_SESSION_OPTIONS,
      });
      const args = ["-Fd", "-j", "2", "--no-sync", "-f", dumpDir];
      const dumped = await runCommand(pgBin("pg_dump"), args, { env, cwd: "/", timeoutMs: 120_000 });
      if (dumped.code !== 0) throw new CommandError(`pg_dump ${args.join(" ")}`, dumped);
      await asAdmin("postgres", async (admin) => {
        const facts = await databaseFacts(admin, t.database);
        if (!facts) throw new Error(`no database ${t.database}`);
        await createRestoreDatabase(admin, facts, copy);
        const loadRole = await createLoadRole(admin, ADMIN, id, t.roleName, copy);
        const loaded = await restoreDump(ADMIN, copy, dumpDir, {
          jobs: 2,
          sizeBytes: 2 ** 40,
          tenantRole: t.roleName,
          loadRole,
        });
        expect(loaded.mode).toBe("-j 2");
        expect(loaded.tenantEntries).toBeGreaterThan(0);
        await dropLoadRole(admin, ADMIN, id);
      });
      const loadRole = `loomworks_restore_${id}`;
      const summaries = (await trapCalls(copy))
        .filter((c) => c.db === copy)
        .map(
          (c) => `${c.kind} as ${c.current_role_name}${c.current_is_super ? " WITH SUPERUSER RIGHTS" : ""}`,
        );
      expect([...new Set(summaries)].sort()).toEqual([
        `check as ${loadRole}`,
        `domain as ${loadRole}`,
        `generated as ${loadRole}`,
        `index as ${t.roleName}`,
        `matview as ${t.roleName}`,
      ]);
    } finally {
      await asAdmin("postgres", (c) => c.query(`DROP DATABASE IF EXISTS "${copy}" WITH (FORCE)`));
      await fs.rm(path.dirname(dumpDir), { recursive: true, force: true });
    }
  }, 300_000);
});
