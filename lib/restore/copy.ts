/**
 * Copying the restored tenant into the live cluster and swapping it in: the `<db>__restore_<id>`
 * database (pg_restore of the scratch's dump), database-level settings, comment and privileges,
 * and the swap of the filestore directories.
 */
import { existsSync, promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { Client } from "pg";
import { pgBin } from "../pg/cluster";
import { PLATFORM_SESSION_OPTIONS, quoteIdent, quoteLiteral } from "../pg/client";
import { cleanChildEnv } from "../pg/pgbackrest";
import { CommandError, runCommand } from "../process/run";
import { terminateSessions } from "../pg/sessions";
import { dsnToPgEnv, dsnWithDatabase } from "../pg/dsn";
import type { LoadRole } from "./loadRole";
import { settleAll } from "../process/settleAll";

export interface DatabaseFacts {
  oid: number;
  owner: string;
  encoding: string;
  collate: string;
  ctype: string;
  localeProvider: string;
  iculocale: string | null;
  allowConnections: boolean;
  comment: string | null;
}

export async function databaseFacts(admin: Client, database: string): Promise<DatabaseFacts | undefined> {
  const r = await admin.query<{
    oid: number;
    owner: string;
    encoding: string;
    datcollate: string;
    datctype: string;
    datlocprovider: string;
    daticulocale: string | null;
    datallowconn: boolean;
    comment: string | null;
  }>(
    `SELECT oid::int AS oid, pg_get_userbyid(datdba)::text AS owner, pg_encoding_to_char(encoding) AS encoding,
            datcollate, datctype, datlocprovider::text AS datlocprovider, daticulocale, datallowconn,
            shobj_description(oid, 'pg_database') AS comment
     FROM pg_database WHERE datname = $1`,
    [database],
  );
  const row = r.rows[0];
  if (!row) return undefined;
  return {
    oid: row.oid,
    owner: row.owner,
    encoding: row.encoding,
    collate: row.datcollate,
    ctype: row.datctype,
    localeProvider: row.datlocprovider,
    iculocale: row.daticulocale,
    allowConnections: row.datallowconn,
    comment: row.comment,
  };
}

export async function databaseExists(admin: Client, database: string): Promise<boolean> {
  const r = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
  return (r.rowCount ?? 0) > 0;
}

/**
 * `CREATE DATABASE <restoreDb>` from template0 with the live database's owner, encoding and locale,
 * locked down while it is filled: no privilege for PUBLIC nor for its owner, so only superusers
 * (the restore itself) connect until the swap gives the tenant's privileges back.
 */
export async function createRestoreDatabase(
  admin: Client,
  live: DatabaseFacts,
  restoreDb: string,
): Promise<void> {
  const locale =
    live.localeProvider === "i" && live.iculocale
      ? ` LOCALE_PROVIDER icu ICU_LOCALE ${quoteLiteral(live.iculocale)}`
      : "";
  await admin.query(
    `CREATE DATABASE ${quoteIdent(restoreDb)} WITH OWNER ${quoteIdent(live.owner)} TEMPLATE template0 ` +
      `ENCODING ${quoteLiteral(live.encoding)} LC_COLLATE ${quoteLiteral(live.collate)} ` +
      `LC_CTYPE ${quoteLiteral(live.ctype)}${locale} STRATEGY WAL_LOG`,
  );
  await admin.query(`REVOKE ALL ON DATABASE ${quoteIdent(restoreDb)} FROM PUBLIC`);
  await admin.query(`REVOKE ALL ON DATABASE ${quoteIdent(restoreDb)} FROM ${quoteIdent(live.owner)}`);
  // CREATE DATABASE committed with PUBLIC's CONNECT: end any session that got in before the REVOKE.
  await terminateSessions(admin, { database: restoreDb, waitMs: 5000 });
}

/**
 * Databases below this size are restored in ONE transaction instead of with parallel jobs: for an
 * ERP schema of hundreds of small tables, thousands of per-object commits cost more than the
 * parallelism wins (measured: 410 tables, 0.5 MB of data, 2 cores: 5.7 s single vs 10 s with -j 2).
 */
export const SINGLE_TRANSACTION_BELOW_BYTES = 256 * 1024 * 1024;

/** The entries of a `pg_restore -l` listing, each with the owner it names last (none: ""). */
export function listingEntries(listing: string): { line: string; owner: string }[] {
  return listing
    .split("\n")
    .filter((line) => /^\d+; /.test(line))
    .map((line) => {
      // `<id>; <tableoid> <oid> <desc> <schema> <name> <owner>`: the owner is empty for BLOBS.
      const fields = line.trimEnd().split(" ");
      return { line, owner: fields.length >= 7 && !line.endsWith(" ") ? (fields.at(-1) as string) : "" };
    });
}

/**
 * The data entries of a dump split by who loads them: the tenant's (what its role owns, and
 * ownerless BLOBS) for the load role; the rest (the platform's schemas in the tenant database,
 * owned by the platform's NOLOGIN owner roles, whose constraints are the platform's code) for the
 * superuser.
 */
export function splitByLoader(
  listing: string,
  tenantRole: string,
  skip: (line: string) => boolean = () => false,
): { tenant: string[]; platform: string[] } {
  const tenant: string[] = [];
  const platform: string[] = [];
  for (const e of listingEntries(listing)) {
    if (skip(e.line)) continue;
    (e.owner === tenantRole || e.owner === "" ? tenant : platform).push(e.line);
  }
  return { tenant, platform };
}

export interface RestoreDumpOptions {
  jobs: number;
  sizeBytes: number;
  /** The tenant's role, owner of the rows the load role loads. */
  tenantRole: string;
  /** The restore's load role (lib/restore/loadRole.ts): the tenant's rows are loaded as it. */
  loadRole: LoadRole;
}

/** The admin's pg_restore environment on the copy: asynchronous commits (see {@link restoreDump}). */
function adminRestoreEnv(adminDsn: string, database: string): NodeJS.ProcessEnv {
  return cleanChildEnv({
    ...dsnToPgEnv(dsnWithDatabase(adminDsn, database)),
    PGOPTIONS: `${PLATFORM_SESSION_OPTIONS} -c synchronous_commit=off -c maintenance_work_mem=128MB`,
  });
}

async function pgRestore(env: NodeJS.ProcessEnv, args: string[]): Promise<string> {
  const result = await runCommand(pgBin("pg_restore"), args, { env, cwd: "/", timeoutMs: 4 * 60 * 60_000 });
  if (result.code !== 0) throw new CommandError(`pg_restore ${args.join(" ")}`, result);
  return result.stdout;
}

/** One section of a directory dump into `database` (`mode`: `--single-transaction` or `-j N`), optionally by list. */
function loadSection(
  env: NodeJS.ProcessEnv,
  mode: string[],
  section: "pre-data" | "data" | "post-data",
  database: string,
  dumpDir: string,
  list?: string,
): Promise<string> {
  return pgRestore(env, [
    ...mode,
    "--exit-on-error",
    "--no-publications",
    "--no-subscriptions",
    `--section=${section}`,
    ...(list ? ["-L", list] : []),
    "-d",
    database,
    dumpDir,
  ]);
}

/** Runs `fn` with a private directory for pg_restore lists (removed after). */
async function withListDir<T>(
  fn: (write: (name: string, lines: string[]) => Promise<string>) => Promise<T>,
): Promise<T> {
  const lists = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-restore-lists-"));
  try {
    return await fn(async (name, lines) => {
      const file = path.join(lists, name);
      await fs.writeFile(file, `${lines.join("\n")}\n`, { mode: 0o600 });
      return file;
    });
  } finally {
    await fs.rm(lists, { recursive: true, force: true });
  }
}

const singleOrParallel = (sizeBytes: number, jobs: number): string[] =>
  sizeBytes < SINGLE_TRANSACTION_BELOW_BYTES || jobs <= 1 ? ["--single-transaction"] : ["-j", String(jobs)];

/**
 * The data section: the platform's entries as the superuser, the tenant's as the load role (see
 * {@link splitByLoader}); entries `skip` names are left out.
 */
async function loadDataSection(
  adminEnv: NodeJS.ProcessEnv,
  database: string,
  dumpDir: string,
  mode: string[],
  opts: { tenantRole: string; loadRole: LoadRole; skip?: (line: string) => boolean },
): Promise<{ tenantEntries: number; platformEntries: number }> {
  const loadEnv = { ...adminEnv, PGUSER: opts.loadRole.name, PGPASSWORD: opts.loadRole.password };
  const listing = await pgRestore(adminEnv, ["-l", dumpDir]);
  const { tenant, platform } = splitByLoader(listing, opts.tenantRole, opts.skip);
  await withListDir(async (write) => {
    if (platform.length)
      await loadSection(adminEnv, mode, "data", database, dumpDir, await write("platform.list", platform));
    if (tenant.length)
      await loadSection(loadEnv, mode, "data", database, dumpDir, await write("tenant.list", tenant));
  });
  return { tenantEntries: tenant.length, platformEntries: platform.length };
}

/**
 * `pg_restore --exit-on-error` of a directory dump into `database`, in three sections:
 * pre-data (definitions) and post-data (indexes, constraints, triggers) over the admin DSN, and
 * the data between them with the tenant's rows loaded by the restore's load role, so that the
 * tenant's CHECK and domain constraints and generated columns never run with the platform's
 * rights. `-j <jobs>` for large databases, `--single-transaction` (per section) for small ones.
 * Commits are asynchronous: the copy is worthless until the swap, whose synchronous commit
 * flushes all WAL before it.
 */
export async function restoreDump(
  adminDsn: string,
  database: string,
  dumpDir: string,
  opts: RestoreDumpOptions,
): Promise<{ mode: string; tenantEntries: number; platformEntries: number }> {
  const adminEnv = adminRestoreEnv(adminDsn, database);
  const mode = singleOrParallel(opts.sizeBytes, opts.jobs);
  await loadSection(adminEnv, mode, "pre-data", database, dumpDir);
  const loaded = await loadDataSection(adminEnv, database, dumpDir, mode, opts);
  await loadSection(adminEnv, mode, "post-data", database, dumpDir);
  return { mode: mode.join(" "), ...loaded };
}

/**
 * The entries of a dump a restore made for its own checks: the `amcheck` extension, installed in
 * the scratch database for pg_amcheck while the dump was taken, unless the tenant had it.
 */
export function isScratchOnlyEntry(line: string): boolean {
  return /^\d+; \d+ \d+ (?:EXTENSION - amcheck|COMMENT - EXTENSION amcheck)(?: |$)/.test(line);
}

/** A `pg_restore -l` line of a foreign key constraint. */
export const isForeignKeyEntry = (line: string): boolean => /^\d+; \d+ \d+ FK CONSTRAINT /.test(line);

/** The entries of `section` in a dump's listing, minus those `skip` names. */
async function sectionList(
  env: NodeJS.ProcessEnv,
  dumpDir: string,
  section: string,
  skip: (line: string) => boolean,
): Promise<string[]> {
  const listing = await pgRestore(env, ["-l", `--section=${section}`, dumpDir]);
  return listingEntries(listing)
    .map((e) => e.line)
    .filter((line) => !skip(line));
}

/** A `pg_restore -l` line of a table's definition (not its ATTACH, comment or privileges). */
export const isTableEntry = (line: string): boolean => /^\d+; \d+ \d+ TABLE /.test(line);

/**
 * A pre-data listing cut for a parallel load: the entries before the first table, the tables dealt
 * round-robin into `groups` lists, and every other entry after the first table, in order.
 */
export function splitSchemaList(
  entries: string[],
  groups: number,
): { before: string[]; tables: string[][]; after: string[] } {
  const first = entries.findIndex(isTableEntry);
  if (first < 0) return { before: entries, tables: [], after: [] };
  const tables: string[][] = Array.from({ length: Math.max(1, groups) }, () => []);
  const after: string[] = [];
  let dealt = 0;
  for (const line of entries.slice(first)) {
    if (isTableEntry(line)) tables[dealt++ % tables.length].push(line);
    else after.push(line);
  }
  return { before: entries.slice(0, first), tables: tables.filter((t) => t.length > 0), after };
}

/**
 * The overlapped pipeline's first load: the definitions (pre-data) of a schema-only dump while the
 * data is still being dumped. With `jobs` > 1 the tables are created by that many sessions at once
 * (each table's TOAST index ends with an fsync: ~400 of them, one after another, for an ERP
 * database), what comes before them and after them in one transaction each. A table that needs
 * another one (inheritance, a typed table, a column of a table's row type) can fail in a parallel
 * session: then `reset` empties the database and the definitions load in one transaction, as with
 * `jobs` 1. Entries `skip` names are left out.
 */
export async function loadSchema(
  adminDsn: string,
  database: string,
  schemaDumpDir: string,
  skip: (line: string) => boolean,
  opts: { jobs: number; reset: () => Promise<void>; log?: (msg: string) => void } = {
    jobs: 1,
    reset: async () => undefined,
  },
): Promise<{ parallel: boolean }> {
  const env = adminRestoreEnv(adminDsn, database);
  const entries = await sectionList(env, schemaDumpDir, "pre-data", skip);
  const one = ["--single-transaction"];
  return withListDir(async (write) => {
    const load = async (name: string, lines: string[]): Promise<void> => {
      if (lines.length > 0)
        await loadSection(env, one, "pre-data", database, schemaDumpDir, await write(name, lines));
    };
    const split = splitSchemaList(entries, opts.jobs);
    if (split.tables.length > 1) {
      try {
        await load("before.list", split.before);
        await settleAll(split.tables.map((tables, i) => load(`tables-${i}.list`, tables)));
        await load("after.list", split.after);
        return { parallel: true };
      } catch (err) {
        opts.log?.(`definitions in parallel failed (${firstLine(err)}); loading them in one transaction`);
        await opts.reset();
      }
    }
    await load("pre-data.list", entries);
    return { parallel: false };
  });
}

/** The error PostgreSQL gave, else the message's first line. */
function firstLine(err: unknown): string {
  const lines = String((err as Error).message ?? err).split("\n");
  return lines.find((l) => /ERROR:/.test(l))?.trim() ?? lines[0];
}

export interface LoadDataOptions extends RestoreDumpOptions {
  /** pg_restore jobs for the post-data section (indexes, constraints: each index build ends with an fsync). */
  indexJobs: number;
  /** Entries left out. */
  skip: (line: string) => boolean;
  /**
   * Runs beside the foreign keys, once the rows, indexes and other constraints are in: they hold
   * no lock a reader of the tables waits for (SHARE ROW EXCLUSIVE), unlike a primary key's build.
   */
  besideForeignKeys?: () => Promise<void>;
  /** Called once the rows are loaded, before the indexes (a crash point). */
  afterRows?: () => void;
}

/**
 * The overlapped pipeline's second load: the rows (as in {@link restoreDump}), then the post-data
 * section: indexes and the other constraints with `indexJobs` parallel jobs, the foreign keys
 * after them in one transaction. Building an index of a WAL-logged relation ends with an fsync of
 * its file (PostgreSQL 15's nbtsort): hundreds of small indexes wait on the disk one after another
 * in one transaction, while parallel jobs overlap those waits. Foreign keys lock both their tables:
 * parallel jobs deadlock on a cycle of them (res_partner, res_users, res_company); they build no
 * index, so one transaction loses nothing to the disk.
 */
export async function loadDataAndIndexes(
  adminDsn: string,
  database: string,
  dataDumpDir: string,
  opts: LoadDataOptions,
): Promise<{ mode: string; tenantEntries: number; platformEntries: number; indexesMs: number }> {
  const env = adminRestoreEnv(adminDsn, database);
  const mode = singleOrParallel(opts.sizeBytes, opts.jobs);
  const loaded = await loadDataSection(env, database, dataDumpDir, mode, opts);
  opts.afterRows?.();
  const t0 = Date.now();
  const indexMode = opts.indexJobs > 1 ? ["-j", String(opts.indexJobs)] : ["--single-transaction"];
  const entries = await sectionList(env, dataDumpDir, "post-data", opts.skip);
  await withListDir(async (write) => {
    const rest = entries.filter((line) => !isForeignKeyEntry(line));
    const foreignKeys = entries.filter(isForeignKeyEntry);
    const load = async (name: string, lines: string[], how: string[]): Promise<void> => {
      if (lines.length)
        await loadSection(env, how, "post-data", database, dataDumpDir, await write(name, lines));
    };
    await load("indexes.list", rest, indexMode);
    await settleAll([
      load("foreign-keys.list", foreignKeys, ["--single-transaction"]),
      opts.besideForeignKeys?.() ?? Promise.resolve(),
    ]);
  });
  return {
    mode: `${mode.join(" ")}; post-data ${indexMode.join(" ")}, then foreign keys`,
    ...loaded,
    indexesMs: Date.now() - t0,
  };
}

/** GUCs whose value is a list of (quoted) items, written item by item (as pg_dump does). */
const LIST_GUCS = new Set([
  "local_preload_libraries",
  "search_path",
  "session_preload_libraries",
  "shared_preload_libraries",
  "temp_tablespaces",
  "unix_socket_directories",
]);

/** Splits a flattened GUC list (`"$user", public`) into its items. */
export function splitGucList(value: string): string[] {
  const items: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (value[i] === " ") i++;
    let item = "";
    if (value[i] === '"') {
      i++;
      while (i < value.length) {
        if (value[i] === '"' && value[i + 1] === '"') {
          item += '"';
          i += 2;
        } else if (value[i] === '"') {
          i++;
          break;
        } else item += value[i++];
      }
      while (i < value.length && value[i] !== ",") i++;
    } else {
      while (i < value.length && value[i] !== ",") item += value[i++];
      item = item.trim();
    }
    items.push(item);
    if (value[i] === ",") i++;
  }
  return items;
}

