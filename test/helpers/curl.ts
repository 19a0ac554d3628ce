/**
 * One HTTP request with curl for the router tests (HTTP/1.1, redirects not followed, every host
 * resolved to 127.0.0.1, optionally verified against a CA): status, headers, body and curl's own
 * exit code (e.g. 60 when the certificate does not verify).
 */
import { runCommand } from "../../lib/process/run";

export interface CurlResult {
  /** curl's exit code: 0, or e.g. 60 when the certificate does not verify. */
  code: number;
  status: number;
  /** Header names lowercased. */
  headers: Record<string, string>;
  body: string;
  stderr: string;
}

/** One request with curl (HTTP/1.1, redirects not followed); every host resolves to 127.0.0.1. */
export async function curl(url: string, opts: { cacert?: string; port?: number } = {}): Promise<CurlResult> {
  const { hostname, port } = new URL(url);
  const args = ["-sS", "-i", "--http1.1", "--max-time", "10", "--resolve", `${hostname}:${port}:127.0.0.1`];
  if (opts.cacert) args.push("--cacert", opts.cacert);
  const r = await runCommand("curl", [...args, url]).catch((err: Error) => {
    throw new Error(`curl is not installed (${err.message}): apt-get install curl`);
  });
  const split = r.stdout.indexOf("\r\n\r\n");
  const head = split >= 0 ? r.stdout.slice(0, split) : r.stdout;
  const lines = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(":");
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return {
    code: r.code,
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1] ?? NaN),
    headers,
    body: split >= 0 ? r.stdout.slice(split + 4) : "",
    stderr: r.stderr,
  };
}
