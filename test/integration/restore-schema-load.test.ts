/**
 * The overlapped restore's definitions load (lib/restore/copy.ts loadSchema) with parallel
 * sessions creating the tables: plain tables load in parallel; tables that need each other
 * (inheritance, a partition, a typed table, a column of another table's row type) end up exactly as
 * in the source, in parallel when the order allowed it, else through the reset and one transaction.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { quoteIdent, withPlainClient as withClient } from "../../lib/pg/client";
import { pgBin } from "../../lib/pg/cluster";
import { dsnToPgEnv, dsnWithDatabase } from "../../lib/pg/dsn";
import { runCommand } from "../../lib/process/run";
import { loadSchema } from "../../lib/restore/copy";

const pg = inject("pg");
const run = randomBytes(3).toString("hex");
const created: string[] = [];
let workDir: string;

const admin = <T>(fn: (c: import("pg").Client) => Promise<T>): Promise<T> => withClient(pg.adminDsn, fn);
const inDb = <T>(db: string, fn: (c: import("pg").Client) => Promise<T>): Promise<T> =>
  withClient(dsnWithDatabase(pg.adminDsn, db), fn);

async function freshDatabase(name: string): Promise<void> {
  await admin(async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${quoteIdent(name)} TEMPLATE template0`);
  });
  if (!created.includes(name)) created.push(name);
}

/** A source database with `sql`, its pre-data dumped to a directory. */
async function dumpedSource(label: string, sql: string): Promise<string> {
  const db = `schema_src_${label}_${run}`;
  await freshDatabase(db);
  await inDb(db, (c) => c.query(sql));
  const dir = path.join(workDir, label);
  const env = { ...process.env, ...dsnToPgEnv(dsnWithDatabase(pg.adminDsn, db)) };
  const r = await runCommand(pgBin("pg_dump"), ["-Fd", "--section=pre-data", "-f", dir], { env });
  expect(r.code, r.stderr).toBe(0);
  return dir;
}

/** Tables, their kinds, parents, types and column types: what the definitions made. */
const catalog = (db: string): Promise<string[]> =>
  inDb(db, async (c) => {
    const r = await c.query<{ line: string }>(
      `SELECT format('%s %s of=%s parents=%s cols=%s', c.relname, c.relkind, c.reloftype::regtype,
                (SELECT string_agg(i.inhparent::regclass::text, ',' ORDER BY i.inhseqno) FROM pg_inherits i WHERE i.inhrelid = c.oid),
                (SELECT string_agg(a.attname || ':' || format_type(a.atttypid, a.atttypmod), ',' ORDER BY a.attnum)
                   FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)) AS line
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v')
        ORDER BY c.relname`,
    );
    return r.rows.map((x) => x.line);
  });

async function load(
  label: string,
  dir: string,
): Promise<{ parallel: boolean; resets: number; logged: string[] }> {
  const target = `schema_dst_${label}_${run}`;
  await freshDatabase(target);
  let resets = 0;
  const logged: string[] = [];
  const result = await loadSchema(pg.adminDsn, target, dir, () => false, {
    jobs: 4,
    reset: async () => {
      resets++;
      await freshDatabase(target);
    },
    log: (msg) => logged.push(msg),
  });
  return { ...result, resets, logged };
}

const plainTables = (n: number, prefix: string): string =>
  Array.from(
    { length: n },
    (_, i) => `CREATE TABLE ${prefix}${String(i).padStart(3, "0")} (id serial PRIMARY KEY, note text);`,
  ).join("\n");

beforeAll(async () => {
  workDir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-schema-load-it-"));
});

afterAll(async () => {
  await admin(async (c) => {
    for (const db of created) await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)} WITH (FORCE)`);
  });
  await fs.rm(workDir, { recursive: true, force: true });
});

describe("loadSchema with parallel sessions", () => {
  it("creates independent tables in parallel, the views and sequences after them", async () => {
    const dir = await dumpedSource(
      "plain",
      `${plainTables(40, "t")}\nCREATE VIEW v_all AS SELECT t000.id FROM t000 JOIN t039 USING (id);`,
    );
    const r = await load("plain", dir);
    expect(r).toEqual({ parallel: true, resets: 0, logged: [] });
    expect(await catalog(`schema_dst_plain_${run}`)).toEqual(await catalog(`schema_src_plain_${run}`));
  });

  it("gives tables that need each other the source's shape, through the reset when parallel sessions fail", async () => {
    const dir = await dumpedSource(
      "linked",
      [
        plainTables(30, "m"),
        "CREATE TABLE a_parent (id int, label text);",
        "CREATE TABLE b_child (extra int) INHERITS (a_parent);",
        "CREATE TABLE c_measures (at date, v int) PARTITION BY RANGE (at);",
        "CREATE TABLE d_measures_2026 PARTITION OF c_measures FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');",
        "CREATE TYPE pair AS (l int, r int);",
        "CREATE TABLE e_typed OF pair;",
        "CREATE TABLE f_holds_row (id int, parent a_parent, parents a_parent[]);",
      ].join("\n"),
    );
    const r = await load("linked", dir);
    console.info(`linked tables: ${r.parallel ? "loaded in parallel" : r.logged.join("; ")}`);
    expect(r.resets).toBe(r.parallel ? 0 : 1);
    expect(r.logged).toEqual(r.parallel ? [] : [expect.stringMatching(/definitions in parallel failed/)]);
    expect(await catalog(`schema_dst_linked_${run}`)).toEqual(await catalog(`schema_src_linked_${run}`));
  });
});