/** `SET name TO value` for one `name=value` entry of pg_db_role_setting. */
export function setClause(entry: string): string {
  const eq = entry.indexOf("=");
  if (eq <= 0) throw new Error(`malformed database setting "${entry}"`);
  const name = entry.slice(0, eq);
  const value = entry.slice(eq + 1);
  const values = LIST_GUCS.has(name.toLowerCase()) ? splitGucList(value) : [value];
  return `SET ${quoteIdent(name)} TO ${values.map(quoteLiteral).join(", ")}`;
}

/** Copies `ALTER DATABASE ... SET` (and `ALTER ROLE ... IN DATABASE ... SET`) settings and the comment. */
export async function copyDatabaseSettings(admin: Client, from: string, to: string): Promise<number> {
  const r = await admin.query<{ role: string | null; setconfig: string[] }>(
    `SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole)::text END AS role, s.setconfig
     FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = $1`,
    [from],
  );
  let n = 0;
  for (const row of r.rows) {
    for (const entry of row.setconfig ?? []) {
      const target = row.role
        ? `ROLE ${quoteIdent(row.role)} IN DATABASE ${quoteIdent(to)}`
        : `DATABASE ${quoteIdent(to)}`;
      await admin.query(`ALTER ${target} ${setClause(entry)}`);
      n++;
    }
  }
  const c = await admin.query<{ comment: string | null }>(
    "SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1",
    [from],
  );
  const comment = c.rows[0]?.comment;
  if (comment) await admin.query(`COMMENT ON DATABASE ${quoteIdent(to)} IS ${quoteLiteral(comment)}`);
  return n;
}

