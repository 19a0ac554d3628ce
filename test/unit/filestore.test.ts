import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assembleFilestore } from "../../lib/filestore/assemble";
import { pruneRetired, retiredBatches, retiredRoot } from "../../lib/filestore/retired";
import { storeFileName } from "../../lib/filestore/storeName";

describe("storeFileName: a store_fname as the ERP resolves it, or refused", () => {
  it("keeps Odoo's names", () => {
    const sha = "0a4d55a8d778e5022fab701977c5d840bbc486d0";
    expect(storeFileName(`0a/${sha}`)).toBe(`0a/${sha}`);
  });

  it("resolves like Odoo's _full_path: dots deleted, slashes stripped at both ends", () => {
    expect(storeFileName("../../other/ab/cd")).toBe("other/ab/cd");
    expect(storeFileName("/etc/passwd")).toBe("etc/passwd");
    expect(storeFileName("ab/c.d/")).toBe("ab/cd");
  });

  it("refuses what is not a plain relative name inside the filestore", () => {
    for (const bad of [
      "",
      "..",
      "/",
      "a//b",
      "a/\0b",
      "a\\b",
      "a/ b",
      "checklist/ab/cd",
      "é/x",
      "x".repeat(600),
    ])
      expect(storeFileName(bad), JSON.stringify(bad)).toBeUndefined();
  });

  it("never yields a name that leaves the directory it is joined to (property)", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (raw) => {
        const rel = storeFileName(raw);
        if (rel === undefined) return;
        const root = "/srv/fs/acme";
        const joined = path.join(root, rel);
        expect(joined.startsWith(root + "/")).toBe(true);
        expect(path.normalize(rel)).toBe(rel);
      }),
      { numRuns: 2000 },
    );
  });
});

describe("assembleFilestore", () => {
  let dir: string;
  const put = (root: string, rel: string, content: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
  };
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lw-assemble-"));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("links exactly the referenced files from the first source that has each, reporting the missing", () => {
    const live = path.join(dir, "live");
    const retired = path.join(dir, "retired");
    put(live, "aa/a1", "one");
    put(live, "bb/unreferenced", "x");
    put(retired, "cc/c3", "three!");
    put(retired, "aa/a1", "one");
    const dst = path.join(dir, "dst1");
    const r = assembleFilestore(dst, ["aa/a1", "cc/c3", "aa/a1", "dd/gone", "../aa/a1"], [live, retired]);
    expect(r).toMatchObject({ files: 2, bytes: 9, missing: ["dd/gone"], refused: [], perSource: [1, 1] });
    expect(fs.statSync(path.join(dst, "aa/a1")).ino).toBe(fs.statSync(path.join(live, "aa/a1")).ino);
    expect(fs.readFileSync(path.join(dst, "cc/c3"), "utf8")).toBe("three!");
    expect(fs.existsSync(path.join(dst, "bb"))).toBe(false);
  });

  it("links nothing from outside its sources: hostile names, symbolic links and special files", () => {
    const live = path.join(dir, "live2");
    const outside = path.join(dir, "outside");
    put(outside, "secret", "not yours");
    put(outside, "ab/secret", "not yours either");
    fs.mkdirSync(live, { recursive: true });
    fs.symlinkSync(path.join(outside, "secret"), path.join(live, "leak"));
    fs.symlinkSync(path.join(outside, "ab"), path.join(live, "ab"));
    fs.mkdirSync(path.join(live, "dir"));
    const dst = path.join(dir, "dst2");
    const r = assembleFilestore(
      dst,
      ["leak", "ab/secret", "dir", "../outside/secret", "/" + path.join(outside, "secret"), "checklist/x"],
      [live],
    );
    expect(r.files).toBe(0);
    expect(r.refused).toEqual(["checklist/x"]);
    expect(r.missing.sort()).toEqual(
      [
        "ab/secret",
        "dir",
        "leak",
        "outside/secret",
        path.join(outside, "secret").slice(1).replace(/\./g, ""),
      ].sort(),
    );
    expect(fs.readdirSync(dst)).toEqual([]);
  });

  it("skips a source that does not exist", () => {
    const live = path.join(dir, "live3");
    put(live, "aa/x", "x");
    const r = assembleFilestore(path.join(dir, "dst3"), ["aa/x"], [path.join(dir, "nope"), live]);
    expect(r).toMatchObject({ files: 1, perSource: [0, 1] });
  });
});

describe("the retired area", () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "lw-retired-"));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it("lives at <filestoreRoot>/.retired/<database>, which no database directory can be", () => {
    expect(retiredRoot("/srv/fs", "acme")).toBe("/srv/fs/.retired/acme");
    expect(() => retiredRoot("/srv/fs", "../x")).toThrow(/invalid/);
    expect(() => retiredRoot("fs", "acme")).toThrow(/absolute/);
  });

  it("lists batches newest first and prunes those retired before the horizon", async () => {
    const area = retiredRoot(root, "acme");
    for (const ms of [1000, 3000, 2000]) fs.mkdirSync(path.join(area, String(ms), "ab"), { recursive: true });
    fs.mkdirSync(path.join(area, "not-a-batch"));
    expect((await retiredBatches(root, "acme")).map((b) => b.at)).toEqual([3000, 2000, 1000]);
    expect(await pruneRetired(root, "acme", new Date(2000))).toEqual([1000]);
    expect((await retiredBatches(root, "acme")).map((b) => b.at)).toEqual([3000, 2000]);
    expect(await retiredBatches(root, "other")).toEqual([]);
  });
});
