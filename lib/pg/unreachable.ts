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
