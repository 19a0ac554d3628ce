/**
 * The loomworks_tenants addon's garbage collector (docker/addons/loomworks_tenants/filestore_retire.py)
 * run by python3 against a fake `ir.attachment` (no Odoo needed): unreferenced files are moved to the
 * retired area, referenced ones stay, and a file that cannot be moved keeps its spool entry.
 * The same collector inside a real Odoo 18: test/odoo/real-erp.test.ts.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const MODULE = path.resolve(__dirname, "../../docker/addons/loomworks_tenants/filestore_retire.py");

const SCRIPT = `
import importlib.util, json, os, re, sys
spec = importlib.util.spec_from_file_location("filestore_retire", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
root, referenced, millis = sys.argv[2], set(json.loads(sys.argv[3])), int(sys.argv[4])
class Cr:
    def execute(self, sql, params=None):
        self.last = (sql, params)
    def fetchone(self):
        return (millis,)
    def fetchall(self):
        return [(n,) for n in self.last[1][0] if n in referenced]
    def split_for_in_conditions(self, ids):
        ids = list(ids)
        return [tuple(ids[i:i + 2]) for i in range(0, len(ids), 2)]
class Env: cr = Cr()
class Attachments:
    env = Env()
    def _filestore(self): return os.path.join(root, "acme")
    def _full_path(self, p): return os.path.join(self._filestore(), re.sub("[.]", "", p).strip("/\\\\"))
mod._collect(Attachments())
`;

function put(file: string, content = "x"): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
}

describe("the ERP's filestore garbage collector retires files", () => {
  let root: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "lw-gc-"));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const collect = (referenced: string[], millis: number) => {
    const r = spawnSync("python3", ["-c", SCRIPT, MODULE, root, JSON.stringify(referenced), String(millis)], {
      encoding: "utf8",
    });
    if (r.error) throw new Error(`python3 is needed (apt-get install python3): ${r.error.message}`);
    expect(r.status, r.stderr).toBe(0);
  };

  it("moves unreferenced spool entries' files to .retired/<db>/<ms>, keeps referenced ones, empties the spool", () => {
    const fsRoot = path.join(root, "acme");
    for (const n of ["aa/gone1", "bb/gone2", "cc/kept", "dd/never-written"])
      put(path.join(fsRoot, "checklist", n), "");
    put(path.join(fsRoot, "aa/gone1"), "one");
    put(path.join(fsRoot, "bb/gone2"), "two");
    put(path.join(fsRoot, "cc/kept"), "kept");
    collect(["cc/kept"], 1_700_000_000_123);
    const batch = path.join(root, ".retired", "acme", "1700000000123");
    expect(fs.readFileSync(path.join(batch, "aa/gone1"), "utf8")).toBe("one");
    expect(fs.readFileSync(path.join(batch, "bb/gone2"), "utf8")).toBe("two");
    expect(fs.existsSync(path.join(fsRoot, "aa/gone1"))).toBe(false);
    expect(fs.readFileSync(path.join(fsRoot, "cc/kept"), "utf8")).toBe("kept");
    expect(fs.existsSync(path.join(batch, "dd"))).toBe(false);
    expect(
      fs
        .readdirSync(path.join(fsRoot, "checklist"), { recursive: true })
        .filter((f) => String(f).includes("/")),
    ).toEqual([]);
  });

  it("keeps a file it cannot move, and its spool entry, for the next collection", () => {
    const fsRoot = path.join(root, "acme");
    put(path.join(fsRoot, "checklist", "ee", "stuck"), "");
    put(path.join(fsRoot, "ee/stuck"), "stuck");
    // The batch directory's place is taken by a file: the move fails.
    put(path.join(root, ".retired", "acme", "1700000000999"), "in the way");
    collect([], 1_700_000_000_999);
    expect(fs.readFileSync(path.join(fsRoot, "ee/stuck"), "utf8")).toBe("stuck");
    expect(fs.existsSync(path.join(fsRoot, "checklist", "ee", "stuck"))).toBe(true);
  });
});
