/**
 * A provider stored in a stack's state requires `bin/lib/<module>` by path and calls functions by
 * name (refresh, the diff of an untouched resource, delete). Moving one of those functions breaks
 * every stack deployed before the move: each stays callable at its old path with its old shape
 * (lib/pulumi/forward.ts). Loaded from bin/, built by the integration global setup, as the stored
 * providers load it.
 */
import { createRequire } from "node:module";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../../testkit/repo";
import stored from "../fixtures/provider-state-calls.json";

const load = createRequire(__filename);
const compiled = <M>(mod: string): M => load(path.join(repoRoot, "bin", mod)) as M;
type Fn = (...args: unknown[]) => unknown;

const pairs = Object.entries(stored.calls as Record<string, string[]>).flatMap(([mod, names]) =>
  names.map((name) => [mod, name] as const),
);

describe("functions that providers in existing stacks' state call", () => {
  it("lists the stored providers' calls", () => {
    expect(pairs.length).toBeGreaterThan(50);
  });

  it.each(pairs)("%s exports %s", (mod, name) => {
    expect(typeof compiled<Record<string, unknown>>(mod)[name]).toBe("function");
  });
});

const stubs = Object.entries(
  (stored as unknown as { stubs: Record<string, Record<string, string[]>> }).stubs,
).flatMap(([mod, exported]) =>
  Object.entries(exported).map(([name, methods]) => [mod, name, methods] as const),
);

describe("providers stored as stubs (lib/pulumi/lazyModule.ts providerStub)", () => {
  it("lists every dynamic provider", () => {
    expect(stubs.length).toBeGreaterThanOrEqual(14);
  });

  it.each(stubs)("%s exports %s with the methods a stored stub calls", (mod, name, methods) => {
    const provider = compiled<Record<string, Record<string, unknown>>>(mod)[name];
    expect(provider).toBeDefined();
    for (const method of methods) expect(typeof provider[method], `${name}.${method}`).toBe("function");
  });
});

describe("their old shapes", () => {
  it("diffs: changes and replaces, as the stored providers read them", () => {
    const { diffTenant } = compiled<Record<string, Fn>>("lib/tenant/provision");
    const { diffTemplate } = compiled<Record<string, Fn>>("lib/tenant/template");
    const { diffSnapshot } = compiled<Record<string, Fn>>("lib/snapshot/snapshot");
    const { diffGuards } = compiled<Record<string, Fn>>("lib/guards/tenant");
    const tenant = { subdomain: "acme", database: "t_acme", roleName: "t_acme", filestoreRoot: "/f" };
    expect(diffTenant(tenant, { ...tenant, database: "t_other" })).toMatchObject({
      changes: true,
      replaces: ["database"],
      drift: false,
    });
    expect(diffTemplate({ name: "default" }, { name: "default" })).toMatchObject({ changes: false });
    expect(diffSnapshot({ subdomain: "a", name: "s1" }, { subdomain: "a", name: "s2" })).toMatchObject({
      changes: true,
      replaces: ["name"],
    });
    expect(diffGuards({ database: "d", version: 1 }, { database: "d", version: 2 })).toMatchObject({
      changes: true,
      replaces: [],
    });
  });

  it("local ERP checks: the first problem as a string, or undefined", () => {
    const { checkLocalOdooConfig } = compiled<Record<string, Fn>>("lib/odoo/localConfig");
    const { checkLocalErpTenants } = compiled<Record<string, Fn>>("lib/odoo/localTenantFiles");
    const current = compiled<Record<string, (i: unknown) => Array<{ reason: string }>>>("lib/odoo/provider");
    const bad = { path: "relative/odoo.conf" };
    const failures = current.checkLocalOdooConfig(bad);
    expect(failures.length).toBeGreaterThan(0);
    expect(checkLocalOdooConfig(bad)).toBe(failures[0].reason);
    const tenantFailures = current.checkLocalErpTenants({ tenants: "none" });
    expect(checkLocalErpTenants({ tenants: "none" })).toBe(tenantFailures[0]?.reason);
  });

  it("PitrRestore: check resolves to failures, the key lists are arrays", async () => {
    const restore = compiled<Record<string, Fn>>("lib/restore/index");
    const r = (await restore.checkPitrRestore(undefined, { subdomain: "acme", target: {} })) as {
      failures: unknown[];
    };
    expect(r.failures.length).toBeGreaterThan(0);
    const olds = { target: { lsn: "0/1" } };
    expect(restore.pitrRestoreReplaceKeys(olds, { target: { lsn: "0/2" } })).toEqual(["target"]);
    expect(restore.pitrRestoreChangedKeys(olds, olds)).toEqual([]);
  });
});
