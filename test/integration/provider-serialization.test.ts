/**
 * Every dynamic provider as Pulumi keeps it in the stack state: the compiled provider
 * (bin/dynamic-providers, built by the integration global setup) through the SDK's
 * serializeFunction, then loaded the way the provider host loads it (require-from-string). The
 * serialized text captures loaders holding module paths (lib/pulumi/lazyModule.ts), not lib code,
 * and the loaded copy runs.
 */
import { promises as fsp } from "node:fs";
import { createRequire } from "node:module";
import * as os from "node:os";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { describe, expect, it } from "vitest";
import { UNKNOWN } from "../../lib/pulumi/unknown";
import { repoRoot } from "../../testkit/repo";

const load = createRequire(__filename);
const sdk = load(path.join(repoRoot, "node_modules", "@pulumi", "pulumi")) as typeof pulumi;
const requireFromString = load("require-from-string") as (code: string) => { handler: () => unknown };

const PROVIDERS: Array<[file: string, exported: string]> = [
  ["erpRole", "erpRoleProvider"],
  ["localAiKeys", "localAiKeysProvider"],
  ["localErpTenants", "localErpTenantsProvider"],
  ["localOdooConfig", "localOdooConfigProvider"],
  ["localPostgres", "localPostgresProvider"],
  ["localRouter", "localRouterProvider"],
  ["localScheduler", "localSchedulerProvider"],
  ["pitrRestore", "pitrRestoreProvider"],
  ["postgresLogin", "postgresLoginProvider"],
  ["randomSecret", "randomSecretProvider"],
  ["snapshot", "snapshotProvider"],
  ["tenantDatabase", "tenantDatabaseProvider"],
  ["tenantGuards", "tenantGuardsProvider"],
  ["tenantTemplate", "tenantTemplateProvider"],
];

type Provider = Required<pulumi.dynamic.ResourceProvider>;

async function serialized(file: string): Promise<string> {
  const exported = PROVIDERS.find(([f]) => f === file)?.[1] ?? "";
  const compiled = load(path.join(repoRoot, "bin", "dynamic-providers", `${file}.js`)) as Record<
    string,
    Provider
  >;
  const provider = compiled[exported];
  expect(provider, `${file}.js exports ${exported}`).toBeDefined();
  return (await sdk.runtime.serializeFunction(() => provider, { allowSecrets: true })).text;
}

/** What a resource hands Pulumi today: the provider's stub (lib/pulumi/lazyModule.ts providerStub), serialized. */
async function serializedStub(file: string): Promise<{ text: string; provider: Provider; exported: string }> {
  const exported = PROVIDERS.find(([f]) => f === file)?.[1] ?? "";
  const modulePath = path.join(repoRoot, "bin", "dynamic-providers", `${file}.js`);
  const provider = (load(modulePath) as Record<string, Provider>)[exported];
  const { providerStub } = load(path.join(repoRoot, "bin", "lib", "pulumi", "lazyModule.js")) as {
    providerStub: <P extends object>(p: P, file: string, name: string) => P;
  };
  const stub = providerStub(provider, modulePath, exported);
  expect(providerStub(provider, modulePath, exported), "one stub per provider").toBe(stub);
  const text = (await sdk.runtime.serializeFunction(() => stub, { allowSecrets: true })).text;
  return { text, provider, exported };
}

/** The provider as the host runs it: from the stored stub's text alone. */
async function deserialized(file: string): Promise<Provider> {
  return requireFromString((await serializedStub(file)).text).handler() as Provider;
}

