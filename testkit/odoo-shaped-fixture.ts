/**
 * Generator for the Odoo-shaped FIXTURE schema (not Odoo; see test/fixtures/odoo-shaped/README.md).
 *
 * `fixtureSql()` returns the hand-written core schema (`schema.sql`) followed by padding tables
 * `x_fixture_module_NNN` and bulk rows made with `generate_series`, so that a database of a
 * realistic shape (an Odoo 18 database with a few dozen modules has ~400 tables) and size can be
 * built in seconds. The output is deterministic: the same options give byte-identical SQL.
 *
 * CLI (after `npm run build`; test/fixtures/odoo-shaped/generate.ts):
 *   node bin/test/fixtures/odoo-shaped/generate.js --extra-tables 380 --rows 5 --payload 64 --out file.sql
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { repoRoot } from "./repo";

export interface FixtureOptions {
  /** Number of padding tables `x_fixture_module_NNN` appended after the core schema. */
  extraTables: number;
  /** Rows per padding table (also the number of extra partners, sale orders and messages). */
  rowsPerTable: number;
  /** Bytes of uncompressed text payload per padding-table row (0 = no payload). */
  payloadBytes: number;
}

/** Defaults of the committed `template.sql`: ~400 tables, few rows, a small file. */
export const TEMPLATE_DEFAULTS: FixtureOptions = { extraTables: 380, rowsPerTable: 5, payloadBytes: 64 };

/** The fixture's committed files: the hand-written core schema and the generated template. */
export const FIXTURE_DIR = path.join(repoRoot, "test", "fixtures", "odoo-shaped");
export const FIXTURE_SCHEMA_SQL = path.join(FIXTURE_DIR, "schema.sql");
/** The dump the `dev` stack and the tests load into their template (TEMPLATE_DEFAULTS). */
export const FIXTURE_TEMPLATE_DUMP = path.join(FIXTURE_DIR, "template.sql");

/** The hand-written core of the fixture. */
export function coreSchemaSql(): string {
  return fs.readFileSync(FIXTURE_SCHEMA_SQL, "utf8");
}

function checkCount(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new Error(`fixture option ${name} must be an integer in [0, ${max}], got ${String(value)}`);
  }
}

/** Name of the i-th padding table (1-based): x_fixture_module_001, ... */
export function paddingTableName(i: number): string {
  return `x_fixture_module_${String(i).padStart(3, "0")}`;
}

function paddingTableSql(i: number, opts: FixtureOptions): string {
  const t = paddingTableName(i);
  // A little variety in the foreign keys, as in real module tables.
  const partnerOnDelete = i % 3 === 0 ? "CASCADE" : "SET NULL";
  const lines = [
    `CREATE TABLE ${t} (`,
    `    id serial PRIMARY KEY,`,
    `    name varchar NOT NULL,`,
    `    code varchar(32),`,
    `    partner_id integer REFERENCES res_partner (id) ON DELETE ${partnerOnDelete},`,
    `    company_id integer REFERENCES res_company (id) ON DELETE SET NULL,`,
    `    amount numeric(16, 2),`,
    `    quantity integer,`,
    `    active boolean DEFAULT true,`,
    `    state varchar DEFAULT 'draft',`,
    `    event_date date,`,
    `    payload text,`,
    `    create_uid integer REFERENCES res_users (id) ON DELETE SET NULL,`,
    `    write_uid integer REFERENCES res_users (id) ON DELETE SET NULL,`,
    `    create_date timestamp without time zone DEFAULT (now() AT TIME ZONE 'UTC'),`,
    `    write_date timestamp without time zone DEFAULT (now() AT TIME ZONE 'UTC')`,
    `);`,
    // Stored out of line without compression, so the size of the data is predictable.
    `ALTER TABLE ${t} ALTER COLUMN payload SET STORAGE EXTERNAL;`,
    `CREATE INDEX ${t}__partner_id_index ON ${t} (partner_id);`,
  ];
  if (opts.rowsPerTable > 0) {
    const payload =
      opts.payloadBytes > 0
        ? `left(repeat(md5(g::text || '${t}'), ${Math.ceil(opts.payloadBytes / 32)}), ${opts.payloadBytes})`
        : "NULL";
    lines.push(
      `INSERT INTO ${t} (name, code, partner_id, company_id, amount, quantity, state, event_date, payload, create_uid, write_uid)`,
      `SELECT 'Fixture record ' || g, 'FX-' || g, 1 + g % 3, 1, round(g * 1.37, 2), g % 100,`,
      `       (ARRAY['draft', 'done', 'cancel'])[1 + g % 3], DATE '2025-01-01' + g % 365, ${payload}, 2, 2`,
      `FROM generate_series(1, ${opts.rowsPerTable}) AS g;`,
    );
  }
  return lines.join("\n");
}

