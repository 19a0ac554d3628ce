/**
 * The undo API (lib/undo/sql.ts, lib/undo/undo.ts) against the real integration cluster
 * (test/integration/global-setup.ts): a fresh tenant per test, made by createTenant from the Odoo-shaped
 * FIXTURE template (test/fixtures/odoo-shaped; a labelled test fixture, not Odoo), with the guards
 * installed by installGuards. AI operations run as the tenant's own role, as the ERP runs them:
 * `BEGIN; begin_operation(...); <DML>; end_operation(...); COMMIT`.
 *
 * "Exactly the prior state" is checked on the complete contents of every table in `public`
 * (`row::text` of every row, ids included), not on a few columns.
 */
import { randomBytes } from "node:crypto";
import { Client } from "pg";
import { describe, expect, it } from "vitest";
import { installGuards, readGuards, type GuardsOptions } from "../../lib/guards/install";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { quoteLiteral } from "../../lib/pg/client";
import { readQuotaStatus, writeQuotaLimits } from "../../lib/quota/sql";
import { type TenantSpec } from "../../lib/tenant/provision";
import { CAPTURE_TRIGGER, UNDO_ERRORS } from "../../lib/undo/sql";
import {
  beginOperation,
  describePlan,
  endOperation,
  listOperations,
  needsConfirmation,
  undoOperation,
  useOperation,
  type OnConflict,
  type OperationKind,
  type OperationSummary,
  type UndoResult,
} from "../../lib/undo/undo";
import { failure } from "../helpers/pg-error";
import { openSession, useFixtureTenants, waitUntilBlocked } from "../helpers/tenants";

const tenants = useFixtureTenants("undo", { tearDownTimeoutMs: 300_000 });

const { tenantUrl, adminUrl, asAdmin, asTenant } = tenants;
const connect = (dsn: string): Promise<Client> => openSession(dsn, "undo-it");

/** A fresh tenant from the fixture template, guards installed and limits written (as provisioning will). */
async function newTenant(opts: GuardsOptions = {}): Promise<TenantSpec> {
  const spec = await tenants.create("u");
  await asAdmin(spec, async (db) => {
    await installGuards(db, opts);
    await writeQuotaLimits(db, {
      subdomain: spec.subdomain,
      tier: spec.tier,
      limits: { maxUsers: 100, maxStorageGb: 10, maxAiOperationsDaily: 100000 },
    });
  });
  return spec;
}

// ---------------------------------------------------------------------------------------------
// Complete table contents
// ---------------------------------------------------------------------------------------------

/** Table name -> every row as `row::text`, sorted. */
type Dump = Record<string, string[]>;

/** Every table in `public` (or only `only`), complete. */
async function dumpDb(c: Client, only?: string[]): Promise<Dump> {
  const names =
    only ??
    (
      await c.query<{ t: string }>(
        `SELECT c.oid::regclass::text AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1`,
      )
    ).rows.map((r) => r.t);
  const sql = names
    .map(
      (t) =>
        `SELECT ${quoteLiteral(t)} AS t, coalesce((SELECT array_agg(x::text ORDER BY x::text) FROM ${t} x), '{}') AS rows`,
    )
    .join("\nUNION ALL\n");
  const r = await c.query<{ t: string; rows: string[] }>(sql);
  return Object.fromEntries(r.rows.map((x) => [x.t, x.rows]));
}

/** Per table: rows only in `a` (gone) and only in `b` (added). Empty: identical. */
function diffDump(a: Dump, b: Dump): Record<string, { gone: string[]; added: string[] }> {
  const out: Record<string, { gone: string[]; added: string[] }> = {};
  for (const t of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const x = [...(a[t] ?? [])].sort();
    const y = [...(b[t] ?? [])].sort();
    if (x.length === y.length && x.every((r, i) => r === y[i])) continue;
    const xs = new Set(x);
    const ys = new Set(y);
    out[t] = { gone: x.filter((r) => !ys.has(r)), added: y.filter((r) => !xs.has(r)) };
  }
  return out;
}

/** One row as text (undefined: no such row). */
async function rowText(c: Client, table: string, where: string, params: unknown[] = []): Promise<string> {
  const r = await c.query<{ t: string }>(`SELECT x::text AS t FROM ${table} x WHERE ${where}`, params);
  return r.rows[0]?.t;
}

async function rowJson(
  c: Client,
  table: string,
  where: string,
  params: unknown[] = [],
): Promise<Record<string, unknown> | undefined> {
  const r = await c.query<{ j: Record<string, unknown> }>(
    `SELECT to_jsonb(x) AS j FROM ${table} x WHERE ${where}`,
    params,
  );
  return r.rows[0]?.j;
}

// ---------------------------------------------------------------------------------------------
// Operations as the ERP runs them
// ---------------------------------------------------------------------------------------------

interface OpOptions {
  session?: string;
  kind?: OperationKind;
  description?: string;
}

