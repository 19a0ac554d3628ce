import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalTestStack } from "../../testkit/local-stack";

interface TenantOutput {
  database: string;
  state: string;
  tier: string;
  url: string;
  roleName: string;
  dsn: string;
  limits: Record<string, number>;
}

async function query(dsn: string, sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const client = new Client({ connectionString: dsn });
  await client.connect();
  try {
    return (await client.query(sql, params)).rows;
  } finally {
    await client.end();
  }
}

describe("a local stack through the Automation API", () => {
  let s: LocalTestStack;
  let adminDsn: string;
  let tenants: Record<string, TenantOutput>;

  beforeAll(async () => {
    s = await LocalTestStack.create("lifecycle");
    await s.configure({
      alpha: { tier: "pro", adminEmail: "owner@alpha.example" },
      bravo: { tier: "basic", adminEmail: "owner@bravo.example", limits: { maxUsers: 3 } },
    });
  });

  afterAll(async () => {
    await s?.dispose();
  });

  it("up provisions the cluster and two tenants whose dsn outputs work", async () => {
    const result = await s.up();
    expect(result.summary.result).toBe("succeeded");
    const outputs = await s.outputs();
    adminDsn = (outputs.postgres as { adminDsn: string }).adminDsn;
    tenants = outputs.tenants as Record<string, TenantOutput>;
    expect(Object.keys(tenants).sort()).toEqual(["alpha", "bravo"]);
    expect(tenants.bravo.limits.maxUsers).toBe(3);
    expect(tenants.alpha.state).toBe("active");
    for (const [sub, t] of Object.entries(tenants)) {
      const rows = await query(t.dsn, "select current_database() as db, current_user as who");
      expect(rows[0]).toEqual({ db: sub, who: t.roleName });
    }
    const admin = await query(tenants.alpha.dsn, "select login from res_users where id = 2");
    expect(admin[0].login).toBe("owner@alpha.example");
    const registry = await query(
      adminDsn.replace(/\/[^/?]*(\?|$)/, "/loomworks_mgmt$1"),
      "select subdomain, state from tenants order by subdomain",
    );
    expect(registry).toEqual([
      { subdomain: "alpha", state: "active" },
      { subdomain: "bravo", state: "active" },
    ]);
    expect(fs.existsSync(path.join(s.stateDir, "filestore", "alpha"))).toBe(true);
  });

  it("a tenant's dsn cannot reach another tenant's database", async () => {
    const other = tenants.alpha.dsn.replace(/\/alpha(\?|$)/, "/bravo$1");
    await expect(query(other, "select 1")).rejects.toThrow(/permission denied|not permitted/i);
  });

  it("a second up with no config change changes nothing", async () => {
    const preview = await s.stack.preview({ color: "never" });
    const changes = Object.entries(preview.changeSummary).filter(([op, n]) => op !== "same" && (n ?? 0) > 0);
    expect(changes).toEqual([]);
  });

  it("suspending a tenant through config refuses its connections", async () => {
    await s.configure({
      alpha: { tier: "pro", adminEmail: "owner@alpha.example", state: "suspended" },
      bravo: { tier: "basic", adminEmail: "owner@bravo.example", limits: { maxUsers: 3 } },
    });
    const preview = await s.stack.preview({ color: "never" });
    expect(preview.changeSummary.update).toBeGreaterThanOrEqual(1);
    expect(preview.changeSummary.replace ?? 0).toBe(0);
    await s.up();
    await expect(query(tenants.alpha.dsn, "select 1")).rejects.toThrow(
      /not currently accepting connections|not permitted to log in/,
    );
    expect(await query(tenants.bravo.dsn, "select 1 as ok")).toEqual([{ ok: 1 }]);
    const outputs = await s.outputs();
    expect((outputs.tenants as Record<string, TenantOutput>).alpha.state).toBe("suspended");
  });

  it("preview of a bad subdomain fails naming the tenant, key and rule, and changes nothing", async () => {
    await s.configure({
      alpha: { tier: "pro", adminEmail: "owner@alpha.example", state: "suspended" },
      bravo: { tier: "basic", adminEmail: "owner@bravo.example", limits: { maxUsers: 3 } },
      "Bad--Name": { tier: "pro", adminEmail: "x@y.example" },
    });
    await expect(s.stack.preview({ color: "never" })).rejects.toThrow(/tenant "Bad--Name"/);
    await expect(s.up()).rejects.toThrow(/invalid stack configuration/);
    const dbs = await query(adminDsn, "select datname from pg_database where datname ilike '%bad%'");
    expect(dbs).toEqual([]);
  });

  it("refresh detects a database dropped by hand and the next up recreates it", async () => {
    await s.configure({
      alpha: { tier: "pro", adminEmail: "owner@alpha.example" },
      bravo: { tier: "basic", adminEmail: "owner@bravo.example", limits: { maxUsers: 3 } },
    });
    await s.up();
    await query(adminDsn, 'drop database "bravo" with (force)');
    const refresh = await s.stack.refresh({ color: "never" });
    expect(refresh.summary.resourceChanges?.update ?? 0).toBeGreaterThanOrEqual(1);
    await s.up();
    expect(await query(tenants.bravo.dsn, "select count(*)::int as n from res_users where id = 2")).toEqual([
      { n: 1 },
    ]);
  });

  it("adding a tenant to the config provisions it", async () => {
    await s.configure({
      alpha: { tier: "pro", adminEmail: "owner@alpha.example" },
      bravo: { tier: "basic", adminEmail: "owner@bravo.example", limits: { maxUsers: 3 } },
      charlie: { tier: "enterprise", adminEmail: "ops@charlie.example" },
    });
    await s.up();
    const outputs = await s.outputs();
    const charlie = (outputs.tenants as Record<string, TenantOutput>).charlie;
    expect(await query(charlie.dsn, "select current_database() as db")).toEqual([{ db: "charlie" }]);
  });

  it("removing an archived tenant is refused within its retention unless forceDestroy", async () => {
    const base = {
      alpha: { tier: "pro", adminEmail: "owner@alpha.example" },
      bravo: { tier: "basic", adminEmail: "owner@bravo.example", limits: { maxUsers: 3 } },
    };
    const charlie = { tier: "enterprise", adminEmail: "ops@charlie.example", state: "archived" };
    await s.configure({ ...base, charlie });
    await s.up();
    const [row] = await query(
      adminDsn.replace(/\/[^/?]*(\?|$)/, "/loomworks_mgmt$1"),
      "select state, retention_until > now() + interval '29 days' as retained from tenants where subdomain = 'charlie'",
    );
    expect(row).toEqual({ state: "archived", retained: true });

    await s.configure(base);
    await expect(s.up()).rejects.toThrow(/tenant "charlie" is archived and retained until/);
    expect(await query(adminDsn, "select datname from pg_database where datname = 'charlie'")).toHaveLength(
      1,
    );

    await s.configure({ ...base, charlie: { ...charlie, forceDestroy: true } });
    await s.up();
    await s.configure(base);
    await s.up();
    expect(await query(adminDsn, "select datname from pg_database where datname = 'charlie'")).toEqual([]);
  });

  it("destroy removes the tenants, the cluster and its files", async () => {
    const result = await s.stack.destroy({ color: "never" });
    expect(result.summary.result).toBe("succeeded");
    expect(fs.existsSync(path.join(s.stateDir, "postgres", "data"))).toBe(false);
    await expect(query(adminDsn, "select 1")).rejects.toThrow();
    expect(fs.existsSync(path.join(s.stateDir, "filestore", "alpha"))).toBe(false);
  });
});
