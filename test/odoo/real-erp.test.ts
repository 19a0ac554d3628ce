/**
 * A real Odoo 18 against a local stack (issue 11): the template built by the ERP's own initializer,
 * every tenant served through the router with its own credentials, images the build wrote, cron,
 * undo of ORM writes, a restore followed by a module install, the user limit, and a tenant's
 * trigger that cannot reach another tenant. Skipped (one line) where no Odoo 18 is installed.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { withPlainClient as withClient } from "../../lib/pg/client";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { LocalTestStack } from "../../testkit/local-stack";
import { freePort } from "../../testkit/ports";
import { RunningErp, callKw, login, request, runOdoo } from "./erp";

const odoo = inject("odoo");

interface TenantOut {
  dsn: string;
  roleName: string;
  database: string;
}

describe.skipIf(!odoo)("a real Odoo 18 serving the tenants", () => {
  let stack: LocalTestStack;
  let erp: RunningErp;
  let httpPort: number;
  let adminDsn: string;
  let tenants: Record<string, TenantOut>;
  let adminPasswords: Record<string, string>;
  let conf: string;
  let wsPort: number;
  const platformConfig = () => ({
    odooHttp: `127.0.0.1:${httpPort}`,
    odooWebsocket: `127.0.0.1:${wsPort}`,
    odoo: { cpu: 0.5, memoryMb: 1024 },
    templates: {
      default: { fromCommand: `${odoo!.command} -d {db} -i base --without-demo=all --stop-after-init` },
    },
  });
  const host = (sub: string): string => `${sub}.localhost:${stack.routerPort}`;
  const email = (sub: string): string => `admin@${sub}.example`;

  beforeAll(async () => {
    if (!odoo) return;
    stack = await LocalTestStack.create("odoo");
    httpPort = await freePort();
    wsPort = await freePort();
    await stack.configure(
      {
        alpha: { tier: "pro", adminEmail: email("alpha"), state: "active" },
        bravo: { tier: "basic", adminEmail: email("bravo"), state: "active", limits: { maxUsers: 2 } },
        charlie: { tier: "basic", adminEmail: email("charlie"), state: "suspended" },
      },
      platformConfig(),
    );
    await stack.up();
    const outs = await stack.outputs();
    adminDsn = (outs.postgres as { adminDsn: string }).adminDsn;
    tenants = outs.tenants as Record<string, TenantOut>;
    adminPasswords = outs.adminPasswords as Record<string, string>;
    conf = (outs.router as { odooConfig: string }).odooConfig;
    erp = await RunningErp.start(odoo, conf, httpPort, path.join(path.dirname(stack.dir), "odoo.log"));
  }, 1_800_000);

  afterAll(async () => {
    await erp?.stop();
    if (erp) console.log(`[odoo] ERP log: ${erp.logFile}`);
    if (process.env.LOOMWORKS_KEEP_STACK !== "1") await stack?.dispose();
  }, 600_000);

  it("the template was built by `fromCommand` as a builder role, its files kept as the template's filestore", async () => {
    const r = await withClient(adminDsn, (c) =>
      c.query<{ owner: string; builder_login: boolean; builder_super: boolean }>(
        `SELECT pg_get_userbyid(d.datdba) AS owner,
                (SELECT rolcanlogin FROM pg_roles WHERE rolname = d.datname || '_builder') AS builder_login,
                (SELECT rolsuper FROM pg_roles WHERE rolname = d.datname || '_builder') AS builder_super
         FROM pg_database d WHERE d.datistemplate AND d.datname LIKE 'loomworks_template_%'`,
      ),
    );
    expect(r.rows).toEqual([{ owner: "postgres", builder_login: false, builder_super: false }]);
    const filestore = path.join(stack.stateDir, "filestore", "loomworks_template_default");
    expect(fs.readdirSync(filestore).length).toBeGreaterThan(0);
  });

  it("serves every active tenant's login page through the router; unknown hosts 404, suspended 503", async () => {
    for (const sub of ["alpha", "bravo"]) {
      const r = await request(stack.routerPort, host(sub), "/web/login");
      expect(r.status, `${sub}: ${r.text.slice(0, 300)}`).toBe(200);
      expect(r.text).toContain('name="login"');
    }
    expect((await request(stack.routerPort, host("nobody"), "/web/login")).status).toBe(404);
    expect((await request(stack.routerPort, host("charlie"), "/web/login")).status).toBe(503);
  });

  it("logs the admin in with adminPasswords (uid 2) and serves the images the template build wrote", async () => {
    const s = await login(stack.routerPort, host("alpha"), "alpha", email("alpha"), adminPasswords.alpha);
    expect(s.uid).toBe(2);
    const img = await request(stack.routerPort, host("alpha"), "/web/image/res.partner/1/image_128", {
      headers: { Cookie: s.cookie },
    });
    expect(img.status).toBe(200);
    expect(String(img.headers["content-type"])).toMatch(/^image\//);
    expect(erp.log()).not.toContain("FileNotFoundError");
  });

  it("connects to each tenant as the tenant's own role, and the ERP's role reaches no tenant", async () => {
    const r = await withClient(adminDsn, (c) =>
      c.query<{ datname: string; usename: string }>(
        "SELECT DISTINCT datname, usename FROM pg_stat_activity WHERE application_name LIKE 'odoo-%' AND datname IN ('alpha', 'bravo') ORDER BY 1",
      ),
    );
    expect(r.rows).toEqual([
      { datname: "alpha", usename: "alpha" },
      { datname: "bravo", usename: "bravo" },
    ]);
  });
  it("runs cron jobs for a tenant (the cron worker lists the tenants and connects as each)", async () => {
    const alphaAdmin = dsnWithDatabase(adminDsn, "alpha");
    const job = await withClient(alphaAdmin, async (c) => {
      const r = await c.query<{ id: number }>("SELECT id FROM ir_cron WHERE active ORDER BY id LIMIT 1");
      await c.query(
        "UPDATE ir_cron SET nextcall = now() - interval '1 hour', lastcall = NULL WHERE id = $1",
        [r.rows[0].id],
      );
      return r.rows[0].id;
    });
    await withClient(adminDsn, (c) => c.query("NOTIFY cron_trigger, 'alpha'"));
    const deadline = Date.now() + 150_000;
    let lastcall: Date | null = null;
    while (!lastcall && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 2_000));
      lastcall = await withClient(alphaAdmin, (c) =>
        c.query<{ lastcall: Date | null }>("SELECT lastcall FROM ir_cron WHERE id = $1", [job]),
      ).then((r) => r.rows[0].lastcall);
    }
    expect(lastcall, erp.log().slice(-2000)).not.toBeNull();
    expect(erp.running).toBe(true);
    expect(erp.log()).not.toMatch(/cron.*(Traceback|OperationalError)|Listing databases failed/);
  });

  it("undoes an AI operation made through the ORM to the exact prior state", async () => {
    const partners = () =>
      withClient(tenants.alpha.dsn, (c) =>
        c.query("SELECT id, name, phone, email FROM res_partner ORDER BY id"),
      );
    const before = await partners();
    const script = [
      `env.cr.execute("SELECT loomworks_undo.begin_operation('odoo-test', 'write', 'partner with a child')")`,
      "op = env.cr.fetchone()[0]",
      "p = env['res.partner'].create({'name': 'AI Partner', 'child_ids': [(0, 0, {'name': 'AI Child'})]})",
      "env.ref('base.main_partner').write({'phone': '+1 555 0100', 'email': 'ai@alpha.example'})",
      "env.cr.commit()",
      "print('OPERATION=' + op)",
    ].join("\n");
    const r = await runOdoo(odoo!, ["shell", "-c", conf, "-d", "alpha", "--no-http"], script);
    const op = /OPERATION=(\S+)/.exec(r.output)?.[1];
    expect(op, r.output.slice(-2000)).toBeDefined();
    expect((await partners()).rows.length).toBe(before.rows.length + 2);
    const undone = await withClient(tenants.alpha.dsn, async (c) => {
      await c.query("BEGIN");
      const u = await c.query<{ r: { applied: boolean } }>("SELECT loomworks_undo.undo_operation($1) AS r", [
        op,
      ]);
      await c.query("COMMIT");
      return u.rows[0].r;
    });
    expect(undone.applied).toBe(true);
    expect((await partners()).rows).toEqual(before.rows);
  });

  it("refuses the user over the limit through the ORM, with the limit's message", async () => {
    const s = await login(stack.routerPort, host("bravo"), "bravo", email("bravo"), adminPasswords.bravo);
    const create = (loginName: string) =>
      callKw(stack.routerPort, host("bravo"), s.cookie, "res.users", "create", [
        { name: loginName, login: loginName },
      ]);
    await expect(create("first-user")).resolves.toBeTypeOf("number");
    await expect(create("second-user")).rejects.toThrow(/user limit reached/);
  });

  it("a tenant's trigger fired by an ERP write runs as that tenant and reaches no other tenant", async () => {
    await withClient(tenants.alpha.dsn, (c) =>
      c.query(`
        CREATE TABLE public.x_probe (id serial PRIMARY KEY, step text, outcome text, who text DEFAULT current_user);
        CREATE FUNCTION public.x_reach_out() RETURNS trigger LANGUAGE plpgsql AS $f$
        DECLARE stmt text;
        BEGIN
          FOREACH stmt IN ARRAY ARRAY['SET ROLE bravo', 'ALTER ROLE bravo PASSWORD ''taken''',
                                      'SET ROLE loomworks_erp', 'SET ROLE postgres'] LOOP
            BEGIN
              EXECUTE stmt;
              INSERT INTO public.x_probe (step, outcome) VALUES (stmt, 'ok');
            EXCEPTION WHEN others THEN
              INSERT INTO public.x_probe (step, outcome) VALUES (stmt, SQLSTATE);
            END;
          END LOOP;
          RETURN NEW;
        END $f$;
        CREATE TRIGGER x_reach_out AFTER INSERT ON public.res_partner
          FOR EACH ROW EXECUTE FUNCTION public.x_reach_out();
      `),
    );
    const s = await login(stack.routerPort, host("alpha"), "alpha", email("alpha"), adminPasswords.alpha);
    await callKw(stack.routerPort, host("alpha"), s.cookie, "res.partner", "create", [
      { name: "Fires the trigger" },
    ]);
    const probe = await withClient(tenants.alpha.dsn, (c) =>
      c.query<{ step: string; outcome: string; who: string }>(
        "SELECT step, outcome, who FROM public.x_probe",
      ),
    );
    expect(probe.rows).toHaveLength(4);
    for (const row of probe.rows) {
      expect(row.who).toBe("alpha");
      expect(row.outcome, row.step).toBe("42501"); // insufficient privilege, every one
    }
    await expect(withClient(tenants.bravo.dsn, (c) => c.query("SELECT 1"))).resolves.toBeDefined();
    await withClient(tenants.alpha.dsn, (c) => c.query("DROP TRIGGER x_reach_out ON public.res_partner"));
  });

  it("the loomworks_tenants addon's own tests pass in Odoo's test framework", async () => {
    const r = await runOdoo(odoo!, [
      "-c",
      conf,
      "-d",
      "bravo",
      "-i",
      "loomworks_tenants",
      "--test-enable",
      "--test-tags",
      "/loomworks_tenants",
      "--stop-after-init",
      "--no-http",
    ]);
    expect(r.code, r.output.slice(-3000)).toBe(0);
    // Odoo exits non-zero when a test fails; the count proves the tests ran at all.
    expect(r.output, r.output.slice(-3000)).toMatch(/\b5 post-tests in /);
  });

  it("after a restore to a snapshot: an attachment the ERP deleted and garbage-collected since is back; the ERP installs a module and stores new attachments", async () => {
    const attach = (cookie: string, name: string) =>
      callKw(stack.routerPort, host("alpha"), cookie, "ir.attachment", "create", [
        { name, raw: Buffer.from(`content of ${name}`).toString("base64") },
      ]);
    const tenantsWith = (alpha: Record<string, unknown>) => ({
      alpha: { tier: "pro", adminEmail: email("alpha"), state: "active", ...alpha },
      bravo: { tier: "basic", adminEmail: email("bravo"), state: "active", limits: { maxUsers: 2 } },
      charlie: { tier: "basic", adminEmail: email("charlie"), state: "suspended" },
    });
    let s = await login(stack.routerPort, host("alpha"), "alpha", email("alpha"), adminPasswords.alpha);
    for (const n of ["a.txt", "b.txt", "c.txt"]) await attach(s.cookie, n);
    await stack.configure(tenantsWith({ snapshots: { before: {} } }), platformConfig());
    await stack.up();
    for (const n of ["d.txt", "e.txt"]) await attach(s.cookie, n);
    // After the snapshot (which copied nothing), a.txt is deleted and its file garbage-collected by the ERP.
    const [a] = (await callKw(stack.routerPort, host("alpha"), s.cookie, "ir.attachment", "search_read", [
      [["name", "=", "a.txt"]],
      ["store_fname"],
    ])) as { id: number; store_fname: string }[];
    const liveFile = path.join(stack.stateDir, "filestore", "alpha", a.store_fname);
    const content = fs.readFileSync(liveFile);
    await callKw(stack.routerPort, host("alpha"), s.cookie, "ir.attachment", "unlink", [[a.id]]);
    const gc = await runOdoo(
      odoo!,
      ["shell", "-c", conf, "-d", "alpha", "--no-http"],
      "env['ir.attachment']._gc_file_store()\nenv.cr.commit()\n",
    );
    expect(fs.existsSync(liveFile), gc.output.slice(-2000)).toBe(false);
    const retiredArea = path.join(stack.stateDir, "filestore", ".retired", "alpha");
    const batches = fs.readdirSync(retiredArea);
    expect(
      batches.some((b) => fs.existsSync(path.join(retiredArea, b, a.store_fname))),
      gc.output.slice(-2000),
    ).toBe(true);
    await stack.configure(
      tenantsWith({ snapshots: { before: {} }, restore: { snapshot: "before" } }),
      platformConfig(),
    );
    await stack.up();
    const names = await withClient(tenants.alpha.dsn, (c) =>
      c.query<{ name: string }>("SELECT name FROM ir_attachment WHERE name LIKE '_.txt' ORDER BY 1"),
    );
    expect(names.rows.map((r) => r.name)).toEqual(["a.txt", "b.txt", "c.txt"]);
    expect(fs.readFileSync(liveFile).equals(content)).toBe(true);
    const install = await runOdoo(odoo!, [
      "-c",
      conf,
      "-d",
      "alpha",
      "-i",
      "crm",
      "--stop-after-init",
      "--no-http",
    ]);
    expect(install.code, install.output.slice(-3000)).toBe(0);
    s = await login(stack.routerPort, host("alpha"), "alpha", email("alpha"), adminPasswords.alpha);
    // The ERP reads the restored file back.
    const [back] = (await callKw(stack.routerPort, host("alpha"), s.cookie, "ir.attachment", "search_read", [
      [["name", "=", "a.txt"]],
      ["datas"],
    ])) as { datas: string }[];
    expect(Buffer.from(back.datas, "base64").equals(content)).toBe(true);
    await expect(attach(s.cookie, "after-restore.txt")).resolves.toBeTypeOf("number");
    const img = await request(stack.routerPort, host("alpha"), "/web/image/res.partner/1/image_128", {
      headers: { Cookie: s.cookie },
    });
    expect(img.status).toBe(200);
  });

  it("follows suspension, resumption and a password rotation without an ERP restart", async () => {
    const pid = erp.pid;
    await stack.configure(
      {
        alpha: { tier: "pro", adminEmail: email("alpha"), state: "suspended" },
        bravo: {
          tier: "basic",
          adminEmail: email("bravo"),
          state: "active",
          limits: { maxUsers: 2 },
          credentialRotation: "r1",
        },
        charlie: { tier: "basic", adminEmail: email("charlie"), state: "active" },
      },
      platformConfig(),
    );
    await stack.up();
    tenants = (await stack.outputs()).tenants as Record<string, TenantOut>;
    expect((await request(stack.routerPort, host("alpha"), "/web/login")).status).toBe(503);
    // The ERP itself no longer serves alpha, even to a request that bypasses the router.
    const direct = await request(httpPort, host("alpha"), "/web/login");
    expect(direct.status).not.toBe(200);
    const c = await request(stack.routerPort, host("charlie"), "/web/login");
    expect(c.status, c.text.slice(0, 300)).toBe(200);
    // bravo's connections are made again with its new password.
    await withClient(adminDsn, (a) =>
      a.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'bravo'"),
    );
    const s = await login(stack.routerPort, host("bravo"), "bravo", email("bravo"), adminPasswords.bravo);
    expect(s.uid).toBe(2);
    expect(erp.pid).toBe(pid);
  });
});