interface AclEntry {
  grantor: string;
  grantee: string | null;
  privilege: string;
  grantable: boolean;
}

async function databaseAcl(
  admin: Client,
  database: string,
): Promise<{ owner: string; acl: AclEntry[] | null }> {
  const r = await admin.query<{ owner: string; has_acl: boolean }>(
    "SELECT pg_get_userbyid(datdba)::text AS owner, datacl IS NOT NULL AS has_acl FROM pg_database WHERE datname = $1",
    [database],
  );
  if (!r.rows[0]) throw new Error(`database "${database}" does not exist`);
  if (!r.rows[0].has_acl) return { owner: r.rows[0].owner, acl: null };
  const e = await admin.query<{
    grantor: string;
    grantee: string | null;
    privilege_type: string;
    is_grantable: boolean;
  }>(
    `SELECT pg_get_userbyid(a.grantor)::text AS grantor,
            CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee)::text END AS grantee,
            a.privilege_type, a.is_grantable
     FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1`,
    [database],
  );
  return {
    owner: r.rows[0].owner,
    acl: e.rows.map((x) => ({
      grantor: x.grantor,
      grantee: x.grantee,
      privilege: x.privilege_type,
      grantable: x.is_grantable,
    })),
  };
}

/**
 * Gives `to` exactly the database privileges `from` has (for a tenant: the owner's, CONNECT and
 * TEMPORARY for the tenant role, nothing for PUBLIC). Idempotent.
 */
