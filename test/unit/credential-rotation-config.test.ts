/**
 * `credentialRotation` on the platform and on a tenant: the configuration rule, and which random
 * secrets it keys (Pulumi mocks, test/helpers/pulumi-mocks.ts): the platform trigger rotates the
 * superuser's, the ERP role's and every tenant role's password, a tenant trigger only that
 * tenant's; the ERP admin's and the tenants' initial admin passwords are never keyed, and without
 * any trigger no secret has a keeper (existing stacks see no diff).
 */
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { DYNAMIC, installMocks, registered, type Registration } from "../helpers/pulumi-mocks";

const registrations = installMocks();

import { declarePlatform } from "../../infra/platform";
import { ConfigError, parseStackConfig } from "../../infra/config/load";
import { RULES, type StackConfig } from "../../infra/config/schema";

const templates = { default: { fromDump: "test/fixtures/odoo-shaped/template.sql" } };
const acme = { tier: "pro", adminEmail: "boss@acme.example" };
const globex = { tier: "basic", adminEmail: "it@globex.example" };

function problemsOf(raw: { platform?: unknown; tenants?: unknown }): string[] {
  try {
    parseStackConfig(raw);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return [...(e as ConfigError).problems];
  }
  throw new Error("expected a ConfigError");
}

describe("credentialRotation: configuration rule", () => {
  const valid = ["2026-11-26", "1", "ticket:OPS-42", "a.b_c-d:e", "x".repeat(64)];
  const invalid: unknown[] = ["", "2026 11 26", "x".repeat(65), "rotate!", "é", true, { at: 1 }, -1, 1.5];

  it.each(valid)("accepts %j on the platform and on a tenant", (value) => {
    const config = parseStackConfig({
      platform: { templates, credentialRotation: value },
      tenants: { acme: { ...acme, credentialRotation: value }, globex },
    });
    expect(config.platform.credentialRotation).toBe(value);
    expect(config.tenants.find((t) => t.subdomain === "acme")?.credentialRotation).toBe(value);
    expect(config.tenants.find((t) => t.subdomain === "globex")).not.toHaveProperty("credentialRotation");
  });

  it("accepts a bare counter (a YAML number) as its digits", () => {
    const config = parseStackConfig({ platform: { templates, credentialRotation: 3 } });
    expect(config.platform.credentialRotation).toBe("3");
  });

  it("is absent when not given", () => {
    const config = parseStackConfig({ platform: { templates }, tenants: { acme } });
    expect(config.platform).not.toHaveProperty("credentialRotation");
    expect(config.tenants[0]).not.toHaveProperty("credentialRotation");
  });

  it.each(invalid)("refuses %j on the platform, naming the key and the rule", (value) => {
    expect(problemsOf({ platform: { templates, credentialRotation: value } })).toEqual([
      expect.stringMatching(
        new RegExp(`^platform: key "credentialRotation": ${escape(RULES.credentialRotation)}`),
      ),
    ]);
  });

  it.each(invalid)("refuses %j on a tenant, naming the tenant, the key and the rule", (value) => {
    expect(
      problemsOf({ platform: { templates }, tenants: { acme: { ...acme, credentialRotation: value } } }),
    ).toEqual([
      expect.stringMatching(
        new RegExp(`^tenant "acme": key "credentialRotation": ${escape(RULES.credentialRotation)}`),
      ),
    ]);
  });

  it("suggests the key for a typo", () => {
    expect(problemsOf({ platform: { templates, credentialRotaton: "1" } })).toEqual([
      'platform: key "credentialRotaton": is not a known key (did you mean "credentialRotation"?)',
    ]);
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The `keepers` of every RandomSecret the platform declares, by resource name. */
async function keepersOf(config: StackConfig): Promise<Record<string, unknown>> {
  const first = registrations.length;
  const platform = declarePlatform(`p${first}`, {
    config,
    projectDir: path.resolve(__dirname, "../.."),
  });
  await registered(platform);
  const secrets = registrations.slice(first).filter((r: Registration) => r.type === `${DYNAMIC}RandomSecret`);
  return Object.fromEntries(secrets.map((r) => [r.name, r.inputs.keepers]));
}

function stack(platformRotation?: string, acmeRotation?: string): StackConfig {
  return parseStackConfig({
    platform: {
      templates,
      backups: { encryptionPassphrase: "never rotated by this" },
      ...(platformRotation ? { credentialRotation: platformRotation } : {}),
    },
    tenants: { acme: { ...acme, ...(acmeRotation ? { credentialRotation: acmeRotation } : {}) }, globex },
  });
}

describe("credentialRotation: the secrets it keys (local target)", () => {
  let none: Record<string, unknown>;
  beforeAll(async () => {
    none = await keepersOf(stack());
  });

  it("without any trigger, no secret has a keeper", () => {
    expect(Object.keys(none).sort()).toEqual(
      [
        "acme-admin-password",
        "acme-role-password",
        "erp-admin-passwd",
        "erp-role-password",
        "globex-admin-password",
        "globex-role-password",
        "postgres-superuser-password",
      ].sort(),
    );
    for (const keepers of Object.values(none)) expect(keepers).toEqual({});
  });

  it("the platform trigger keys the superuser's, the ERP role's and every tenant role's password", async () => {
    const keepers = await keepersOf(stack("2026-11-26"));
    const rotated = { platformCredentialRotation: "2026-11-26" };
    expect(keepers).toEqual({
      "postgres-superuser-password": rotated,
      "erp-role-password": rotated,
      "acme-role-password": rotated,
      "globex-role-password": rotated,
      "erp-admin-passwd": {},
      "acme-admin-password": {},
      "globex-admin-password": {},
    });
  });

  it("a tenant trigger keys only that tenant's role password", async () => {
    const keepers = await keepersOf(stack(undefined, "r1"));
    expect(keepers).toEqual({ ...none, "acme-role-password": { tenantCredentialRotation: "r1" } });
  });

  it("both triggers together key that tenant's role password with both values", async () => {
    const keepers = await keepersOf(stack("p1", "t1"));
    expect(keepers["acme-role-password"]).toEqual({
      platformCredentialRotation: "p1",
      tenantCredentialRotation: "t1",
    });
    expect(keepers["globex-role-password"]).toEqual({ platformCredentialRotation: "p1" });
  });
});
