/**
 * The entry point of the local cluster's lifecycle, above lib/pg/cluster.ts (the cluster's steps)
 * and lib/pg/disaster.ts (its restore from the repository, which uses those steps).
 */
import {
  dataDirInitialized,
  ensureClusterLayout,
  ensureClusterStarted,
  type ClusterLog,
  type LocalClusterSpec,
} from "./cluster";
import { hasRestorableBackup, recoverCluster } from "./disaster";

/**
 * Brings the cluster to the spec: directory layout, initdb when missing (or, when the repository
 * holds backups, a restore from it: see lib/pg/disaster.ts), both configuration files,
 * running server (reloaded or restarted for changed settings), superuser password, pgBackRest
 * stanza and check, a first full backup when the repository has none. Idempotent; safe to rerun
 * after a crash at any point.
 */
export async function ensureCluster(
  spec: LocalClusterSpec,
  log: ClusterLog = () => undefined,
): Promise<void> {
  await ensureClusterLayout(spec);
  // Never initdb over a repository holding backups: that would orphan every tenant's history.
  if (!(await dataDirInitialized(spec)) && (await hasRestorableBackup(spec))) {
    log(
      "restoring the cluster from the repository: the data directory is missing and the repository holds backups",
    );
    await recoverCluster(spec, log);
  }
  await ensureClusterStarted(spec, log);
}
