import * as fs from "node:fs";

/**
 * Crash injection for the recovery tests. With `LOOMWORKS_CRASH_AT=<point>` in the environment of a
 * `pulumi up` started as a session of its own (`setsid pulumi up`), reaching `<point>` for the
 * `LOOMWORKS_CRASH_AFTER`-th time (default 1) SIGKILLs every process of that session: the engine, the
 * language host, the program and the providers — a machine-failure-like stop at a known step boundary.
 * It does nothing unless the session is led by the `pulumi` CLI, so it can never take down a shell.
 */
let hits = 0;

function stat(pid: string): { comm: string; session: number } | undefined {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = raw.lastIndexOf(")");
    const fields = raw.slice(close + 2).split(" ");
    return { comm: raw.slice(raw.indexOf("(") + 1, close), session: Number(fields[3]) };
  } catch {
    return undefined; // exited meanwhile
  }
}

/** SIGKILLs every process of a session led by the `pulumi` CLI (this process last, if it is one). */
export function killPulumiSession(session: number): boolean {
  if (stat(String(session))?.comm !== "pulumi") return false;
  const members = fs.readdirSync("/proc").filter((p) => /^\d+$/.test(p) && stat(p)?.session === session);
  for (const pid of members.map(Number).filter((p) => p !== process.pid)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
  if (members.includes(String(process.pid))) process.kill(process.pid, "SIGKILL");
  return true;
}

export function crashPoint(point: string): void {
  if (!process.env.LOOMWORKS_CRASH_AT || process.env.LOOMWORKS_CRASH_AT !== point) return;
  hits += 1;
  if (hits < Number(process.env.LOOMWORKS_CRASH_AFTER ?? "1")) return;
  // Test-only: a library-level test (no pulumi session) kills just this process.
  if (process.env.LOOMWORKS_CRASH_SELF === "1") process.kill(process.pid, "SIGKILL");
  const own = stat(String(process.pid));
  if (own) killPulumiSession(own.session);
}
