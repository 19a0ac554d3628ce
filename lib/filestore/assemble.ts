/**
 * Builds a filestore holding exactly the files a list of store_fnames names, each hard-linked from
 * the first source directory that has it (copied across filesystems). Attachments are
 * content-addressed and never rewritten, so the same name is the same content in every source.
 *
 * Synchronous on purpose: one pass of lstat + link per file, like the snapshot copy it replaces
 * (docs/developer/snapshot-api.md measures why a synchronous walk is the fastest here).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { storeFileName } from "./storeName";

export interface AssembleResult {
  /** Files linked (or copied) into the new filestore. */
  files: number;
  bytes: number;
  /** Names no source has (sorted). */
  missing: string[];
  /** store_fnames refused as unsafe (they would leave the filestore, or are not file names). */
  refused: string[];
  /** Files taken from each source, in the order given. */
  perSource: number[];
}

const FILE_MODE_DIR = 0o750;

/** The real path of `dir`, or undefined when it is missing or not a directory. */
function realDir(dir: string): string | undefined {
  try {
    const real = fs.realpathSync(dir);
    return fs.statSync(real).isDirectory() ? real : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Links into `dst` (created, must not hold anything yet) every file `names` refers to. A source's
 * file counts only when it is a regular file whose directory lies inside that source (a symbolic
 * link anywhere on the way is not followed out of it).
 */
export function assembleFilestore(
  dst: string,
  names: Iterable<string>,
  sources: readonly string[],
): AssembleResult {
  fs.mkdirSync(dst, { recursive: true, mode: FILE_MODE_DIR });
  const roots = sources.map(realDir);
  const result: AssembleResult = {
    files: 0,
    bytes: 0,
    missing: [],
    refused: [],
    perSource: sources.map(() => 0),
  };
  const made = new Set<string>();
  const inside = new Map<string, boolean>();
  const seen = new Set<string>();
  for (const raw of names) {
    const rel = storeFileName(raw);
    if (rel === undefined) {
      result.refused.push(raw);
      continue;
    }
    if (seen.has(rel)) continue;
    seen.add(rel);
    const found = findSource(roots, rel, inside);
    if (found === undefined) {
      result.missing.push(rel);
      continue;
    }
    const target = path.join(dst, rel);
    const parent = path.dirname(target);
    if (!made.has(parent)) {
      fs.mkdirSync(parent, { recursive: true, mode: FILE_MODE_DIR });
      made.add(parent);
    }
    try {
      fs.linkSync(found.file, target);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EXDEV") throw err;
      fs.copyFileSync(found.file, target, fs.constants.COPYFILE_FICLONE);
    }
    result.files += 1;
    result.bytes += found.size;
    result.perSource[found.index] += 1;
  }
  result.missing.sort();
  return result;
}

function findSource(
  roots: readonly (string | undefined)[],
  rel: string,
  inside: Map<string, boolean>,
): { file: string; size: number; index: number } | undefined {
  for (let i = 0; i < roots.length; i++) {
    const root = roots[i];
    if (root === undefined) continue;
    const file = path.join(root, rel);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(file);
    } catch {
      continue;
    }
    if (!st.isFile()) continue;
    const dir = path.dirname(file);
    let ok = inside.get(dir);
    if (ok === undefined) {
      const real = realDir(dir);
      ok = real !== undefined && (real === root || real.startsWith(root + path.sep));
      inside.set(dir, ok);
    }
    if (ok) return { file, size: st.size, index: i };
  }
  return undefined;
}
