import { describe, expect, it } from "vitest";
import { checkLinks, githubSlug, headingAnchors, type LinkProblem } from "../../scripts/links";

/** checkLinks over an in-memory tree: file path → content (a directory is any path prefix). */
function check(tree: Record<string, string>): LinkProblem[] {
  const files = Object.keys(tree);
  const exists = (p: string): boolean => p in tree || files.some((f) => f.startsWith(`${p}/`));
  return checkLinks(files, (p) => tree[p], exists);
}

const ARCHITECTURE =
  "# Architecture\n\n## Layers\n\n## The `Tenant` component (one per entry)\n\n## Layers\n";

describe("headingAnchors", () => {
  it("gives GitHub's anchors: lowercase, punctuation dropped, repeats numbered", () => {
    expect([...headingAnchors(ARCHITECTURE)]).toEqual([
      "architecture",
      "layers",
      "the-tenant-component-one-per-entry",
      "layers-1",
    ]);
  });

  it("ignores headings inside fenced code and adds explicit <a id> anchors", () => {
    const anchors = headingAnchors('```sh\n# not a heading\n```\n<a id="platform.target"></a>\n');
    expect([...anchors]).toEqual(["platform.target"]);
  });

  it("keeps a link's text and drops the rest of its markup", () => {
    expect(githubSlug("[Undo](undo.md) §5: the `begin_operation` call")).toBe(
      "undo-5-the-begin_operation-call",
    );
  });
});

describe("checkLinks", () => {
  it("accepts links that reach a file, a folder and a heading", () => {
    expect(
      check({
        "README.md":
          "[a](docs/architecture.md#layers) [b](docs/) [c](#readme) [d](https://example.com/x)\n# Readme\n",
        "docs/architecture.md": ARCHITECTURE,
        "lib/x.ts": "// docs/architecture.md#layers-1, test/unit/a.test.ts\nconst s = `test/${name}.ts`;\n",
        "test/unit/a.test.ts": "",
      }),
    ).toEqual([]);
  });

  it("reports a link to a missing file, a missing anchor and a link out of the repository", () => {
    expect(
      check({
        "docs/guide.md":
          "See [gone](missing.md),\n[there](architecture.md#tenants) and [out](../../shared/DESIGN.md).\n",
        "docs/architecture.md": ARCHITECTURE,
      }),
    ).toEqual([
      { file: "docs/guide.md", line: 1, message: "link missing.md names no file or directory" },
      {
        file: "docs/guide.md",
        line: 2,
        message: "link architecture.md#tenants has no heading with the anchor #tenants",
      },
      { file: "docs/guide.md", line: 2, message: "link ../../shared/DESIGN.md leaves the repository" },
    ]);
  });

  it("reports paths cited in source comments that do not exist", () => {
    expect(
      check({
        "lib/restore/names.ts": "/**\n * Unit-tested in test/unit/restore-names.test.ts.\n */\n",
        "infra/a.sh": "# see docs/architecture.md#nowhere\n",
        "docs/architecture.md": ARCHITECTURE,
      }),
    ).toEqual([
      {
        file: "lib/restore/names.ts",
        line: 2,
        message: "cited path test/unit/restore-names.test.ts names no file or directory",
      },
      {
        file: "infra/a.sh",
        line: 1,
        message: "cited path docs/architecture.md#nowhere has no heading with the anchor #nowhere",
      },
    ]);
  });

  it("leaves code alone: paths in strings (other than docs) and in fenced Markdown code", () => {
    expect(
      check({
        "test/b.test.ts": 'const p = "test/unit/missing.ts";\n',
        "docs/c.md": "```\n[x](nowhere.md)\n```\n`[y](nowhere.md)`\n",
      }),
    ).toEqual([]);
  });

  it("checks docs paths in strings too (error messages point readers there)", () => {
    expect(check({ "infra/load.ts": 'throw new Error("see docs/operations/gone.md");\n' })).toEqual([
      {
        file: "infra/load.ts",
        line: 1,
        message: "cited path docs/operations/gone.md names no file or directory",
      },
    ]);
  });
});
