/** Diff of the TenantGuards dynamic provider, unit-tested in test/unit/guards.test.ts; the lifecycle is in tenant.ts. */
import { diffKeys, type KeyDiffResult } from "../pulumi/diff";
import { sameValue } from "../pulumi/sameValue";

/** Inputs whose change re-runs ensureTenantGuards (a new database means a new resource). */
export const GUARDS_UPDATE_KEYS = ["version", "tier", "limits", "excludeTables", "generation"] as const;

/**
 * Whether the guards need converging: `database`/`subdomain` replace; version, tier, limits,
 * exclusions and the restore generation update; capture missing on some table (found by read) is
 * drift → update.
 */
export function diffGuards(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): { changes: boolean; replaces: string[]; changed: string[] } {
  const d = diffKeys(olds, news, {
    replaceKeys: ["subdomain", "database"],
    updateKeys: GUARDS_UPDATE_KEYS,
    normalize: (v) => v ?? null,
  });
  const drift = Number(olds.uncapturedTables ?? 0) > 0 || olds.userLimitTrigger === false;
  const changed = d.changed.filter((k) => !d.replaces.includes(k));
  return { changes: d.changed.length > 0 || drift, replaces: d.replaces, changed };
}

/** The provider's diff: diffGuards, and a rotated superuser password alone is an update that only records it. */
export function diffTenantGuards(
  olds: Record<string, unknown>,
  news: Record<string, unknown>,
): KeyDiffResult {
  const d = diffGuards(olds, news);
  return {
    changes: d.changes || !sameValue(olds.adminDsn, news.adminDsn),
    replaces: d.replaces,
    deleteBeforeReplace: true,
  };
}
