/**
 * Template databases that tenants are copied from (`CREATE DATABASE ... TEMPLATE`).
 *
 * A template is built under a scratch name `<database>__building` (from a dump, or by running
 * the ERP initializer command), then renamed to its final name and marked `IS_TEMPLATE true
 * ALLOW_CONNECTIONS false`. A crash mid-build therefore leaves only `__building`: the next run
 * drops and rebuilds it (or, when the scratch copy was fully loaded, just finishes the rename);
 * no half-made template is ever used.
 *
 * The SHA-256 of the source (dump file contents, or the command text) is recorded as the
 * template's COMMENT, so a changed dump is noticed (`templateStatus`) and rebuilt.
 */
import { createHash } from "node:crypto";
import * as fsSync from "node:fs";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { quoteIdent, quoteLiteral, withClient } from "../pg/client";
import { terminateSessions } from "../pg/sessions";
import { CommandError, runCommand } from "../process/run";
import { POD_DATA_DIR, kubectlRunArgs, type KubernetesCommandRunner } from "./templatePod";
import { installGuards, readGuards, type GuardsOptions } from "../guards/install";
import {
  builderEnv,
  dropBuilder,
  expandCommand,
  finishBuilder,
  prepareBuilder,
  prepareBuilderRole,
  retireBuilder,
  retireLeftoverBuilder,
  templateFilestore,
  type BuilderRole,
  type TemplateBuilder,
} from "./templateBuilder";
import { BUILDING_SUFFIX, checkDatabaseName } from "../pg/names";
import { dsnToPgEnv, dsnWithDatabase } from "../pg/dsn";
import { parseTemplateComment, templateComment } from "./sql";
import { PRIVATE_DIR, PRIVATE_FILE, ensureDirMode } from "../fs/stateModes";
import { forwardTo } from "../pulumi/forward";
import { dropSparesOf } from "./spares";
import type * as TenantProvider from "./provider";

export interface TemplateSource {
  /** A plain SQL dump (loaded with psql) or a pg_dump custom/directory archive (pg_restore). */
  fromDump?: string;
  /**
   * A shell command that fills the database, `{db}` replaced by its name and `{data_dir}` by the
   * build's data directory; it runs as the template's builder role (never a superuser:
   * templateBuilder.ts) with PGHOST, PGPORT, PGUSER, PGPASSWORD and PGDATABASE naming it — on this
   * machine with ODOO_RC naming an odoo.conf with that data_dir, in `stateDir`; on the kubernetes
   * target in a pod (templatePod.ts), where `{data_dir}` is a directory under the pod's `/tmp`
   * (its files are not collected). Example:
   * `odoo -d {db} -i base,sale --stop-after-init --without-demo=all`.
   */
  fromCommand?: string;
}

export interface TemplateSpec extends TemplateSource {
  /** Where `fromCommand` runs: absent, on this machine; on the kubernetes target, in a pod (templatePod.ts). */
  commandRunner?: KubernetesCommandRunner;
  /**
   * The builder role's password for a `commandRunner` build: the value of the Secret the pod reads
   * (`commandRunner.passwordSecret`). Required with a runner; on this machine a new random password
   * is made for each build instead.
   */
  builderPassword?: string;
  /** The template's name in stack config (e.g. `default`); for messages and logs. */
  name: string;
  /** The template database's name. */
  database: string;
  /** The platform's state directory: the command's working directory and where build logs go. */
  stateDir: string;
  /**
   * Where tenants' filestores are (absent: the ERP keeps them elsewhere). The files a `fromCommand`
   * build writes become `<filestoreRoot>/<database>`, copied into each new tenant.
   */
  filestoreRoot?: string;
  /**
   * Install the platform's guards (undo capture, quota and snapshot APIs) into the template, so
   * tenants copied from it start with them; upgraded in place when the program's version changes.
   */
  guards?: GuardsOptions;
}

export interface TemplateStatus {
  exists: boolean;
  /** Source hash recorded on the template (absent when it has none: not built by us). */
  hash?: string;
  isTemplate: boolean;
  allowConnections: boolean;
  /** A `<database>__building` scratch database exists (an interrupted build). */
  building: boolean;
}

export interface EnsureTemplateResult {
  database: string;
  hash: string;
  /** True when the template was (re)built by this call. */
  rebuilt: boolean;
}

export type Log = (message: string) => void;
const noLog: Log = () => undefined;
/** Advisory lock class for template builds (second key: hashtext of the database name). */
const TEMPLATE_LOCK_CLASS = 7315;

function checkSource(src: TemplateSource): void {
  if (Boolean(src.fromDump) === Boolean(src.fromCommand)) {
    throw new Error("a template needs exactly one of fromDump or fromCommand");
  }
}

