/**
 * Point-in-time restore of ONE tenant database in a shared cluster
 * (docs/architecture.md#snapshots-and-restore), as plain
 * functions the PitrRestore dynamic provider and the tests call.
 *
 * Steps, each journaled in the registry (`tenant_steps` as `restore:<id>:<step>`, and
 * `restores.step`) BEFORE it runs, with its duration recorded in `restores.timings`:
 *   1. validate         resolve the target and backup set; switch WAL and wait until it is archived
 *   2. scratch-restore  selective pgBackRest restore into `<stateDir>/restore/<id>`, recover, promote
 *   3. verify           pg_amcheck, row counts of key tables
 *   4. copy             `<db>__restore_<id>` in the live cluster (pg_dump -Fd | pg_restore: the
 *                       tenant's rows loaded by the restore's own load role, see ./loadRole.ts),
 *                       every sequence raised to its column's maximum and re-logged, settings,
 *                       comment; the files the copy's attachments reference, as hard links
 *                       (./filestore.ts)
 *   5. swap             503, connections off, ONE transaction renames `<db>` → `<db>__pre_<id>` and
 *                       the copy → `<db>`; privileges and filestore as before; connections back
 *   6. cleanup          scratch instance stopped and removed
 *
 * The overlapped pipeline (./pipeline.ts, the default) runs independent work at once: the archive
 * wait inside step 2 beside the files; in step 3 the dumps and the load of the copy's definitions
 * beside pg_amcheck; in step 4 the scratch instance stopped beside the load, the indexes by
 * parallel jobs. The journal and the crash handling are the same for both pipelines.
 *
 * Crash safety: the swap's rename transaction is the commit point. {@link resumeOrRollback} finds
 * a `running` restore of the tenant and, from the catalog, either rolls it back (no `<db>__pre_<id>`
 * yet: scratch, copy, its load role and filestore removed, the tenant untouched) or finishes it (privileges,
 * filestore, connections, cleanup). {@link restoreTenant} calls it first. A per-tenant advisory
 * lock (held on the registry connection, so it dies with the process) tells an interrupted
 * restore from one in progress.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { quoteIdent, withClient } from "../pg/client";
import { describeRelog, relogSequences } from "../pg/sequences";
import { setRouterMaintenance } from "../router/maintenance";
import { crashPoint } from "../process/crashPoint";
import {
  beginStep,
  ensureRegistry,
  finishStep,
  formerDatabaseNames,
  registryDsn,
} from "../registry/registry";
import { terminateSessions } from "../pg/sessions";
import { dsnWithDatabase } from "../pg/dsn";
import { segmentInRepo } from "../pg/repositories";
import type { TenantState } from "../registry/tenantState";
import { buildRestoredFilestore, describeRestoredFilestore, filestoreSources } from "./filestore";
import {
  copyDatabaseAcl,
  copyDatabaseSettings,
  createRestoreDatabase,
  databaseExists,
  databaseFacts,
  isScratchOnlyEntry,
  loadDataAndIndexes,
  loadSchema,
  restoreDump,
  swapFilestores,
} from "./copy";
import { createLoadRole, dropLoadRole } from "./loadRole";
import {
  newRestoreId,
  preRestoreDatabaseName,
  restoreDatabaseName,
  restoreFilestorePath,
  scratchDirectory,
} from "./names";
import {
  amcheckScratch,
  configureScratch,
  dumpScratchDatabase,
  freePort,
  pgbackrestRestore,
  prepareScratch,
  removeScratch,
  scratchClientConfig,
  scratchLayout,
  startScratch,
  stopScratchServer,
  type ScratchInstance,
} from "./scratch";
import { INDEX_JOBS, SCHEMA_JOBS, restorePipelineSetting, type RestorePipeline } from "./pipeline";
import { settleAll } from "../process/settleAll";
import {
  findSnapshot,
  pgbackrestTargetFor,
  sameTarget,
  targetKind,
  validateRestoreTarget,
  type ResolvedRestoreTarget,
  type RestoreTarget,
} from "./target";

export const RESTORE_STEPS = ["validate", "scratch-restore", "verify", "copy", "swap", "cleanup"] as const;
export type RestoreStep = (typeof RESTORE_STEPS)[number];
export type RestoreState = "running" | "done" | "rolled_back" | "failed";

/** Tables whose row counts are recorded (when they exist): the ERP's core. */
export const KEY_TABLES = [
  "res_company",
  "res_users",
  "res_partner",
  "res_groups",
  "ir_config_parameter",
  "ir_attachment",
  "ir_model",
  "mail_message",
  "product_template",
  "sale_order",
  "account_move",
] as const;

export interface RestoreTimings {
  validateMs?: number;
  scratchRestoreMs?: number;
  verifyMs?: number;
  copyMs?: number;
  swapMs?: number;
  cleanupMs?: number;
  /** Whole restore, first step to last. */
  totalMs?: number;
  /** From ALLOW_CONNECTIONS false on the live database to connections back on the restored one. */
  unavailableMs?: number;
  /** Parts of steps. */
  archiveWaitMs?: number;
  pgbackrestMs?: number;
  recoveryMs?: number;
  amcheckMs?: number;
  dumpMs?: number;
  pgRestoreMs?: number;
  /** Sequences of the copy raised to their columns' maximum and re-logged (lib/pg/sequences.ts). */
  sequencesMs?: number;
  /** How many sequences were behind their column and raised. */
  sequencesRaised?: number;
  filestoreMs?: number;
  /** Files the restored database references, linked into its filestore (lib/restore/filestore.ts). */
  filestoreFiles?: number;
  /** Referenced files found in no source (their first 20 names in filestoreMissingNames). */
  filestoreMissing?: number;
  filestoreMissingNames?: string[];
  /** Why the restored database's attachment references could not be read (filestore left empty). */
  filestoreRefused?: string;
  /** The overlapped pipeline (./pipeline.ts): the definitions' dump, their load into the copy (both
   *  during verify), the post-data section (indexes, constraints) and stopping the scratch instance. */
  schemaDumpMs?: number;
  schemaLoadMs?: number;
  /** 1 when the definitions' tables were created by parallel sessions, 0 when in one transaction. */
  schemaParallel?: number;
  indexesMs?: number;
  scratchStopMs?: number;
  /** How the steps were ordered (./pipeline.ts). */
  pipeline?: RestorePipeline;
  /** Row counts of the key tables in the restored database (verify; checked again after the copy). */
  rowCounts?: Record<string, number>;
  /** How the scratch instance was restored: only the tenant's files, or pgBackRest's --db-include. */
  scratchMethod?: "selective" | "pgbackrest";
  /** Why the selective method was not used, when it was not. */
  scratchFallback?: string;
}

