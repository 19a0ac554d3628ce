/**
 * Pure parts of the guards: the provider's diff plan and the exclusion list merge. The SQL itself
 * is exercised against PostgreSQL by test/integration/undo.test.ts and quota.test.ts.
 */
import { describe, expect, it } from "vitest";
import { effectiveExclusions, GUARDS_VERSION } from "../../lib/guards/install";
import { diffGuards } from "../../lib/guards/provider";
import { DEFAULT_EXCLUDED_TABLES } from "../../lib/undo/sql";

const base = {
  subdomain: "acme",
  database: "acme",
  tier: "pro",
  limits: { maxUsers: 25, maxStorageGb: 50, maxAiOperationsDaily: 1000, maxSnapshots: 100 },
  excludeTables: ["x_audit_*"],
  version: GUARDS_VERSION,
  uncapturedTables: 0,
  userLimitTrigger: true,
};

describe("diffGuards", () => {
  it("sees no change when nothing changed, whatever the key order of limits", () => {
    const reordered = {
      ...base,
      limits: { maxSnapshots: 100, maxAiOperationsDaily: 1000, maxStorageGb: 50, maxUsers: 25 },
    };
    expect(diffGuards(base, reordered)).toEqual({ changes: false, replaces: [], changed: [] });
  });

  it.each([
    ["version", { version: "snapshot v1, quota v1, undo v0" }],
    ["tier", { tier: "basic" }],
    ["limits", { limits: { ...base.limits, maxUsers: 26 } }],
    ["excludeTables", { excludeTables: [] }],
    ["generation", { generation: "restore-1" }],
  ])("updates in place when %s changes", (key, change) => {
    expect(diffGuards(base, { ...base, ...change })).toEqual({ changes: true, replaces: [], changed: [key] });
  });

  it("replaces when the database changes", () => {
    expect(diffGuards(base, { ...base, database: "acme2" })).toMatchObject({
      changes: true,
      replaces: ["database"],
    });
  });

  it("treats tables found without capture, or a missing user-limit trigger, as drift", () => {
    expect(diffGuards({ ...base, uncapturedTables: 3 }, base).changes).toBe(true);
    expect(diffGuards({ ...base, userLimitTrigger: false }, base).changes).toBe(true);
    expect(diffGuards({ ...base, userLimitTrigger: null }, base).changes).toBe(false);
  });
});

describe("effectiveExclusions", () => {
  it("keeps the built-in noisy tables and adds the stack's, once each", () => {
    const list = effectiveExclusions(["x_audit_*", "bus_bus", "x_audit_*"]);
    expect(list.filter((e) => e.source === "builtin").map((e) => e.pattern)).toEqual([
      ...DEFAULT_EXCLUDED_TABLES,
    ]);
    expect(list.filter((e) => e.source === "stack").map((e) => e.pattern)).toEqual(["x_audit_*"]);
  });

  it("never lets undo hand out a number twice: ir_sequence is always excluded", () => {
    expect(effectiveExclusions([]).map((e) => e.pattern)).toContain("ir_sequence");
  });
});