describe("serialized providers", () => {
  it.each(PROVIDERS)("%s captures module paths under bin/lib, not lib code", async (file) => {
    const text = await serialized(file);
    const captured = [...text.matchAll(/\bfile: "([^"]+)"/g)].map((m) => m[1]);
    expect(captured.length).toBeGreaterThan(0);
    for (const modulePath of captured) {
      expect(path.relative(path.join(repoRoot, "bin", "lib"), modulePath)).not.toMatch(/^\.\./);
      expect(() => load.resolve(modulePath)).not.toThrow();
    }
    expect(text).not.toMatch(/require\("pg"\)|withClient|quoteIdent/);
    expect(text.length).toBeLessThan(12_000);
  });

  it.each(PROVIDERS)(
    "%s is stored as a stub of about 1-2 KB naming its compiled module and export",
    async (file) => {
      const { text, provider, exported } = await serializedStub(file);
      expect(text.length).toBeLessThan(2_500);
      const captured = [...text.matchAll(/\bfile: "([^"]+)"/g)].map((m) => m[1]);
      expect(captured).toEqual([path.join(repoRoot, "bin", "dynamic-providers", `${file}.js`)]);
      expect(text).toContain(`exportName: "${exported}"`);
      const host = requireFromString(text).handler() as Record<string, unknown>;
      const methods = (p: object): string[] =>
        Object.keys(p)
          .filter((k) => typeof (p as Record<string, unknown>)[k] === "function")
          .sort();
      expect(methods(host)).toEqual(methods(provider));
    },
  );

  it("a deserialized TenantDatabase checks and diffs, unknown values included", async () => {
    const provider = await deserialized("tenantDatabase");
    const olds = {
      subdomain: "acme",
      database: "acme",
      roleName: "acme",
      filestoreRoot: "/srv/fs",
      limits: { a: 1, b: 2 },
    };
    expect(await provider.diff("id", olds, { ...olds, limits: { b: 2, a: 1 } })).toMatchObject({
      changes: false,
    });
    expect(await provider.diff("id", olds, { ...olds, database: UNKNOWN })).toMatchObject({
      changes: true,
      replaces: ["database"],
      deleteBeforeReplace: true,
    });
    const checked = await provider.check(
      {},
      { ...olds, state: "active", adminEmail: "a@b.c", template: UNKNOWN },
    );
    expect(checked.failures).toEqual([]);
    const bad = await provider.check({}, { ...olds, state: "paused", adminEmail: "a@b.c" });
    expect(bad.failures?.map((f) => f.property)).toEqual(["state"]);
  });

  it("a deserialized PitrRestore defers an unknown snapshot LSN to `up`", async () => {
    const provider = await deserialized("pitrRestore");
    const olds = { target: { snapshot: "s" }, snapshotLsn: "0/1", subdomain: "acme" };
    expect(await provider.diff("id", olds, { ...olds, snapshotLsn: UNKNOWN })).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  it("a deserialized LocalAiKeys writes ai.env (0600), diffs a rotated key as an update and deletes it", async () => {
    const provider = await deserialized("localAiKeys");
    const stateDir = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-ai-serialized-"));
    try {
      const keys = { OPENAI_API_KEY: "sk-serialized-0123456789" };
      const { id, outs } = await provider.create({ stateDir, keys });
      expect(id).toBe(`local-ai-keys:${path.join(stateDir, "odoo", "ai.env")}`);
      expect((await fsp.readFile(outs.path, "utf8")).split("\n")).toContain(
        `OPENAI_API_KEY='${keys.OPENAI_API_KEY}'`,
      );
      expect(((await fsp.stat(outs.path)).mode & 0o777).toString(8)).toBe("600");
      expect((await provider.diff(id, outs, { stateDir, keys })).changes).toBe(false);
      expect(
        await provider.diff(id, outs, { stateDir, keys: { OPENAI_API_KEY: "sk-rotated-9876543210" } }),
      ).toMatchObject({
        changes: true,
        replaces: [],
      });
      await provider.delete(id, outs);
      await expect(fsp.access(outs.path)).rejects.toThrow();
    } finally {
      await fsp.rm(stateDir, { recursive: true, force: true });
    }
  });

  it("a deserialized RandomSecret replaces on new keepers, whatever their key order", async () => {
    const provider = await deserialized("randomSecret");
    const olds = { length: 8, keepers: { a: "1", b: "2" } };
    expect((await provider.diff("id", olds, { length: 8, keepers: { b: "2", a: "1" } })).changes).toBe(false);
    expect(await provider.diff("id", olds, { length: 8, keepers: { a: "1", b: "3" } })).toMatchObject({
      replaces: ["keepers"],
    });
  });
});