/** A row of the registry's `restores` table. */
export interface RestoreRecord {
  id: string;
  subdomain: string;
  target: RestoreTarget;
  targetLsn: string | null;
  backup: string | null;
  state: RestoreState;
  step: string | null;
  scratchDir: string | null;
  scratchPort: number | null;
  restoreDatabase: string;
  preRestoreDatabase: string;
  timings: RestoreTimings;
  error: string | null;
  startedAt: Date;
  finishedAt: Date | null;
}

export interface RestoreTenantOptions {
  /** Superuser DSN of the live cluster. */
  adminDsn: string;
  /** The local target's state directory (pgBackRest configuration; scratch under `restore/`). */
  stateDir: string;
  stanza: string;
  subdomain: string;
  database: string;
  roleName: string;
  /** The tenant's lifecycle state (ALLOW_CONNECTIONS after the swap); the registry's when absent. */
  tenantState?: TenantState;
  target: RestoreTarget;
  /** The Snapshot resource's outputs (snapshot targets); looked up in the registry when absent. */
  snapshotLsn?: string;
  snapshotFilestore?: string;
  /** Directory holding one filestore directory per tenant database. */
  filestoreRoot: string;
  log?: (message: string) => void;
  /** Bound on waiting for WAL to be archived past the target (default 60 s). */
  archiveWaitMs?: number;
  /** Bound on the scratch instance's recovery (default 30 min). */
  recoveryTimeoutMs?: number;
  /** pg_dump / pg_restore / pg_amcheck parallelism (default 2). */
  jobs?: number;
  /** How the steps are ordered; default `LOOMWORKS_RESTORE_PIPELINE`, else overlapped (./pipeline.ts). */
  pipeline?: RestorePipeline;
  /**
   * A declared restore runs once: when the tenant's latest restore is done and had this target, its
   * result is returned. The Kubernetes restore Job sets it, since Kubernetes re-runs a Job whose pod
   * template changed (a new ops image) and a re-run would roll the tenant back again.
   */
  oncePerTarget?: boolean;
}

export interface RestoreResult {
  id: string;
  subdomain: string;
  target: RestoreTarget;
  targetLsn: string | null;
  backup: string | null;
  state: RestoreState;
  restoreDatabase: string;
  preRestoreDatabase: string;
  timings: RestoreTimings;
}

export interface ResumeOptions {
  adminDsn: string;
  subdomain: string;
  database: string;
  filestoreRoot: string;
  tenantState?: TenantState;
  log?: (message: string) => void;
}

export interface ResumeOutcome {
  id: string;
  action: "rolled_back" | "finished";
  record: RestoreRecord;
}

const noLog = (): void => undefined;
/** Advisory lock namespace (first key) for per-tenant restore locks; the second key hashes the subdomain. */
const RESTORE_LOCK_CLASS = 7_314_206;

// ---------------------------------------------------------------------------------------------
// registry rows

interface RestoreRow {
  id: string;
  subdomain: string;
  target: RestoreTarget;
  target_lsn: string | null;
  backup_label: string | null;
  state: RestoreState;
  step: string | null;
  scratch_dir: string | null;
  scratch_port: number | null;
  restore_database: string;
  pre_restore_database: string;
  timings: RestoreTimings;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
}

const ROW_COLUMNS =
  "id, subdomain, target, target_lsn::text AS target_lsn, backup_label, state, step, scratch_dir, scratch_port, " +
  "restore_database, pre_restore_database, timings, error, started_at, finished_at";