/** The password a pod build's builder logs in with (the value of the Secret the pod reads). */
function podBuilderPassword(spec: TemplateSpec): string {
  if (!spec.builderPassword)
    throw new Error(`template ${spec.name}: a pod build needs builderPassword (the pod's Secret value)`);
  return spec.builderPassword;
}

function hashFileInto(hash: ReturnType<typeof createHash>, file: string): void {
  const fd = fsSync.openSync(file, "r");
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fsSync.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fsSync.closeSync(fd);
  }
}

/**
 * SHA-256 (hex) of a template source: the dump's bytes (a directory archive: every file's name
 * and bytes, sorted), or the command text (the same value components/platform/templates.ts passes
 * as `dumpHash`). Synchronous so a Pulumi program can compute it at
 * program time and pass it as the TenantTemplate's `dumpHash`.
 */
export function templateSourceHash(src: TemplateSource): string {
  checkSource(src);
  const hash = createHash("sha256");
  if (src.fromCommand) {
    hash.update(src.fromCommand);
    return hash.digest("hex");
  }
  const file = src.fromDump as string;
  const stat = fsSync.statSync(file);
  if (stat.isDirectory()) {
    for (const entry of fsSync.readdirSync(file).sort()) {
      hash.update(`${entry}\0`);
      hashFileInto(hash, path.join(file, entry));
    }
  } else {
    hashFileInto(hash, file);
  }
  return hash.digest("hex");
}

async function dbRow(
  admin: Client,
  database: string,
): Promise<{ allowConnections: boolean; isTemplate: boolean; comment: string | null } | undefined> {
  const r = await admin.query<{ datallowconn: boolean; datistemplate: boolean; comment: string | null }>(
    "SELECT datallowconn, datistemplate, shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1",
    [database],
  );
  const row = r.rows[0];
  return row
    ? { allowConnections: row.datallowconn, isTemplate: row.datistemplate, comment: row.comment }
    : undefined;
}

async function statusWith(admin: Client, database: string): Promise<TemplateStatus> {
  const final = await dbRow(admin, database);
  const building = await dbRow(admin, database + BUILDING_SUFFIX);
  const hash = parseTemplateComment(final?.comment);
  return {
    exists: final !== undefined,
    ...(hash ? { hash } : {}),
    isTemplate: final?.isTemplate ?? false,
    allowConnections: final?.allowConnections ?? false,
    building: building !== undefined,
  };
}

/** Whether the template exists, the source hash it was built from, and whether a build was interrupted. */
export async function templateStatus(adminDsn: string, database: string): Promise<TemplateStatus> {
  checkDatabaseName(database, "template database");
  return withClient(adminDsn, (admin) => statusWith(admin, database));
}

