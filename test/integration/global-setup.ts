import { findFreePort, makeStateDir } from "../../testkit/cluster";
import { compileProgram } from "../helpers/compile";
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import type { TestProject } from "vitest/node";
import { destroyCluster, localAdminDsn, LOCAL_HOST, type LocalClusterSpec } from "../../lib/pg/cluster";
import { ensureCluster } from "../../lib/pg/ensureCluster";
import type { ProvidedPg } from "../helpers/pg-context";

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