export async function copyDatabaseAcl(admin: Client, from: string, to: string): Promise<void> {
  const source = await databaseAcl(admin, from);
  const current = await databaseAcl(admin, to);
  const db = quoteIdent(to);
  const who = (g: string | null) => (g === null ? "PUBLIC" : quoteIdent(g));
  const holders = new Set<string | null>([null, current.owner, ...(current.acl ?? []).map((a) => a.grantee)]);
  for (const h of holders) await admin.query(`REVOKE ALL ON DATABASE ${db} FROM ${who(h)} CASCADE`);
  // A NULL ACL means the defaults: everything for the owner, CONNECT and TEMPORARY for PUBLIC.
  const entries: AclEntry[] = source.acl ?? [
    ...["CREATE", "CONNECT", "TEMPORARY"].map((p) => ({
      grantor: source.owner,
      grantee: current.owner,
      privilege: p,
      grantable: false,
    })),
    ...["CONNECT", "TEMPORARY"].map((p) => ({
      grantor: source.owner,
      grantee: null,
      privilege: p,
      grantable: false,
    })),
  ];
  for (const a of entries) {
    const grantedBy = a.grantor !== current.owner ? ` GRANTED BY ${quoteIdent(a.grantor)}` : "";
    await admin.query(
      `GRANT ${a.privilege} ON DATABASE ${db} TO ${who(a.grantee)}${a.grantable ? " WITH GRANT OPTION" : ""}${grantedBy}`,
    );
  }
}

