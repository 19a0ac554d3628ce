/**
 * Pure helpers of the PitrRestore dynamic provider (input checks, diff, outputs), unit-tested in
 * test/unit/restore.test.ts ("PitrRestore provider helpers").
 */
import * as path from "node:path";
import type { RestoreResult } from "./restore";
import {
  RESTORE_KINDS,
  RestoreTargetError,
  isLsn,
  parseTargetTime,
  validateRestoreTarget,
  type RestoreTarget,
} from "./target";

/** The value Pulumi passes for inputs not known yet during a preview. */
export const UNKNOWN_INPUT = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

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

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === "object") {
    return Object.fromEntries(
      Object.keys(v as Record<string, unknown>)
        .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

const same = (a: unknown, b: unknown): boolean =>
  JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));

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
  return PITR_REPLACE_KEYS.filter((k) => news[k] !== UNKNOWN_INPUT && !same(olds[k], news[k]));
}

/** The inputs that changed (or may have: unknown in a preview) without needing a new restore. */
export function pitrRestoreChangedKeys(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): string[] {
  const maybe = PITR_REPLACE_KEYS.filter((k) => news[k] === UNKNOWN_INPUT && olds[k] !== UNKNOWN_INPUT);
  return [...maybe, ...PITR_UPDATE_KEYS.filter((k) => !same(olds[k], news[k]))];
}

/** Cheap checks of the inputs (names and shapes), skipping values not known yet. */
export function checkPitrRestoreInputs(
  p: Record<string, unknown>,
): Array<{ property: string; reason: string }> {
  const failures: Array<{ property: string; reason: string }> = [];
  const known = (v: unknown): boolean => v !== undefined && v !== UNKNOWN_INPUT;
  const sub = typeof p.subdomain === "string" ? p.subdomain : "?";
  for (const key of [
    "adminDsn",
    "stateDir",
    "stanza",
    "subdomain",
    "database",
    "roleName",
    "filestoreRoot",
  ]) {
    if (p[key] === undefined || p[key] === "") failures.push({ property: key, reason: `${key} is required` });
  }
  const root = p.filestoreRoot;
  if (known(root) && typeof root === "string" && root !== "" && !path.isAbsolute(root)) {
    failures.push({ property: "filestoreRoot", reason: "filestoreRoot must be an absolute path" });
  }
  if (known(p.tenantState) && !["active", "suspended", "archived"].includes(String(p.tenantState))) {
    failures.push({
      property: "tenantState",
      reason: "tenantState must be one of active, suspended, archived",
    });
  }
  const t = p.target as RestoreTarget | undefined;
  if (known(t)) {
    const set =
      t && typeof t === "object" ? RESTORE_KINDS.filter((k) => t[k] !== undefined && t[k] !== null) : [];
    if (set.length !== 1) {
      failures.push({
        property: "target",
        reason: `tenant "${sub}": key "restore": must name exactly one of ${RESTORE_KINDS.join(", ")}`,
      });
    } else {
      const kind = set[0];
      const v = (t as RestoreTarget)[kind];
      if (known(v)) {
        if (typeof v !== "string" || v.trim() === "") {
          failures.push({
            property: "target",
            reason: `tenant "${sub}": key "restore.${kind}": must be a non-empty string`,
          });
        } else if (kind === "time" && parseTargetTime(v) === undefined) {
          failures.push({
            property: "target",
            reason: `tenant "${sub}": key "restore.time": "${v}" is not an ISO 8601 timestamp with a time zone`,
          });
        } else if (kind === "lsn" && !isLsn(v)) {
          failures.push({
            property: "target",
            reason: `tenant "${sub}": key "restore.lsn": "${v}" is not an LSN (expected X/Y in hexadecimal)`,
          });
        }
      }
    }
  }
  if (known(p.snapshotLsn) && p.snapshotLsn !== undefined && !isLsn(String(p.snapshotLsn))) {
    failures.push({
      property: "snapshotLsn",
      reason: `snapshotLsn "${String(p.snapshotLsn)}" is not an LSN`,
    });
  }
  return failures;
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
  failures: Array<{ property: string; reason: string }>;
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
  const known = (v: unknown): boolean => v !== undefined && !JSON.stringify(v).includes(UNKNOWN_INPUT);
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
