import { ESLint } from "eslint";
import { promises as fs } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import tseslint from "typescript-eslint";
import { afterAll, describe, expect, it } from "vitest";
import loomworks, { folderCycles, folderGraph, pathBetween } from "../../tools/eslint/no-folder-cycle.mjs";

describe("folder graph", () => {
  it("leaves out imports inside a folder and keeps one edge per pair of folders", () => {
    const graph = folderGraph([
      ["lib/a/x.ts", ["lib/a/y.ts", "lib/b/z.ts", "lib/b/w.ts"]],
      ["lib/b/z.ts", []],
    ]);
    expect([...graph.get("lib/a")!]).toEqual(["lib/b"]);
    expect([...graph.get("lib/b")!]).toEqual([]);
  });

  it("finds no cycle in a layered graph", () => {
    const graph = new Map([
      ["lib/tenant", new Set(["lib/guards", "lib/pg"])],
      ["lib/guards", new Set(["lib/pg"])],
      ["lib/pg", new Set<string>()],
    ]);
    expect(folderCycles(graph)).toEqual([]);
  });

  it("finds a cycle through other folders, and the way back", () => {
    const graph = new Map([
      ["lib/tenant", new Set(["lib/guards", "lib/pg"])],
      ["lib/guards", new Set(["lib/quota"])],
      ["lib/quota", new Set(["lib/tenant", "lib/pg"])],
      ["lib/pg", new Set<string>()],
    ]);
    expect(folderCycles(graph)).toEqual([["lib/guards", "lib/quota", "lib/tenant"]]);
    expect(pathBetween(graph, "lib/guards", "lib/tenant")).toEqual(["lib/guards", "lib/quota", "lib/tenant"]);
  });
});

describe("loomworks/no-folder-cycle", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
  });

  /** Lints a throw-away project made of `files` with only this rule. */
  async function lint(files: Record<string, string>): Promise<Record<string, string[]>> {
    const root = await fs.mkdtemp(path.join(os.tmpdir(), "folder-cycle-"));
    dirs.push(root);
    files["tsconfig.json"] = JSON.stringify({ compilerOptions: { strict: true }, include: ["**/*.ts"] });
    for (const [name, text] of Object.entries(files)) {
      await fs.mkdir(path.dirname(path.join(root, name)), { recursive: true });
      await fs.writeFile(path.join(root, name), text);
    }
    const eslint = new ESLint({
      cwd: root,
      overrideConfigFile: true,
      overrideConfig: {
        files: ["**/*.ts"],
        languageOptions: { parser: tseslint.parser },
        plugins: { loomworks },
        rules: { "loomworks/no-folder-cycle": ["error", { project: "tsconfig.json" }] },
      },
    });
    const results = await eslint.lintFiles(["lib"]);
    return Object.fromEntries(
      results.map((r) => [path.relative(root, r.filePath), r.messages.map((m) => `${m.line}: ${m.message}`)]),
    );
  }

  it("reports each import that closes a folder cycle, type-only ones too, where it is written", async () => {
    const messages = await lint({
      "lib/a/x.ts": 'import { y } from "../b/y";\nexport const x = y;\n',
      "lib/a/z.ts": "export type Z = number;\n",
      "lib/b/y.ts": '// the way back\nimport type { Z } from "../a/z";\nexport const y: Z = 1;\n',
      "lib/c/w.ts": 'import { y } from "../b/y";\nexport const w = y;\n',
    });
    expect(messages["lib/a/x.ts"]).toEqual([
      "1: lib/a imports lib/b, which leads back to it (lib/a -> lib/b -> lib/a): folders must not form a cycle",
    ]);
    expect(messages["lib/b/y.ts"]).toEqual([
      "2: lib/b imports lib/a, which leads back to it (lib/b -> lib/a -> lib/b): folders must not form a cycle",
    ]);
    expect(messages["lib/c/w.ts"]).toEqual([]);
  });

  it("accepts the same folders once the shared piece lives in a folder below both", async () => {
    const messages = await lint({
      "lib/a/x.ts": 'import { y } from "../b/y";\nexport const x = y;\n',
      "lib/base/z.ts": "export type Z = number;\n",
      "lib/b/y.ts": 'import type { Z } from "../base/z";\nexport const y: Z = 1;\n',
    });
    expect(Object.values(messages).flat()).toEqual([]);
  });
});