/** Drops a database even if it is marked as a template (no error when missing). */
async function dropDatabase(admin: Client, database: string): Promise<void> {
  const row = await dbRow(admin, database);
  if (!row) return;
  if (row.isTemplate) await admin.query(`ALTER DATABASE ${quoteIdent(database)} IS_TEMPLATE false`);
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)} WITH (FORCE)`);
}

async function withTemplateLock<T>(admin: Client, database: string, fn: () => Promise<T>): Promise<T> {
  await admin.query("SELECT pg_advisory_lock($1, hashtext($2))", [TEMPLATE_LOCK_CLASS, database]);
  try {
    return await fn();
  } finally {
    await admin
      .query("SELECT pg_advisory_unlock($1, hashtext($2))", [TEMPLATE_LOCK_CLASS, database])
      .catch(() => undefined);
  }
}

function isArchive(file: string): boolean {
  const stat = fsSync.statSync(file);
  if (stat.isDirectory()) return fsSync.existsSync(path.join(file, "toc.dat"));
  const fd = fsSync.openSync(file, "r");
  try {
    const head = Buffer.alloc(5);
    fsSync.readSync(fd, head, 0, 5, 0);
    return head.toString("latin1") === "PGDMP";
  } finally {
    fsSync.closeSync(fd);
  }
}

async function writeBuildLog(spec: TemplateSpec, text: string): Promise<string> {
  const dir = path.join(path.resolve(spec.stateDir), "templates");
  await ensureDirMode(dir, PRIVATE_DIR);
  const file = path.join(dir, `${spec.name.replace(/[^A-Za-z0-9_.-]/g, "_")}.build.log`);
  await fs.writeFile(file, text, { mode: PRIVATE_FILE });
  await fs.chmod(file, PRIVATE_FILE);
  return file;
}

async function loadSource(
  adminDsn: string,
  spec: TemplateSpec,
  target: string,
  log: Log,
  builder?: BuilderRole | TemplateBuilder,
): Promise<void> {
  let env: NodeJS.ProcessEnv = { ...process.env, ...dsnToPgEnv(dsnWithDatabase(adminDsn, target)) };
  let file: string;
  let args: string[];
  let cwd: string | undefined;
  if (spec.fromDump) {
    const dump = path.resolve(spec.fromDump);
    if (isArchive(dump)) {
      file = "pg_restore";
      args = ["--no-owner", "--no-acl", "--exit-on-error", "--jobs=4", "--dbname", target, dump];
    } else {
      file = "psql";
      args = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", target, "-f", dump];
    }
    log(`template ${spec.name}: loading ${dump} into ${target}`);
  } else if (spec.commandRunner) {
    if (!builder) throw new Error(`template ${spec.name}: a pod build needs its builder role`);
    const command = expandCommand(spec.fromCommand as string, target, POD_DATA_DIR);
    // kubectl itself needs no PostgreSQL credentials: the pod reads the builder's from its Secret.
    env = { ...process.env };
    file = "kubectl";
    args = kubectlRunArgs(spec.commandRunner, { database: target, role: builder.role, command });
    cwd = path.resolve(spec.stateDir);
    await fs.mkdir(cwd, { recursive: true });
    log(`template ${spec.name}: running ${command} in a pod of ${spec.commandRunner.image}`);
  } else {
    const dataDir = builder && "dataDir" in builder ? builder.dataDir : "";
    if (builder && "odooRc" in builder) env = { ...process.env, ...builderEnv(adminDsn, target, builder) };
    const command = expandCommand(spec.fromCommand as string, target, dataDir);
    file = "/bin/sh";
    args = ["-c", command];
    cwd = path.resolve(spec.stateDir);
    await fs.mkdir(cwd, { recursive: true });
    log(`template ${spec.name}: running ${command}`);
  }
  const started = Date.now();
  const result = await runCommand(file, args, { env, cwd });
  const logFile = await writeBuildLog(
    spec,
    `$ ${file} ${args.join(" ")}\n# exit ${result.code} after ${Date.now() - started} ms\n${result.stdout}${result.stderr}`,
  );
  if (result.code !== 0) {
    const err = new CommandError(`${file} ${args.join(" ")}`, result);
    err.message = `template ${spec.name}: building ${target} failed (full output in ${logFile})\n${err.message}`;
    throw err;
  }
  log(`template ${spec.name}: loaded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * Makes sure the template database exists, is complete and was built from the current source.
 * Builds (or rebuilds, when the source hash changed) under `<database>__building`, then swaps it
 * in. Serialized per template with an advisory lock; safe to rerun after a crash at any point.
 */
export async function ensureTemplate(
  adminDsn: string,
  spec: TemplateSpec,
  log: Log = noLog,
): Promise<EnsureTemplateResult> {
  checkDatabaseName(spec.database, "template database");
  checkSource(spec);
  if (spec.fromCommand && spec.commandRunner) podBuilderPassword(spec); // refused before anything is made
  const hash = templateSourceHash(spec);
  const building = spec.database + BUILDING_SUFFIX;
  const comment = templateComment(spec.name, hash);
  const db = quoteIdent(spec.database);
  return withClient(adminDsn, (admin) =>
    withTemplateLock(admin, spec.database, async () => {
      // A build killed mid-way (no chance to retire its builder) leaves no role that can log in.
      await retireLeftoverBuilder(admin, spec.database);
      const final = await dbRow(admin, spec.database);
      let rebuilt = false;
      if (!final || parseTemplateComment(final.comment) !== hash) {
        const scratch = await dbRow(admin, building);
        if (scratch && parseTemplateComment(scratch.comment) === hash) {
          log(`template ${spec.name}: finishing an interrupted build (${building} is complete)`);
        } else {
          if (scratch) log(`template ${spec.name}: dropping incomplete ${building}`);
          await dropDatabase(admin, building);
          await admin.query(
            `CREATE DATABASE ${quoteIdent(building)} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C'`,
          );
          // template0 lets PUBLIC connect: no tenant may reach (or hold open) a template being built.
          await admin.query(`REVOKE ALL ON DATABASE ${quoteIdent(building)} FROM PUBLIC`);
          await buildInto(admin, adminDsn, spec, building, log);
          // Marks the scratch copy complete: from here on a crash only needs the swap redone.
          await admin.query(`COMMENT ON DATABASE ${quoteIdent(building)} IS ${quoteLiteral(comment)}`);
        }
        if (final)
          log(`template ${spec.name}: replacing ${spec.database} (source changed or not built by us)`);
        await dropDatabase(admin, spec.database);
        await terminateSessions(admin, { database: building, waitMs: 5000 });
        await admin.query(`ALTER DATABASE ${quoteIdent(building)} RENAME TO ${db}`);
        if (spec.filestoreRoot) await dropDir(templateFilestore(spec.filestoreRoot, spec.database));
        rebuilt = true;
      }
      // The built files follow the database (also after a crash between the rename and this).
      if (spec.filestoreRoot) await swapTemplateFilestore(spec.filestoreRoot, building, spec.database);
      const guardsChanged = spec.guards ? await ensureTemplateGuards(admin, adminDsn, spec, log) : false;
      // Spares copied from the previous content are never claimed; drop them now.
      if (rebuilt || guardsChanged) await dropSparesOf(admin, spec.database);
      await admin.query(`ALTER DATABASE ${db} IS_TEMPLATE true ALLOW_CONNECTIONS false`);
      await admin.query(`REVOKE ALL ON DATABASE ${db} FROM PUBLIC`);
      await admin.query(`COMMENT ON DATABASE ${db} IS ${quoteLiteral(comment)}`);
      await terminateSessions(admin, { database: spec.database, waitMs: 5000 });
      return { database: spec.database, hash, rebuilt };
    }),
  );
}

