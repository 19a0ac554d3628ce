/**
 * Snapshots of one tenant
 * (docs/architecture.md#snapshots-and-restore): a named PostgreSQL restore point with its LSN and WAL
 * file, the time, the tenant's database size and the backup set a restore to it starts from.
 * Recorded in the registry table `snapshots` (loomworks_mgmt).
 *
 * A snapshot is O(1) by construction: `pg_create_restore_point` writes one WAL record (the
 * cluster-wide WAL is what makes it restorable, together with a base backup), and nothing is done
 * to the filestore. Odoo's attachments are content-addressed and never rewritten; the ERP's
 * garbage collector, patched by the platform's addon, moves the files it would delete into the
 * tenant's retired area (lib/filestore/retired.ts), kept while a snapshot older than their
 * retirement exists. A restore links exactly the files the restored database references from the
 * live filestore and the retired area (lib/restore/filestore.ts). Snapshots taken before this
 * have a hard-link copy of the filestore (`filestore_path`), still used by restores and removed
 * when they are forgotten.
 *
 * Create, on one connection to the registry database (the admin role is a superuser, so the
 * cluster-wide functions work from there):
 *  1. manual snapshots only: an existing `ready` one of that name is returned as is; a `pending`
 *     one (left by a crash of a release that still copied the filestore) is taken over, same id;
 *  2. one statement, committed synchronously: `pg_create_restore_point`, `pg_walfile_name`,
 *     `now()`, `pg_database_size`, the newest registry `backups` row whose stop_lsn ≤ the
 *     snapshot's LSN, and the registry row, `ready`;
 *  3. only when the registry has no backup covering the LSN: the pgBackRest fallback (below).
 * A crash leaves at most an orphan restore point, which is harmless.
 *
 * The backup set: the registry `backups` table (kept equal to the repository's content by
 * lib/backup/backups.ts). When it has no backup covering the LSN and a pgBackRest target is given,
 * `pgbackrest info` is asked, at most once per {@link BACKUP_INFO_TTL_MS} per process. A cached
 * answer can only be older than the truth, so it names an older (still valid) backup, never a
 * backup that ends after the snapshot.
 */
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { Pool, type Client, type PoolClient } from "pg";
import { platformClientConfig } from "../pg/client";
import { stanzaInfo, type PgBackRestStanzaInfo, type PgBackRestTarget } from "../pg/pgbackrest";
import { ensureRegistry, registryDsn, withRegistry } from "../registry/registry";
import { checkDatabaseName } from "../pg/names";
import { forwardTo } from "../pulumi/forward";
import type * as SnapshotProvider from "./provider";

export type SnapshotKind = "manual" | "auto" | "pre_ai";
export const SNAPSHOT_KINDS: readonly SnapshotKind[] = ["manual", "auto", "pre_ai"];
/** Kinds taken at run time (scheduled, or requested from the tenant database); pruned by count and age. */
export const RUNTIME_KINDS: readonly SnapshotKind[] = ["auto", "pre_ai"];

/** `pending` while being made; `ready` when usable; `forgetting` while being deleted. */
export type SnapshotState = "pending" | "ready" | "forgetting";

export type Log = (message: string) => void;
const noLog: Log = () => undefined;

/** PostgreSQL's limit for a restore point name (MAXFNAMELEN - 1). */
export const MAX_RESTORE_POINT_BYTES = 63;
/** Hex digits of the snapshot id in a restore point name (48 bits: unique enough per tenant). */
export const RESTORE_POINT_ID_CHARS = 12;
/** How long a `pgbackrest info` answer is reused for the fallback backup lookup. */
export const BACKUP_INFO_TTL_MS = 5 * 60_000;

