/**
 * The provider kit (lib/pulumi): unknown values, the value comparer, diff by keys, failure
 * collection and the lazy module loader.
 */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { diffKeys, diffResult, type KeyDiffSpec } from "../../lib/pulumi/diff";
import { CheckFailures } from "../../lib/pulumi/failures";
import { libModule } from "../../lib/pulumi/lazyModule";
import { sameValue } from "../../lib/pulumi/sameValue";
import { UNKNOWN, containsUnknown, isKnown, isUnknown } from "../../lib/pulumi/unknown";

describe("unknown values", () => {
  it("is the SDK's sentinel", () => {
    expect(UNKNOWN).toBe("04da6b54-80e4-46f7-96ec-b56ff0331ba9");
  });

  it.each<[string, unknown, boolean, boolean, boolean]>([
    // name, value, isUnknown, containsUnknown, isKnown
    ["the sentinel", UNKNOWN, true, true, false],
    ["undefined", undefined, false, false, false],
    ["null", null, false, false, true],
    ["a string", "acme", false, false, true],
    ["a string that only embeds the sentinel", `x${UNKNOWN}`, false, false, true],
    ["an array holding it", ["a", UNKNOWN], false, true, true],
    ["an object holding it deep down", { a: { b: [1, { c: UNKNOWN }] } }, false, true, true],
    ["an object without it", { a: { b: [1, { c: "d" }] } }, false, false, true],
  ])("%s", (_name, value, unknown, contains, known) => {
    expect(isUnknown(value)).toBe(unknown);
    expect(containsUnknown(value)).toBe(contains);
    expect(isKnown(value)).toBe(known);
  });
});

describe("sameValue", () => {
  it.each<[string, unknown, unknown, boolean]>([
    ["equal strings", "a", "a", true],
    ["different strings", "a", "b", false],
    ["a number and its string", 1, "1", false],
    ["undefined and undefined", undefined, undefined, true],
    ["undefined and null", undefined, null, false],
    ["objects in another key order", { a: 1, b: { c: 2, d: 3 } }, { b: { d: 3, c: 2 }, a: 1 }, true],
    ["a key holding undefined and a missing key", { a: 1, b: undefined }, { a: 1 }, true],
    ["a key holding null and a missing key", { a: 1, b: null }, { a: 1 }, false],
    ["objects with different values", { a: 1 }, { a: 2 }, false],
    ["objects with different keys", { a: 1 }, { b: 1 }, false],
    ["arrays in the same order", [1, { a: 2, b: 3 }], [1, { b: 3, a: 2 }], true],
    ["arrays in another order", [1, 2], [2, 1], false],
    ["arrays of other lengths", [1], [1, 1], false],
    ["an array and an object", [], {}, false],
  ])("%s → %s", (_name, a, b, same) => {
    expect(sameValue(a, b)).toBe(same);
    expect(sameValue(b, a)).toBe(same);
  });
});

describe("diffKeys and diffResult", () => {
  const spec: KeyDiffSpec = { replaceKeys: ["name", "lsn"], updateKeys: ["dsn", "limits"] };
  const olds = { name: "a", lsn: "0/1", dsn: "d1", limits: { users: 5, gb: 2 }, output: "x" };

  it.each<[string, Record<string, unknown>, KeyDiffSpec, { replaces: string[]; changed: string[] }]>([
    ["nothing changed", { ...olds }, spec, { replaces: [], changed: [] }],
    ["a reordered object", { ...olds, limits: { gb: 2, users: 5 } }, spec, { replaces: [], changed: [] }],
    ["an output not in the spec", { ...olds, output: "y" }, spec, { replaces: [], changed: [] }],
    ["an update key", { ...olds, dsn: "d2" }, spec, { replaces: [], changed: ["dsn"] }],
    [
      "replace and update keys, replace keys first",
      { ...olds, dsn: "d2", lsn: "0/2" },
      spec,
      { replaces: ["lsn"], changed: ["lsn", "dsn"] },
    ],
    ["an unknown replace key", { ...olds, lsn: UNKNOWN }, spec, { replaces: ["lsn"], changed: ["lsn"] }],
    [
      "an unknown replace key, deferred to up",
      { ...olds, lsn: UNKNOWN },
      { ...spec, unknownReplaceIsChange: true },
      { replaces: [], changed: ["lsn"] },
    ],
    [
      "a normalized default",
      { ...olds, dsn: undefined },
      { ...spec, normalize: (v, key) => (key === "dsn" ? (v ?? "d1") : v) },
      { replaces: [], changed: [] },
    ],
  ])("%s", (_name, news, s, expected) => {
    expect(diffKeys(olds, news, s)).toEqual(expected);
  });

  it.each<[string, { replaces: string[]; changed: string[] }, boolean | undefined, boolean]>([
    ["no change", { replaces: [], changed: [] }, undefined, false],
    ["drift alone", { replaces: [], changed: [] }, true, true],
    ["a changed key", { replaces: [], changed: ["dsn"] }, false, true],
    ["a replacement", { replaces: ["name"], changed: ["name"] }, undefined, true],
  ])("diffResult: %s", (_name, d, drift, changes) => {
    expect(diffResult(d, { deleteBeforeReplace: true, ...(drift === undefined ? {} : { drift }) })).toEqual({
      changes,
      replaces: d.replaces,
      deleteBeforeReplace: true,
    });
  });
});

describe("CheckFailures", () => {
  it.each<[string, (f: CheckFailures) => void, Array<{ property: string; reason: string }>]>([
    ["nothing found", () => undefined, []],
    [
      "an added failure",
      (f) => f.add("port", "port must be a number"),
      [{ property: "port", reason: "port must be a number" }],
    ],
    [
      "missing and empty required keys, in the order asked",
      (f) => f.requireKeys({ a: "x", b: "", d: 0 }, ["a", "b", "c", "d"]),
      [
        { property: "b", reason: "b is required" },
        { property: "c", reason: "c is required" },
      ],
    ],
    [
      "a validation that throws",
      (f) =>
        f.attempt("database", () => {
          throw new Error("bad name");
        }),
      [{ property: "database", reason: "bad name" }],
    ],
    ["a validation that passes", (f) => f.attempt("database", () => undefined), []],
  ])("%s", (_name, collect, expected) => {
    const failures = new CheckFailures();
    collect(failures);
    expect(failures.list).toEqual(expected);
  });
});

describe("libModule", () => {
  // The compiled loaders are exercised by the integration suite (provider-serialization.test.ts).
  it("resolves a path under lib/ and requires nothing until called", () => {
    const loader = libModule<unknown>("no-such-area/module");
    const expected = path.join(__dirname, "..", "..", "lib", "no-such-area", "module");
    expect(() => loader()).toThrow(expected);
  });
});
