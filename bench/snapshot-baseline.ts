/**
 * The baseline of the snapshot benchmark: the hard-link copy of the tenant's filestore that
 * createSnapshot made before snapshots became O(1) (issue 16). Kept here, unchanged in behaviour,
 * so that every run measures the old cost beside the new one on the same tenants.
 *
 * Recreates the tree `src` at `dst` with hard links to the same files (symlinks recreated, other
 * special files skipped), summing the files' sizes; a missing `src` gives an empty copy; across
 * filesystems (EXDEV) files are copied (reflinked when possible). Synchronous, as it was.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export interface LinkCopyResult {
  files: number;
  bytes: number;
  /** Files that had to be copied because a hard link was impossible (another filesystem). */
  copied: number;
}

export function linkCopyTree(src: string, dst: string): LinkCopyResult {
  const result: LinkCopyResult = { files: 0, bytes: 0, copied: 0 };
  fs.mkdirSync(dst, { recursive: true, mode: 0o700 });
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(src, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return result;
    throw err;
  }
  walk(src, dst, entries, result);
  return result;
}

function walk(src: string, dst: string, entries: fs.Dirent[], acc: LinkCopyResult): void {
  for (const e of entries) {
    const s = path.join(src, e.name);
    const d = path.join(dst, e.name);
    if (e.isDirectory()) {
      fs.mkdirSync(d, { mode: 0o700 });
      walk(s, d, fs.readdirSync(s, { withFileTypes: true }), acc);
    } else if (e.isFile()) {
      try {
        fs.linkSync(s, d);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
        fs.copyFileSync(s, d, fs.constants.COPYFILE_FICLONE);
        acc.copied += 1;
      }
      acc.files += 1;
      acc.bytes += fs.lstatSync(d).size;
    } else if (e.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(s), d);
    }
  }
}