export interface SnapshotInfo {
  id: string;
  subdomain: string;
  name: string;
  kind: SnapshotKind;
  database: string;
  /** `pg_lsn` text of the restore point, e.g. `0/5A3B2C10`. */
  lsn: string;
  /** WAL segment holding the restore point (`pg_walfile_name(lsn)`). */
  walFile: string;
  /** The restore point's name (`recovery_target_name`). */
  restorePoint: string;
  /** ISO time. */
  createdAt: string;
  /** Database size at snapshot time (plus the filestore copy's bytes, for snapshots that have one). */
  sizeBytes: number;
  /** Label of the pgBackRest backup a restore to this snapshot starts from (null: none known). */
  backup: string | null;
  /** The hard-link copy of the filestore of a snapshot taken before copies were dropped; "" for the others. */
  filestorePath: string;
  state: SnapshotState;
}

export interface CreateSnapshotOptions {
  subdomain: string;
  database: string;
  name: string;
  kind: SnapshotKind;
  /** Directory holding one filestore directory per tenant database. */
  filestoreRoot: string;
  /** Directory of the filestore copies of older snapshots (a pending one's partial copy is removed). */
  snapshotRoot: string;
  /** Fallback for the backup set when the registry `backups` table has none covering the LSN. */
  pgbackrest?: PgBackRestTarget;
}

export interface CreateTimings {
  /** Registry row (pending). */
  register: number;
  /** Restore point, WAL file, size, backup lookup (one statement). */
  restorePoint: number;
  /** Final update (ready). */
  record: number;
  total: number;
}

export interface CreatedSnapshot extends SnapshotInfo {
  /** False when an existing ready manual snapshot was returned. */
  created: boolean;
  /** Milliseconds per step (only when created). */
  timings?: CreateTimings;
}

// ---------------------------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------------------------

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isSnapshotId(id: string): boolean {
  return UUID.test(id);
}

/**
 * The restore point name of a snapshot: `lw:<label>:<first 12 hex digits of the id>`, the label
 * (the subdomain; the database name for points requested from inside the tenant database)
 * shortened so the whole name stays within PostgreSQL's 63 bytes. Must match the SQL in
 * lib/snapshot/runtime.ts (`loomworks_snapshot.request`).
 */
export function restorePointName(label: string, id: string): string {
  const short = id.replace(/-/g, "").slice(0, RESTORE_POINT_ID_CHARS).toLowerCase();
  if (!/^[0-9a-f]+$/.test(short) || short.length < RESTORE_POINT_ID_CHARS) {
    throw new Error(`snapshot id "${id}" is not a uuid`);
  }
  const room = MAX_RESTORE_POINT_BYTES - "lw:".length - ":".length - short.length;
  let prefix = label;
  while (Buffer.byteLength(prefix) > room) prefix = prefix.slice(0, -1);
  return `lw:${prefix}:${short}`;
}

