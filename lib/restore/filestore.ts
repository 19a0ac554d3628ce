/**
 * The restored tenant's filestore (step 4 of a restore): exactly the files the restored database's
 * attachments reference, hard-linked from where they still are. Attachments are content-addressed
 * and never rewritten, so a name found anywhere is the right content:
 *  1. the target snapshot's own filestore copy (snapshots taken before copies were dropped);
 *  2. the live filestore `<filestoreRoot>/<db>`;
 *  3. the retired area `<filestoreRoot>/.retired/<db>/<ms>/`, newest first: files the ERP's
 *     garbage collector took out of the live filestore (lib/filestore/retired.ts);
 *  4. the tenant's other snapshot copies, then its kept pre-restore filestores `<db>__pre_<id>`.
 * A referenced file found nowhere is reported (timings `filestoreMissing`, the log), never fatal:
 * the database is what the restore brings back, and the ERP answers a missing file with an empty one.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { withClient } from "../pg/client";
import { dsnWithDatabase } from "../pg/dsn";
import { registryDsn } from "../registry/registry";
import { assembleFilestore, type AssembleResult } from "../filestore/assemble";
import { referencedStoreNames } from "../filestore/references";
import { retiredBatches } from "../filestore/retired";
import { PRE_RESTORE_SUFFIX, restoreDbPart, restoreFilestorePath } from "./names";

export interface FilestoreSourceOptions {
  adminDsn: string;
  subdomain: string;
  database: string;
  filestoreRoot: string;
  /** The target snapshot's filestore copy, when it has one. */
  snapshotCopy?: string;
}

/** Where the restored filestore's files are looked for, in order (see the module comment). */
export async function filestoreSources(o: FilestoreSourceOptions): Promise<string[]> {
  const root = path.resolve(o.filestoreRoot);
  const copies = await withClient(registryDsn(o.adminDsn), async (r) => {
    const rows = await r.query<{ p: string }>(
      `SELECT filestore_path AS p FROM snapshots
       WHERE subdomain = $1 AND filestore_path IS NOT NULL AND filestore_path <> '' ORDER BY created_at DESC`,
      [o.subdomain],
    );
    return rows.rows.map((x) => x.p);
  });
  const prePrefix = `${restoreDbPart(o.database)}${PRE_RESTORE_SUFFIX}`;
  const pre = (await fs.readdir(root).catch(() => [] as string[]))
    .filter((n) => n.startsWith(prePrefix))
    .sort()
    .reverse()
    .map((n) => path.join(root, n));
  const retired = (await retiredBatches(root, o.database)).map((b) => b.dir);
  const all = [
    ...(o.snapshotCopy ? [o.snapshotCopy] : []),
    restoreFilestorePath(root, o.database),
    ...retired,
    ...copies,
    ...pre,
  ];
  return [...new Set(all)];
}

export interface RestoredFilestore extends AssembleResult {
  /** Why the database's references could not be read (nothing is linked then). */
  referencesRefused?: string;
}

/**
 * Builds `dst` afresh from the store_fnames of database `restoreDb` (read as described in
 * lib/filestore/references.ts) and the sources. Idempotent: a rerun starts from an empty `dst`.
 */
export async function buildRestoredFilestore(
  adminDsn: string,
  restoreDb: string,
  dst: string,
  sources: readonly string[],
): Promise<RestoredFilestore> {
  const refs = await withClient(dsnWithDatabase(adminDsn, restoreDb), referencedStoreNames);
  await fs.rm(dst, { recursive: true, force: true });
  await fs.mkdir(dst, { recursive: true, mode: 0o750 });
  await fs.chmod(dst, 0o750);
  if ("refused" in refs) {
    return {
      files: 0,
      bytes: 0,
      missing: [],
      refused: [],
      perSource: sources.map(() => 0),
      referencesRefused: refs.refused,
    };
  }
  return assembleFilestore(dst, refs.names, sources);
}

/** One line for the restore's log. */
export function describeRestoredFilestore(r: RestoredFilestore, sources: readonly string[]): string {
  if (r.referencesRefused) return `filestore left empty: ${r.referencesRefused}`;
  const from = sources
    .map((s, i) => (r.perSource[i] > 0 ? `${r.perSource[i]} from ${s}` : ""))
    .filter(Boolean)
    .join(", ");
  let line = `filestore: ${r.files} referenced file(s) linked (${from || "none"})`;
  if (r.missing.length > 0) {
    line += `; ${r.missing.length} referenced file(s) found nowhere: ${r.missing.slice(0, 10).join(", ")}`;
    if (r.missing.length > 10) line += ", ...";
  }
  if (r.refused.length > 0) line += `; ${r.refused.length} unsafe store_fname(s) ignored`;
  return line;
}
