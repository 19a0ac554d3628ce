/**
 * Files only the platform's user may read (mode 0600 in a 0700 directory), written atomically: a
 * temporary file renamed over the old one, so a reader (the ERP re-reading its tenant files, say)
 * sees the old content or the new, never half of it.
 */
import { createHash } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as path from "node:path";

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

export const octalMode = (mode: number): string => `0${(mode & 0o777).toString(8)}`;

export async function writePrivateFile(file: string, text: string): Promise<void> {
  const dir = path.dirname(file);
  await fsp.mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await fsp.chmod(dir, PRIVATE_DIR_MODE);
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    await fsp.writeFile(tmp, text, { mode: PRIVATE_FILE_MODE });
    await fsp.chmod(tmp, PRIVATE_FILE_MODE);
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

/** A file's content hash and mode as it is on disk; undefined when it is gone. */
export async function inspectFile(file: string): Promise<{ sha256: string; mode: string } | undefined> {
  try {
    const [text, stat] = await Promise.all([fsp.readFile(file, "utf8"), fsp.stat(file)]);
    return { sha256: sha256(text), mode: octalMode(stat.mode) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
