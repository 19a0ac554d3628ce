/**
 * The tenant map and credentials the ERP's loomworks_tenants addon reads (lib/odoo/tenantMap.ts), the
 * odoo.conf options that name them, and the local files' lifecycle (lib/odoo/localTenantFiles.ts).
 */
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseOdooConfig, renderOdooConfig, type OdooConfigOptions } from "../../lib/odoo/config";
import { readLocalErpTenants, writeLocalErpTenants } from "../../lib/odoo/localTenantFiles";
import { checkLocalErpTenants, diffLocalErpTenants } from "../../lib/odoo/provider";
import {
  renderTenantCredentials,
  renderTenantMap,
  servedDatabases,
  type ErpTenant,
} from "../../lib/odoo/tenantMap";

const tenants: ErpTenant[] = [
  { subdomain: "globex", database: "globex", roleName: "globex", password: "pw-g", state: "suspended" },
  { subdomain: "acme", database: "acme", roleName: "acme", password: "pw-a", state: "active" },
  { subdomain: "initech", database: "initech", roleName: "initech", password: "pw-i", state: "archived" },
];

const conf: OdooConfigOptions = {
  adminPasswd: "a-very-strong-master-password",
  dbHost: "127.0.0.1",
  dbPort: 5432,
  dbUser: "loomworks_erp",
  dbPassword: "erp-password",
  dataDir: "/srv/state",
  addonsPath: "/srv/addons",
  cpu: 1,
  memoryMb: 2048,
};

describe("the tenant map and credentials", () => {
  it("lists every tenant with its state, sorted, and no secret", () => {
    const map = JSON.parse(renderTenantMap(tenants, "/srv/state/router/maintenance")) as Record<
      string,
      unknown
    >;
    expect(map).toEqual({
      version: 1,
      maintenanceDir: "/srv/state/router/maintenance",
      tenants: [
        { subdomain: "acme", database: "acme", state: "active" },
        { subdomain: "globex", database: "globex", state: "suspended" },
        { subdomain: "initech", database: "initech", state: "archived" },
      ],
    });
    expect(renderTenantMap(tenants)).not.toMatch(/pw-/);
    expect(servedDatabases(tenants)).toEqual(["acme"]);
  });

  it("gives each database its own role and password", () => {
    expect(JSON.parse(renderTenantCredentials(tenants))).toEqual({
      version: 1,
      databases: {
        acme: { user: "acme", password: "pw-a" },
        globex: { user: "globex", password: "pw-g" },
        initech: { user: "initech", password: "pw-i" },
      },
    });
  });

  it("refuses a database named twice or a tenant without a password", () => {
    expect(() => renderTenantMap([...tenants, { ...tenants[1], subdomain: "acme2" }])).toThrow(
      /database "acme" appears twice/,
    );
    expect(() => renderTenantCredentials([{ ...tenants[0], password: "" }])).toThrow(/has no password/);
  });
});

describe("odoo.conf for the tenant map", () => {
  it("loads the addon server-wide and names both files; ports follow the configuration", () => {
    const o = parseOdooConfig(
      renderOdooConfig({
        ...conf,
        httpPort: 18069,
        geventPort: 18072,
        tenantFiles: {
          map: "/srv/state/odoo/tenants.json",
          credentials: "/srv/state/odoo/tenant-credentials.json",
        },
      }),
    );
    expect(o).toMatchObject({
      http_port: "18069",
      gevent_port: "18072",
      server_wide_modules: "base,web,loomworks_tenants",
      loomworks_tenant_map: "/srv/state/odoo/tenants.json",
      loomworks_tenant_credentials: "/srv/state/odoo/tenant-credentials.json",
      dbfilter: "^%d$",
    });
  });

  it("without the files: stock listing, default ports", () => {
    const o = parseOdooConfig(renderOdooConfig(conf));
    expect(o).toMatchObject({ http_port: "8069", gevent_port: "8072", server_wide_modules: "base,web" });
    expect(o).not.toHaveProperty("loomworks_tenant_map");
  });

  it("refuses a port out of range", () => {
    expect(() => renderOdooConfig({ ...conf, httpPort: 70000 })).toThrow(/http_port must be an integer/);
  });
});

describe("the local files", () => {
  let stateDir: string;
  beforeAll(async () => {
    stateDir = await fsp.mkdtemp(path.join(os.tmpdir(), "loomworks-erp-tenants-"));
  });
  afterAll(async () => {
    await fsp.rm(stateDir, { recursive: true, force: true });
  });

  it("writes both files 0600 in a 0700 directory; refresh sees an edit, the next up rewrites it", async () => {
    const out = await writeLocalErpTenants({ stateDir, tenants });
    expect(out.mapPath).toBe(path.join(stateDir, "odoo", "tenants.json"));
    for (const file of [out.mapPath, out.credentialsPath])
      expect((await fsp.stat(file)).mode & 0o777).toBe(0o600);
    expect((await fsp.stat(path.dirname(out.mapPath))).mode & 0o777).toBe(0o700);
    const map = JSON.parse(await fsp.readFile(out.mapPath, "utf8")) as { maintenanceDir: string };
    expect(map.maintenanceDir).toBe(path.join(stateDir, "router", "maintenance"));
    expect(diffLocalErpTenants(out, { stateDir, tenants }).changes).toBe(false);

    await fsp.writeFile(out.credentialsPath, "{}");
    const read = (await readLocalErpTenants(out))!;
    expect(diffLocalErpTenants(read, { stateDir, tenants }).changes).toBe(true);

    const resumed = tenants.map((t) => ({ ...t, state: "active" as const }));
    expect(diffLocalErpTenants(out, { stateDir, tenants: resumed }).changes).toBe(true);
  });
});

describe("the local files' check", () => {
  it("passes a preview whose passwords are not known yet, and names a bad tenant otherwise", () => {
    const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
    expect(
      checkLocalErpTenants({ stateDir: "/srv/state", tenants: unknown as unknown as ErpTenant[] }),
    ).toEqual([]);
    expect(checkLocalErpTenants({ stateDir: "/srv/state", tenants })).toEqual([]);
    const failures = checkLocalErpTenants({
      stateDir: "/srv/state",
      tenants: [{ ...tenants[0], password: "" }],
    });
    expect(failures).toEqual([{ property: "tenants", reason: expect.stringMatching(/has no password/) }]);
  });
});