function toRecord(r: RestoreRow): RestoreRecord {
  return {
    id: r.id,
    subdomain: r.subdomain,
    target: r.target,
    targetLsn: r.target_lsn,
    backup: r.backup_label,
    state: r.state,
    step: r.step,
    scratchDir: r.scratch_dir,
    scratchPort: r.scratch_port,
    restoreDatabase: r.restore_database,
    preRestoreDatabase: r.pre_restore_database,
    timings: r.timings ?? {},
    error: r.error,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

export function toResult(r: RestoreRecord): RestoreResult {
  return {
    id: r.id,
    subdomain: r.subdomain,
    target: r.target,
    targetLsn: r.targetLsn,
    backup: r.backup,
    state: r.state,
    restoreDatabase: r.restoreDatabase,
    preRestoreDatabase: r.preRestoreDatabase,
    timings: r.timings,
  };
}

/** A restore's registry row (undefined when unknown or the registry does not exist). */
export async function readRestore(adminDsn: string, id: string): Promise<RestoreRecord | undefined> {
  await ensureRegistry(adminDsn);
  return withClient(registryDsn(adminDsn), async (reg) => {
    const r = await reg.query<RestoreRow>(`SELECT ${ROW_COLUMNS} FROM restores WHERE id = $1`, [id]);
    return r.rows[0] ? toRecord(r.rows[0]) : undefined;
  });
}

/** A tenant's restores, oldest first. */
export async function listRestores(adminDsn: string, subdomain: string): Promise<RestoreRecord[]> {
  await ensureRegistry(adminDsn);
  return withClient(registryDsn(adminDsn), async (reg) => {
    const r = await reg.query<RestoreRow>(
      `SELECT ${ROW_COLUMNS} FROM restores WHERE subdomain = $1 ORDER BY started_at, id`,
      [subdomain],
    );
    return r.rows.map(toRecord);
  });
}

async function saveTimings(reg: Client, rec: RestoreRecord): Promise<void> {
  await reg.query("UPDATE restores SET timings = $2::jsonb WHERE id = $1", [
    rec.id,
    JSON.stringify(rec.timings),
  ]);
}

async function setState(reg: Client, rec: RestoreRecord, state: RestoreState, error?: string): Promise<void> {
  rec.state = state;
  const finished = state === "running" ? null : new Date();
  rec.finishedAt = finished;
  if (error !== undefined) rec.error = error;
  await reg.query(
    "UPDATE restores SET state = $2, error = COALESCE($3, error), finished_at = $4, timings = $5::jsonb WHERE id = $1",
    [rec.id, state, error ?? null, finished, JSON.stringify(rec.timings)],
  );
}

/**
 * The tenant's maintenance state: in the registry (jobs skip the tenant) and, on the local target,
 * the router's switch for its database (its host answers 503, with no reload).
 */
async function setMaintenance(
  reg: Client,
  subdomain: string,
  value: "restoring" | null,
  router?: { stateDir: string; database: string },
): Promise<void> {
  await reg.query("UPDATE tenants SET maintenance = $2, updated_at = now() WHERE subdomain = $1", [
    subdomain,
    value,
  ]);
  if (router) await setRouterMaintenance(router.stateDir, router.database, value !== null);
}

/** The platform's state directory of a restore (its scratch directory is `<stateDir>/restore/<id>`). */
function stateDirOf(rec: RestoreRecord): string | undefined {
  return rec.scratchDir ? path.dirname(path.dirname(rec.scratchDir)) : undefined;
}

function routerOf(
  stateDir: string | undefined,
  n: SwapNames,
): { stateDir: string; database: string } | undefined {
  return stateDir ? { stateDir, database: n.database } : undefined;
}

async function withTenantLock<T>(reg: Client, subdomain: string, fn: () => Promise<T>): Promise<T> {
  const got = await reg.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok", [
    RESTORE_LOCK_CLASS,
    subdomain,
  ]);
  if (!got.rows[0].ok) {
    throw new Error(`tenant "${subdomain}": another restore of this tenant is in progress`);
  }
  try {
    return await fn();
  } finally {
    await reg
      .query("SELECT pg_advisory_unlock($1, hashtext($2))", [RESTORE_LOCK_CLASS, subdomain])
      .catch(() => undefined);
  }
}

async function tenantAllowsConnections(
  reg: Client,
  subdomain: string,
  state: TenantState | undefined,
): Promise<boolean> {
  if (state) return state === "active";
  const r = await reg.query<{ state: string }>("SELECT state FROM tenants WHERE subdomain = $1", [subdomain]);
  const s = r.rows[0]?.state;
  return s !== "suspended" && s !== "archived";
}

// ---------------------------------------------------------------------------------------------
// helpers on the live cluster

const WAL_NAME = /^[0-9A-F]{24}/;

/**
 * Makes sure WAL up to the current position (which is past the target: the restore's own registry
 * writes came after it) is in the repository: `pg_switch_wal()` and wait, bounded.
 */
export async function waitForArchive(
  admin: Client,
  timeoutMs: number,
  inRestoreRepo?: (segment: string) => Promise<boolean>,
): Promise<number> {
  const t0 = Date.now();
  const need = (await admin.query<{ f: string }>("SELECT pg_walfile_name(pg_current_wal_lsn()) AS f")).rows[0]
    .f;
  const archived = async () => {
    const r = await admin.query<{ last: string | null; failed: string | null; failed_at: Date | null }>(
      "SELECT last_archived_wal AS last, last_failed_wal AS failed, last_failed_time AS failed_at FROM pg_stat_archiver",
    );
    return r.rows[0];
  };
  const done = (last: string | null) => !!last && WAL_NAME.test(last) && last.slice(0, 24) >= need;
  let state = await archived();
  if (done(state.last)) return Date.now() - t0;
  await admin.query("SELECT pg_switch_wal()");
  while (Date.now() - t0 < timeoutMs) {
    await new Promise((r) => setTimeout(r, 200));
    state = await archived();
    if (done(state.last)) return Date.now() - t0;
    // archive_command fails while any repository is unreachable (a lost repo1), yet archive-push
    // still writes the others: the segment in the repository the restore reads from is enough.
    if (state.failed && inRestoreRepo && (await inRestoreRepo(need))) return Date.now() - t0;
  }
  throw new Error(
    `WAL segment ${need} was not archived within ${Math.round(timeoutMs / 1000)} s after pg_switch_wal() ` +
      `(last archived ${state.last ?? "none"}` +
      (state.failed ? `, last failure ${state.failed} at ${state.failed_at?.toISOString()}` : "") +
      "); check the cluster's archive_command and the pgBackRest repository",
  );
}

async function countKeyTables(client: Client): Promise<Record<string, number>> {
  const present = await client.query<{ name: string }>(
    "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
      "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname = ANY($1) ORDER BY 1",
    [[...KEY_TABLES]],
  );
  const counts: Record<string, number> = {};
  for (const { name } of present.rows) {
    const r = await client.query<{ n: string }>(
      `SELECT pg_catalog.count(*) AS n FROM public.${quoteIdent(name)}`,
    );
    counts[name] = Number(r.rows[0].n);
  }
  return counts;
}

const describeCopy = (
  sizeBytes: number,
  l: { mode: string; tenantEntries: number; platformEntries: number },
): string =>
  `copied ${(sizeBytes / 1048576).toFixed(1)} MB (pg_restore ${l.mode}; ${l.tenantEntries} entries loaded ` +
  `as the restore's load role, ${l.platformEntries} of the platform's as the superuser)`;

function amcheckFailure(output: string): Error {
  return new Error(
    `pg_amcheck found problems in the restored database:\n${output.split("\n").slice(-20).join("\n")}`,
  );
}

const describeCounts = (counts: Record<string, number>): string =>
  Object.entries(counts)
    .map(([t, n]) => `${t} ${n}`)
    .join(", ") || "no key tables";

