/**
 * findInstalledOdoo (lib/odoo/installed.ts) against a throw-away `odoo` package and command: the
 * "locate" probe (every `up` of the local target) finds the package and its version without
 * importing it; the "import" probe (the real-ERP tests' gate) refuses an Odoo its Python cannot
 * import.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ODOO_BIN_ENV, findInstalledOdoo } from "../../lib/odoo/installed";

const root = mkdtempSync(path.join(os.tmpdir(), "loomworks-odoo-installed-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A package `odoo` under `<root>/<name>/lib` whose import fails (a dependency missing) and a command. */
function fakeOdoo(name: string, release: string): NodeJS.ProcessEnv {
  const lib = path.join(root, name, "lib");
  mkdirSync(path.join(lib, "odoo", "addons", "base"), { recursive: true });
  writeFileSync(path.join(lib, "odoo", "__init__.py"), "import loomworks_missing_dependency\n");
  writeFileSync(path.join(lib, "odoo", "release.py"), release);
  writeFileSync(path.join(lib, "odoo", "addons", "base", "__manifest__.py"), "{'name': 'Base'}\n");
  const command = path.join(root, name, "odoo");
  writeFileSync(command, "#!/usr/bin/env python3\nimport odoo\n", { mode: 0o755 });
  return { PATH: process.env.PATH, PYTHONPATH: lib, [ODOO_BIN_ENV]: command };
}

describe("findInstalledOdoo", () => {
  it("locates the package and reads its version without importing it", () => {
    const env = fakeOdoo("ok", "version_info = (18, 0, 0, 'final', 0, '')\nmajor_version = '18.0'\n");
    const found = findInstalledOdoo(env, "locate");
    expect(found).toEqual({
      odoo: expect.objectContaining({
        command: env[ODOO_BIN_ENV],
        addonsDir: path.join(root, "ok", "lib", "odoo", "addons"),
        version: "18.0",
      }),
    });
  });

  it("with the import probe, says the Python cannot import it", () => {
    const env = fakeOdoo("broken", "major_version = '18.0'\n");
    const found = findInstalledOdoo(env, "import");
    expect("missing" in found && found.missing).toMatch(/cannot import odoo.*loomworks_missing_dependency/s);
  });

  it("refuses a release.py without a version", () => {
    const env = fakeOdoo("noversion", "major_version = ''\n");
    expect(findInstalledOdoo(env, "locate")).toEqual({ missing: expect.stringMatching(/no Odoo version/) });
  });

  it("says so when there is no odoo command", () => {
    expect(findInstalledOdoo({ PATH: root }, "locate")).toEqual({
      missing: expect.stringMatching(/no odoo command on PATH/),
    });
  });
});
