import { readFileSync, readdirSync, statSync } from "node:fs";
import * as path from "node:path";
import { load as loadYaml } from "js-yaml";
import { describe, expect, it } from "vitest";
import { CONFIG_DESCRIPTIONS } from "../../infra/config/descriptions";
import { parseStackConfig } from "../../infra/config/load";
import { configKeys, withConfigReference } from "../../infra/config/reference";
import { repoRoot } from "../../testkit/repo";

const configurationMd = readFileSync(path.join(repoRoot, "docs/configuration.md"), "utf8");

/** The rows of the Markdown table that follows `heading` (first cells, backticks removed). */
function tableAfter(markdown: string, heading: string): string[] {
  const start = markdown.indexOf(`\n${heading}\n`);
  expect(start, `docs/configuration.md has a "${heading}" heading`).toBeGreaterThan(-1);
  const rows: string[] = [];
  let inTable = false;
  for (const line of markdown.slice(start + heading.length + 2).split("\n")) {
    if (line.startsWith("|")) inTable = true;
    else if (inTable || line.startsWith("#")) break;
    else continue;
    const first = line.split("|")[1].trim();
    if (!/^-+$/.test(first) && first !== "output" && first !== "function") rows.push(first.replace(/`/g, ""));
  }
  return rows;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? filesUnder(full) : [full];
  });
}

describe("docs/configuration.md", () => {
  it("holds the reference the schemas generate", async () => {
    const file = path.join(repoRoot, "docs/configuration.md");
    const message =
      "docs/configuration.md differs from the schemas: run `npm run docs:config` and commit the result";
    expect((await withConfigReference(configurationMd, file)) === configurationMd, message).toBe(true);
  });

  it("describes exactly the keys the schemas have", () => {
    const keys = configKeys().flatMap(({ keys }) => keys.map((k) => k.path));
    const described = Object.keys(CONFIG_DESCRIPTIONS);
    expect(
      keys.filter((k) => !described.includes(k)),
      "keys without a description in infra/config/descriptions.ts",
    ).toEqual([]);
    expect(
      described.filter((k) => !keys.includes(k)),
      "descriptions of keys the schemas do not have",
    ).toEqual([]);
  });

  it("shows an example stack file that the schemas accept", () => {
    const example = /\n## Stack configuration\n[\s\S]*?```yaml\n([\s\S]*?)```/.exec(configurationMd)?.[1];
    const { config } = loadYaml(example ?? "") as { config: Record<string, unknown> };
    const parsed = parseStackConfig({
      platform: config["loomworks:platform"],
      tiers: config["loomworks:tiers"],
      tenants: config["loomworks:tenants"],
    });
    expect(parsed.tenants.map((t) => t.subdomain)).toEqual(["acme"]);
  });

  it("lists every stack output the program exports", () => {
    const program = readFileSync(path.join(repoRoot, "infra/index.ts"), "utf8");
    const exported = [...program.matchAll(/^export const (\w+)/gm)].map((m) => m[1]).sort();
    expect(tableAfter(configurationMd, "## Stack outputs").sort()).toEqual(exported);
  });

  it("documents SQL functions that the guards install with those signatures", () => {
    const sources = ["lib", "sql"]
      .flatMap((dir) => filesUnder(path.join(repoRoot, dir)))
      .filter((f) => /\.(ts|sql)$/.test(f))
      .map((f) => readFileSync(f, "utf8"))
      .join("\n");
    const functions = tableAfter(configurationMd, "## SQL API");
    expect(functions.length).toBeGreaterThan(5);
    for (const signature of functions) {
      const local = signature.slice(signature.indexOf(".") + 1);
      expect(sources.includes(`.${local}`), `lib/ or sql/ defines ${signature}`).toBe(true);
    }
  });
});
