/**
 * The router's per-tenant maintenance switch (lib/router/maintenance.ts): the flag files nginx
 * tests on every request. That nginx honours them without a reload is shown in
 * test/integration/router.test.ts.
 */
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { routerPaths } from "../../lib/router/config";
import { maintenanceFlag, routerMaintenance, setRouterMaintenance } from "../../lib/router/maintenance";

let stateDir: string;

beforeAll(async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), "loomworks-router-maint-"));
});

afterAll(async () => {
  await fs.rm(stateDir, { recursive: true, force: true });
});

describe("setRouterMaintenance", () => {
  it("creates and removes <stateDir>/router/maintenance/<subdomain>, idempotently", async () => {
    const flag = path.join(routerPaths(stateDir).maintenanceDir, "acme");
    expect(maintenanceFlag(stateDir, "acme")).toBe(flag);
    expect(await routerMaintenance(stateDir)).toEqual([]);

    await setRouterMaintenance(stateDir, "acme", true);
    await setRouterMaintenance(stateDir, "acme", true);
    await setRouterMaintenance(stateDir, "globex", true);
    await setRouterMaintenance(stateDir, "globex--preview", true);
    expect((await fs.stat(flag)).isFile()).toBe(true);
    expect((await fs.stat(flag)).mode & 0o777).toBe(0o600); // the workers only stat it
    expect((await fs.stat(path.dirname(flag))).mode & 0o777).toBe(0o711); // passed through, never listed, by the workers
    expect(await routerMaintenance(stateDir)).toEqual(["acme", "globex", "globex--preview"]);

    await setRouterMaintenance(stateDir, "acme", false);
    await setRouterMaintenance(stateDir, "acme", false);
    await expect(fs.stat(flag)).rejects.toThrow(/ENOENT/);
    expect(await routerMaintenance(stateDir)).toEqual(["globex", "globex--preview"]);
  });

  it("refuses names that are not subdomains (no way out of the directory)", async () => {
    for (const name of [
      "../router",
      "acme/../../x",
      "",
      ".",
      "Acme",
      "a--b",
      "a--preview--preview",
      "acme\n",
    ]) {
      await expect(setRouterMaintenance(stateDir, name, true), JSON.stringify(name)).rejects.toThrow(
        /router maintenance: database/,
      );
    }
    const entries = await fs.readdir(routerPaths(stateDir).dir);
    expect(entries).toEqual(["maintenance"]);
  });
});
