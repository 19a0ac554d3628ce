/**
 * Modes of what the platform keeps under its state directory (`.loomworks/<stack>`): nothing there
 * is for other users to read. Files 0600 and directories 0700; a directory another service user
 * must pass through (postgres to its own directories, the router's workers to the error pages) is
 * 0711: others may enter it by a name they know, never list or read it. docs/operations/security.md.
 */
import { promises as fs } from "node:fs";
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from "./privateFile";

export const PRIVATE_FILE = PRIVATE_FILE_MODE;
export const PRIVATE_DIR = PRIVATE_DIR_MODE;
/** A directory service users traverse on their way to their own files. */
export const TRAVERSED_DIR = 0o711;

/** Creates `dir` (and missing parents) and sets its mode, whatever the umask or an earlier mode. */
export async function ensureDirMode(dir: string, mode: number): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode });
  await fs.chmod(dir, mode);
}