/** The privileges of a database as comparable text entries (tests, diagnostics). */
export async function databaseAclSummary(admin: Client, database: string): Promise<string[]> {
  const { acl, owner } = await databaseAcl(admin, database);
  if (acl === null) return ["<default>"];
  return acl
    .map(
      (a) =>
        `${a.grantee === owner ? "<owner>" : (a.grantee ?? "PUBLIC")}:${a.privilege}${a.grantable ? "*" : ""}` +
        `/${a.grantor === owner ? "<owner>" : a.grantor}`,
    )
    .sort();
}

// ---------------------------------------------------------------------------------------------
// filestore

/**
 * Swaps filestore directories like the databases: `<db>` → `<preDb>`, `<restoreDb>` → `<db>`.
 * Idempotent: resumes a swap interrupted between the two renames.
 */
export async function swapFilestores(live: string, restored: string, pre: string): Promise<void> {
  if (existsSync(restored)) {
    if (existsSync(live)) {
      if (existsSync(pre))
        throw new Error(`cannot swap filestores: ${live}, ${restored} and ${pre} all exist`);
      await fs.rename(live, pre);
    }
    await fs.rename(restored, live);
  } else if (!existsSync(live)) {
    // Nothing restored and nothing live (a tenant without a filestore): give it an empty one.
    await fs.mkdir(live, { recursive: true, mode: 0o750 });
  }
}