function sameCounts(a: Record<string, number>, b: Record<string, number>): boolean {
  return JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
}

// ---------------------------------------------------------------------------------------------
// the swap (shared by the normal path and resume)

interface SwapNames {
  database: string;
  restoreDb: string;
  preDb: string;
  liveFs: string;
  restoreFs: string;
  preFs: string;
}

function swapNames(database: string, filestoreRoot: string, rec: RestoreRecord): SwapNames {
  return {
    database,
    restoreDb: rec.restoreDatabase,
    preDb: rec.preRestoreDatabase,
    liveFs: restoreFilestorePath(filestoreRoot, database),
    restoreFs: restoreFilestorePath(filestoreRoot, rec.restoreDatabase),
    preFs: restoreFilestorePath(filestoreRoot, rec.preRestoreDatabase),
  };
}

/**
 * The commit point, one transaction (retried while sessions linger): `<db>` → `<preDb>`,
 * `<restoreDb>` → `<db>`, the tenant's database privileges onto the restored copy and its
 * connections allowed as its state says, the kept copy closed. Once it commits, the tenant works.
 */
async function renameInOneTransaction(admin: Client, n: SwapNames, allowConnections: boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await terminateSessions(admin, { database: n.database, waitMs: 5000 });
    await terminateSessions(admin, { database: n.restoreDb, waitMs: 5000 });
    await admin.query("BEGIN");
    try {
      await admin.query(`ALTER DATABASE ${quoteIdent(n.database)} RENAME TO ${quoteIdent(n.preDb)}`);
      await admin.query(`ALTER DATABASE ${quoteIdent(n.restoreDb)} RENAME TO ${quoteIdent(n.database)}`);
      await copyDatabaseAcl(admin, n.preDb, n.database);
      await admin.query(`ALTER DATABASE ${quoteIdent(n.preDb)} ALLOW_CONNECTIONS false`);
      await admin.query(`ALTER DATABASE ${quoteIdent(n.database)} ALLOW_CONNECTIONS ${allowConnections}`);
      await admin.query("COMMIT");
      return;
    } catch (err) {
      await admin.query("ROLLBACK").catch(() => undefined);
      // 55006: "database ... is being accessed by other users"
      if ((err as { code?: string }).code !== "55006" || attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}

/**
 * Everything after the commit point: filestore, maintenance flag. When finishing an interrupted
 * restore (`reapply`), privileges and connections are applied again, for a swap committed by an
 * older release; the restore that just committed them skips that (the tenant is still behind the
 * router's 503 meanwhile). Idempotent.
 */
async function finishSwap(
  admin: Client,
  reg: Client,
  subdomain: string,
  n: SwapNames,
  allowConnections: boolean,
  stateDir: string | undefined,
  reapply = true,
): Promise<void> {
  await swapFilestores(n.liveFs, n.restoreFs, n.preFs);
  if (reapply) {
    await copyDatabaseAcl(admin, n.preDb, n.database);
    await admin.query(`ALTER DATABASE ${quoteIdent(n.preDb)} ALLOW_CONNECTIONS false`);
    await admin.query(`ALTER DATABASE ${quoteIdent(n.database)} ALLOW_CONNECTIONS ${allowConnections}`);
  }
  await setMaintenance(reg, subdomain, null, routerOf(stateDir, n));
}

function scratchOf(rec: RestoreRecord): ScratchInstance | undefined {
  if (!rec.scratchDir) return undefined;
  // Only ever remove what a restore made: <stateDir>/restore/<id>.
  if (path.basename(rec.scratchDir) !== rec.id || path.basename(path.dirname(rec.scratchDir)) !== "restore") {
    throw new Error(`restore ${rec.id}: refusing to remove unexpected scratch directory ${rec.scratchDir}`);
  }
  return scratchLayout(rec.scratchDir, rec.scratchPort ?? 0);
}

/** Undoes a restore that did not reach the swap's commit. Idempotent. */
async function rollback(
  admin: Client,
  reg: Client,
  rec: RestoreRecord,
  n: SwapNames,
  allowConnections: boolean,
  adminDsn: string,
): Promise<void> {
  const scratch = scratchOf(rec);
  if (scratch) await removeScratch(scratch);
  if (await databaseExists(admin, n.restoreDb)) {
    await admin.query(`ALTER DATABASE ${quoteIdent(n.restoreDb)} ALLOW_CONNECTIONS false`);
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(n.restoreDb)} WITH (FORCE)`);
  }
  await dropLoadRole(admin, adminDsn, rec.id);
  await fs.rm(n.restoreFs, { recursive: true, force: true });
  // Interrupted inside the swap step (connections already off, not renamed yet): as before.
  if (rec.step === "swap" && (await databaseExists(admin, n.database))) {
    await admin.query(`ALTER DATABASE ${quoteIdent(n.database)} ALLOW_CONNECTIONS ${allowConnections}`);
  }
  await setMaintenance(reg, rec.subdomain, null, routerOf(stateDirOf(rec), n));
}

async function finishAfterCommit(
  admin: Client,
  reg: Client,
  rec: RestoreRecord,
  n: SwapNames,
  allowConnections: boolean,
  adminDsn: string,
): Promise<void> {
  await dropLoadRole(admin, adminDsn, rec.id);
  await finishSwap(admin, reg, rec.subdomain, n, allowConnections, stateDirOf(rec));
  const scratch = scratchOf(rec);
  if (scratch) await removeScratch(scratch);
}

async function resumeLocked(
  admin: Client,
  reg: Client,
  opts: ResumeOptions,
  log: (m: string) => void,
): Promise<ResumeOutcome[]> {
  const rows = await reg.query<RestoreRow>(
    `SELECT ${ROW_COLUMNS} FROM restores WHERE subdomain = $1 AND state = 'running' ORDER BY started_at, id`,
    [opts.subdomain],
  );
  const outcomes: ResumeOutcome[] = [];
  for (const row of rows.rows) {
    const rec = toRecord(row);
    const n = swapNames(opts.database, opts.filestoreRoot, rec);
    const allow = await tenantAllowsConnections(reg, opts.subdomain, opts.tenantState);
    if (await databaseExists(admin, n.preDb)) {
      log(
        `restore ${rec.id} of ${opts.subdomain} was interrupted after its swap (step ${rec.step}): finishing it`,
      );
      await finishAfterCommit(admin, reg, rec, n, allow, opts.adminDsn);
      await setState(reg, rec, "done");
      outcomes.push({ id: rec.id, action: "finished", record: rec });
    } else {
      log(`restore ${rec.id} of ${opts.subdomain} was interrupted at step ${rec.step}: rolling it back`);
      await rollback(admin, reg, rec, n, allow, opts.adminDsn);
      await setState(reg, rec, "rolled_back", `interrupted at step ${rec.step ?? "(none)"}; rolled back`);
      outcomes.push({ id: rec.id, action: "rolled_back", record: rec });
    }
  }
  return outcomes;
}

/**
 * Finishes or rolls back every interrupted (`running`) restore of a tenant; see the module comment.
 * Refused while a restore of the tenant is in progress in another process.
 */
export async function resumeOrRollback(opts: ResumeOptions): Promise<ResumeOutcome[]> {
  await ensureRegistry(opts.adminDsn);
  return withClient(opts.adminDsn, (admin) =>
    withClient(registryDsn(opts.adminDsn), (reg) =>
      withTenantLock(reg, opts.subdomain, () => resumeLocked(admin, reg, opts, opts.log ?? noLog)),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// the restore

interface Ctx {
  admin: Client;
  reg: Client;
  opts: RestoreTenantOptions;
  rec: RestoreRecord;
  scratch: ScratchInstance;
  names: SwapNames;
  log: (m: string) => void;
  started: number;
  pipeline: RestorePipeline;
}

const stepKey = (s: RestoreStep): keyof RestoreTimings =>
  `${s.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())}Ms` as keyof RestoreTimings;

async function runStep<T>(ctx: Ctx, name: RestoreStep, fn: () => Promise<T>): Promise<T> {
  const { reg, rec } = ctx;
  const journal = await beginStep(reg, rec.subdomain, `restore:${rec.id}:${name}`);
  await reg.query("UPDATE restores SET step = $2 WHERE id = $1", [rec.id, name]);
  rec.step = name;
  crashPoint(`restore:${name}`);
  ctx.log(`${name}...`);
  const t0 = Date.now();
  const result = await fn();
  const ms = Date.now() - t0;
  (rec.timings as Record<string, unknown>)[stepKey(name)] = ms;
  await saveTimings(reg, rec);
  await finishStep(reg, journal);
  ctx.log(`${name} done in ${ms} ms (elapsed ${Date.now() - ctx.started} ms)`);
  return result;
}

async function timed<T>(rec: RestoreRecord, key: keyof RestoreTimings, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const result = await fn();
  (rec.timings as Record<string, unknown>)[key] = Date.now() - t0;
  return result;
}

/** The target snapshot's filestore copy, when it was taken with one (before copies were dropped). */
async function snapshotCopyOf(ctx: Ctx, resolved: ResolvedRestoreTarget): Promise<string | undefined> {
  const { opts } = ctx;
  if (resolved.kind !== "snapshot") return undefined;
  if (opts.snapshotFilestore !== undefined) return opts.snapshotFilestore || undefined;
  const found = await findSnapshot(ctx.admin, opts.adminDsn, opts.subdomain, opts.target.snapshot as string);
  return found?.filestorePath || undefined;
}

async function stepFilestore(ctx: Ctx, resolved: ResolvedRestoreTarget): Promise<void> {
  const { opts, rec, names } = ctx;
  const snapshotCopy = await snapshotCopyOf(ctx, resolved);
  const sources = await filestoreSources({ ...opts, ...(snapshotCopy ? { snapshotCopy } : {}) });
  const built = await timed(rec, "filestoreMs", () =>
    buildRestoredFilestore(opts.adminDsn, names.restoreDb, names.restoreFs, sources),
  );
  rec.timings.filestoreFiles = built.files;
  rec.timings.filestoreMissing = built.missing.length;
  if (built.missing.length > 0) rec.timings.filestoreMissingNames = built.missing.slice(0, 20);
  if (built.referencesRefused) rec.timings.filestoreRefused = built.referencesRefused;
  ctx.log(describeRestoredFilestore(built, sources));
  crashPoint("restore:copy-filestore");
}

async function stepValidate(ctx: Ctx): Promise<ResolvedRestoreTarget> {
  const { opts, rec } = ctx;
  const resolved = await validateRestoreTarget({ ...opts });
  rec.targetLsn = resolved.lsn ?? null;
  rec.backup = resolved.backup.label;
  await ctx.reg.query("UPDATE restores SET target_lsn = $2::pg_lsn, backup_label = $3 WHERE id = $1", [
    rec.id,
    rec.targetLsn,
    rec.backup,
  ]);
  ctx.log(
    `target ${resolved.display}; backup set ${resolved.backup.label} (ended ${resolved.backup.stop})` +
      (resolved.repo !== undefined ? ` in repo${resolved.repo}` : ""),
  );
  if (resolved.repoFallback) {
    ctx.log(`restoring from the offsite repository repo${resolved.repo}: ${resolved.repoFallback}`);
  }
  // Overlapped: the wait runs beside the scratch files (stepScratchRestore), which do not need it.
  if (ctx.pipeline === "sequential") await archiveWait(ctx, resolved);
  return resolved;
}

/** WAL up to now (past the target) in the repository the restore reads (see waitForArchive). */
async function archiveWait(ctx: Ctx, resolved: ResolvedRestoreTarget): Promise<void> {
  const { opts, rec } = ctx;
  const repo = resolved.repo;
  const pgbr = pgbackrestTargetFor(opts.stateDir, opts.stanza);
  rec.timings.archiveWaitMs = await waitForArchive(
    ctx.admin,
    opts.archiveWaitMs ?? 60_000,
    repo === undefined ? undefined : (segment) => segmentInRepo(pgbr, repo, segment),
  );
}

async function stepScratchRestore(ctx: Ctx, resolved: ResolvedRestoreTarget): Promise<void> {
  const { opts, rec, scratch } = ctx;
  const pgbr = pgbackrestTargetFor(opts.stateDir, opts.stanza);
  const formerNames = await formerDatabaseNames(ctx.reg, rec.subdomain);
  const files = async () => {
    await prepareScratch(scratch);
    return timed(rec, "pgbackrestMs", () =>
      pgbackrestRestore(scratch, pgbr, {
        database: opts.database,
        formerNames,
        backupLabel: resolved.backup.label,
        ...(resolved.repo !== undefined ? { repo: resolved.repo } : {}),
        type: resolved.type,
        value: resolved.value,
        exclusive: resolved.exclusive,
      }),
    );
  };
  // Recovery needs the archived WAL, the files do not.
  const [{ selection, method, fallbackReason }] = await settleAll([
    files(),
    ctx.pipeline === "sequential" ? Promise.resolve() : archiveWait(ctx, resolved),
  ]);
  rec.timings.scratchMethod = method;
  if (fallbackReason) rec.timings.scratchFallback = fallbackReason;
  const what = selection.length === 1 ? selection[0] : `${selection.length} --db-exclude`;
  ctx.log(
    method === "selective"
      ? `scratch restored selectively (only the tenant's files) from the repository: ${what}`
      : `pgbackrest restore ${what} done${fallbackReason ? ` (selective restore not used: ${fallbackReason})` : ""}`,
  );
  await configureScratch(scratch, pgbr);
  await timed(rec, "recoveryMs", () => startScratch(scratch, opts.recoveryTimeoutMs ?? 30 * 60_000));
  await withClient(scratchClientConfig(scratch, "postgres"), async (c) => {
    const db = await c.query<{ datallowconn: boolean }>(
      "SELECT datallowconn FROM pg_database WHERE datname = $1",
      [opts.database],
    );
    if (!db.rows[0]) {
      throw new Error(
        `database "${opts.database}" did not exist at the restore target ${rec.targetLsn ?? ""}`.trim(),
      );
    }
    // A tenant suspended at the target: let the scratch's own superuser in for the dump.
    if (!db.rows[0].datallowconn) {
      await c.query(`ALTER DATABASE ${quoteIdent(opts.database)} ALLOW_CONNECTIONS true`);
    }
  });
}

async function stepVerify(ctx: Ctx): Promise<Record<string, number>> {
  const { opts, rec, scratch } = ctx;
  const counts = await withClient(scratchClientConfig(scratch, opts.database), async (c) => {
    const had = await c.query("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'");
    const check = await timed(rec, "amcheckMs", () =>
      amcheckScratch(scratch, opts.database, (had.rowCount ?? 0) > 0, opts.jobs ?? 2),
    );
    if (!check.ok) throw amcheckFailure(check.output);
    return countKeyTables(c);
  });
  rec.timings.rowCounts = counts;
  ctx.log(`verified: ${describeCounts(counts)}`);
  return counts;
}

async function stepCopy(
  ctx: Ctx,
  resolved: ResolvedRestoreTarget,
  counts: Record<string, number>,
): Promise<void> {
  const { admin, opts, rec, scratch, names } = ctx;
  const jobs = opts.jobs ?? 2;
  const live = await databaseFacts(admin, opts.database);
  if (!live) throw new Error(`database "${opts.database}" does not exist in the live cluster`);
  await createRestoreDatabase(admin, live, names.restoreDb);
  await timed(rec, "dumpMs", () => dumpScratchDatabase(scratch, opts.database, jobs));
  const sizeBytes = await withClient(scratchClientConfig(scratch, opts.database), async (c) =>
    Number(
      (await c.query<{ n: string }>("SELECT pg_catalog.pg_database_size(pg_catalog.current_database()) AS n"))
        .rows[0].n,
    ),
  );
  const { mode, tenantEntries, platformEntries } = await timed(rec, "pgRestoreMs", async () => {
    const loadRole = await createLoadRole(admin, opts.adminDsn, rec.id, opts.roleName, names.restoreDb);
    const loaded = await restoreDump(opts.adminDsn, names.restoreDb, scratch.dumpDir, {
      jobs,
      sizeBytes,
      tenantRole: opts.roleName,
      loadRole,
    });
    crashPoint("restore:copy-loaded");
    await dropLoadRole(admin, opts.adminDsn, rec.id);
    return loaded;
  });
  ctx.log(describeCopy(sizeBytes, { mode, tenantEntries, platformEntries }));
  await finishCopy(ctx, resolved, counts);
}

/** After the load: sequences re-logged, settings, row counts checked against the scratch's, filestore. */
async function finishCopy(
  ctx: Ctx,
  resolved: ResolvedRestoreTarget,
  counts: Record<string, number>,
  sequencesDone = false,
): Promise<void> {
  const { admin, opts, scratch, names } = ctx;
  await fs.rm(scratch.dumpDir, { recursive: true, force: true });
  // Before the database's own settings are copied onto it: they are the tenant's to choose.
  if (!sequencesDone) await raiseSequences(ctx);
  await copyDatabaseSettings(admin, opts.database, names.restoreDb);
  const copied = await withClient(dsnWithDatabase(opts.adminDsn, names.restoreDb), countKeyTables);
  if (!sameCounts(copied, counts)) {
    throw new Error(
      `the copy's row counts differ from the restored database's: ${JSON.stringify(copied)} vs ${JSON.stringify(counts)}`,
    );
  }
  await stepFilestore(ctx, resolved);
}

/** Every sequence of the copy raised to its column's maximum and re-logged (lib/pg/sequences.ts). */
async function raiseSequences(ctx: Ctx): Promise<void> {
  const { opts, rec, names } = ctx;
  const sequences = await timed(rec, "sequencesMs", () =>
    withClient(dsnWithDatabase(opts.adminDsn, names.restoreDb), (db) => relogSequences(db)),
  );
  rec.timings.sequencesRaised = sequences.raised.length;
  ctx.log(describeRelog(sequences));
}

/** What the overlapped verify step hands the copy: the row counts and the database's size. */
interface Verified {
  counts: Record<string, number>;
  sizeBytes: number;
  /** Dump entries the copy leaves out (the amcheck extension the verify installed). */
  skip: (line: string) => boolean;
}

/**
 * The overlapped verify step: pg_amcheck and the row counts, while pg_dump dumps the scratch
 * database and its definitions are loaded into `<db>__restore_<id>` (closed to all but the
 * superuser; a rollback drops it). amcheck is installed first, so that every dump sees the same
 * database; its entries are left out of the copy unless the tenant had it.
 */
async function stepVerifyAndDump(ctx: Ctx): Promise<Verified> {
  const { admin, opts, rec, scratch, names } = ctx;
  const jobs = opts.jobs ?? 2;
  const live = await databaseFacts(admin, opts.database);
  if (!live) throw new Error(`database "${opts.database}" does not exist in the live cluster`);
  const { had, sizeBytes } = await withClient(scratchClientConfig(scratch, opts.database), async (c) => {
    const present = await c.query("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'");
    if (!present.rowCount) await c.query("CREATE EXTENSION amcheck");
    const size = await c.query<{ n: string }>(
      "SELECT pg_catalog.pg_database_size(pg_catalog.current_database()) AS n",
    );
    return { had: (present.rowCount ?? 0) > 0, sizeBytes: Number(size.rows[0].n) };
  });
  const skip = had ? () => false : isScratchOnlyEntry;
  const check = async (): Promise<Record<string, number>> => {
    const result = await timed(rec, "amcheckMs", () => amcheckScratch(scratch, opts.database, true, jobs));
    if (!result.ok) throw amcheckFailure(result.output);
    return withClient(scratchClientConfig(scratch, opts.database), countKeyTables);
  };
  const schema = async (): Promise<void> => {
    await settleAll([
      timed(rec, "schemaDumpMs", () =>
        dumpScratchDatabase(scratch, opts.database, 1, {
          dir: scratch.schemaDumpDir,
          sections: ["pre-data"],
        }),
      ),
      createRestoreDatabase(admin, live, names.restoreDb),
    ]);
    const reset = async (): Promise<void> => {
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(names.restoreDb)} WITH (FORCE)`);
      await createRestoreDatabase(admin, live, names.restoreDb);
    };
    const loaded = await timed(rec, "schemaLoadMs", () =>
      loadSchema(opts.adminDsn, names.restoreDb, scratch.schemaDumpDir, skip, {
        jobs: SCHEMA_JOBS,
        reset,
        log: ctx.log,
      }),
    );
    rec.timings.schemaParallel = loaded.parallel ? 1 : 0;
  };
  const [counts] = await settleAll([
    check(),
    timed(rec, "dumpMs", () =>
      dumpScratchDatabase(scratch, opts.database, jobs, { sections: ["data", "post-data"] }),
    ),
    schema(),
  ]);
  crashPoint("restore:schema-loaded");
  rec.timings.rowCounts = counts;
  ctx.log(`verified: ${describeCounts(counts)}; dumped and the definitions loaded`);
  return { counts, sizeBytes, skip };
}

/**
 * The overlapped copy step: the rows (the tenant's by the load role), then the indexes and
 * constraints with parallel jobs, the foreign keys while the load role is dropped and the
 * sequences are raised; the scratch instance, no longer needed, is stopped meanwhile.
 */
async function stepLoad(ctx: Ctx, resolved: ResolvedRestoreTarget, verified: Verified): Promise<void> {
  const { admin, opts, rec, scratch, names } = ctx;
  const stopping = timed(rec, "scratchStopMs", () => stopScratchServer(scratch));
  const load = async () => {
    const loadRole = await createLoadRole(admin, opts.adminDsn, rec.id, opts.roleName, names.restoreDb);
    return loadDataAndIndexes(opts.adminDsn, names.restoreDb, scratch.dumpDir, {
      jobs: opts.jobs ?? 2,
      sizeBytes: verified.sizeBytes,
      tenantRole: opts.roleName,
      loadRole,
      indexJobs: INDEX_JOBS,
      skip: verified.skip,
      afterRows: () => crashPoint("restore:copy-loaded"),
      // The rows are in: the sequences can be raised to their columns' maxima meanwhile.
      besideForeignKeys: async () => {
        await dropLoadRole(admin, opts.adminDsn, rec.id);
        await raiseSequences(ctx);
      },
    });
  };
  const [loaded] = await settleAll([timed(rec, "pgRestoreMs", load), stopping]);
  rec.timings.indexesMs = loaded.indexesMs;
  ctx.log(describeCopy(verified.sizeBytes, loaded));
  await fs.rm(scratch.schemaDumpDir, { recursive: true, force: true });
  await finishCopy(ctx, resolved, verified.counts, true);
}

async function stepSwap(ctx: Ctx, allow: boolean): Promise<void> {
  const { admin, reg, rec, names } = ctx;
  await setMaintenance(reg, rec.subdomain, "restoring", routerOf(ctx.opts.stateDir, names));
  const t0 = Date.now();
  await admin.query(`ALTER DATABASE ${quoteIdent(names.database)} ALLOW_CONNECTIONS false`);
  await renameInOneTransaction(admin, names, allow);
  crashPoint("restore:swap-committed");
  await finishSwap(admin, reg, rec.subdomain, names, allow, ctx.opts.stateDir, false);
  rec.timings.unavailableMs = Date.now() - t0;
}

/**
 * Restores one tenant to a snapshot, time or LSN (see the module comment). First finishes or rolls
 * back an interrupted restore of the tenant; when that one had the same target and was finished,
 * its result is returned instead of restoring again.
 */
export async function restoreTenant(opts: RestoreTenantOptions): Promise<RestoreResult> {
  const log = opts.log ?? noLog;
  targetKind(opts.subdomain, opts.target);
  await ensureRegistry(opts.adminDsn);
  return withClient(opts.adminDsn, (admin) =>
    withClient(registryDsn(opts.adminDsn), (reg) =>
      withTenantLock(reg, opts.subdomain, async () => {
        const prior = await resumeLocked(admin, reg, opts, log);
        const last = prior.at(-1);
        if (
          last?.action === "finished" &&
          sameTarget(last.record.target, opts.target, last.record.targetLsn, opts.snapshotLsn)
        ) {
          log(`restore ${last.id} of ${opts.subdomain} to the same target was finished`);
          return toResult(last.record);
        }
        const latest = opts.oncePerTarget ? await latestRestore(reg, opts.subdomain) : undefined;
        if (
          latest?.state === "done" &&
          sameTarget(latest.target, opts.target, latest.targetLsn, opts.snapshotLsn)
        ) {
          log(`restore ${latest.id} of ${opts.subdomain} to this target is done; not restoring again`);
          return toResult(latest);
        }
        return runRestore(admin, reg, opts, log);
      }),
    ),
  );
}

async function latestRestore(reg: Client, subdomain: string): Promise<RestoreRecord | undefined> {
  const r = await reg.query<RestoreRow>(
    `SELECT ${ROW_COLUMNS} FROM restores WHERE subdomain = $1 ORDER BY started_at DESC, id DESC LIMIT 1`,
    [subdomain],
  );
  return r.rows[0] ? toRecord(r.rows[0]) : undefined;
}

async function runRestore(
  admin: Client,
  reg: Client,
  opts: RestoreTenantOptions,
  log: (m: string) => void,
): Promise<RestoreResult> {
  // Everything that can be refused is refused before anything is written.
  const pre = await validateRestoreTarget({ ...opts });
  if (!(await databaseExists(admin, opts.database))) {
    throw new Error(`tenant "${opts.subdomain}": database "${opts.database}" does not exist`);
  }
  const allow = await tenantAllowsConnections(reg, opts.subdomain, opts.tenantState);
  const pipeline = opts.pipeline ?? restorePipelineSetting();
  let id = newRestoreId();
  for (let i = 0; i < 5; i++) {
    const clash = await reg.query("SELECT 1 FROM restores WHERE id = $1", [id]);
    if (!clash.rowCount) break;
    id = newRestoreId();
  }
  const scratch = scratchLayout(scratchDirectory(opts.stateDir, id), await freePort());
  const row = await reg.query<RestoreRow>(
    `INSERT INTO restores (id, subdomain, target, target_lsn, backup_label, state, scratch_dir, scratch_port,
                           restore_database, pre_restore_database)
     VALUES ($1, $2, $3::jsonb, $4::pg_lsn, $5, 'running', $6, $7, $8, $9) RETURNING ${ROW_COLUMNS}`,
    [
      id,
      opts.subdomain,
      JSON.stringify(opts.target),
      pre.lsn ?? null,
      pre.backup.label,
      scratch.dir,
      scratch.port,
      restoreDatabaseName(opts.database, id),
      preRestoreDatabaseName(opts.database, id),
    ],
  );
  const rec = toRecord(row.rows[0]);
  const started = Date.now();
  const ctx: Ctx = {
    admin,
    reg,
    opts,
    rec,
    scratch,
    names: swapNames(opts.database, opts.filestoreRoot, rec),
    log: (m) => log(`${opts.subdomain}: restore ${id}: ${m}`),
    started,
    pipeline,
  };
  rec.timings.pipeline = ctx.pipeline;
  ctx.log(`to ${pre.display} (scratch ${scratch.dir})`);
  try {
    const resolved = await runStep(ctx, "validate", () => stepValidate(ctx));
    await runStep(ctx, "scratch-restore", () => stepScratchRestore(ctx, resolved));
    if (ctx.pipeline === "sequential") {
      const counts = await runStep(ctx, "verify", () => stepVerify(ctx));
      await runStep(ctx, "copy", () => stepCopy(ctx, resolved, counts));
    } else {
      const verified = await runStep(ctx, "verify", () => stepVerifyAndDump(ctx));
      await runStep(ctx, "copy", () => stepLoad(ctx, resolved, verified));
    }
    await runStep(ctx, "swap", () => stepSwap(ctx, allow));
    await runStep(ctx, "cleanup", () => removeScratch(scratch));
    rec.timings.totalMs = Date.now() - started;
    await setState(reg, rec, "done");
    ctx.log(
      `done in ${rec.timings.totalMs} ms; unavailable ${rec.timings.unavailableMs} ms; kept ${rec.preRestoreDatabase}`,
    );
    return toResult(rec);
  } catch (err) {
    const message = (err as Error).message;
    const wrapped = new Error(
      `tenant "${opts.subdomain}": restore ${id} failed at step "${rec.step}": ${message}`,
    );
    try {
      if (await databaseExists(admin, ctx.names.preDb)) {
        ctx.log(`failed after the swap: finishing (${message.split("\n")[0]})`);
        await finishAfterCommit(admin, reg, rec, ctx.names, allow, opts.adminDsn);
        rec.timings.totalMs = Date.now() - started;
        await setState(reg, rec, "done", message);
        // The tenant is fully restored: what failed was only a finishing touch, now redone.
        return toResult(rec);
      } else {
        ctx.log(`failed: rolling back (${message.split("\n")[0]})`);
        await rollback(admin, reg, rec, ctx.names, allow, opts.adminDsn);
        await setState(reg, rec, "failed", message);
      }
    } catch (cleanupErr) {
      // Left `running`: the next restoreTenant / resumeOrRollback converges it.
      await reg
        .query("UPDATE restores SET error = $2 WHERE id = $1", [
          id,
          `${message}; then: ${(cleanupErr as Error).message}`,
        ])
        .catch(() => undefined);
      wrapped.message += `\n(cleaning up failed too, the next restore of the tenant finishes it: ${(cleanupErr as Error).message})`;
    }
    throw wrapped;
  }
}
