/** Diff of the LocalPostgres dynamic provider (dynamic-providers/localPostgres.ts); the lifecycle is in cluster.ts. */
import { diffKeys, diffResult, type KeyDiffResult } from "../pulumi/diff";
import { clusterPaths } from "./paths";

/**
 * The diff of a local service living under the platform's state directory (the cluster, the
 * scheduler): a new stateDir replaces it (the old one is deleted first); a change of an update
 * key, or the service found stopped by read, updates it in place.
 */
export function diffLocalService(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  updateKeys: readonly string[],
  normalize: (value: unknown, key: string) => unknown = (v) => v,
): KeyDiffResult {
  const d = diffKeys(olds, news, {
    replaceKeys: ["stateDir"],
    updateKeys,
    normalize: (v, key) => (key === "stateDir" ? clusterPaths(String(v)).stateDir : normalize(v, key)),
  });
  return diffResult(d, { deleteBeforeReplace: true, drift: olds.running === false });
}

/** LocalPostgres: every input but stateDir, `port` too (a restart), is updated in place. */
export function diffLocalPostgres(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): KeyDiffResult {
  return diffLocalService(
    olds,
    news,
    [
      "port",
      "archiveTimeoutSeconds",
      "superuserPassword",
      "stanza",
      "retentionFull",
      "configHash",
      "encryptionPassphrase",
      "offsite",
    ],
    (v, key) => (key === "encryptionPassphrase" ? (v ?? "") : v),
  );
}
