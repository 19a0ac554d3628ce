/**
 * Names of the temporary and kept databases (and filestore directories) of a point-in-time
 * restore. Pure; unit-tested in test/unit/restore.test.ts.
 *
 *  - `<db>__restore_<id8>`: the copy being filled in the live cluster (dropped on rollback);
 *  - `<db>__pre_<id8>`: the tenant's database as it was before the swap (kept).
 *
 * PostgreSQL truncates identifiers at 63 bytes, so when `<db>` is too long to fit, the database
 * part is cut deterministically to 36 bytes plus `-` and 8 hex digits of its SHA-256
 * (`restoreDbPart`). deleteTenant uses {@link isRestoreLeftoverOf} to find a tenant's leftovers.
 */
import { createHash, randomBytes } from "node:crypto";
import * as path from "node:path";
import { MAX_IDENTIFIER_BYTES } from "../pg/names";

export const RESTORE_SUFFIX = "__restore_";
export const PRE_RESTORE_SUFFIX = "__pre_";
/** Length of a restore id (hex digits), which is also the id part of the names. */
export const RESTORE_ID_LENGTH = 8;
const ID = /^[0-9a-f]{8}$/;
/** Bytes left for the database part next to the longest suffix and an id. */
const DB_PART_MAX = MAX_IDENTIFIER_BYTES - RESTORE_SUFFIX.length - RESTORE_ID_LENGTH;
const HASH_DIGITS = 8;

/** A fresh random restore id (8 lowercase hex digits). */
export function newRestoreId(): string {
  return randomBytes(RESTORE_ID_LENGTH / 2).toString("hex");
}

export function checkRestoreId(id: string): void {
  if (!ID.test(id))
    throw new Error(`restore id must be ${RESTORE_ID_LENGTH} lowercase hex digits (got "${id}")`);
}

/** The database part of the names: `db` itself when short enough, else a deterministic cut. */
export function restoreDbPart(database: string): string {
  if (Buffer.byteLength(database) <= DB_PART_MAX) return database;
  const hash = createHash("sha256").update(database).digest("hex").slice(0, HASH_DIGITS);
  const keep = DB_PART_MAX - HASH_DIGITS - 1;
  // Database names are ASCII ([a-z0-9_-]); slicing by characters is slicing by bytes.
  return `${database.slice(0, keep)}-${hash}`;
}

/** `<db>__restore_<id>`: the restored copy while it is being filled. */
export function restoreDatabaseName(database: string, id: string): string {
  checkRestoreId(id);
  return `${restoreDbPart(database)}${RESTORE_SUFFIX}${id}`;
}

/** `<db>__pre_<id>`: the tenant's previous database, kept after the swap. */
export function preRestoreDatabaseName(database: string, id: string): string {
  checkRestoreId(id);
  return `${restoreDbPart(database)}${PRE_RESTORE_SUFFIX}${id}`;
}

/** True when `name` is a restore copy or kept pre-restore database of tenant database `database`. */
export function isRestoreLeftoverOf(database: string, name: string): boolean {
  const part = restoreDbPart(database);
  return name.startsWith(`${part}${PRE_RESTORE_SUFFIX}`) || name.startsWith(`${part}${RESTORE_SUFFIX}`);
}

/**
 * `<filestoreRoot>/<name>` for a restore database name (these may be longer than tenant database
 * names, so lib/pg/names.ts filestorePath does not accept them), refusing anything that escapes.
 */
export function restoreFilestorePath(filestoreRoot: string, name: string): string {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name)) throw new Error(`invalid filestore directory name "${name}"`);
  const root = path.resolve(filestoreRoot);
  const dir = path.resolve(root, name);
  if (path.dirname(dir) !== root) throw new Error(`filestore path ${dir} is not directly under ${root}`);
  return dir;
}

/** `<stateDir>/restore/<id>`: the scratch instance's directory (data, run, log, dump). */
export function scratchDirectory(stateDir: string, id: string): string {
  checkRestoreId(id);
  return path.join(path.resolve(stateDir), "restore", id);
}
