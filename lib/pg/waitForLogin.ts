/**
 * Waiting until a role's password is in force on a server: after a credential rotation on the
 * kubernetes target the new passwords reach PostgreSQL through the mounted Secret and the role-sync
 * sidecar (a minute or two), while `pulumi up` already holds them. A refused password (SQLSTATE
 * 28P01) and an unreachable server are retried until the deadline; any other error is final.
 */
import { withClient } from "./client";
import { unreachableCode } from "./unreachable";

export interface WaitForLoginOptions {
  timeoutMs: number;
  /** Pause between attempts. */
  intervalMs?: number;
  /** Called before each retry with the reason (no secret in it). */
  onRetry?: (reason: string) => void;
}

const INVALID_PASSWORD = "28P01";

/** Resolves with the number of attempts once `dsn` logs in; throws after `timeoutMs`. */
export async function waitForLogin(dsn: string, opts: WaitForLoginOptions): Promise<number> {
  const deadline = Date.now() + opts.timeoutMs;
  const where = describeDsn(dsn);
  for (let attempt = 1; ; attempt++) {
    let reason: string;
    try {
      await withClient(dsn, (c) => c.query("SELECT 1"));
      return attempt;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === INVALID_PASSWORD) reason = "the server refuses the password (not applied yet)";
      else if (unreachableCode(err)) reason = `the server is unreachable (${unreachableCode(err)})`;
      else throw err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`${where}: no login within ${Math.round(opts.timeoutMs / 1000)} s: ${reason}`);
    }
    opts.onRetry?.(reason);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 2_000));
  }
}

/** `user@host:port/database`, never the password. */
export function describeDsn(dsn: string): string {
  const u = new URL(dsn);
  return `${decodeURIComponent(u.username)}@${u.hostname}:${u.port || "5432"}${u.pathname}`;
}