/** One AI tool call: its own transaction, begin_operation ... end_operation. */
async function aiOp(
  c: Client,
  body: (c: Client, op: string) => Promise<unknown>,
  o: OpOptions = {},
): Promise<{ id: string; summary: OperationSummary }> {
  await c.query("BEGIN");
  try {
    const id = await beginOperation(
      c,
      o.session ?? "session-1",
      o.kind ?? "write",
      o.description ?? "what the tool does",
    );
    await body(c, id);
    const summary = await endOperation(c, id);
    await c.query("COMMIT");
    return { id, summary };
  } catch (err) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/** An operation made of SQL statements. */
const sqlOp = (c: Client, statements: string[], o: OpOptions = {}) =>
  aiOp(
    c,
    async () => {
      for (const s of statements) await c.query(s);
    },
    o,
  );

/** undo_operation in its own transaction. */
async function undo(
  c: Client,
  id: string,
  onConflict: OnConflict = "abort",
  dryRun = false,
): Promise<UndoResult> {
  await c.query("BEGIN");
  try {
    const r = await undoOperation(c, id, { onConflict, dryRun });
    await c.query("COMMIT");
    return r;
  } catch (err) {
    await c.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

async function changeLogCount(c: Client): Promise<number> {
  const r = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM loomworks_undo.change_log");
  return r.rows[0].n;
}

async function operationLogCount(c: Client): Promise<number> {
  const r = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM loomworks_undo.operation_log");
  return r.rows[0].n;
}

/** A partner made outside any operation (no row references it); returns its id. */
async function addPartner(c: Client, name: string, extra: Record<string, unknown> = {}): Promise<number> {
  const cols = ["name", "email", ...Object.keys(extra)];
  const vals = [
    name,
    `${name.toLowerCase().replace(/[^a-z0-9]+/g, ".")}@it.example`,
    ...Object.values(extra),
  ];
  const r = await c.query<{ id: number }>(
    `INSERT INTO res_partner (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")}) RETURNING id`,
    vals,
  );
  return r.rows[0].id;
}

const counts = (inserted: number, updated: number, deleted: number) => ({ inserted, updated, deleted });

/** Resolves to "pending" when `p` has not settled within `ms`. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<"settled" | "pending"> {
  const timeout = new Promise<"pending">((resolve) => setTimeout(() => resolve("pending"), ms));
  return Promise.race([
    p.then(
      () => "settled" as const,
      () => "settled" as const,
    ),
    timeout,
  ]);
}

/** Waits until backend `pid` waits for a lock (checked from a separate connection). */
const waitForLockWait = (s: TenantSpec, pid: number): Promise<void> =>
  waitUntilBlocked(adminUrl(s), pid, 20_000);

const backendPid = async (c: Client): Promise<number> =>
  (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;

// ---------------------------------------------------------------------------------------------

describe("undo of AI operations", () => {
  it.each<[string, string, Record<string, ReturnType<typeof counts>>]>([
    [
      "single create",
      "INSERT INTO res_partner (name, email, company_id) VALUES ('AI single', 'ai@it.example', 1)",
      { res_partner: counts(1, 0, 0) },
    ],
    [
      "multi create",
      `INSERT INTO product_category (name, complete_name, parent_id, parent_path)
       SELECT 'AI cat ' || g, 'All / AI cat ' || g, 1, '1/' FROM generate_series(1, 3) g`,
      { product_category: counts(3, 0, 0) },
    ],
    [
      "single update",
      "UPDATE res_partner SET name = 'renamed by AI', phone = '+1 555 0100' WHERE id = 4",
      { res_partner: counts(0, 1, 0) },
    ],
    [
      "multi update",
      `UPDATE product_template SET list_price = list_price * 1.1, description = '{"en_US": "by AI"}'
       WHERE id IN (1, 2, 3)`,
      { product_template: counts(0, 3, 0) },
    ],
    [
      "single delete",
      "DELETE FROM ir_config_parameter WHERE key = 'web.base.url'",
      { ir_config_parameter: counts(0, 0, 1) },
    ],
    ["multi delete", "DELETE FROM ir_model_data WHERE module = 'base'", { ir_model_data: counts(0, 0, 8) }],
  ])("undoes a %s exactly", async (what, sql, tables) => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const before = await dumpDb(c);
      const { id, summary } = await sqlOp(c, [sql], { description: what });
      expect(summary.tables).toEqual(tables);
      const changed = await dumpDb(c);
      expect(Object.keys(diffDump(before, changed)).sort()).toEqual(Object.keys(tables).sort());
      const r = await undo(c, id);
      expect(r.applied).toBe(true);
      expect(r.conflicts).toEqual([]);
      expect(diffDump(before, await dumpDb(c))).toEqual({});
    });
  });

  it("captures nothing outside an operation, nor after end_operation", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      // Outside any operation: the writes happen and nothing is captured.
      const logged = await changeLogCount(c);
      const ops = await operationLogCount(c);
      const human = await addPartner(c, "Human Partner");
      await c.query("UPDATE res_partner SET phone = 'human' WHERE id = 5");
      await c.query("DELETE FROM ir_model_data WHERE name = 'group_user'");
      expect(await rowJson(c, "res_partner", "id = $1", [human])).toMatchObject({ name: "Human Partner" });
      expect(await rowJson(c, "res_partner", "id = 5")).toMatchObject({ phone: "human" });
      expect(await rowJson(c, "ir_model_data", "name = 'group_user'")).toBeUndefined();
      expect(await changeLogCount(c)).toBe(logged);
      expect(await operationLogCount(c)).toBe(ops);

      // After end_operation the rest of the transaction is not captured either.
      const { id, summary } = await aiOp(c, async () => {
        await c.query("INSERT INTO res_partner (name) VALUES ('inside')");
      });
      expect(summary.inserted).toBe(1);
      await c.query("BEGIN");
      const op2 = await beginOperation(c, "session-1");
      await c.query("INSERT INTO res_partner (name) VALUES ('inside 2')");
      await endOperation(c, op2);
      await c.query("INSERT INTO res_partner (name) VALUES ('after end_operation')");
      await c.query("COMMIT");
      expect(await changeLogCount(c)).toBe(logged + 2);
      const after = await c.query<{ operation_id: string; n: number }>(
        "SELECT operation_id::text, count(*)::int AS n FROM loomworks_undo.change_log GROUP BY 1",
      );
      expect(Object.fromEntries(after.rows.map((x) => [x.operation_id, x.n]))).toMatchObject({
        [id]: 1,
        [op2]: 1,
      });
      expect(await rowJson(c, "res_partner", "name = 'after end_operation'")).toBeDefined();
    });
  });

  it("brings back an order deleted with its lines and invoice links by ON DELETE CASCADE, same ids", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const lines = (
        await c.query<{ id: number }>("SELECT id FROM sale_order_line WHERE order_id = 1 ORDER BY id")
      ).rows;
      const rel = (
        await c.query<{ r: string }>(
          "SELECT x::text AS r FROM sale_order_line_invoice_rel x WHERE order_line_id = ANY ($1) ORDER BY 1",
          [lines.map((l) => l.id)],
        )
      ).rows;
      expect(lines.length).toBeGreaterThanOrEqual(2);
      expect(rel.length).toBeGreaterThanOrEqual(1);
      const before = await dumpDb(c);

      const { id, summary } = await sqlOp(c, ["DELETE FROM sale_order WHERE id = 1"]);
      expect(summary.tables).toEqual({
        sale_order: counts(0, 0, 1),
        sale_order_line: counts(0, 0, lines.length),
        sale_order_line_invoice_rel: counts(0, 0, rel.length),
      });
      expect(
        (await c.query("SELECT 1 FROM sale_order_line WHERE id = ANY ($1)", [lines.map((l) => l.id)]))
          .rowCount,
      ).toBe(0);

      const r = await undo(c, id);
      expect(r).toMatchObject({
        applied: true,
        restored: counts(1 + lines.length + rel.length, 0, 0),
        conflicts: [],
      });
      expect(diffDump(before, await dumpDb(c))).toEqual({});
      expect(
        (await c.query<{ id: number }>("SELECT id FROM sale_order_line WHERE order_id = 1 ORDER BY id")).rows,
      ).toEqual(lines);
    });
  });

  it("restores the rows a deleted partner's ON DELETE SET NULL / CASCADE references changed", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const y = await addPartner(c, "Parent Co", { is_company: true });
      await c.query("UPDATE res_partner SET commercial_partner_id = id WHERE id = $1", [y]);
      const kids = [
        await addPartner(c, "Kid One", { commercial_partner_id: y }),
        await addPartner(c, "Kid Two", { commercial_partner_id: y }),
      ];
      await c.query("UPDATE sale_order_line SET order_partner_id = $1 WHERE id = 3", [y]);
      await c.query(
        "INSERT INTO mail_message (model, res_id, body, author_id) VALUES ('res.partner', $1, '<p>hi</p>', $1)",
        [y],
      );
      await c.query(
        "INSERT INTO mail_followers (res_model, res_id, partner_id) VALUES ('res.partner', $1, $1)",
        [y],
      );
      const before = await dumpDb(c);

      const { id, summary } = await sqlOp(c, [`DELETE FROM res_partner WHERE id = ${y}`]);
      expect(summary.tables).toEqual({
        res_partner: counts(0, 2, 1),
        sale_order_line: counts(0, 1, 0),
        mail_message: counts(0, 1, 0),
        mail_followers: counts(0, 0, 1),
      });
      const nulled = await c.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM res_partner WHERE id = ANY ($1) AND commercial_partner_id IS NULL",
        [kids],
      );
      expect(nulled.rows[0].n).toBe(2);
      expect(await rowJson(c, "sale_order_line", "id = 3")).toMatchObject({ order_partner_id: null });

      const r = await undo(c, id);
      expect(r).toMatchObject({ applied: true, restored: counts(2, 4, 0), conflicts: [] });
      expect(diffDump(before, await dumpDb(c))).toEqual({});
    });
  });

  it("undoes an operation that inserts, updates and cascade-deletes; undoing the undo redoes it exactly", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const d0 = await dumpDb(c);
      const { id } = await aiOp(
        c,
        async () => {
          const o = await c.query<{ id: number }>(
            `INSERT INTO sale_order (name, partner_id, partner_invoice_id, partner_shipping_id, company_id, currency_id,
                                     amount_total, note)
             VALUES ('S-AI-1', 4, 4, 4, 1, 1, 240.00, 'made by the AI') RETURNING id`,
          );
          await c.query(
            `INSERT INTO sale_order_line (order_id, name, product_id, product_uom_qty, price_unit, price_total)
             VALUES ($1, 'Chair', 1, 2, 120.00, 240.00), ($1, 'Note line', NULL, 1, 0, 0)`,
            [o.rows[0].id],
          );
          await c.query(
            "UPDATE res_partner SET customer_rank = customer_rank + 1, phone = '+33 1' WHERE id = 4",
          );
          await c.query("DELETE FROM sale_order WHERE id = 1");
        },
        { session: "session-redo" },
      );
      const d1 = await dumpDb(c);
      expect(Object.keys(diffDump(d0, d1)).sort()).toEqual([
        "res_partner",
        "sale_order",
        "sale_order_line",
        "sale_order_line_invoice_rel",
      ]);

      const u = await undo(c, id);
      expect(u.applied).toBe(true);
      expect(u.undo_operation_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(diffDump(d0, await dumpDb(c))).toEqual({});
      let ops = await listOperations(c, "session-redo");
      const byId = (rows: typeof ops) => Object.fromEntries(rows.map((o) => [o.id, o]));
      expect(byId(ops)[id]).toMatchObject({ kind: "write", undone: true, undone_by: u.undo_operation_id });
      expect(byId(ops)[u.undo_operation_id as string]).toMatchObject({
        kind: "undo",
        undoes: id,
        undone: false,
      });

      const redo = await undo(c, u.undo_operation_id as string);
      expect(redo.applied).toBe(true);
      expect(redo.conflicts).toEqual([]);
      expect(diffDump(d1, await dumpDb(c))).toEqual({});
      ops = await listOperations(c, "session-redo");
      expect(ops.map((o) => o.id)).toEqual([redo.undo_operation_id, u.undo_operation_id, id]);
      expect(byId(ops)[id]).toMatchObject({ undone: false, undone_by: null });
      expect(byId(ops)[u.undo_operation_id as string]).toMatchObject({
        undone: true,
        undone_by: redo.undo_operation_id,
      });
      expect(byId(ops)[redo.undo_operation_id as string]).toMatchObject({
        kind: "undo",
        undoes: u.undo_operation_id,
        undone: false,
      });

      // The redone operation can be undone again.
      const again = await undo(c, id);
      expect(again.applied).toBe(true);
      expect(diffDump(d0, await dumpDb(c))).toEqual({});
    });
  });

  it("round-trips column types byte-exactly, in a table the tenant created after the guards", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      await c.query(`CREATE TABLE x_types (
        id integer PRIMARY KEY, doc jsonb, tags text[], nums integer[], raw bytea, price numeric(12, 2),
        big numeric, at_local timestamp, at_utc timestamptz, day date, body text, flag boolean, maybe boolean,
        note varchar)`);
      const trig = await c.query<{ args: string }>(
        "SELECT encode(tgargs, 'escape') AS args FROM pg_trigger WHERE tgrelid = 'x_types'::regclass AND tgname = $1",
        [CAPTURE_TRIGGER],
      );
      expect(trig.rows).toEqual([{ args: "id\\000" }]);

      const bigText = (n: number) => randomBytes(n).toString("base64").slice(0, n);
      const insert = `INSERT INTO x_types VALUES ($1, $2::jsonb, $3::text[], $4::integer[], $5::bytea, $6::numeric,
        $7::numeric, $8::timestamp, $9::timestamptz, $10::date, $11, $12, $13, $14)`;
      const docs = {
        a: 1.5,
        nested: { k: [1, "two", null, true, 1.25e-7] },
        unicode: "çé€😀",
        quote: 'a"b\\c',
      };
      await c.query(insert, [
        1,
        JSON.stringify(docs).replace('"a":1.5', '"a":1.50'),
        ["x y", 'q"z', null, "", "{}"],
        [1, null, -3],
        randomBytes(2048),
        "1.50",
        "12345678901234567890.123456789",
        "2024-02-29 12:34:56.123456",
        "2024-02-29 12:34:56.654321+05:30",
        "2024-02-29",
        bigText(1_048_576),
        true,
        null,
        null,
      ]);
      await c.query(insert, [
        2,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
      ]);
      await c.query(insert, [
        3,
        "[]",
        [],
        [],
        Buffer.alloc(0),
        "0.00",
        "-0.000001000",
        "infinity",
        "-infinity",
        "0044-03-15 BC",
        "",
        false,
        false,
        "",
      ]);
      await c.query(insert, [
        4,
        '{"k": "v", "n": 12345678901234567890.5}',
        ["only"],
        [2147483647, -2147483648],
        Buffer.from([0, 1, 2, 255, 92, 39]),
        "-9999999999.99",
        "1e-30",
        "1999-12-31 23:59:59.999999",
        "2000-01-01 00:00:00.000001+00",
        "1999-12-31",
        bigText(300_000),
        true,
        true,
        "plain",
      ]);
      const snapshot = async () =>
        (await c.query<{ t: string }>("SELECT x::text AS t FROM x_types x ORDER BY id")).rows.map((r) => r.t);
      const jsonSnapshot = async () =>
        (await c.query<{ j: unknown }>("SELECT to_jsonb(x) AS j FROM x_types x ORDER BY id")).rows;
      const before = await snapshot();
      const beforeJson = await jsonSnapshot();
      const size = await c.query<{ n: number }>("SELECT octet_length(body) AS n FROM x_types WHERE id = 1");
      expect(size.rows[0].n).toBe(1_048_576);

      const { id, summary } = await sqlOp(c, [
        `UPDATE x_types SET body = 'short', doc = '{}', price = 2, raw = '\\x00', at_utc = now() WHERE id = 1`,
        "UPDATE x_types SET note = 'was null' WHERE id = 2",
        "UPDATE x_types SET flag = NOT flag WHERE id = 4",
        "DELETE FROM x_types WHERE id = 3",
        "INSERT INTO x_types (id, doc, body) VALUES (5, '{\"new\": true}', 'new row')",
      ]);
      expect(summary.tables).toEqual({ x_types: counts(1, 3, 1) });
      expect(await snapshot()).not.toEqual(before);

      const r = await undo(c, id);
      expect(r.applied).toBe(true);
      const after = await snapshot();
      expect(after.length).toBe(before.length);
      after.forEach((row, i) => expect(row === before[i], `row ${i + 1} byte-exact`).toBe(true));
      expect(await jsonSnapshot()).toEqual(beforeJson);
    });
  });

  it("keeps JSON null apart from SQL NULL, json text as written, and a change of numeric scale", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      await c.query(
        "CREATE TABLE x_json (id integer PRIMARY KEY, doc jsonb, raw json, n numeric, note text)",
      );
      await c.query(`INSERT INTO x_json VALUES (1, 'null', '{"b": 1,  "a": 2}', 1.00, 'x'),
                                               (2, NULL, NULL, NULL, 'y'),
                                               (3, '{}', '[]', 1.50, 'z')`);
      const snapshot = async () =>
        (
          await c.query<{ t: string; doc_is_null: boolean }>(
            "SELECT x::text AS t, doc IS NULL AS doc_is_null FROM x_json x ORDER BY id",
          )
        ).rows;
      const before = await snapshot();
      expect(before.map((r) => r.doc_is_null)).toEqual([false, true, false]);
      const { id } = await sqlOp(c, [
        "UPDATE x_json SET note = note || '!' WHERE id IN (1, 2)",
        "UPDATE x_json SET n = 1.5 WHERE id = 3",
      ]);
      expect(await rowText(c, "x_json", "id = 3")).toBe("(3,{},[],1.5,z)");
      expect((await undo(c, id)).applied).toBe(true);
      // Row 1: the JSON null stays a JSON null (not an SQL NULL) and the json text stays as written.
      // Row 3: 1.50 -> 1.5 is a change (same number, other text) and is captured and undone.
      expect(await snapshot()).toEqual(before);
    });
  });

  it("undoes inserts, deletes and key changes on a composite primary key", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const before = await dumpDb(c);
      const { id, summary } = await sqlOp(c, [
        "INSERT INTO res_groups_users_rel (gid, uid) VALUES (4, 2), (5, 2)",
        "DELETE FROM res_groups_users_rel WHERE (gid, uid) IN ((1, 2), (7, 2))",
        // a key change onto a key the operation freed: (6, 2) becomes (1, 2)
        "UPDATE res_groups_users_rel SET gid = 1 WHERE gid = 6 AND uid = 2",
      ]);
      expect(summary.tables).toEqual({ res_groups_users_rel: counts(2, 1, 2) });
      // The stored key holds the columns' text forms (as the hstore row images do).
      const keys = await c.query<{ k: Record<string, string> }>(
        "SELECT row_key AS k FROM loomworks_undo.change_log WHERE operation_id = $1 ORDER BY id",
        [id],
      );
      expect(keys.rows[0].k).toEqual({ gid: "4", uid: "2" });
      expect(keys.rows.every((r) => Object.keys(r.k).sort().join() === "gid,uid")).toBe(true);
      expect(Object.keys(diffDump(before, await dumpDb(c)))).toEqual(["res_groups_users_rel"]);
      const r = await undo(c, id);
      expect(r.applied).toBe(true);
      expect(diffDump(before, await dumpDb(c))).toEqual({});
    });
  });

  it("captures a table without a primary key but refuses to undo it (LWN01), changing nothing", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      await c.query("CREATE TABLE x_nopk_log (code text NOT NULL, qty integer)");
      await c.query("INSERT INTO x_nopk_log VALUES ('a', 1), ('b', 2), ('c', 3)");
      const { id } = await sqlOp(c, [
        "INSERT INTO x_nopk_log VALUES ('d', 4)",
        "UPDATE x_nopk_log SET qty = 10 WHERE code = 'a'",
        "DELETE FROM x_nopk_log WHERE code = 'b'",
        "UPDATE res_partner SET phone = 'also changed' WHERE id = 4",
      ]);
      const captured = await c.query<{ action: string; row_key: unknown }>(
        `SELECT action::text, row_key FROM loomworks_undo.change_log
         WHERE operation_id = $1 AND table_oid = 'x_nopk_log'::regclass ORDER BY id`,
        [id],
      );
      expect(captured.rows).toEqual([
        { action: "I", row_key: null },
        { action: "U", row_key: null },
        { action: "D", row_key: null },
      ]);
      const afterOp = await dumpDb(c);

      for (const dryRun of [true, false]) {
        const e = await failure(undo(c, id, "abort", dryRun));
        expect(e.code).toBe(UNDO_ERRORS.noPrimaryKey);
        expect(e.message).toContain("x_nopk_log");
      }
      const force = await failure(undo(c, id, "force"));
      expect(force.code).toBe(UNDO_ERRORS.noPrimaryKey);
      expect(diffDump(afterOp, await dumpDb(c))).toEqual({});
      expect((await listOperations(c)).find((o) => o.id === id)).toMatchObject({ undone: false });

      // The tenant gives the table a key: capture follows (the event trigger updates its arguments)
      // and later operations are undoable.
      await c.query("ALTER TABLE x_nopk_log ADD PRIMARY KEY (code)");
      const trig = await c.query<{ args: string }>(
        "SELECT encode(tgargs, 'escape') AS args FROM pg_trigger WHERE tgrelid = 'x_nopk_log'::regclass AND tgname = $1",
        [CAPTURE_TRIGGER],
      );
      expect(trig.rows).toEqual([{ args: "code\\000" }]);
      const before2 = await dumpDb(c);
      const { id: id2 } = await sqlOp(c, [
        "UPDATE x_nopk_log SET qty = qty + 100",
        "DELETE FROM x_nopk_log WHERE code = 'c'",
      ]);
      expect((await undo(c, id2)).applied).toBe(true);
      expect(diffDump(before2, await dumpDb(c))).toEqual({});
    });
  });

  it("re-creates rows with their identity values; generated columns come back recomputed equal", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      await c.query(`CREATE TABLE x_ident (
        id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ref integer GENERATED BY DEFAULT AS IDENTITY (START WITH 500),
        qty integer NOT NULL,
        price numeric(10, 2) NOT NULL,
        total numeric GENERATED ALWAYS AS (qty * price) STORED,
        label text)`);
      await c.query(`CREATE TABLE x_ident_default (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL)`);
      await c.query(
        "INSERT INTO x_ident (qty, price, label) SELECT g, g * 1.25, 'row ' || g FROM generate_series(1, 5) g",
      );
      await c.query("INSERT INTO x_ident_default (name) SELECT 'n' || g FROM generate_series(1, 4) g");
      const before = await dumpDb(c);
      const { id } = await sqlOp(c, [
        "DELETE FROM x_ident WHERE id IN (2, 4)",
        "UPDATE x_ident SET qty = qty * 10, label = 'changed' WHERE id = 3",
        "INSERT INTO x_ident (qty, price) VALUES (7, 7)",
        "DELETE FROM x_ident_default WHERE id = 1",
        "INSERT INTO x_ident_default (name) VALUES ('new')",
      ]);
      expect(await rowJson(c, "x_ident", "id = 3")).toMatchObject({ qty: 30, total: 112.5 });
      const r = await undo(c, id);
      expect(r.applied).toBe(true);
      expect(diffDump(before, await dumpDb(c))).toEqual({});
      expect(
        (await c.query("SELECT id, ref, total::text FROM x_ident WHERE id IN (2, 4) ORDER BY id")).rows,
      ).toEqual([
        { id: 2, ref: 501, total: "5.00" },
        { id: 4, ref: 503, total: "20.00" },
      ]);
      // Sequences are not rewound: new rows never reuse an id.
      const next = await c.query<{ id: number }>(
        "INSERT INTO x_ident (qty, price) VALUES (1, 1) RETURNING id",
      );
      expect(next.rows[0].id).toBeGreaterThan(6);
    });
  });
  it("ignores columns added or dropped since the operation", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      await c.query("CREATE TABLE x_cols (id integer PRIMARY KEY, a text, b text)");
      await c.query("INSERT INTO x_cols VALUES (1, 'a1', 'b1'), (2, 'a2', 'b2'), (3, 'a3', 'b3')");
      const { id } = await sqlOp(c, [
        "UPDATE x_cols SET a = 'AI' WHERE id = 1",
        "DELETE FROM x_cols WHERE id = 2",
        "INSERT INTO x_cols VALUES (4, 'a4', 'b4')",
      ]);
      await c.query("ALTER TABLE x_cols DROP COLUMN b");
      await c.query("ALTER TABLE x_cols ADD COLUMN c text DEFAULT 'new'");
      const plan = await undo(c, id, "abort", true);
      expect(plan).toMatchObject({ rows: 3, conflicts: [], restored: counts(1, 1, 1) });
      expect((await undo(c, id)).applied).toBe(true);
      const rows = await c.query("SELECT x::text AS t FROM x_cols x ORDER BY id");
      expect(rows.rows.map((r) => r.t)).toEqual(["(1,a1,new)", "(2,a2,new)", "(3,a3,new)"]);
    });
  });

  it("captures partitioned tables: partitions made later, rows moved across partitions, guards reinstalled", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      await c.query(`CREATE TABLE x_part (id integer, region text, v text, PRIMARY KEY (id, region))
                     PARTITION BY LIST (region)`);
      // Partitions inherit the parent's capture trigger (creating them must not try to drop it).
      await c.query("CREATE TABLE x_part_eu PARTITION OF x_part FOR VALUES IN ('eu')");
      await c.query("CREATE TABLE x_part_us PARTITION OF x_part FOR VALUES IN ('us')");
      await c.query("INSERT INTO x_part VALUES (1, 'eu', 'a'), (2, 'us', 'b'), (3, 'eu', 'c')");
    });
    // An upgrade (installGuards again) over partitions carrying the cloned trigger.
    await asAdmin(t, (db) => installGuards(db, {}));
    await asTenant(t, async (c) => {
      const before = await dumpDb(c);
      const { id, summary } = await sqlOp(c, [
        "UPDATE x_part SET region = 'us' WHERE id = 1",
        "UPDATE x_part SET v = 'z' WHERE id = 2",
        "DELETE FROM x_part WHERE id = 3",
        "INSERT INTO x_part VALUES (4, 'eu', 'd')",
      ]);
      expect(summary.tables).toEqual({ x_part_eu: counts(1, 0, 2), x_part_us: counts(1, 1, 0) });
      const r = await undo(c, id);
      expect(r).toMatchObject({ applied: true, restored: counts(2, 1, 2) });
      expect(diffDump(before, await dumpDb(c))).toEqual({});
    });
  });
});