/** A `pg_lsn` text (`X/Y`, hex) as a number for comparisons. */
export function parseLsn(lsn: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn.trim());
  if (!m) throw new Error(`"${lsn}" is not an LSN (expected X/Y in hex)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/**
 * The newest usable backup in a `pgbackrest info` answer that ends at or before `lsn` (by stop LSN;
 * by WAL file, strictly before the snapshot's segment, for answers without LSNs). Null when none.
 */
export function backupForLsn(info: PgBackRestStanzaInfo, lsn: string, walFile?: string): string | null {
  const target = parseLsn(lsn);
  const usable = info.backup.filter((b) => {
    if (b.error === true) return false;
    if (b.lsn?.stop) return parseLsn(b.lsn.stop) <= target;
    return walFile !== undefined && b.archive.stop !== null && b.archive.stop < walFile;
  });
  const key = (b: (typeof usable)[number]): bigint =>
    b.lsn?.stop ? parseLsn(b.lsn.stop) : BigInt(b.timestamp.stop);
  usable.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a.timestamp.stop - b.timestamp.stop));
  return usable.at(-1)?.label ?? null;
}

/** `<snapshotRoot>/<subdomain>/<id>/filestore`. */
export function snapshotFilestorePath(snapshotRoot: string, subdomain: string, id: string): string {
  if (!isSnapshotId(id)) throw new Error(`snapshot id "${id}" is not a uuid`);
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(subdomain)) throw new Error(`subdomain "${subdomain}" is invalid`);
  if (!path.isAbsolute(snapshotRoot)) throw new Error(`snapshotRoot must be an absolute path`);
  return path.join(path.resolve(snapshotRoot), subdomain, id.toLowerCase(), "filestore");
}

// ---------------------------------------------------------------------------------------------
// Filestore copies of older snapshots

/** Removes `<snapshotRoot>/<subdomain>/<id>` given its `.../filestore` path; refuses any other shape. */
function removeSnapshotDir(filestore: string, subdomain: string, id: string): void {
  const idDir = path.dirname(filestore);
  if (
    path.basename(filestore) !== "filestore" ||
    path.basename(idDir) !== id.toLowerCase() ||
    path.basename(path.dirname(idDir)) !== subdomain
  ) {
    throw new Error(`refusing to remove ${filestore}: not a snapshot copy of ${subdomain}/${id}`);
  }
  fs.rmSync(idDir, { recursive: true, force: true });
  try {
    fs.rmdirSync(path.dirname(idDir)); // the tenant's directory, once its last snapshot is gone
  } catch {
    /* not empty, or gone */
  }
}

// ---------------------------------------------------------------------------------------------
// pgBackRest fallback (cached)
// ---------------------------------------------------------------------------------------------

const infoCache = new Map<string, { at: number; info: Promise<PgBackRestStanzaInfo> }>();

/** The backup set for `lsn` from `pgbackrest info`, reusing an answer younger than the TTL. */
export async function backupFromPgBackRest(
  target: PgBackRestTarget,
  lsn: string,
  walFile?: string,
  now: number = Date.now(),
): Promise<string | null> {
  const key = `${target.config}\0${target.stanza}`;
  let hit = infoCache.get(key);
  if (!hit || now - hit.at > BACKUP_INFO_TTL_MS) {
    hit = { at: now, info: stanzaInfo(target) };
    infoCache.set(key, hit);
    hit.info.catch(() => infoCache.delete(key));
  }
  return backupForLsn(await hit.info, lsn, walFile);
}

/** Drops cached `pgbackrest info` answers (after a backup, in tests). */
export function forgetBackupInfoCache(): void {
  infoCache.clear();
}

// ---------------------------------------------------------------------------------------------
// Registry rows
// ---------------------------------------------------------------------------------------------

interface SnapshotRow {
  id: string;
  subdomain: string;
  name: string;
  kind: SnapshotKind;
  database_name: string | null;
  lsn: string | null;
  wal_file: string | null;
  restore_point: string | null;
  created_at: Date;
  size_bytes: string | null;
  backup_label: string | null;
  filestore_path: string | null;
  state: SnapshotState;
}

const SNAPSHOT_COLUMNS =
  "id::text AS id, subdomain, name, kind, database_name, lsn::text AS lsn, wal_file, restore_point, " +
  "created_at, size_bytes::text AS size_bytes, backup_label, filestore_path, state";

function toInfo(r: SnapshotRow): SnapshotInfo {
  return {
    id: r.id,
    subdomain: r.subdomain,
    name: r.name,
    kind: r.kind,
    database: r.database_name ?? r.subdomain,
    lsn: r.lsn ?? "",
    walFile: r.wal_file ?? "",
    restorePoint: r.restore_point ?? "",
    createdAt: r.created_at.toISOString(),
    sizeBytes: Number(r.size_bytes ?? 0),
    backup: r.backup_label,
    filestorePath: r.filestore_path ?? "",
    state: r.state,
  };
}

function checkCreateOptions(o: CreateSnapshotOptions): void {
  if (!SNAPSHOT_KINDS.includes(o.kind))
    throw new Error(`snapshot kind must be one of ${SNAPSHOT_KINDS.join(", ")}`);
  if (!o.name) throw new Error("snapshot name must not be empty");
  checkDatabaseName(o.database);
  if (!path.isAbsolute(o.filestoreRoot)) throw new Error("filestoreRoot must be an absolute path");
  if (!path.isAbsolute(o.snapshotRoot)) throw new Error("snapshotRoot must be an absolute path");
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

/**
 * Records a snapshot whose restore point already exists (a `pre_ai` request synced from the tenant
 * database): row `ready`. Used by lib/snapshot/runtime.ts.
 */
export async function recordSnapshot(
  reg: Client,
  s: {
    id: string;
    subdomain: string;
    database: string;
    name: string;
    kind: SnapshotKind;
    lsn: string;
    walFile: string;
    restorePoint: string;
    createdAt: Date;
    databaseBytes: number;
    pgbackrest?: PgBackRestTarget;
  },
): Promise<SnapshotInfo> {
  const r = await reg.query<SnapshotRow>(
    `INSERT INTO snapshots (id, subdomain, name, kind, database_name, lsn, wal_file, restore_point,
                            created_at, size_bytes, backup_label, filestore_path, state)
     VALUES ($1, $2, $3, $4, $5, $6::pg_lsn, $7, $8, $9, $10,
             (SELECT b.label FROM backups b WHERE b.stop_lsn <= $6::pg_lsn ORDER BY b.stop_lsn DESC, b.stop_time DESC LIMIT 1),
             NULL, 'ready')
     ON CONFLICT (id) DO UPDATE SET state = 'ready'
     RETURNING ${SNAPSHOT_COLUMNS}`,
    [
      s.id,
      s.subdomain,
      s.name,
      s.kind,
      s.database,
      s.lsn,
      s.walFile,
      s.restorePoint,
      s.createdAt,
      s.databaseBytes,
    ],
  );
  let row = r.rows[0];
  if (row.backup_label === null && s.pgbackrest) {
    const label = await backupFromPgBackRest(s.pgbackrest, s.lsn, s.walFile);
    if (label) {
      const u = await reg.query<SnapshotRow>(
        `UPDATE snapshots SET backup_label = $2 WHERE id = $1 RETURNING ${SNAPSHOT_COLUMNS}`,
        [s.id, label],
      );
      row = u.rows[0];
    }
  }
  return toInfo(row);
}

// ---------------------------------------------------------------------------------------------
// Connections for create
// ---------------------------------------------------------------------------------------------

/**
 * Registry connections kept for createSnapshot, per admin DSN: a connection costs more than the
 * whole snapshot statement (TCP, SCRAM). Idle connections close after 10 s and never keep the
 * process alive. The session commits asynchronously (the pending row and the restore point need
 * no flush of their own); the final `ready` update commits synchronously, flushing all of it.
 */
const pools = new Map<string, Pool>();

function registryPool(adminDsn: string): Pool {
  let pool = pools.get(adminDsn);
  if (!pool) {
    pool = new Pool({
      ...platformClientConfig({
        connectionString: registryDsn(adminDsn),
        options: "-c synchronous_commit=off",
      }),
      max: 4,
      idleTimeoutMillis: 10_000,
      allowExitOnIdle: true,
    });
    pool.on("error", () => undefined); // an idle connection dropped by the server: the pool replaces it
    pools.set(adminDsn, pool);
  }
  return pool;
}

/** Closes the connections kept for createSnapshot (tests that drop the cluster; clean exits). */
export async function closeSnapshotConnections(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.end().catch(() => undefined)));
}

async function withPooledRegistry<T>(adminDsn: string, fn: (reg: PoolClient) => Promise<T>): Promise<T> {
  await ensureRegistry(adminDsn);
  const client = await registryPool(adminDsn).connect();
  let broken = false;
  try {
    return await fn(client);
  } catch (err) {
    // A connection-level failure must not go back to the pool.
    broken = (err as { code?: string }).code === undefined;
    throw err;
  } finally {
    client.release(broken);
  }
}

// ---------------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------------

/**
 * Takes a snapshot of one tenant (see the module comment for the steps). Idempotent for manual
 * snapshots: an existing `ready` (subdomain, name, manual) row is returned as is (`created` false).
 */
export async function createSnapshot(
  adminDsn: string,
  opts: CreateSnapshotOptions,
  log: Log = noLog,
): Promise<CreatedSnapshot> {
  checkCreateOptions(opts);
  const t0 = process.hrtime.bigint();
  return withPooledRegistry(adminDsn, async (reg) => {
    const tStart = process.hrtime.bigint();
    // 1. An existing manual snapshot of that name: returned when ready, taken over when pending.
    let pendingId: string | undefined;
    if (opts.kind === "manual") {
      const found = await reg.query<SnapshotRow>(
        `SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE subdomain = $1 AND name = $2 AND kind = 'manual'`,
        [opts.subdomain, opts.name],
      );
      const row = found.rows[0];
      if (row?.state === "ready") return { ...toInfo(row), created: false };
      if (row) {
        pendingId = row.id;
        log(`snapshot ${opts.subdomain}/${opts.name}: finishing pending snapshot ${pendingId}`);
        // A partial copy left by a release that still copied the filestore.
        fs.rmSync(path.dirname(snapshotFilestorePath(opts.snapshotRoot, opts.subdomain, pendingId)), {
          recursive: true,
          force: true,
        });
      }
    }
    const tRegister = process.hrtime.bigint();

    // 2. One statement, committed synchronously: restore point, WAL file, time, database size,
    //    backup set, and the row `ready` (inserted, or the pending one updated).
    const id = pendingId ?? randomUUID();
    const point = restorePointName(opts.subdomain, id);
    const rp = `WITH rp AS MATERIALIZED (
           SELECT pg_create_restore_point($2) AS point_lsn, now() AS point_at
           WHERE EXISTS (SELECT 1 FROM pg_database WHERE datname = $3)
       ), durable AS MATERIALIZED (SELECT set_config('synchronous_commit', 'on', true) AS sync)`;
    const backupOf = `(SELECT b.label FROM backups b WHERE b.stop_lsn <= rp.point_lsn
                       ORDER BY b.stop_lsn DESC, b.stop_time DESC LIMIT 1)`;
    const made = await (
      pendingId
        ? reg.query<SnapshotRow>(
            `${rp}
           UPDATE snapshots s SET database_name = $3, restore_point = $2, filestore_path = NULL,
               lsn = rp.point_lsn, wal_file = pg_walfile_name(rp.point_lsn), created_at = rp.point_at,
               size_bytes = pg_database_size($3::name), backup_label = ${backupOf}, state = 'ready'
           FROM rp, durable
           WHERE s.id = $1
           RETURNING ${SNAPSHOT_COLUMNS}`,
            [id, point, opts.database],
          )
        : reg.query<SnapshotRow>(
            `${rp}
           INSERT INTO snapshots (id, subdomain, name, kind, database_name, restore_point, lsn, wal_file,
                                  created_at, size_bytes, backup_label, state)
           SELECT $1::uuid, $4, $5, $6, $3, $2, rp.point_lsn, pg_walfile_name(rp.point_lsn), rp.point_at,
                  pg_database_size($3::name), ${backupOf}, 'ready'
           FROM rp, durable
           ON CONFLICT DO NOTHING
           RETURNING ${SNAPSHOT_COLUMNS}`,
            [id, point, opts.database, opts.subdomain, opts.name, opts.kind],
          )
    ).catch((err: { code?: string }) => {
      if (err.code === "23503") {
        throw new Error(
          `snapshot ${opts.subdomain}/${opts.name}: tenant "${opts.subdomain}" is not in the registry`,
        );
      }
      throw err;
    });
    if (made.rowCount === 0) {
      const exists = await reg.query("SELECT 1 FROM pg_database WHERE datname = $1", [opts.database]);
      if (!exists.rowCount) {
        throw new Error(
          `snapshot ${opts.subdomain}/${opts.name}: database "${opts.database}" does not exist`,
        );
      }
      // A concurrent create of the same manual snapshot won the insert: take its result.
      return createSnapshot(adminDsn, opts, log);
    }
    const tPoint = process.hrtime.bigint();

    // 3. The backup set from pgBackRest, only when the registry has none covering the LSN.
    let row = made.rows[0];
    if (row.backup_label === null && opts.pgbackrest) {
      const backup = await backupFromPgBackRest(opts.pgbackrest, row.lsn ?? "", row.wal_file ?? "");
      if (backup !== null) {
        const u = await reg.query<SnapshotRow>(
          `UPDATE snapshots SET backup_label = $2 WHERE id = $1 RETURNING ${SNAPSHOT_COLUMNS}`,
          [id, backup],
        );
        row = u.rows[0];
      }
    }
    const tEnd = process.hrtime.bigint();
    const info = toInfo(row);
    const timings: CreateTimings = {
      register: Number(tRegister - tStart) / 1e6,
      restorePoint: Number(tPoint - tRegister) / 1e6,
      record: Number(tEnd - tPoint) / 1e6,
      total: ms(t0),
    };
    log(
      `snapshot ${opts.subdomain}/${opts.name} (${opts.kind}) ${info.id} at ${info.lsn}, ` +
        `${timings.total.toFixed(1)} ms`,
    );
    return { ...info, created: true, timings };
  });
}

/** Forgets snapshots on an open registry connection (rows, and the copies older ones have); returns the ids removed. */
export async function forgetSnapshotsOn(reg: Client, ids: readonly string[]): Promise<string[]> {
  const valid = ids.filter(isSnapshotId);
  if (valid.length === 0) return [];
  const marked = await reg.query<{ id: string; subdomain: string; filestore_path: string | null }>(
    `UPDATE snapshots SET state = 'forgetting' WHERE id = ANY($1::uuid[])
     RETURNING id::text AS id, subdomain, filestore_path`,
    [valid],
  );
  for (const row of marked.rows) {
    if (row.filestore_path) removeSnapshotDir(row.filestore_path, row.subdomain, row.id);
  }
  const gone = marked.rows.map((r) => r.id);
  if (gone.length > 0) await reg.query("DELETE FROM snapshots WHERE id = ANY($1::uuid[])", [gone]);
  return gone;
}

/**
 * Forgets a snapshot: its filestore copy and its registry row (the restore point stays in the WAL;
 * pgBackRest's retention decides how long it can be reached). True when it existed.
 */
export async function forgetSnapshot(adminDsn: string, id: string): Promise<boolean> {
  if (!isSnapshotId(id)) return false;
  return withRegistry(adminDsn, async (reg) => (await forgetSnapshotsOn(reg, [id])).length > 0);
}

/** A tenant's snapshots, oldest first. */
export async function listSnapshots(adminDsn: string, subdomain: string): Promise<SnapshotInfo[]> {
  return withRegistry(adminDsn, async (reg) => {
    const r = await reg.query<SnapshotRow>(
      `SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE subdomain = $1 ORDER BY created_at, id`,
      [subdomain],
    );
    return r.rows.map(toInfo);
  });
}

export interface SnapshotStatus extends SnapshotInfo {
  /** The filestore copy is on disk. */
  filestorePresent: boolean;
}

/** One snapshot as recorded now (undefined when its row is gone), for a provider's refresh. */
export async function snapshotStatus(adminDsn: string, id: string): Promise<SnapshotStatus | undefined> {
  if (!isSnapshotId(id)) return undefined;
  return withRegistry(adminDsn, async (reg) => {
    const r = await reg.query<SnapshotRow>(`SELECT ${SNAPSHOT_COLUMNS} FROM snapshots WHERE id = $1`, [id]);
    if (!r.rows[0]) return undefined;
    const info = toInfo(r.rows[0]);
    const filestorePresent = info.filestorePath
      ? fs.existsSync(info.filestorePath) && fs.statSync(info.filestorePath).isDirectory()
      : false;
    return { ...info, filestorePresent };
  });
}

// ---- Kept for the providers in existing stacks' state (lib/pulumi/forward.ts); the code is in ./provider.
const snapshotProvider = (): typeof SnapshotProvider => require("./provider") as typeof SnapshotProvider;
export const diffSnapshot = forwardTo(snapshotProvider, "diffSnapshot");
export const checkSnapshotInputs = forwardTo(snapshotProvider, "checkSnapshotInputs");
