/**
 * Errors that mean "the cluster is not reachable right now" (stopped server, starting up, network):
 * a provider's read keeps its state unchanged on them, since the stopped server is the cluster
 * resource's drift to report and repair, not a vanished tenant.
 */
const UNREACHABLE_CODES = ["ECONNREFUSED", "ENOENT", "ENOTFOUND", "EHOSTUNREACH", "ETIMEDOUT", "57P03"];

/** The error's code when it means the cluster is unreachable, else undefined. */
export function unreachableCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && UNREACHABLE_CODES.includes(code) ? code : undefined;
}

/** What a provider's read found, or the code of the error that says the cluster is unreachable. */
export type Reachable<T> = { found: T } | { unreachable: string };

/** Runs a provider's read; an unreachable cluster is a result (keep the state), any other error is thrown. */
export async function readReachable<T>(read: () => Promise<T>): Promise<Reachable<T>> {
  try {
    return { found: await read() };
  } catch (err) {
    const code = unreachableCode(err);
    if (!code) throw err;
    return { unreachable: code };
  }
}