describe("conflicts", () => {
  interface Scenario {
    id: string;
    a: number;
    b: number;
    cc: number;
    d: number;
    e: number;
    f: number;
    follower: number;
    preOp: Dump;
    afterOp: Record<string, Record<string, unknown> | undefined>;
    preOpRows: Record<string, string>;
  }

  /**
   * Partners a, b, cc, d made by people; the AI renames a, b, cc, deletes d and creates e, f; then a
   * person edits a (changed), deletes cc (deleted), creates a partner with d's id (key_taken) and
   * follows f from a new row (referenced).
   */
  async function scenario(c: Client): Promise<Scenario> {
    const a = await addPartner(c, "Alpha");
    const b = await addPartner(c, "Bravo");
    const cc = await addPartner(c, "Charlie");
    const d = await addPartner(c, "Delta");
    const preOp = await dumpDb(c);
    const preOpRows = {
      a: await rowText(c, "res_partner", "id = $1", [a]),
      b: await rowText(c, "res_partner", "id = $1", [b]),
    };
    let e = 0;
    let f = 0;
    const { id } = await aiOp(c, async () => {
      await c.query("UPDATE res_partner SET name = name || ' (AI)' WHERE id = ANY ($1)", [[a, b, cc]]);
      await c.query("DELETE FROM res_partner WHERE id = $1", [d]);
      e = await addPartner(c, "Echo by AI");
      f = await addPartner(c, "Foxtrot by AI");
    });
    const afterOp = {
      a: await rowJson(c, "res_partner", "id = $1", [a]),
      cc: await rowJson(c, "res_partner", "id = $1", [cc]),
      f: await rowJson(c, "res_partner", "id = $1", [f]),
    };
    // A person, outside any operation.
    await c.query("UPDATE res_partner SET name = 'Alpha (edited by a person)' WHERE id = $1", [a]);
    await c.query("DELETE FROM res_partner WHERE id = $1", [cc]);
    await c.query("INSERT INTO res_partner (id, name) VALUES ($1, 'Delta II (a person)')", [d]);
    const fol = await c.query<{ id: number }>(
      "INSERT INTO mail_followers (res_model, res_id, partner_id) VALUES ('res.partner', 1, $1) RETURNING id",
      [f],
    );
    return { id, a, b, cc, d, e, f, follower: fol.rows[0].id, preOp, afterOp, preOpRows };
  }

  it("abort reports every conflict and changes nothing; skip restores the rest and keeps people's rows", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const s = await scenario(c);
      const beforeUndo = await dumpDb(c);
      const ops = await operationLogCount(c);

      const r = await undo(c, s.id);
      expect(r).toMatchObject({ applied: false, undo_operation_id: null, on_conflict: "abort", skipped: 0 });
      expect(diffDump(beforeUndo, await dumpDb(c))).toEqual({});
      expect(await operationLogCount(c)).toBe(ops);
      const now = async (id: number) => rowJson(c, "res_partner", "id = $1", [id]);
      const byKey = Object.fromEntries(r.conflicts.map((x) => [(x.key as { id: number }).id, x]));
      expect(r.conflicts).toHaveLength(4);
      expect(byKey[s.a]).toEqual({
        table: "res_partner",
        key: { id: s.a },
        reason: "changed",
        expected: s.afterOp.a,
        current: await now(s.a),
        operations: null,
      });
      expect((byKey[s.a].current as { name: string }).name).toBe("Alpha (edited by a person)");
      expect(byKey[s.cc]).toEqual({
        table: "res_partner",
        key: { id: s.cc },
        reason: "deleted",
        expected: s.afterOp.cc,
        current: null,
        operations: null,
      });
      expect(byKey[s.d]).toEqual({
        table: "res_partner",
        key: { id: s.d },
        reason: "key_taken",
        expected: null,
        current: await now(s.d),
        operations: null,
      });
      expect(byKey[s.f]).toEqual({
        table: "res_partner",
        key: { id: s.f },
        reason: "referenced",
        expected: s.afterOp.f,
        current: await now(s.f),
        operations: null,
        referenced_by: [{ table: "mail_followers", key: { id: s.follower } }],
      });
      expect(describePlan(r).filter((l) => l.includes("conflict:"))).toHaveLength(4);

      const k = await undo(c, s.id, "skip");
      expect(k).toMatchObject({ applied: true, skipped: 4, restored: counts(0, 1, 1) });
      // Exactly: b back as before the operation, e gone; everything else as the person left it.
      const expected = structuredClone(beforeUndo);
      const bNow = await c.query<{ t: string }>("SELECT x::text AS t FROM res_partner x WHERE id = $1", [
        s.b,
      ]);
      expect(bNow.rows[0].t).toBe(s.preOpRows.b);
      const beforeB = beforeUndo.res_partner.find((x) => x.startsWith(`(${s.b},`));
      const beforeE = beforeUndo.res_partner.find((x) => x.startsWith(`(${s.e},`));
      expected.res_partner = expected.res_partner
        .filter((x) => x !== beforeB && x !== beforeE)
        .concat([s.preOpRows.b])
        .sort();
      expect(diffDump(expected, await dumpDb(c))).toEqual({});
      expect((await now(s.a))?.name).toBe("Alpha (edited by a person)");
      expect(await now(s.f)).toEqual(s.afterOp.f);
      expect(await rowJson(c, "mail_followers", "id = $1", [s.follower])).toMatchObject({ partner_id: s.f });
    });
  });

  it("skip does not attach the children of a skipped parent to the person's new row with its key", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const lines = (await c.query<{ id: number }>("SELECT id FROM sale_order_line WHERE order_id = 2")).rows;
      expect(lines.length).toBeGreaterThan(0);
      const { id } = await sqlOp(c, ["DELETE FROM sale_order WHERE id = 2"]);
      // A person creates an unrelated order that happens to get the deleted order's id.
      await c.query(`INSERT INTO sale_order (id, name, partner_id, partner_invoice_id, partner_shipping_id, company_id)
                     VALUES (2, 'a person''s new order', 1, 1, 1, 1)`);
      const beforeUndo = await dumpDb(c);
      const r = await undo(c, id, "skip");
      expect(r.conflicts.map((x) => [x.table, x.key, x.reason])).toContainEqual([
        "sale_order",
        { id: 2 },
        "key_taken",
      ]);
      // The order was skipped, so its lines must be too: re-inserting them would put the AI-deleted
      // lines into the person's new order (parent_conflict), and their invoice links with them.
      const attached = await c.query("SELECT id FROM sale_order_line WHERE order_id = 2");
      expect(attached.rowCount).toBe(0);
      expect(diffDump(beforeUndo, await dumpDb(c))).toEqual({});
    });
  });

  it("refuses an undo whose writes would change rows it did not plan (a tenant trigger), unless forced", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      await c.query("CREATE TABLE x_a (id integer PRIMARY KEY, v text)");
      await c.query("CREATE TABLE x_audit (id serial PRIMARY KEY, what text)");
      await c.query(`CREATE FUNCTION x_audit_fn() RETURNS trigger LANGUAGE plpgsql AS $$
                     BEGIN INSERT INTO x_audit (what) VALUES ('deleted ' || OLD.id); RETURN NULL; END $$`);
      await c.query(
        "CREATE TRIGGER x_a_audit AFTER DELETE ON x_a FOR EACH ROW EXECUTE FUNCTION x_audit_fn()",
      );
      const { id } = await sqlOp(c, ["INSERT INTO x_a VALUES (1, 'AI')"]);
      const afterOp = await dumpDb(c);
      const ops = await operationLogCount(c);
      const r = await undo(c, id);
      expect(r).toMatchObject({ applied: false, undo_operation_id: null, conflicts: [] });
      expect(r.error).toContain("1 row(s) it did not touch");
      expect(diffDump(afterOp, await dumpDb(c))).toEqual({});
      expect(await operationLogCount(c)).toBe(ops);
      const f = await undo(c, id, "force");
      expect(f.applied).toBe(true);
      expect((await c.query("SELECT what FROM x_audit")).rows).toEqual([{ what: "deleted 1" }]);
      expect((await c.query("SELECT 1 FROM x_a")).rowCount).toBe(0);
    });
  });

  it("force overwrites: the state before the operation, people's changes included", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const s = await scenario(c);
      const r = await undo(c, s.id, "force");
      expect(r.applied).toBe(true);
      expect(r.conflicts.map((x) => x.reason).sort()).toEqual([
        "changed",
        "deleted",
        "key_taken",
        "referenced",
      ]);
      expect(diffDump(s.preOp, await dumpDb(c))).toEqual({});
    });
  });

  it("dry_run returns the plan and changes nothing", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const p1 = await addPartner(c, "Plan One");
      const before = await dumpDb(c);
      const { id } = await sqlOp(c, [
        "UPDATE res_partner SET phone = 'AI' WHERE id IN (4, 5, 6)",
        "INSERT INTO res_partner (name) VALUES ('planned')",
        `DELETE FROM res_partner WHERE id = ${p1}`,
      ]);
      const afterOp = await dumpDb(c);
      const ops = await operationLogCount(c);
      const plan = await undo(c, id, "abort", true);
      expect(plan).toMatchObject({
        operation_id: id,
        applied: false,
        dry_run: true,
        undo_operation_id: null,
        rows: 5,
        restored: counts(1, 3, 1),
        conflicts: [],
        later_operations: [],
        confirmation_required: true,
      });
      expect(needsConfirmation(plan)).toBe(true);
      expect(describePlan(plan)[0]).toBe(
        `operation ${id}: 5 row(s) to restore — 1 re-inserted, 3 restored, 1 deleted`,
      );
      expect(diffDump(afterOp, await dumpDb(c))).toEqual({});
      expect(await operationLogCount(c)).toBe(ops);
      expect((await listOperations(c)).find((o) => o.id === id)).toMatchObject({ undone: false });

      // With a conflict: listed, still nothing changed, for every on_conflict.
      await c.query("UPDATE res_partner SET phone = 'person' WHERE id = 5");
      const changed = await dumpDb(c);
      for (const mode of ["abort", "skip", "force"] as const) {
        const p = await undo(c, id, mode, true);
        expect(p).toMatchObject({ applied: false, dry_run: true, rows: 5 });
        expect(p.conflicts.map((x) => [x.key, x.reason])).toEqual([[{ id: 5 }, "changed"]]);
        expect(p.restored).toEqual(mode === "force" ? counts(1, 3, 1) : counts(1, 2, 1));
      }
      expect(diffDump(changed, await dumpDb(c))).toEqual({});
      await c.query("UPDATE res_partner SET phone = 'AI' WHERE id = 5");
      expect((await undo(c, id)).applied).toBe(true);
      expect(diffDump(before, await dumpDb(c))).toEqual({});

      const single = await sqlOp(c, ["UPDATE res_partner SET phone = 'one' WHERE id = 4"]);
      const p = await undo(c, single.id, "abort", true);
      expect(p).toMatchObject({ rows: 1, confirmation_required: false });
      expect(needsConfirmation(p)).toBe(false);
    });
  });

  it("selective rollback: a later operation on the same row is named; undoing it first lets the earlier go", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const r1 = await addPartner(c, "Row One");
      const r2 = await addPartner(c, "Row Two");
      const pre = { r1: await rowText(c, "res_partner", "id = $1", [r1]) };
      const a = await sqlOp(c, [`UPDATE res_partner SET name = name || ' (A)' WHERE id IN (${r1}, ${r2})`]);
      const b = await sqlOp(c, [`UPDATE res_partner SET phone = 'by B' WHERE id = ${r2}`]);
      const afterB = await dumpDb(c);
      const r2AfterB = await rowText(c, "res_partner", "id = $1", [r2]);

      const abort = await undo(c, a.id);
      expect(abort.applied).toBe(false);
      expect(abort.later_operations).toEqual([b.id]);
      expect(abort.conflicts).toHaveLength(1);
      expect(abort.conflicts[0]).toMatchObject({ key: { id: r2 }, operations: [b.id] });
      expect(abort.conflicts[0].reason).toBe("changed");
      expect(diffDump(afterB, await dumpDb(c))).toEqual({});

      const skip = await undo(c, a.id, "skip");
      expect(skip).toMatchObject({ applied: true, skipped: 1, restored: counts(0, 1, 0) });
      expect(await rowText(c, "res_partner", "id = $1", [r1])).toBe(pre.r1);
      expect(await rowText(c, "res_partner", "id = $1", [r2])).toBe(r2AfterB);

      // Another tenant: B first, then A, both clean.
      const t2 = await newTenant();
      await asTenant(t2, async (c2) => {
        const q1 = await addPartner(c2, "Row One");
        const q2 = await addPartner(c2, "Row Two");
        const before = await dumpDb(c2);
        const a2 = await sqlOp(c2, [
          `UPDATE res_partner SET name = name || ' (A)' WHERE id IN (${q1}, ${q2})`,
        ]);
        const afterA = await dumpDb(c2);
        const b2 = await sqlOp(c2, [`UPDATE res_partner SET phone = 'by B' WHERE id = ${q2}`]);
        const ub = await undo(c2, b2.id);
        expect(ub).toMatchObject({ applied: true, conflicts: [], later_operations: [] });
        expect(diffDump(afterA, await dumpDb(c2))).toEqual({});
        const ua = await undo(c2, a2.id);
        expect(ua).toMatchObject({ applied: true, conflicts: [], later_operations: [] });
        expect(diffDump(before, await dumpDb(c2))).toEqual({});

        // A later operation that changed the row and put it back: the row looks untouched, but the
        // later operation is still named (reason later_operation).
        const a3 = await sqlOp(c2, [`UPDATE res_partner SET phone = 'A3' WHERE id = ${q1}`]);
        const b3 = await sqlOp(c2, [
          `UPDATE res_partner SET phone = 'B3' WHERE id = ${q1}`,
          `UPDATE res_partner SET phone = 'A3' WHERE id = ${q1}`,
        ]);
        const u3 = await undo(c2, a3.id);
        expect(u3).toMatchObject({ applied: false, later_operations: [b3.id] });
        expect(u3.conflicts).toEqual([
          expect.objectContaining({ key: { id: q1 }, reason: "later_operation", operations: [b3.id] }),
        ]);
        expect((await undo(c2, b3.id)).applied).toBe(true);
        expect(await undo(c2, a3.id)).toMatchObject({ applied: true, conflicts: [] });
        expect(diffDump(before, await dumpDb(c2))).toEqual({});
      });
    });
  });

  it("locks the rows: a person's concurrent update waits for the undo and lands on top; one committed first is a conflict", async () => {
    const t = await newTenant();
    const c1 = await connect(tenantUrl(t));
    const c2 = await connect(tenantUrl(t));
    try {
      const r1 = await addPartner(c1, "Locked One");
      const r2 = await addPartner(c1, "Locked Two");
      const r3 = await addPartner(c1, "Locked Three");
      const pre = {
        r1: await rowJson(c1, "res_partner", "id = $1", [r1]),
        r2: await rowText(c1, "res_partner", "id = $1", [r2]),
      };
      const a = await sqlOp(c1, [
        `UPDATE res_partner SET name = 'AI', phone = 'AI' WHERE id IN (${r1}, ${r2})`,
      ]);

      // 1. The undo holds its row locks until commit; the person's UPDATE waits, then applies on top.
      await c1.query("BEGIN");
      const u = await undoOperation(c1, a.id);
      expect(u.applied).toBe(true);
      const pid2 = await backendPid(c2);
      const personal = c2.query("UPDATE res_partner SET phone = 'person' WHERE id = $1", [r1]);
      await waitForLockWait(t, pid2);
      expect(await settledWithin(personal, 300)).toBe("pending");
      await c1.query("COMMIT");
      expect((await personal).rowCount).toBe(1);
      expect(await rowJson(c1, "res_partner", "id = $1", [r1])).toEqual({ ...pre.r1, phone: "person" });
      expect(await rowText(c1, "res_partner", "id = $1", [r2])).toBe(pre.r2);

      // 2. A person's transaction holds the row when the undo starts: the undo waits for it and,
      //    once it commits, sees the new row and reports the conflict instead of overwriting it.
      const b = await sqlOp(c1, [`UPDATE res_partner SET name = 'AI 3' WHERE id = ${r3}`]);
      await c2.query("BEGIN");
      await c2.query("UPDATE res_partner SET phone = 'person first' WHERE id = $1", [r3]);
      const pid1 = await backendPid(c1);
      await c1.query("BEGIN");
      const pending = undoOperation(c1, b.id);
      await waitForLockWait(t, pid1);
      await c2.query("COMMIT");
      const r = await pending;
      await c1.query("COMMIT");
      expect(r.applied).toBe(false);
      expect(r.conflicts).toEqual([
        expect.objectContaining({
          key: { id: r3 },
          reason: "changed",
          current: expect.objectContaining({ phone: "person first" }),
        }),
      ]);
      expect(await rowJson(c1, "res_partner", "id = $1", [r3])).toMatchObject({
        name: "AI 3",
        phone: "person first",
      });

      // 3. Committed before the undo started: the same conflict.
      await c2.query("UPDATE res_partner SET email = 'person@it.example' WHERE id = $1", [r3]);
      const r4 = await undo(c1, b.id, "abort");
      expect(r4).toMatchObject({
        applied: false,
        conflicts: [expect.objectContaining({ reason: "changed" })],
      });
      expect(await rowJson(c1, "res_partner", "id = $1", [r3])).toMatchObject({ email: "person@it.example" });

      // 4. Two undos of one operation at once: the second waits for the first, then is refused.
      const d = await sqlOp(c1, [`UPDATE res_partner SET name = 'AI twice' WHERE id = ${r2}`]);
      const afterD = await rowText(c1, "res_partner", "id = $1", [r2]);
      await c1.query("BEGIN");
      const first = await undoOperation(c1, d.id);
      expect(first.applied).toBe(true);
      await c2.query("BEGIN");
      const second = failure(undoOperation(c2, d.id));
      await waitForLockWait(t, pid2);
      await c1.query("COMMIT");
      const refused = await second;
      await c2.query("ROLLBACK");
      expect(refused.code).toBe(UNDO_ERRORS.badOperation);
      expect(refused.message).toContain(first.undo_operation_id);
      expect(await rowText(c1, "res_partner", "id = $1", [r2])).toBe(pre.r2);
      expect(afterD).not.toBe(pre.r2);
    } finally {
      await c1.end().catch(() => undefined);
      await c2.end().catch(() => undefined);
    }
  });
});

