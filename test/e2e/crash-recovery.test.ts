import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killPulumiSession } from "../../lib/process/crashPoint";
import { LocalTestStack, type TenantEntry } from "../../testkit/local-stack";

async function query<T = Record<string, unknown>>(
  dsn: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const client = new Client({ connectionString: dsn });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows as T[];
  } finally {
    await client.end();
  }
}

const registry = (adminDsn: string) => adminDsn.replace(/\/[^/?]*(\?|$)/, "/loomworks_mgmt$1");

/**
 * A killed `pulumi up` (engine, language host, program and dynamic providers, all at once) followed by
 * another `pulumi up` converges: every declared tenant complete, nothing orphaned. The kill is injected
 * at each step boundary of tenant creation through LOOMWORKS_CRASH_AT, after the step is journaled and
 * before it runs.
 */
describe("crash recovery of tenant creation", () => {
  let s: LocalTestStack;
  let adminDsn: string;
  const tenants: Record<string, TenantEntry> = { base: { tier: "basic", adminEmail: "a@base.example" } };

  beforeAll(async () => {
    s = await LocalTestStack.create("crash");
    await s.configure(tenants);
    await s.up();
    adminDsn = ((await s.outputs()).postgres as { adminDsn: string }).adminDsn;
  });

  afterAll(async () => {
    await s?.dispose();
  });

  async function expectConverged(): Promise<void> {
    const declared = Object.keys(tenants).sort();
    const outputs = (await s.outputs()).tenants as Record<string, { dsn: string; roleName: string }>;
    expect(Object.keys(outputs).sort()).toEqual(declared);

    const databases = await query<{ datname: string }>(
      adminDsn,
      `select datname from pg_database where not datistemplate and datname not in ('postgres', 'loomworks_mgmt') order by 1`,
    );
    expect(databases.map((d) => d.datname)).toEqual(declared);
    const roles = await query<{ rolname: string }>(
      adminDsn,
      `select rolname from pg_roles where rolcanlogin and not rolsuper order by 1`,
    );
    // The tenants' roles, and the ERP's own role, a member of none of them.
    expect(roles.map((r) => r.rolname)).toEqual([...declared, "loomworks_erp"].sort());
    const erpMemberOf = await query<{ tenant: string }>(
      adminDsn,
      `select t.rolname as tenant from pg_roles t
       where t.rolname = any($1) and pg_has_role('loomworks_erp', t.oid, 'MEMBER') order by 1`,
      [declared],
    );
    expect(erpMemberOf).toEqual([]);
    // The ERP reaches each tenant through the tenant files, as the tenant's own role.
    const erpDir = path.join(s.stateDir, "odoo");
    const map = JSON.parse(fs.readFileSync(path.join(erpDir, "tenants.json"), "utf8")) as {
      tenants: { database: string; state: string }[];
    };
    expect(map.tenants.map((t) => t.database)).toEqual(declared);
    const creds = JSON.parse(fs.readFileSync(path.join(erpDir, "tenant-credentials.json"), "utf8")) as {
      databases: Record<string, { user: string }>;
    };
    expect(Object.keys(creds.databases).sort()).toEqual(declared);
    expect(fs.readdirSync(path.join(s.stateDir, "filestore")).sort()).toEqual(declared);
    const rows = await query<{ subdomain: string; state: string }>(
      registry(adminDsn),
      "select subdomain, state from tenants order by subdomain",
    );
    expect(rows).toEqual(declared.map((subdomain) => ({ subdomain, state: "active" })));
    for (const [sub, t] of Object.entries(outputs)) {
      const [admin] = await query<{ login: string }>(t.dsn, "select login from res_users where id = 2");
      expect(admin.login).toBe(tenants[sub].adminEmail);
    }
  }

  const crashPoints = [
    "tenant:registry-row",
    "tenant:role",
    "tenant:database",
    "tenant:ownership",
    "tenant:sequences",
    "tenant:connect-grants",
    "tenant:erp-access",
    "tenant:template-filestore",
    "tenant:erp-admin",
    "tenant:database-identity",
    "tenant:snapshot-api",
    "tenant:mark-initialized",
    "tenant:filestore",
    "tenant:state",
    "tenant:registry-final",
  ];

  it.each(crashPoints.map((point, i) => [point, i]))(
    "killed at %s, the next up finishes",
    async (point, i) => {
      const name = `crash-${i}`;
      tenants[name] = { tier: "pro", adminEmail: `admin@${name}.example` };
      await s.configure(tenants);

      const killed = await s.cli(["up", "--yes", "--skip-preview"], { LOOMWORKS_CRASH_AT: String(point) });
      expect(killed.signal).toBe("SIGKILL");
      const half = await query(
        registry(adminDsn),
        `select provisioning_step from tenants where subdomain = '${name}'`,
      );
      if (point !== "tenant:registry-row") expect(half).toHaveLength(1);

      const result = await s.up();
      expect(result.summary.result).toBe("succeeded");
      await expectConverged();
    },
  );

  it("a kill at a random moment while several tenants are created in parallel converges too", async () => {
    for (const name of ["multi-a", "multi-b", "multi-c", "multi-d"]) {
      tenants[name] = { tier: "basic", adminEmail: `x@${name}.example` };
    }
    await s.configure(tenants);
    let stepsBeforeKill = 0;
    const killed = await s.cli(["up", "--yes", "--skip-preview"], {}, (pid) => {
      // Wait until tenant creation is under way, then kill at a random moment within the next second.
      const checkSteps = async (): Promise<void> => {
        const [row] = await query<{ n: number }>(
          registry(adminDsn),
          "select count(*)::int as n from tenant_steps where subdomain like 'multi-%'",
        ).catch(() => [{ n: 0 }]);
        if (row.n === 0) return;
        clearInterval(poll);
        stepsBeforeKill = row.n;
        setTimeout(() => killPulumiSession(pid), Math.floor(Math.random() * 1000));
      };
      // checkSteps cannot reject (a failed query counts as no step yet), so each tick may leave it running.
      const poll = setInterval(() => void checkSteps(), 50);
    });
    expect(killed.signal).toBe("SIGKILL");
    expect(stepsBeforeKill).toBeGreaterThan(0);
    await s.up();
    await expectConverged();
  });
});
