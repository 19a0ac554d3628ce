/**
 * Pure helpers of the PitrRestore dynamic provider (input checks, diff, outputs), unit-tested in
 * test/unit/restore.test.ts ("PitrRestore provider helpers").
 */
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { diffKeys, diffResult, type KeyDiff, type KeyDiffResult } from "../pulumi/diff";
import { CheckFailures } from "../pulumi/failures";
import { containsUnknown, isKnown } from "../pulumi/unknown";
import type { RestoreResult } from "./restore";
import {
  RESTORE_KINDS,
  RestoreTargetError,
  isLsn,
  parseTargetTime,
  validateRestoreTarget,
  type RestoreTarget,
} from "./target";

/** Inputs whose change means a new restore. */
export const PITR_REPLACE_KEYS = ["target", "snapshotLsn"] as const;
/** Inputs that may change without any effect (recorded only). */
export const PITR_UPDATE_KEYS = [
  "adminDsn",
  "stateDir",
  "stanza",
  "subdomain",
  "database",
  "roleName",
  "tenantState",
  "snapshotFilestore",
  "filestoreRoot",
] as const;

function pitrDiff(olds: Record<string, unknown>, news: Record<string, unknown>): KeyDiff {
  return diffKeys(olds, news, {
    replaceKeys: PITR_REPLACE_KEYS,
    updateKeys: PITR_UPDATE_KEYS,
    unknownReplaceIsChange: true,
  });
}

/**
 * True when the change from `olds` to `news` needs a new restore. A value not known yet in a
 * preview (e.g. the LSN of a Snapshot being updated) is not taken for a change: `pulumi up` diffs
 * again with the real value and replaces only if it differs.
 */
export function pitrRestoreReplaces(olds: Record<string, unknown>, news: Record<string, unknown>): boolean {
  return pitrRestoreReplaceKeys(olds, news).length > 0;
}

/** The inputs whose change needs a new restore (see pitrRestoreReplaces). */
export function pitrRestoreReplaceKeys(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): string[] {
  return pitrDiff(olds, news).replaces;
}

/** The inputs that changed (or may have: unknown in a preview) without needing a new restore. */
export function pitrRestoreChangedKeys(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): string[] {
  const d = pitrDiff(olds, news);
  return d.changed.filter((k) => !d.replaces.includes(k));
}

/** The provider's diff: `target` or `snapshotLsn` changed → a new restore (the old one is kept); anything else → an update that changes nothing. */
export function diffPitrRestore(olds: Record<string, unknown>, news: Record<string, unknown>): KeyDiffResult {
  return diffResult(pitrDiff(olds, news), { deleteBeforeReplace: false });
}

/** Cheap checks of the inputs (names and shapes), skipping values not known yet. */
export function checkPitrRestoreInputs(p: Record<string, unknown>): pulumi.dynamic.CheckFailure[] {
  const failures = new CheckFailures();
  const sub = typeof p.subdomain === "string" ? p.subdomain : "?";
  failures.requireKeys(p, [
    "adminDsn",
    "stateDir",
    "stanza",
    "subdomain",
    "database",
    "roleName",
    "filestoreRoot",
  ]);
  const root = p.filestoreRoot;
  if (isKnown(root) && typeof root === "string" && root !== "" && !path.isAbsolute(root)) {
    failures.add("filestoreRoot", "filestoreRoot must be an absolute path");
  }
  if (isKnown(p.tenantState) && !["active", "suspended", "archived"].includes(String(p.tenantState))) {
    failures.add("tenantState", "tenantState must be one of active, suspended, archived");
  }
  const t = p.target as RestoreTarget | undefined;
  if (isKnown(t)) {
    const set =
      t && typeof t === "object" ? RESTORE_KINDS.filter((k) => t[k] !== undefined && t[k] !== null) : [];
    if (set.length !== 1) {
      failures.add(
        "target",
        `tenant "${sub}": key "restore": must name exactly one of ${RESTORE_KINDS.join(", ")}`,
      );
    } else {
      const kind = set[0];
      const v = (t as RestoreTarget)[kind];
      if (isKnown(v)) {
        if (typeof v !== "string" || v.trim() === "") {
          failures.add("target", `tenant "${sub}": key "restore.${kind}": must be a non-empty string`);
        } else if (kind === "time" && parseTargetTime(v) === undefined) {
          failures.add(
            "target",
            `tenant "${sub}": key "restore.time": "${v}" is not an ISO 8601 timestamp with a time zone`,
          );
        } else if (kind === "lsn" && !isLsn(v)) {
          failures.add(
            "target",
            `tenant "${sub}": key "restore.lsn": "${v}" is not an LSN (expected X/Y in hexadecimal)`,
          );
        }
      }
    }
  }
  if (isKnown(p.snapshotLsn) && !isLsn(String(p.snapshotLsn))) {
    failures.add("snapshotLsn", `snapshotLsn "${String(p.snapshotLsn)}" is not an LSN`);
  }
  return failures.list;
}

