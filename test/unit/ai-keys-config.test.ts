/**
 * `platform.ai.keys` (infra/config/ai.ts): names are environment variable names the platform does
 * not set itself, values non-empty; a value never appears in a configuration message. On the local
 * target the keys reach one LocalAiKeys resource (`<stateDir>/odoo/ai.env`), sent as secrets; no
 * keys, no resource (Pulumi mocks, test/helpers/pulumi-mocks.ts).
 */
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { DYNAMIC, installMocks, isSecretInput, plain, registered } from "../helpers/pulumi-mocks";

const registrations = installMocks();

import { declarePlatform } from "../../infra/platform";
import { AI_RULES } from "../../infra/config/ai";
import { ConfigError, parseStackConfig } from "../../infra/config/load";

const templates = { default: { fromDump: "test/fixtures/odoo-shaped/template.sql" } };
const SECRET = "sk-proj-secret-value-0123456789";

function problemsOf(ai: unknown): string[] {
  try {
    parseStackConfig({ platform: { templates, ai } });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return [...(e as ConfigError).problems];
  }
  throw new Error("expected a ConfigError");
}

describe("platform.ai: configuration rule", () => {
  it("takes keys by environment variable name; none by default", () => {
    const keys = { OPENAI_API_KEY: SECRET, ANTHROPIC_API_KEY: "sk-ant-0123456789" };
    expect(parseStackConfig({ platform: { templates, ai: { keys } } }).platform.ai).toEqual({ keys });
    expect(parseStackConfig({ platform: { templates } }).platform.ai).toEqual({ keys: {} });
  });

  it.each([
    "openai_api_key",
    "1KEY",
    "OPENAI-API-KEY",
    "PATH",
    "LOOMWORKS_DB_PASSWORD",
    "PGPASSWORD",
    "PYTHONPATH",
  ])("refuses the name %j, naming the key and the rule, never the value", (name) => {
    const problems = problemsOf({ keys: { [name]: SECRET } });
    expect(problems).toEqual([`platform: key "ai.keys.${name}": ${AI_RULES.keyName} (got a secret value)`]);
  });

  it.each([[""], [" padded-secret-value "], [42], [{ nested: SECRET }]])(
    "refuses the value %j without showing it",
    (value) => {
      const problems = problemsOf({ keys: { OPENAI_API_KEY: value } });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^platform: key "ai\.keys\.OPENAI_API_KEY": .* \(got a secret value\)$/);
      expect(problems[0]).not.toContain("padded");
      expect(problems[0]).not.toContain(SECRET);
    },
  );

  it("refuses an unknown key under ai and keys that are not a map", () => {
    expect(problemsOf({ keys: { OPENAI_API_KEY: SECRET }, key: {} })).toEqual([
      'platform: key "ai.key": is not a known key (did you mean "keys"?)',
    ]);
    expect(problemsOf({ keys: [SECRET] })).toEqual([
      `platform: key "ai.keys": ${AI_RULES.keys} (got a list)`,
    ]);
  });
});

async function localRegistrations(ai?: unknown) {
  const first = registrations.length;
  const platform = declarePlatform(`p${first}`, {
    config: parseStackConfig({
      platform: { templates, stateDir: `/tmp/lw-ai-${first}`, ...(ai ? { ai } : {}) },
    }),
    projectDir: path.resolve(__dirname, "../.."),
  });
  await registered(platform);
  return registrations.slice(first);
}

describe("platform.ai on the local target", () => {
  it("writes the keys through one LocalAiKeys resource, sent as secrets", async () => {
    const regs = await localRegistrations({ keys: { OPENAI_API_KEY: SECRET } });
    const aiKeys = regs.filter((r) => r.type === `${DYNAMIC}LocalAiKeys`);
    expect(aiKeys).toHaveLength(1);
    expect(
      isSecretInput(aiKeys[0].inputs.keys) ||
        isSecretInput((aiKeys[0].inputs.keys as Record<string, unknown>).OPENAI_API_KEY),
    ).toBe(true);
    expect(plain(aiKeys[0].inputs.keys)).toEqual({ OPENAI_API_KEY: SECRET });
    // No other resource is given the value (odoo.conf above all).
    const others = regs.filter((r) => r.type !== `${DYNAMIC}LocalAiKeys`);
    expect(JSON.stringify(others.map((r) => plain(r.inputs)))).not.toContain(SECRET);
  });

  it("declares no LocalAiKeys without keys", async () => {
    const regs = await localRegistrations();
    expect(regs.some((r) => r.type === `${DYNAMIC}LocalAiKeys`)).toBe(false);
  });
});
