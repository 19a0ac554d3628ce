/** Diff of the LocalPostgres dynamic provider (dynamic-providers/localPostgres.ts); the lifecycle is in cluster.ts. */
import { diffKeys, diffResult, type KeyDiffResult } from "../pulumi/diff";
import { clusterPaths } from "./paths";

/**
 * A new stateDir replaces the cluster (the old one is deleted first, data and backups included);
 * every other input, `port` too (a restart), and a server found stopped by read update in place.
 */
export function diffLocalPostgres(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): KeyDiffResult {
  const d = diffKeys(olds, news, {
    replaceKeys: ["stateDir"],
    updateKeys: [
      "port",
      "archiveTimeoutSeconds",
      "superuserPassword",
      "stanza",
      "retentionFull",
      "configHash",
      "encryptionPassphrase",
    ],
    normalize: (v, key) =>
      key === "stateDir" ? clusterPaths(String(v)).stateDir : key === "encryptionPassphrase" ? (v ?? "") : v,
  });
  return diffResult(d, { deleteBeforeReplace: true, drift: olds.running === false });
}
