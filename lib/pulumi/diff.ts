/**
 * Diff by keys: a dynamic provider's diff names the inputs whose change replaces the resource and
 * those updated in place; this compares them (sameValue) and builds Pulumi's DiffResult.
 */
import type * as pulumi from "@pulumi/pulumi";
import { sameValue } from "./sameValue";
import { isUnknown } from "./unknown";

export interface KeyDiffSpec {
  /** Inputs whose change means a new resource. */
  replaceKeys: readonly string[];
  /** Inputs changed in place. */
  updateKeys: readonly string[];
  /** The value compared for a key (a default for a missing value, a resolved path); the value itself without it. */
  normalize?: (value: unknown, key: string) => unknown;
  /**
   * A replace key whose new value is unknown in a preview is a change, not a replacement:
   * `pulumi up` diffs again with the real value and replaces only if it differs.
   */
  unknownReplaceIsChange?: boolean;
}

export interface KeyDiff {
  /** The replace keys that changed. */
  replaces: string[];
  /** Every key that changed (or may have: unknown), replace keys first. */
  changed: string[];
}

export function diffKeys(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
  spec: KeyDiffSpec,
): KeyDiff {
  const norm = spec.normalize ?? ((v: unknown) => v);
  const differs = (k: string): boolean => !sameValue(norm(olds[k], k), norm(news[k], k));
  const replaces: string[] = [];
  const changed: string[] = [];
  for (const k of spec.replaceKeys.filter(differs)) {
    if (!(spec.unknownReplaceIsChange && isUnknown(news[k]))) replaces.push(k);
    changed.push(k);
  }
  changed.push(...spec.updateKeys.filter(differs));
  return { replaces, changed };
}

/** Pulumi's DiffResult with every field set. */
export interface KeyDiffResult extends pulumi.dynamic.DiffResult {
  changes: boolean;
  replaces: string[];
  deleteBeforeReplace: boolean;
}

/** Pulumi's DiffResult: a change when a key changed or `drift` (found by read) needs an update. */
export function diffResult(
  d: KeyDiff,
  opts: { deleteBeforeReplace: boolean; drift?: boolean },
): KeyDiffResult {
  return {
    changes: d.changed.length > 0 || opts.drift === true,
    replaces: d.replaces,
    deleteBeforeReplace: opts.deleteBeforeReplace,
  };
}
