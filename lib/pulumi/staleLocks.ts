import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

interface LockFile {
  pid: number;
  hostname: string;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function lockFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return lockFiles(full);
    return entry.name.endsWith(".json") ? [full] : [];
  });
}

/**
 * Removes the update locks of a file:// backend whose `pulumi` process died on this host (killed or
 * crashed), so that the next `pulumi up` can finish the interrupted work. Locks held by live processes
 * or by other hosts are left alone. Returns the removed files.
 */
export function clearStaleLocks(backendUrl: string): string[] {
  if (!backendUrl.startsWith("file://")) return [];
  const root = path.join(backendUrl.slice("file://".length).split("?")[0], ".pulumi", "locks");
  const removed: string[] = [];
  for (const file of lockFiles(root)) {
    let lock: LockFile;
    try {
      lock = JSON.parse(fs.readFileSync(file, "utf8")) as LockFile;
    } catch {
      continue; // being written right now, or not ours to judge
    }
    if (lock.hostname === os.hostname() && !isAlive(lock.pid)) {
      fs.rmSync(file, { force: true });
      removed.push(file);
    }
  }
  return removed;
}