function bulkCoreRowsSql(rows: number): string {
  if (rows <= 0) return "";
  return `
-- Bulk rows in core tables (ids continue after the seed rows).
INSERT INTO res_partner (name, complete_name, company_id, email, customer_rank, active, create_uid, write_uid)
SELECT 'Fixture Customer ' || g, 'Fixture Customer ' || g, 1, 'customer' || g || '@fixture.example', 1, true, 2, 2
FROM generate_series(1, ${rows}) AS g;
UPDATE res_partner SET commercial_partner_id = id WHERE commercial_partner_id IS NULL;

INSERT INTO sale_order (name, state, partner_id, partner_invoice_id, partner_shipping_id, user_id, company_id, currency_id,
                        amount_untaxed, amount_tax, amount_total, create_uid, write_uid)
SELECT 'SFX' || lpad(g::text, 6, '0'), (ARRAY['draft', 'sent', 'sale'])[1 + g % 3], 1, 1, 1, 2, 1, 1, 600.0, 0.0, 600.0, 2, 2
FROM generate_series(1, ${rows}) AS g;
INSERT INTO sale_order_line (order_id, sequence, name, product_id, product_uom_qty, product_uom, price_unit, price_subtotal,
                             price_total, company_id, order_partner_id)
SELECT so.id, 10 * l, 'Fixture line ' || l, l, 1, 1, p.price, p.price, p.price, 1, 1
FROM sale_order so
CROSS JOIN generate_series(1, 2) AS l
JOIN (VALUES (1, 120.0), (2, 480.0)) AS p (product, price) ON p.product = l
WHERE so.name LIKE 'SFX%';

INSERT INTO mail_message (model, res_id, body, message_type, subtype_id, author_id, record_name)
SELECT 'sale.order', so.id, '<p>Fixture message for ' || so.name || '</p>', 'comment', 1, 3, so.name
FROM sale_order so
WHERE so.name LIKE 'SFX%';
`;
}

/**
 * The full fixture SQL: core schema, bulk core rows, `extraTables` padding tables with
 * `rowsPerTable` rows of `payloadBytes` each, and an `ir_model` row per padding table.
 */
export function fixtureSql(opts: FixtureOptions): string {
  checkCount("extraTables", opts.extraTables, 9999);
  checkCount("rowsPerTable", opts.rowsPerTable, 10_000_000);
  checkCount("payloadBytes", opts.payloadBytes, 1_000_000);
  const parts = [
    `-- FIXTURE (Odoo-shaped test schema, NOT Odoo), generated by test/fixtures/odoo-shaped/generate.ts`,
    `-- options: extraTables=${opts.extraTables} rowsPerTable=${opts.rowsPerTable} payloadBytes=${opts.payloadBytes}`,
    ``,
    coreSchemaSql().trimEnd(),
    bulkCoreRowsSql(opts.rowsPerTable),
  ];
  if (opts.extraTables > 0) {
    parts.push(`-- Padding tables standing in for the tables of installed modules.`);
    for (let i = 1; i <= opts.extraTables; i++) parts.push(paddingTableSql(i, opts), "");
    parts.push(
      `INSERT INTO ir_model (model, name, state)`,
      `SELECT 'x_fixture.module_' || lpad(g::text, 3, '0'), jsonb_build_object('en_US', 'Fixture module ' || g), 'manual'`,
      `FROM generate_series(1, ${opts.extraTables}) AS g;`,
    );
  }
  return parts.join("\n") + "\n";
}

/** Parses `--extra-tables N --rows N --payload N --out FILE`; unknown flags are an error. */
export function parseArgs(argv: string[]): FixtureOptions & { out?: string } {
  const result: FixtureOptions & { out?: string } = { ...TEMPLATE_DEFAULTS };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`missing value for ${flag}`);
    i++;
    const num = (): number => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0)
        throw new Error(`${flag} needs a non-negative integer, got ${value}`);
      return n;
    };
    switch (flag) {
      case "--extra-tables":
        result.extraTables = num();
        break;
      case "--rows":
        result.rowsPerTable = num();
        break;
      case "--payload":
        result.payloadBytes = num();
        break;
      case "--out":
        result.out = value;
        break;
      default:
        throw new Error(`unknown option ${flag} (expected --extra-tables, --rows, --payload, --out)`);
    }
  }
  return result;
}

/** The command line of test/fixtures/odoo-shaped/generate.ts: writes the SQL to `--out` or stdout. */
export function generateFixtureCli(argv: string[]): void {
  try {
    const args = parseArgs(argv);
    const sql = fixtureSql(args);
    if (args.out) fs.writeFileSync(args.out, sql);
    else process.stdout.write(sql);
  } catch (err) {
    console.error(`generate: ${(err as Error).message}`);
    process.exit(2);
  }
}