/** The provider's outputs: its inputs plus the restore's result. */
export function pitrRestoreOutputs<I extends object>(
  inputs: I,
  r: RestoreResult,
): I & {
  restoreId: string;
  targetLsn: string | null;
  backup: string | null;
  state: string;
  preRestoreDatabase: string;
  timings: Record<string, unknown>;
} {
  return {
    ...inputs,
    restoreId: r.id,
    targetLsn: r.targetLsn,
    backup: r.backup,
    state: r.state,
    preRestoreDatabase: r.preRestoreDatabase,
    timings: r.timings as Record<string, unknown>,
  };
}

export interface PitrRestoreCheck {
  failures: pulumi.dynamic.CheckFailure[];
  /** Set when the target could not be validated now (the cluster is unreachable or not created yet). */
  warning?: string;
  /** Whether the target was validated against the repository and the live cluster. */
  validated: boolean;
}

/**
 * The PitrRestore provider's `check`: input shapes, then — only when the target is new or changed
 * (a restore would run) and every input it needs is known — the read-only validateRestoreTarget,
 * so a target outside the recovery window fails `pulumi preview`. An unchanged target is not
 * re-validated (a restore done long ago may have left the window since). A snapshot created in
 * the same update has no LSN yet: create() validates it.
 */
export async function checkPitrRestore(
  olds: Record<string, unknown> | undefined,
  news: Record<string, unknown>,
): Promise<PitrRestoreCheck> {
  const failures = checkPitrRestoreInputs(news);
  if (failures.length > 0) return { failures, validated: false };
  const known = (v: unknown): boolean => v !== undefined && !containsUnknown(v);
  if (olds && olds.target !== undefined && !pitrRestoreReplaces(olds, news))
    return { failures, validated: false };
  if (![news.adminDsn, news.stateDir, news.stanza, news.subdomain, news.target].every(known)) {
    return { failures, validated: false };
  }
  const target = news.target as RestoreTarget;
  const snapshotLsn = known(news.snapshotLsn) ? String(news.snapshotLsn) : undefined;
  if (target.snapshot !== undefined && news.snapshotLsn !== undefined && !snapshotLsn) {
    return { failures, validated: false }; // the snapshot's LSN is computed in this update
  }
  try {
    await validateRestoreTarget({
      adminDsn: String(news.adminDsn),
      stateDir: String(news.stateDir),
      stanza: String(news.stanza),
      subdomain: String(news.subdomain),
      target,
      ...(snapshotLsn ? { snapshotLsn } : {}),
    });
    return { failures, validated: true };
  } catch (err) {
    if (err instanceof RestoreTargetError) {
      return { failures: [{ property: "target", reason: err.message }], validated: true };
    }
    return {
      failures,
      validated: false,
      warning: `target not validated in preview: ${(err as Error).message}`,
    };
  }
}
