import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalTestStack, type TenantEntry } from "../../testkit/local-stack";

async function query<T = Record<string, unknown>>(dsn: string, sql: string): Promise<T[]> {
  const client = new Client({ connectionString: dsn });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

interface TenantOutput {
  dsn: string;
}

/** md5 of every row of a table, in key order: equal digests mean equal contents. */
const digest = (dsn: string, table: string) =>
  query<{ d: string }>(
    dsn,
    `select md5(string_agg(t::text, '|' order by t::text)) as d from ${table} t`,
  ).then((r) => r[0].d);

/**
 * Point-in-time restore of one tenant declared in the stack file, through the Automation API: the
 * "done when" of the snapshot issue, plus a kill of `pulumi up` at every restore step boundary.
 */
describe("per-tenant restore through the stack file", () => {
  let s: LocalTestStack;
  let adminDsn: string;
  let tenants: Record<string, TenantOutput>;
  const config: Record<string, TenantEntry> = {
    target: { tier: "pro", adminEmail: "a@target.example", snapshots: { before: {} } },
    neighbour: { tier: "basic", adminEmail: "a@neighbour.example" },
  };

  beforeAll(async () => {
    s = await LocalTestStack.create("restore");
    await s.configure({
      target: { tier: "pro", adminEmail: "a@target.example" },
      neighbour: config.neighbour,
    });
    await s.up();
    const outputs = await s.outputs();
    adminDsn = (outputs.postgres as { adminDsn: string }).adminDsn;
    tenants = outputs.tenants as Record<string, TenantOutput>;
    await query(tenants.target.dsn, "create table notes (id int primary key, body text)");
    await query(
      tenants.target.dsn,
      "insert into notes select g, 'note ' || g from generate_series(1, 500) g",
    );
    await query(
      tenants.neighbour.dsn,
      "create table ledger (id serial primary key, at timestamptz default now())",
    );
  });

  afterAll(async () => {
    await s?.dispose();
  });

  it("restores the tenant to its snapshot; the neighbour's writes meanwhile are all kept", async () => {
    await s.configure(config);
    await s.up();
    const before = {
      notes: await digest(tenants.target.dsn, "notes"),
      partners: await digest(tenants.target.dsn, "res_partner"),
    };

    // After the snapshot: rows changed and deleted, a table dropped.
    await query(tenants.target.dsn, "update notes set body = 'changed' where id <= 100");
    await query(tenants.target.dsn, "delete from notes where id > 400");
    await query(tenants.target.dsn, "drop table res_partner cascade");

    let written = 0;
    let refused = 0;
    let stop = false;
    const writer = (async () => {
      const c = new Client({ connectionString: tenants.neighbour.dsn });
      await c.connect();
      while (!stop) {
        try {
          await c.query("insert into ledger default values");
          written += 1;
        } catch {
          refused += 1;
        }
      }
      await c.end();
    })();

    await s.configure({ ...config, target: { ...config.target, restore: { snapshot: "before" } } });
    const preview = await s.stack.preview({ color: "never", diff: true });
    expect(preview.changeSummary.create).toBe(1);
    expect(preview.stdout).toMatch(/PitrRestore/);
    const result = await s.up();
    stop = true;
    await writer;

    expect(result.summary.result).toBe("succeeded");
    expect(await digest(tenants.target.dsn, "notes")).toBe(before.notes);
    expect(await digest(tenants.target.dsn, "res_partner")).toBe(before.partners);
    expect(refused).toBe(0);
    expect(written).toBeGreaterThan(0);
    const [ledger] = await query<{ n: number }>(
      tenants.neighbour.dsn,
      "select count(*)::int as n from ledger",
    );
    expect(ledger.n).toBe(written);

    const restores = (await s.outputs()).restores as Record<
      string,
      { preRestoreDatabase: string; state: string }
    >;
    expect(restores.target.state).toBe("done");
    const pre = restores.target.preRestoreDatabase;
    const kept = await query(adminDsn, `select datname from pg_database where datname = '${pre}'`);
    expect(kept).toHaveLength(1);
  });

  it("a target before the recovery window fails the preview and changes nothing", async () => {
    await s.configure({ ...config, target: { ...config.target, restore: { time: "2001-01-01T00:00:00Z" } } });
    await expect(s.stack.preview({ color: "never" })).rejects.toThrow(
      /restore\.time.*before the recovery window/s,
    );
  });

  it("removing the restore from the config changes no data", async () => {
    await query(tenants.target.dsn, "insert into notes values (9001, 'after the restore')");
    await s.configure(config);
    await s.up();
    expect(await query(tenants.target.dsn, "select body from notes where id = 9001")).toEqual([
      { body: "after the restore" },
    ]);
  });

  const steps = ["validate", "scratch-restore", "verify", "copy", "swap", "swap-committed", "cleanup"];
  it.each(steps)("killed at restore step %s, the next up leaves the tenant whole", async (step) => {
    await query(tenants.target.dsn, "delete from notes where id = 1");
    const live = await digest(tenants.target.dsn, "notes");
    const restoreTo = { ...config.target, restore: { lsn: await currentLsn() } };
    await query(tenants.target.dsn, "delete from notes where id = 2");
    const afterTarget = await digest(tenants.target.dsn, "notes");
    expect(afterTarget).not.toBe(live);

    await s.configure({ ...config, target: restoreTo });
    const killed = await s.cli(["up", "--yes", "--skip-preview"], { LOOMWORKS_CRASH_AT: `restore:${step}` });
    expect(killed.signal).toBe("SIGKILL");
    // Whatever the kill left, the tenant is there, as before or restored, never half-way.
    expect([live, afterTarget]).toContain(await digest(tenants.target.dsn, "notes"));

    await s.up();
    expect(await digest(tenants.target.dsn, "notes")).toBe(live);
    const leftovers = await query(
      adminDsn,
      "select datname from pg_database where datname like 'target__restore_%'",
    );
    expect(leftovers).toEqual([]);
    const scratch = await query(
      adminDsn.replace(/\/[^/?]*(\?|$)/, "/loomworks_mgmt$1"),
      "select count(*)::int as n from restores where subdomain = 'target' and state = 'running'",
    );
    expect(scratch).toEqual([{ n: 0 }]);
    const scratchRoot = path.join(s.stateDir, "restore");
    expect(fs.existsSync(scratchRoot) ? fs.readdirSync(scratchRoot) : []).toEqual([]);
    await s.configure(config);
    await s.up();
  });

  async function currentLsn(): Promise<string> {
    const [row] = await query<{ lsn: string }>(adminDsn, "select pg_current_wal_lsn()::text as lsn");
    return row.lsn;
  }
});
