import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { LocalClusterSpec } from "../lib/pg/cluster";

/** True when `port` can be bound on 127.0.0.1 right now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The first free port from `start` up (a range outside the usual ephemeral ports). */
export async function findFreePort(start = 25432, attempts = 500): Promise<number> {
  for (let port = start; port < start + attempts; port++) {
    if (await portFree(port)) return port;
  }
  throw new Error(`no free port in ${start}..${start + attempts - 1}`);
}

/** A fresh state directory in /tmp that the postgres user can traverse. */
export async function makeStateDir(prefix: string): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await fs.chmod(dir, 0o755);
  return dir;
}

/**
 * The spec of a throw-away cluster for a test file of its own (state directory in /tmp, a free
 * port from a random start, a random superuser password); `ensureCluster` creates it.
 */
export async function throwawayClusterSpec(
  prefix: string,
  stanza: string,
  opts: { archiveTimeoutSeconds?: number } = {},
): Promise<LocalClusterSpec> {
  return {
    stateDir: await makeStateDir(`loomworks-${prefix}-it-`),
    port: await findFreePort(27000 + Math.floor(Math.random() * 3000)),
    archiveTimeoutSeconds: opts.archiveTimeoutSeconds ?? 5,
    superuserPassword: randomBytes(18).toString("base64url"),
    stanza,
    retentionFull: 1,
  };
}
