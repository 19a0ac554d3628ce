/**
 * A kubernetes-target stack on the loomworks k8s test cluster (testkit/k8s-test-cluster.ts), with a
 * local PostgreSQL standing in for the in-cluster one at `kubernetes.postgres.adminEndpoint`.
 *
 * kwok's pods run no process, so the StatefulSet's PostgreSQL never starts and its role-sync loop
 * (docker/postgres/scripts/loomworks-sync-roles) never applies the Secret's passwords. The test plays
 * that loop: `syncRolesFromSecret` reads the Secret back from the API server and runs the same script
 * against the local server, so the admin DSN the program builds from its own superuser password logs in
 * exactly when the real server would accept it.
 */
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { NAMES, POSTGRES_SECRET_KEYS } from "../components/kubernetes/common";
import { clusterPaths } from "../lib/pg/paths";
import { PG_BIN_DIR, type LocalClusterSpec } from "../lib/pg/cluster";
import { POSTGRES_USER, cleanChildEnv } from "../lib/pg/pgbackrest";
import { mustRun } from "../lib/process/run";
import type { K8sTestCluster } from "./k8s-test-cluster";
import { repoRoot } from "./repo";

const SYNC_ROLES = path.join(repoRoot, "docker", "postgres", "scripts", "loomworks-sync-roles");

/** The passwords of the Secret NAMES.postgresSecrets, decoded. */
export function postgresSecretPasswords(cluster: K8sTestCluster, namespace: string): Record<string, string> {
  const secret = JSON.parse(
    cluster.kubectl(["get", "secret", "-n", namespace, NAMES.postgresSecrets, "-o", "json"]),
  ) as { data: Record<string, string> };
  return Object.fromEntries(
    Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]),
  );
}

/**
 * What the PostgreSQL pod's role-sync loop does after a change of its Secret: sets the superuser's,
 * replication, monitoring and ERP role passwords of `spec`'s server from the Secret in the cluster.
 */
export async function syncRolesFromSecret(
  cluster: K8sTestCluster,
  namespace: string,
  spec: LocalClusterSpec,
  erpRole: string,
): Promise<void> {
  const passwords = postgresSecretPasswords(cluster, namespace);
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "loomworks-pg-secrets-"));
  try {
    const keys = [
      POSTGRES_SECRET_KEYS.superuserPassword,
      POSTGRES_SECRET_KEYS.replicationPassword,
      POSTGRES_SECRET_KEYS.monitorPassword,
      POSTGRES_SECRET_KEYS.erpPassword,
    ];
    for (const key of keys) {
      if (!passwords[key]) throw new Error(`Secret ${NAMES.postgresSecrets} has no ${key}`);
      await fsp.writeFile(path.join(dir, key), passwords[key], { mode: 0o400 });
    }
    await fsp.chmod(dir, 0o700);
    await mustRun("chown", ["-R", POSTGRES_USER, dir]);
    await mustRun(SYNC_ROLES, ["--once"], {
      asUser: POSTGRES_USER,
      cwd: "/",
      env: cleanChildEnv({
        PATH: `${PG_BIN_DIR}:${process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin"}`,
        PGPORT: String(spec.port),
        LOOMWORKS_SECRETS_DIR: dir,
        LOOMWORKS_SOCKET_DIR: clusterPaths(spec.stateDir).socketDir,
        LOOMWORKS_ERP_ROLE: erpRole,
      }),
    });
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

/**
 * The role-sync loop of the PostgreSQL pod, played every `intervalMs` while a `pulumi up` runs: applies
 * the Secret's passwords whenever they change (the Secret missing yet: nothing to do). A failed apply
 * is retried on the next tick, as the pod's loop does; `errors` keeps what failed, for the test's message.
 */
export function startRoleSync(
  cluster: K8sTestCluster,
  namespace: string,
  spec: LocalClusterSpec,
  erpRole: string,
  intervalMs = 1000,
): { stop(): Promise<void>; applied(): number; errors: string[] } {
  let applied = "";
  let count = 0;
  let stopped = false;
  const errors: string[] = [];
  const tick = async (): Promise<void> => {
    let current: string;
    try {
      current = JSON.stringify(postgresSecretPasswords(cluster, namespace));
    } catch {
      return; // not created yet
    }
    if (current === applied) return;
    try {
      await syncRolesFromSecret(cluster, namespace, spec, erpRole);
      applied = current;
      count++;
    } catch (err) {
      errors.push(err instanceof Error ? err.message : String(err));
      process.stderr.write(`role sync: ${errors[errors.length - 1]}\n`);
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await tick();
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
    applied: () => count,
    errors,
  };
}
