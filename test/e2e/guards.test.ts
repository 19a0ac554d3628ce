/**
 * Issue 4's "done when", on a local stack through the Automation API: undo of an AI operation that
 * inserts, updates and cascade-deletes rows (same ids back), redo, a conflicting human edit (abort
 * changes nothing, skip restores the rest), and the AI-operation, user and storage limits refusing
 * with clear messages, with limits changed in place by `pulumi up`. The tenants are copies of the
 * Odoo-shaped FIXTURE template (test/fixtures/odoo-shaped; not Odoo).
 */
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalTestStack, repoRoot } from "../../testkit/local-stack";

const run = promisify(execFile);
const cli = path.join(repoRoot, "bin", "infra", "ops", "cli.js");
const jobs = path.join(repoRoot, "bin", "infra", "ops", "jobs.js");

/** Every row of the tables an AI operation below touches, ids included: "exactly the prior state". */
const STATE_SQL = `
  SELECT jsonb_build_object(
    'sale_order', (SELECT jsonb_agg(to_jsonb(t) ORDER BY id) FROM sale_order t),
    'sale_order_line', (SELECT jsonb_agg(to_jsonb(t) ORDER BY id) FROM sale_order_line t),
    'rel', (SELECT jsonb_agg(to_jsonb(t) ORDER BY order_line_id, invoice_line_id) FROM sale_order_line_invoice_rel t),
    'res_partner', (SELECT jsonb_agg(to_jsonb(t) ORDER BY id) FROM res_partner t)) AS s`;

async function connect(dsn: string): Promise<Client> {
  const c = new Client({ connectionString: dsn });
  // The quota check terminates the tenant's sessions when it flips read-only: expected here.
  c.on("error", () => undefined);
  await c.connect();
  return c;
}

async function state(c: Client): Promise<unknown> {
  return (await c.query<{ s: unknown }>(STATE_SQL)).rows[0].s;
}

async function undo(c: Client, op: string, onConflict = "abort"): Promise<Record<string, unknown>> {
  await c.query("BEGIN");
  const r = await c.query<{ r: Record<string, unknown> }>(
    "SELECT loomworks_undo.undo_operation($1, $2) AS r",
    [op, onConflict],
  );
  await c.query("COMMIT");
  return r.rows[0].r;
}