/** Fills the building database: a `fromCommand` as the builder role (here or in a pod), a dump as the platform. */
async function buildInto(
  admin: Client,
  adminDsn: string,
  spec: TemplateSpec,
  building: string,
  log: Log,
): Promise<void> {
  if (!spec.fromCommand) {
    await loadSource(adminDsn, spec, building, log);
    return;
  }
  let builder: BuilderRole | TemplateBuilder;
  if (spec.commandRunner) {
    builder = await prepareBuilderRole(admin, {
      templateDatabase: spec.database,
      building,
      password: podBuilderPassword(spec),
    });
  } else {
    builder = await prepareBuilder(admin, {
      templateDatabase: spec.database,
      building,
      stateDir: spec.stateDir,
      templateName: spec.name,
    });
  }
  try {
    await loadSource(adminDsn, spec, building, log, builder);
  } catch (err) {
    await retireBuilder(admin, builder.role).catch(() => undefined);
    throw err;
  }
  await finishBuilder(admin, adminDsn, { building, filestoreRoot: spec.filestoreRoot }, builder);
}

async function dropDir(dir: string): Promise<void> {
  await fs.rm(dir, { recursive: true, force: true });
}

/** `<root>/<building>` (a finished build's files) → `<root>/<database>`, once the database is swapped in. */
async function swapTemplateFilestore(root: string, building: string, database: string): Promise<void> {
  const from = templateFilestore(root, building);
  const exists = await fs.stat(from).then(
    () => true,
    () => false,
  );
  if (!exists) return;
  const to = templateFilestore(root, database);
  await dropDir(to);
  await fs.rename(from, to);
}

/** Installs or upgrades the guards in the template (opened to connections for the duration); true when changed. */
async function ensureTemplateGuards(
  admin: Client,
  adminDsn: string,
  spec: TemplateSpec,
  log: Log,
): Promise<boolean> {
  await admin.query(`ALTER DATABASE ${quoteIdent(spec.database)} ALLOW_CONNECTIONS true`);
  return withClient(dsnWithDatabase(adminDsn, spec.database), async (db) => {
    const before = await readGuards(db);
    const after = await installGuards(db, spec.guards);
    if (!before.current) log(`template ${spec.name}: guards ${before.version} → ${after.version}`);
    return !before.current;
  });
}

/**
 * Drops the template (and any interrupted build). With `onlyIfHash`, the template is kept unless
 * it was built from that source: a replacement created before the old resource is deleted (same
 * database name, new hash) must survive the old one's delete.
 */
export async function dropTemplate(
  adminDsn: string,
  database: string,
  opts: { onlyIfHash?: string; filestoreRoot?: string } = {},
): Promise<void> {
  checkDatabaseName(database, "template database");
  await withClient(adminDsn, (admin) =>
    withTemplateLock(admin, database, async () => {
      const final = await dbRow(admin, database);
      const liveHash = parseTemplateComment(final?.comment);
      // A replacement built under the same name (another hash) keeps the database and its builder.
      const replaced = final && opts.onlyIfHash && liveHash && liveHash !== opts.onlyIfHash;
      if (!replaced && final) {
        await dropDatabase(admin, database);
        if (opts.filestoreRoot) await dropDir(templateFilestore(opts.filestoreRoot, database));
      }
      await dropDatabase(admin, database + BUILDING_SUFFIX);
      if (opts.filestoreRoot)
        await dropDir(templateFilestore(opts.filestoreRoot, database + BUILDING_SUFFIX));
      if (!replaced) await dropSparesOf(admin, database);
      // Last: the role may still own the building database.
      if (!replaced) await dropBuilder(admin, database);
    }),
  );
}

// ---- Kept for the providers in existing stacks' state (lib/pulumi/forward.ts); the code is in ./provider.
const tenantProvider = (): typeof TenantProvider => require("./provider") as typeof TenantProvider;
export const diffTemplate = forwardTo(tenantProvider, "diffTemplate");
