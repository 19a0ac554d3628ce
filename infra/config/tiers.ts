/**
 * Built-in tier limits (docs/architecture.md#quotas) and their merge with the optional `loomworks:tiers`
 * overrides. Values ascend from tier to tier; a stack may override any subset of them.
 */
import { LIMIT_KEYS, TIERS, type Limits, type Tier } from "./schema";

export const DEFAULT_TIER_LIMITS: Readonly<Record<Tier, Readonly<Limits>>> = Object.freeze({
  basic: Object.freeze({ maxUsers: 10, maxStorageGb: 5, maxAiOperationsDaily: 100, maxSnapshots: 20 }),
  pro: Object.freeze({ maxUsers: 50, maxStorageGb: 50, maxAiOperationsDaily: 1000, maxSnapshots: 100 }),
  enterprise: Object.freeze({
    maxUsers: 500,
    maxStorageGb: 500,
    maxAiOperationsDaily: 10000,
    maxSnapshots: 500,
  }),
});

/** The built-in tier limits with `overrides` (already validated) applied key by key. */
export function mergeTierLimits(
  overrides: Partial<Record<Tier, Partial<Limits>>> = {},
): Record<Tier, Limits> {
  const result = {} as Record<Tier, Limits>;
  for (const tier of TIERS) {
    const limits: Limits = { ...DEFAULT_TIER_LIMITS[tier] };
    const override = overrides[tier] ?? {};
    for (const key of LIMIT_KEYS) {
      const value = override[key];
      if (value !== undefined) limits[key] = value;
    }
    result[tier] = limits;
  }
  return result;
}
