import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalTestStack, repoRoot, type TenantEntry } from "../../testkit/local-stack";

const cli = path.join(repoRoot, "bin", "infra", "automation", "preview-summary.js");

interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  markdown: string;
  stepSummary: string;
}

/**
 * The pull-request preview of the "done when": a stack-config change on a deployed local stack gives a
 * summary naming exactly the tenant changes, with the engine's counts, and changes nothing.
 */
describe("preview-summary.js on a local stack", () => {
  let s: LocalTestStack;
  let outDir: string;
  let adminDsn: string;
  const base: Record<string, TenantEntry> = {
    alpha: { tier: "pro", adminEmail: "owner@alpha.example" },
    bravo: { tier: "basic", adminEmail: "owner@bravo.example" },
  };

  /** The compiled CLI, as CI runs it, on this test's stack and backend. */
  function runCli(name: string): Promise<CliRun> {
    const out = path.join(outDir, `${name}.md`);
    const stepSummary = path.join(outDir, `${name}.step-summary.md`);
    const args = [cli, "--stack", s.stack.name, "--work-dir", s.dir, "--out", out];
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        args,
        { env: { ...process.env, ...s.env, GITHUB_STEP_SUMMARY: stepSummary } },
        (err, stdout, stderr) => {
          const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, "utf8") : "");
          const code = err ? ((err as { code?: number }).code ?? -1) : 0;
          resolve({ code, stdout, stderr, markdown: read(out), stepSummary: read(stepSummary) });
        },
      );
    });
  }

  async function databases(): Promise<string[]> {
    const client = new Client({ connectionString: adminDsn });
    await client.connect();
    try {
      const rows = await client.query("select datname from pg_database order by datname");
      return rows.rows.map((r: { datname: string }) => r.datname);
    } finally {
      await client.end();
    }
  }

  beforeAll(async () => {
    s = await LocalTestStack.create("preview");
    outDir = path.join(path.dirname(s.dir), "summaries");
    fs.mkdirSync(outDir);
    await s.configure(base);
    const result = await s.up();
    expect(result.summary.result).toBe("succeeded");
    adminDsn = ((await s.outputs()).postgres as { adminDsn: string }).adminDsn;
  });

  afterAll(async () => {
    await s?.dispose();
  });

  it("a config change: the tenants added, suspended and restored, the engine's counts, nothing applied", async () => {
    const outputsBefore = await s.outputs();
    const databasesBefore = await databases();
    await s.configure({
      alpha: { ...base.alpha, state: "suspended" },
      bravo: { ...base.bravo, snapshots: { before: {} }, restore: { snapshot: "before" } },
      charlie: { tier: "enterprise", adminEmail: "ops@charlie.example" },
    });

    const run = await runCli("change");
    expect(run.stderr).not.toMatch(/error/i);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(run.markdown);
    expect(run.stepSummary).toBe(run.markdown);
    const md = run.markdown;
    expect(md.split("\n")[0]).toBe("### Pulumi preview: `loomworks-hosting` / `preview`");

    const tenants = md.split("#### Tenants\n\n")[1].split("\n\n")[0];
    expect(tenants.split("\n")).toEqual([
      "- **added** (1): `charlie` (enterprise)",
      "- **suspended** (1): `alpha` (active → suspended)",
      "- **restored** (1): `bravo` to snapshot `before`",
      "- **snapshots added** (1): `bravo/before`",
    ]);

    // The engine's own count of the same change, by a preview of its own.
    const engine = (await s.stack.preview({ color: "never" })).changeSummary;
    for (const op of ["create", "update", "replace", "delete"] as const) {
      expect(md, op).toContain(`| ${op} | ${engine[op] ?? 0} |`);
    }
    expect(md).toContain(`| unchanged | ${engine.same ?? 0} |`);
    expect(engine.create).toBeGreaterThanOrEqual(6); // charlie's resources, the snapshot, the restore
    expect(md).toContain("- TenantDatabase `alpha` — `state`");
    expect(md).toContain("- PitrRestore `bravo-restore`");
    expect(md).toMatch(/<details><summary>Resources to change \(\d+\)<\/summary>/);
    expect(md).not.toMatch(/postgres(ql)?:\/\//);

    expect(await s.outputs()).toEqual(outputsBefore);
    expect(await databases()).toEqual(databasesBefore);
    expect(databasesBefore).not.toContain("charlie");
  });

  it("an invalid config: exit code 1 and a summary naming the tenant, the key and the rule", async () => {
    await s.configure({ ...base, "Bad--Name": { tier: "pro", adminEmail: "x@y.example" } });
    const run = await runCli("invalid");
    expect(run.code).toBe(1);
    expect(run.markdown).toContain("The preview failed");
    expect(run.markdown).toMatch(/tenant "Bad--Name": key "subdomain": must be lowercase/);
    expect(run.markdown).not.toContain("| operation");
    expect(run.stepSummary).toBe(run.markdown);
  });

  it("the deployed config again: No changes", async () => {
    await s.configure(base);
    const run = await runCli("unchanged");
    expect(run.code).toBe(0);
    expect(run.markdown).toMatch(/\*\*No changes\*\* \(\d+ resources unchanged\)/);
    expect(run.markdown).toContain("No tenant changes.");
  });
});