describe("guards inside a tenant database on a local stack", () => {
  let s: LocalTestStack;
  let dsn: string;
  let db: Client;
  const mercer = {
    tier: "basic",
    adminEmail: "owner@mercer.example",
    limits: { maxUsers: 1, maxAiOperationsDaily: 4 },
  };

  beforeAll(async () => {
    s = await LocalTestStack.create("guards");
    await s.configure({ mercer });
    const result = await s.up();
    expect(result.summary.result).toBe("succeeded");
    dsn = ((await s.outputs()).tenants as Record<string, { dsn: string }>).mercer.dsn;
    db = await connect(dsn);
  });

  afterAll(async () => {
    await db?.end();
    await s?.dispose();
  });

  let aiOp: string;
  let before: unknown;
  let after: unknown;

  it("an AI operation inserting, updating and cascade-deleting rows is undone exactly, ids included", async () => {
    const status = (await db.query("SELECT loomworks_quota.status() AS s")).rows[0].s;
    expect(status).toMatchObject({ users: { max: 1 }, ai_operations: { max: 4, today: 0 } });
    before = await state(db);
    await db.query("BEGIN");
    aiOp = (
      await db.query("SELECT loomworks_undo.begin_operation('chat-1', 'destructive', 'tidy orders') AS id")
    ).rows[0].id;
    await db.query(
      `INSERT INTO sale_order (name, partner_id, partner_invoice_id, partner_shipping_id, company_id)
       VALUES ('AI-1', 3, 3, 3, 1)`,
    );
    await db.query(
      `INSERT INTO sale_order_line (order_id, name, price_unit)
       SELECT currval('sale_order_id_seq'), 'line ' || g, g * 1.5 FROM generate_series(1, 3) g`,
    );
    await db.query("UPDATE res_partner SET email = 'ai@example.test', phone = '+1 555' WHERE id = 3");
    await db.query("DELETE FROM sale_order WHERE id = 1"); // its lines and invoice links cascade
    const summary = (await db.query("SELECT loomworks_undo.end_operation($1) AS s", [aiOp])).rows[0].s;
    await db.query("COMMIT");
    expect(summary.tables).toMatchObject({
      sale_order: { inserted: 1, deleted: 1 },
      sale_order_line: { inserted: 3, deleted: 2 },
      sale_order_line_invoice_rel: { deleted: 2 },
      res_partner: { updated: 1 },
    });
    after = await state(db);
    expect(after).not.toEqual(before);

    const r = await undo(db, aiOp);
    expect(r).toMatchObject({
      applied: true,
      conflicts: [],
      restored: { inserted: 5, updated: 1, deleted: 4 },
    });
    expect(await state(db)).toEqual(before);
  });

  it("undoing the undo brings the operation's result back", async () => {
    const ops = (await db.query("SELECT id, kind, undoes, undone FROM loomworks_undo.operations()")).rows;
    const undoOp = ops.find((o) => o.undoes === aiOp);
    expect(undoOp).toMatchObject({ kind: "undo", undone: false });
    expect(ops.find((o) => o.id === aiOp)).toMatchObject({ undone: true });
    const r = await undo(db, undoOp.id as string);
    expect(r).toMatchObject({ applied: true, conflicts: [] });
    expect(await state(db)).toEqual(after);
    const again = (await db.query("SELECT id, undone FROM loomworks_undo.operations()")).rows;
    expect(again.find((o) => o.id === aiOp)).toMatchObject({ undone: false });
  });

  it("an undo over a later human edit changes nothing and lists the conflict; skip restores every other row", async () => {
    // The redo is in effect: undo the AI operation again, after a person edited one of its lines.
    const line = (await db.query("SELECT id FROM sale_order_line WHERE name = 'line 2'")).rows[0]
      .id as number;
    await db.query("UPDATE sale_order_line SET name = 'checked by a person' WHERE id = $1", [line]);
    const edited = await state(db);
    const aborted = await undo(db, aiOp);
    expect(aborted.applied).toBe(false);
    // The person's line, and its order: deleting the order would now cascade into the person's line.
    expect(aborted.conflicts).toEqual([
      expect.objectContaining({
        table: "sale_order",
        reason: "referenced",
        referenced_by: [{ table: "sale_order_line", key: { id: line } }],
      }),
      expect.objectContaining({
        table: "sale_order_line",
        key: { id: line },
        reason: "changed",
        operations: null,
        current: expect.objectContaining({ name: "checked by a person" }),
        expected: expect.objectContaining({ name: "line 2" }),
      }),
    ]);
    expect(await state(db)).toEqual(edited);

    // Through the operator command, which runs as the tenant (its DSN from the stack's outputs, or
    // from LOOMWORKS_TENANT_DSN): plan shown, conflicts → exit 2 with abort; skip → exit 3.
    const env = { ...process.env, ...s.env };
    const refused = await run(
      process.execPath,
      [cli, "undo", "mercer", aiOp, "--yes", "--state-dir", s.stateDir, "--stack", s.stack.name],
      { env },
    ).catch((e: { code: number; stdout: string }) => e);
    expect((refused as { code: number }).code).toBe(2);
    expect((refused as { stdout: string }).stdout).toMatch(/conflict: sale_order_line \{"id":\d+\} changed/);
    const skipped = await run(
      process.execPath,
      [cli, "undo", "mercer", aiOp, "--on-conflict", "skip", "--yes", "--state-dir", s.stateDir],
      { env: { ...env, LOOMWORKS_TENANT_DSN: dsn } },
    ).catch((e: { code: number; stdout: string }) => e);
    expect((skipped as { code: number }).code).toBe(3);

    const now = (await state(db)) as Record<string, Array<Record<string, unknown>>>;
    const expected = before as Record<string, Array<Record<string, unknown>>>;
    // Everything is as before the AI operation, except the person's line and the order it belongs to.
    expect(now.res_partner).toEqual(expected.res_partner);
    expect(now.rel).toEqual(expected.rel);
    expect(now.sale_order_line.find((l) => l.id === line)).toMatchObject({ name: "checked by a person" });
    expect(now.sale_order_line.filter((l) => l.id !== line)).toEqual(expected.sale_order_line);
    expect(now.sale_order.filter((o) => o.name !== "AI-1")).toEqual(expected.sale_order);
  });

  it("the AI-operation limit refuses with the reset time", async () => {
    const used = (await db.query("SELECT loomworks_quota.status() AS s")).rows[0].s.ai_operations
      .today as number;
    expect(used).toBe(1); // undos do not count
    for (let i = used; i < 4; i++) {
      await db.query("BEGIN");
      await db.query("SELECT loomworks_undo.begin_operation('chat-2')");
      await db.query("COMMIT");
    }
    await db.query("BEGIN");
    const err = await db.query("SELECT loomworks_undo.begin_operation('chat-2')").catch((e: unknown) => e);
    await db.query("ROLLBACK");
    expect(err).toMatchObject({ code: "LWA01" });
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect((err as Error).message).toContain("4 of 4");
    expect((err as Error).message).toContain(tomorrow);
  });

  it("the user limit refuses another active internal user", async () => {
    const err = await db
      .query(
        `INSERT INTO res_users (login, active, share, partner_id, company_id) VALUES ('second@mercer.example', true, false, 3, 1)`,
      )
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "LWU01" });
    expect((err as Error).message).toMatch(/user limit reached.*allows 1 active internal user/);
    // A portal (share) user is not an internal user: allowed.
    await db.query(
      `INSERT INTO res_users (login, active, share, partner_id, company_id) VALUES ('portal@mercer.example', true, true, 3, 1)`,
    );
  });

  it("limits change in place with pulumi up; the storage limit makes the tenant read-only, and raising it lifts that", async () => {
    const env = { ...process.env, ...s.env };
    await s.configure({ mercer: { ...mercer, limits: { ...mercer.limits, maxStorageGb: 0.001 } } });
    const up = await s.up();
    expect(up.summary.resourceChanges).toMatchObject({ update: expect.any(Number) });
    const limits = (await db.query("SELECT loomworks_quota.status() AS s")).rows[0].s.storage.max_bytes;
    expect(limits).toBe(Math.round(0.001 * 1024 ** 3));

    await run(process.execPath, [jobs, "quota-check", "--state-dir", s.stateDir], { env });
    const fresh = await connect(dsn);
    try {
      const err = await fresh
        .query("UPDATE res_partner SET phone = '1' WHERE id = 3")
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "25006" });
      const reason = (await fresh.query("SHOW loomworks.read_only_reason")).rows[0][
        "loomworks.read_only_reason"
      ];
      expect(reason).toMatch(/storage limit reached/);
      const st = (await fresh.query("SELECT loomworks_quota.status() AS s")).rows[0].s;
      expect(st.storage).toMatchObject({ read_only: true, state: "read_only" });
    } finally {
      await fresh.end();
    }

    await s.configure({ mercer: { ...mercer, limits: { ...mercer.limits, maxStorageGb: 5 } } });
    await s.up();
    await run(process.execPath, [jobs, "quota-check", "--state-dir", s.stateDir], { env });
    const writable = await connect(dsn);
    try {
      await writable.query("UPDATE res_partner SET phone = '2' WHERE id = 3");
    } finally {
      await writable.end();
    }
  });

  it("refresh finds a table whose capture was removed, and the next up puts it back", async () => {
    const adminDsn = ((await s.outputs()).postgres as { adminDsn: string }).adminDsn.replace(
      /\/postgres(\?|$)/,
      "/mercer$1",
    );
    const admin = await connect(adminDsn);
    try {
      await admin.query("DROP TRIGGER loomworks_undo_capture ON res_partner");
      await s.stack.refresh({ color: "never" });
      const preview = await s.stack.preview({ color: "never" });
      expect(preview.changeSummary.update).toBeGreaterThanOrEqual(1);
      await s.up();
      const t = await admin.query(
        "SELECT 1 FROM pg_trigger WHERE tgname = 'loomworks_undo_capture' AND tgrelid = 'res_partner'::regclass",
      );
      expect(t.rowCount).toBe(1);
    } finally {
      await admin.end();
    }
  });
});
