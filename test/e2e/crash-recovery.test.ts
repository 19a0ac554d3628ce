import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalTestStack, type TenantEntry } from "./local-stack";

async function query<T = Record<string, unknown>>(dsn: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: dsn });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
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
    expect(roles.map((r) => r.rolname)).toEqual(declared);
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
    "tenant:connect-grants",
    "tenant:erp-admin",
    "tenant:database-identity",
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

  it("a kill at an arbitrary moment while several tenants are created converges too", async () => {
    for (const name of ["multi-a", "multi-b", "multi-c"])
      tenants[name] = { tier: "basic", adminEmail: `x@${name}.example` };
    await s.configure(tenants);
    const run = s.cli(["up", "--yes", "--skip-preview"], {
      LOOMWORKS_CRASH_AT: "tenant:ownership",
      LOOMWORKS_CRASH_AFTER: "2",
    });
    const killed = await run;
    expect(killed.signal).toBe("SIGKILL");
    await s.up();
    await expectConverged();
  });
});
