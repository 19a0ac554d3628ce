import { compileProgram } from "../helpers/compile";
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import type { TestProject } from "vitest/node";
import {
  destroyCluster,
  ensureCluster,
  localAdminDsn,
  LOCAL_HOST,
  type LocalClusterSpec,
} from "../../lib/pg/cluster";
import type { ProvidedPg } from "./context";

/** True when `port` can be bound on 127.0.0.1 right now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: LOCAL_HOST, exclusive: true }, () => server.close(() => resolve(true)));
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

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  compileProgram();
  const stateDir = await makeStateDir("loomworks-it-");
  const spec: LocalClusterSpec = {
    stateDir,
    port: await findFreePort(),
    archiveTimeoutSeconds: 15,
    superuserPassword: randomBytes(24).toString("base64url"),
    stanza: "loomworks",
    retentionFull: 2,
  };
  const keep = process.env.LOOMWORKS_KEEP_CLUSTER === "1";
  const verbose = process.env.LOOMWORKS_TEST_VERBOSE === "1";
  try {
    await ensureCluster(spec, (msg) => {
      if (verbose) console.log(`[integration cluster] ${msg}`);
    });
  } catch (err) {
    if (!keep) {
      await destroyCluster(spec).catch(() => undefined);
      await fs.rm(stateDir, { recursive: true, force: true });
    }
    throw err;
  }
  const provided: ProvidedPg = {
    stateDir,
    port: spec.port,
    host: LOCAL_HOST,
    adminDsn: localAdminDsn(spec),
    superuserPassword: spec.superuserPassword,
    stanza: spec.stanza,
    archiveTimeoutSeconds: spec.archiveTimeoutSeconds,
    retentionFull: spec.retentionFull,
  };
  project.provide("pg", provided);

  return async () => {
    if (keep) {
      console.log(
        `[integration cluster] kept: state ${stateDir}, port ${spec.port} (LOOMWORKS_KEEP_CLUSTER=1)`,
      );
      return;
    }
    await destroyCluster(spec);
    await fs.rm(stateDir, { recursive: true, force: true });
  };
}