describe("operations", () => {
  it("upgrades an undo v3 installation in place: its per-row indexes go, what it captured stays undoable", async () => {
    const t = await newTenant();
    const before = await asTenant(t, (c) => dumpDb(c, ["res_partner"]));
    const r1 = await asTenant(t, (c) => addPartner(c, "Old Capture"));
    const old = await asTenant(t, (c) => sqlOp(c, [`UPDATE res_partner SET phone = 'v3' WHERE id = ${r1}`]));
    // What undo v3 (and quota v2) left in a database: the per-row index, the started_at index, the
    // per-row lookup function, no BRIN index on the change ids.
    await asAdmin(t, async (db) => {
      await db.query("CREATE INDEX change_log_row ON loomworks_undo.change_log (table_oid, row_key)");
      await db.query("CREATE INDEX operation_log_started ON loomworks_undo.operation_log (started_at DESC)");
      await db.query("DROP INDEX loomworks_undo.change_log_id");
      await db.query(
        "CREATE FUNCTION loomworks_undo.later_operations(oid, jsonb, uuid, bigint) RETURNS uuid[] LANGUAGE sql AS 'SELECT NULL::uuid[]'",
      );
      await db.query("COMMENT ON SCHEMA loomworks_undo IS 'loomworks undo api v3'");
      await db.query("COMMENT ON SCHEMA loomworks_quota IS 'loomworks quota api v2'");
    });
    const status = await asAdmin(t, (db) => installGuards(db));
    expect(status.current).toBe(true);
    const objects = await asAdmin(t, (db) =>
      db.query<{ indexes: string[]; later: boolean }>(
        `SELECT (SELECT array_agg(indexname::text ORDER BY indexname) FROM pg_indexes
                 WHERE schemaname = 'loomworks_undo' AND tablename IN ('change_log', 'operation_log')) AS indexes,
                to_regprocedure('loomworks_undo.later_operations(oid, jsonb, uuid, bigint)') IS NOT NULL AS later`,
      ),
    );
    expect(objects.rows[0]).toEqual({
      indexes: [
        "change_log_id",
        "change_log_operation",
        "operation_log_pkey",
        "operation_log_session",
        "operation_log_undoes",
      ],
      later: false,
    });
    await asTenant(t, async (c) => {
      // Operation ids are time-ordered now (UUID version 7), in the order they began.
      const a = await sqlOp(c, [`UPDATE res_partner SET phone = 'v4 a' WHERE id = ${r1}`]);
      const b = await sqlOp(c, [`UPDATE res_partner SET email = 'v4b@it.example' WHERE id = ${r1}`]);
      expect(a.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(a.id < b.id).toBe(true);
      // The operation captured before the upgrade: the later ones on its row are found without the
      // per-row index, newest first to undo.
      const refused = await undo(c, old.id);
      expect(refused).toMatchObject({ applied: false, later_operations: [a.id, b.id].sort() });
      expect((await undo(c, b.id)).applied).toBe(true);
      expect((await undo(c, a.id)).applied).toBe(true);
      expect(await undo(c, old.id)).toMatchObject({ applied: true, conflicts: [], later_operations: [] });
      const after = await dumpDb(c, ["res_partner"]);
      expect(after.res_partner.length).toBe(before.res_partner.length + 1);
      expect(await rowText(c, "res_partner", "id = $1", [r1])).toMatch(/Old Capture/);
      expect(await rowText(c, "res_partner", "id = $1", [r1])).not.toMatch(/v3|v4/);
    });
  });

  it("spans transactions with use_operation, summarises per table, and refuses misuse", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const before = await dumpDb(c);
      await c.query("BEGIN");
      const id = await beginOperation(c, "session-span", "write", "three steps");
      await c.query("INSERT INTO res_partner (name) VALUES ('step one')");
      await c.query("COMMIT");
      // Between the transactions nothing is captured.
      await c.query("UPDATE res_partner SET phone = 'between' WHERE id = 6");
      await c.query("BEGIN");
      await useOperation(c, id);
      await c.query("UPDATE res_partner SET name = 'step two' WHERE name = 'step one'");
      await c.query("UPDATE res_partner SET phone = 'step two' WHERE id = 4");
      await c.query("DELETE FROM ir_model_data WHERE name = 'group_system'");
      await c.query("COMMIT");
      await c.query("BEGIN");
      await useOperation(c, id);
      await c.query("INSERT INTO product_category (name, parent_id) VALUES ('step three', 1)");
      const summary = await endOperation(c, id);
      await c.query("COMMIT");
      expect(summary).toEqual({
        operation_id: id,
        tables: {
          res_partner: counts(1, 2, 0),
          ir_model_data: counts(0, 0, 1),
          product_category: counts(1, 0, 0),
        },
        inserted: 2,
        updated: 2,
        deleted: 1,
      });
      const row = (await listOperations(c, "session-span"))[0];
      expect(row).toMatchObject({ id, kind: "write", description: "three steps", undone: false, summary });
      expect(row.ended_at).not.toBeNull();

      // An ended operation takes no more changes; nor an unknown one.
      for (const bad of [id, "00000000-0000-4000-8000-000000000000", "not-an-id"]) {
        await c.query("BEGIN");
        const e = await failure(useOperation(c, bad));
        await c.query("ROLLBACK");
        expect(e.code, bad).toBe(UNDO_ERRORS.badOperation);
      }
      // One operation per transaction.
      await c.query("BEGIN");
      await beginOperation(c, "session-span");
      const twice = await failure(beginOperation(c, "session-span"));
      await c.query("ROLLBACK");
      expect(twice.code).toBe(UNDO_ERRORS.operationActive);

      const u = await undo(c, id);
      expect(u).toMatchObject({ applied: true, restored: counts(1, 1, 2) });
      // Exactly the state before, but for the change made between the transactions (not captured).
      const expected = structuredClone(before);
      expected.res_partner = expected.res_partner
        .filter((x) => !x.startsWith("(6,"))
        .concat([await rowText(c, "res_partner", "id = 6")])
        .sort();
      expect(await rowJson(c, "res_partner", "id = 6")).toMatchObject({ phone: "between" });
      expect(diffDump(expected, await dumpDb(c))).toEqual({});

      const again = await failure(undo(c, id));
      expect(again.code).toBe(UNDO_ERRORS.badOperation);
      expect(again.message).toContain(u.undo_operation_id);
      expect(again.hint).toContain(`undo operation ${u.undo_operation_id}`);
    });
  });

  it("refuses TRUNCATE inside an operation (LWT01) and allows it outside", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      await c.query("CREATE TABLE x_scratch (id serial PRIMARY KEY, v text)");
      await c.query("INSERT INTO x_scratch (v) SELECT 'v' || g FROM generate_series(1, 3) g");
      await c.query("BEGIN");
      await beginOperation(c, "session-1");
      const e = await failure(c.query("TRUNCATE x_scratch"));
      await c.query("ROLLBACK");
      expect(e.code).toBe(UNDO_ERRORS.truncate);
      expect(e.message).toContain("x_scratch");
      expect((await c.query("SELECT 1 FROM x_scratch")).rowCount).toBe(3);
      await c.query("TRUNCATE x_scratch");
      expect((await c.query("SELECT 1 FROM x_scratch")).rowCount).toBe(0);
    });
  });

  it("the tenant cannot drop, disable or rename the platform's triggers, nor rewrite the logs", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      await sqlOp(c, ["UPDATE res_partner SET phone = 'logged' WHERE id = 4"]);
      const attempts = [
        `DROP TRIGGER ${CAPTURE_TRIGGER} ON res_partner`,
        "DROP TRIGGER loomworks_undo_truncate ON res_partner",
        `ALTER TABLE res_partner DISABLE TRIGGER ${CAPTURE_TRIGGER}`,
        "ALTER TABLE res_partner DISABLE TRIGGER USER",
        `ALTER TABLE res_partner ENABLE REPLICA TRIGGER ${CAPTURE_TRIGGER}`,
        `ALTER TRIGGER ${CAPTURE_TRIGGER} ON res_partner RENAME TO my_trigger`,
      ];
      for (const sql of attempts) {
        const e = await failure(c.query(sql));
        expect(e.code, sql).toBe(UNDO_ERRORS.guardedTrigger);
      }
      const trig = await c.query(
        "SELECT tgname, tgenabled FROM pg_trigger WHERE tgrelid = 'res_partner'::regclass AND tgname LIKE 'loomworks%' ORDER BY 1",
      );
      expect(trig.rows).toEqual([
        { tgname: CAPTURE_TRIGGER, tgenabled: "O" },
        { tgname: "loomworks_undo_truncate", tgenabled: "O" },
      ]);
      for (const sql of [
        "UPDATE loomworks_undo.change_log SET old_row = NULL",
        "DELETE FROM loomworks_undo.change_log",
        "UPDATE loomworks_undo.operation_log SET ended_at = NULL",
        "DELETE FROM loomworks_undo.operation_log",
        "INSERT INTO loomworks_undo.operation_log (id, kind) VALUES (gen_random_uuid(), 'write')",
        "TRUNCATE loomworks_undo.change_log",
      ]) {
        const e = await failure(c.query(sql));
        expect(e.code, sql).toBe("42501");
      }
      expect(await changeLogCount(c)).toBe(1);
    });
  });

  it("a destructive operation takes a pre_ai restore point; every begin_operation counts, undo does not", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const q0 = (await readQuotaStatus(c)).ai_operations.today;
      const w = await sqlOp(c, ["UPDATE res_partner SET phone = 'w' WHERE id = 4"]);
      const d = await sqlOp(c, ["DELETE FROM ir_model_data WHERE module = 'base'"], {
        kind: "destructive",
        description: "delete the base records",
      });
      const ops = Object.fromEntries((await listOperations(c)).map((o) => [o.id, o]));
      expect(ops[w.id].snapshot_id).toBeNull();
      expect(ops[d.id]).toMatchObject({ kind: "destructive", description: "delete the base records" });
      const snap = ops[d.id].snapshot_id;
      expect(snap).toMatch(/^[0-9a-f-]{36}$/);
      const logged = await c.query(
        "SELECT snapshot_id::text AS s FROM loomworks_undo.operation_log WHERE id = $1",
        [d.id],
      );
      expect(logged.rows).toEqual([{ s: snap }]);
      const req = await c.query<{ kind: string; note: string; lsn: string | null }>(
        "SELECT kind, note, lsn::text AS lsn FROM loomworks_snapshot.requested WHERE id = $1",
        [snap],
      );
      expect(req.rows).toHaveLength(1);
      expect(req.rows[0].kind).toBe("pre_ai");
      expect(req.rows[0].note).toContain(d.id);
      expect(req.rows[0].lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect((await readQuotaStatus(c)).ai_operations.today).toBe(q0 + 2);
      expect((await undo(c, d.id)).applied).toBe(true);
      expect((await readQuotaStatus(c)).ai_operations.today).toBe(q0 + 2);
    });
  });

  it("does not capture excluded tables (built-in names, stack patterns, tables renamed to them)", async () => {
    const t = await newTenant({ excludeTables: ["x_noisy_*", "x_fixture_module_00*"] });
    await asTenant(t, async (c) => {
      await c.query("CREATE TABLE bus_bus (id serial PRIMARY KEY, channel text, message text)");
      await c.query("CREATE TABLE x_noisy_log (id serial PRIMARY KEY, line text)");
      await c.query("CREATE TABLE x_kept (id serial PRIMARY KEY, line text)");
      const captured = await c.query<{ t: string }>(
        `SELECT c.relname AS t FROM pg_class c JOIN pg_trigger g ON g.tgrelid = c.oid AND g.tgname = $1
         WHERE c.relname IN ('bus_bus', 'x_noisy_log', 'x_kept', 'ir_sequence', 'x_fixture_module_001',
                             'x_fixture_module_010', 'res_partner') ORDER BY 1`,
        [CAPTURE_TRIGGER],
      );
      expect(captured.rows.map((r) => r.t)).toEqual(["res_partner", "x_fixture_module_010", "x_kept"]);
      const g = await asAdmin(t, (db) => readGuards(db));
      expect(g.excludedTables).toEqual(
        expect.arrayContaining(["bus_bus", "x_noisy_*", "x_fixture_module_00*"]),
      );
      expect(g.uncapturedTables).toEqual([]);

      const { id, summary } = await sqlOp(c, [
        "INSERT INTO bus_bus (channel, message) VALUES ('c', 'hello')",
        "INSERT INTO x_noisy_log (line) VALUES ('noise')",
        "UPDATE x_fixture_module_001 SET name = 'excluded by the stack'",
        "INSERT INTO x_kept (line) VALUES ('kept')",
      ]);
      expect(summary.tables).toEqual({ x_kept: counts(1, 0, 0) });
      const afterOp = await dumpDb(c);
      const u = await undo(c, id);
      expect(u).toMatchObject({ applied: true, rows: 1 });
      const d = diffDump(afterOp, await dumpDb(c));
      expect(Object.keys(d)).toEqual(["x_kept"]);
      expect(d.x_kept.gone).toHaveLength(1);

      // Renamed to an excluded name: capture comes off; renamed back: it is on again.
      await c.query("ALTER TABLE x_kept RENAME TO x_noisy_kept");
      const off = await c.query("SELECT 1 FROM pg_trigger WHERE tgrelid = 'x_noisy_kept'::regclass");
      expect(off.rowCount).toBe(0);
      await c.query("ALTER TABLE x_noisy_kept RENAME TO x_kept");
      const on = await c.query("SELECT tgname FROM pg_trigger WHERE tgrelid = 'x_kept'::regclass ORDER BY 1");
      expect(on.rows.map((r) => r.tgname)).toEqual([CAPTURE_TRIGGER, "loomworks_undo_truncate"]);
    });
  });

  it("undoes a 10,000-row operation", async () => {
    const t = await newTenant();
    await asTenant(t, async (c) => {
      const table = "x_fixture_module_002";
      const before = await dumpDb(c, [table]);
      const { id, summary } = await sqlOp(c, [
        `INSERT INTO ${table} (name, code, partner_id, company_id, amount, quantity, event_date, payload, create_uid)
         SELECT 'bulk ' || g, 'B' || g, 1 + g % 3, 1, g * 1.5, g, DATE '2025-01-01' + g % 365, md5(g::text), 2
         FROM generate_series(1, 10000) g`,
      ]);
      expect(summary.tables).toEqual({ [table]: counts(10000, 0, 0) });
      const r = await undo(c, id);
      expect(r).toMatchObject({ applied: true, rows: 10000, restored: counts(0, 0, 10000) });
      expect(diffDump(before, await dumpDb(c, [table]))).toEqual({});
    });
  });
});
