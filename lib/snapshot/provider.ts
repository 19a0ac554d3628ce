/**
 * Check and diff of the Snapshot dynamic provider, unit-tested in test/unit/snapshot.test.ts; the
 * lifecycle is in snapshot.ts.
 */
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { diffKeys, diffResult, type KeyDiffResult } from "../pulumi/diff";
import { CheckFailures } from "../pulumi/failures";
import { isKnown } from "../pulumi/unknown";
import { checkDatabaseName } from "../pg/names";

/** Manual snapshot names, as infra/config/schema.ts `SNAPSHOT_NAME`. */
export const MANUAL_SNAPSHOT_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Inputs whose change means another snapshot. */
export const SNAPSHOT_REPLACE_KEYS = ["subdomain", "name"] as const;
/** Inputs that may change without any effect on the snapshot. */
export const SNAPSHOT_INERT_KEYS = [
  "adminDsn",
  "database",
  "filestoreRoot",
  "snapshotRoot",
  "pgbackrestConfig",
  "pgbackrestStanza",
] as const;

export function checkSnapshotInputs(p: Record<string, unknown>): pulumi.dynamic.CheckFailure[] {
  const failures = new CheckFailures();
  failures.requireKeys(p, ["adminDsn", "subdomain", "database", "name", "filestoreRoot", "snapshotRoot"]);
  if (isKnown(p.name) && typeof p.name === "string" && p.name && !MANUAL_SNAPSHOT_NAME.test(p.name)) {
    failures.add(
      "name",
      "must be a snapshot name: a-z or 0-9 first, then a-z, 0-9 or hyphens, at most 63 characters",
    );
  }
  const database = p.database;
  if (isKnown(database) && typeof database === "string" && database) {
    failures.attempt("database", () => checkDatabaseName(database));
  }
  for (const key of ["filestoreRoot", "snapshotRoot"]) {
    const v = p[key];
    if (isKnown(v) && typeof v === "string" && v && !path.isAbsolute(v)) {
      failures.add(key, `${key} must be an absolute path`);
    }
  }
  return failures.list;
}

export interface SnapshotDiff extends KeyDiffResult {
  changed: string[];
}

/** subdomain or name changed → replace (new snapshot first); anything else (DSN, paths) → an update that does nothing. */
export function diffSnapshot(olds: Record<string, unknown>, news: Record<string, unknown>): SnapshotDiff {
  const d = diffKeys(olds, news, { replaceKeys: SNAPSHOT_REPLACE_KEYS, updateKeys: SNAPSHOT_INERT_KEYS });
  return { ...diffResult(d, { deleteBeforeReplace: false }), changed: d.changed };
}
