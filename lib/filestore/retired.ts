/**
 * The retired area of a tenant's filestore: `<filestoreRoot>/.retired/<database>/<ms>/<file>`.
 * The ERP's garbage collector (patched by the platform's `loomworks_tenants` addon) moves a file
 * no attachment references there instead of deleting it, in one directory per collection named
 * by the database clock in milliseconds at that collection. The files stay while a snapshot or a
 * point in the recovery window older than their retirement may still reference them
 * ({@link retiredHorizon}); restores take files from here (lib/restore/filestore.ts).
 *
 * `.retired` cannot be a database's directory (database names have no dots) and no store_fname
 * can name it (the ERP deletes the dots of a name: lib/filestore/storeName.ts).
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";

export const RETIRED_DIR = ".retired";
const BATCH = /^[0-9]{1,15}$/;
const DATABASE = /^[a-z0-9][a-z0-9_-]*$/;

/** `<filestoreRoot>/.retired/<database>`. */
export function retiredRoot(filestoreRoot: string, database: string): string {
  if (!DATABASE.test(database)) throw new Error(`invalid database name "${database}"`);
  if (!path.isAbsolute(filestoreRoot)) throw new Error("filestoreRoot must be an absolute path");
  return path.join(path.resolve(filestoreRoot), RETIRED_DIR, database);
}

export interface RetiredBatch {
  /** Retirement time, ms since the epoch (the database's clock). */
  at: number;
  dir: string;
}

/** The database's retired batches, newest first (none when the area does not exist). */
export async function retiredBatches(filestoreRoot: string, database: string): Promise<RetiredBatch[]> {
  const root = retiredRoot(filestoreRoot, database);
  const names = await fs.readdir(root).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return [] as string[];
    throw err;
  });
  return names
    .filter((n) => BATCH.test(n))
    .map((n) => ({ at: Number(n), dir: path.join(root, n) }))
    .sort((a, b) => b.at - a.at);
}

/**
 * The oldest moment a restore of the tenant can still go back to: its oldest snapshot or the
 * start of the oldest backup in the registry (the recovery window), whichever is older.
 * Undefined while the registry knows no backup (the window is unknown): then nothing is pruned.
 */
export async function retiredHorizon(reg: Client, subdomain: string): Promise<Date | undefined> {
  const r = await reg.query<{ h: Date | null }>(
    `SELECT CASE WHEN b.t IS NULL THEN NULL
                 ELSE LEAST(b.t, (SELECT min(created_at) FROM snapshots WHERE subdomain = $1)) END AS h
     FROM (SELECT min(start_time) AS t FROM backups) b`,
    [subdomain],
  );
  return r.rows[0]?.h ?? undefined;
}

/**
 * Removes the batches retired before `horizon` (no restore can reach a moment when their files
 * were referenced); returns their retirement times.
 */
export async function pruneRetired(
  filestoreRoot: string,
  database: string,
  horizon: Date,
): Promise<number[]> {
  const removed: number[] = [];
  for (const b of await retiredBatches(filestoreRoot, database)) {
    if (b.at >= horizon.getTime()) continue;
    await fs.rm(b.dir, { recursive: true, force: true });
    removed.push(b.at);
  }
  return removed;
}

/** Removes a database's whole retired area (the tenant is deleted). */
export async function removeRetired(filestoreRoot: string, database: string): Promise<void> {
  await fs.rm(retiredRoot(filestoreRoot, database), { recursive: true, force: true });
}
