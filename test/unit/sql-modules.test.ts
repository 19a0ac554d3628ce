/**
 * The SQL modules (sql/, lib/sql/modules.ts) offline: every file is part of a module and renders
 * completely, the shared function clauses and SQLSTATEs come from their one declaration, and a
 * multi-line value never lands in a comment. What the SQL does is tested against PostgreSQL by
 * test/integration/undo.test.ts, quota.test.ts and hostile-tenant-guards.test.ts.
 */
import { readFileSync, readdirSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { QUOTA_API } from "../../lib/quota/sql";
import { SNAPSHOT_API } from "../../lib/snapshot/runtime";
import {
  FUNCTION_CLAUSES,
  renderSqlModule,
  renderSqlModuleRemoval,
  sqlModuleValues,
  type SqlModule,
} from "../../lib/sql/modules";
import { GUARD_SQLSTATES } from "../../lib/sql/sqlstates";
import { runtimeFileDir, templatePlaceholders } from "../../lib/templates/render";
import { undoApiModule } from "../../lib/undo/sql";
import { repoRoot } from "../../testkit/repo";

const MODULES: readonly SqlModule[] = [SNAPSHOT_API, QUOTA_API, undoApiModule()];
const COMMON = ["common/owner-role.sql", "common/schema.sql", "common/functions.sql", "common/version.sql"];
const SQL_DIR = path.join(repoRoot, "sql");

const filesOf = (m: SqlModule): string[] =>
  [...m.definitions, ...m.grants, ...(m.removal ?? [])].map((f) => `${m.name}/${f}`);
const allSqlFiles = (): string[] =>
  (readdirSync(SQL_DIR, { recursive: true }) as string[])
    .filter((f) => f.endsWith(".sql"))
    .map((f) => f.split(path.sep).join("/"))
    .sort();
const read = (file: string): string => readFileSync(path.join(SQL_DIR, file), "utf8");

describe("SQL modules", () => {
  it("are found in the repository's sql/ directory", () => {
    expect(runtimeFileDir("sql")).toBe(SQL_DIR);
  });

  it("use every file in sql/, and only files that exist", () => {
    const used = [...COMMON, ...MODULES.flatMap(filesOf)].sort();
    expect(new Set(used).size).toBe(used.length);
    expect(allSqlFiles()).toEqual(used);
  });

  it.each(MODULES.map((m) => [m.name, m] as const))(
    "%s renders completely: owner role, schema, definitions, ownership, grants, version",
    (_name, m) => {
      const sql = renderSqlModule(m);
      expect(sql).not.toMatch(/\{\{/);
      const order = [
        "CREATE ROLE",
        `CREATE SCHEMA IF NOT EXISTS "${m.schema}"`,
        "CREATE OR REPLACE FUNCTION",
        "DO $own$",
        `COMMENT ON SCHEMA "${m.schema}" IS 'loomworks ${m.name} api v${m.version}';`,
      ].map((s) => sql.indexOf(s));
      expect(order.every((i) => i >= 0)).toBe(true);
      expect([...order].sort((a, b) => a - b)).toEqual(order);
      if (m.removal) expect(renderSqlModuleRemoval(m)).not.toMatch(/\{\{/);
    },
  );

  it("write function headers with the shared clauses, never spelled out", () => {
    for (const file of allSqlFiles()) {
      const text = read(file);
      expect(text, file).not.toMatch(/SECURITY DEFINER\s*\n?\s*SET search_path/);
      expect(text, file).not.toMatch(/^SET search_path/m);
    }
    const functions = MODULES.flatMap((m) => m.definitions.map((f) => read(`${m.name}/${f}`))).join("\n");
    expect(functions).toContain("{{definer}}");
    expect(functions).toContain("{{pinned}}");
    expect(FUNCTION_CLAUSES.definer).toBe(`SECURITY DEFINER ${FUNCTION_CLAUSES.pinned}`);
  });

  it("name SQLSTATEs only through {{sqlstate.<key>}}, each declared once in lib/sql/sqlstates.ts", () => {
    const declared = new Set(Object.keys(GUARD_SQLSTATES));
    const used = new Set<string>();
    for (const file of allSqlFiles()) {
      const text = read(file);
      expect(text.match(/\bLW[A-Z]\d\d\b/g), file).toBeNull();
      for (const key of templatePlaceholders(text)) {
        if (key.startsWith("sqlstate.")) used.add(key.slice("sqlstate.".length));
      }
    }
    for (const key of used) expect(declared, key).toContain(key);
    expect([...used].sort()).toEqual([...declared].sort());
    const codes = Object.values(GUARD_SQLSTATES);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^LW[A-Z]\d\d$/);
  });

  it("every SQLSTATE is documented in docs/", () => {
    const docs = (readdirSync(path.join(repoRoot, "docs"), { recursive: true }) as string[])
      .filter((f) => f.endsWith(".md"))
      .map((f) => readFileSync(path.join(repoRoot, "docs", f), "utf8"))
      .join("\n");
    for (const [key, code] of Object.entries(GUARD_SQLSTATES)) expect(docs, key).toContain(code);
  });

  it("never put a multi-line value into a comment (it would end the comment)", () => {
    for (const m of MODULES) {
      const values = sqlModuleValues(m);
      for (const file of [...COMMON, ...filesOf(m)]) {
        for (const line of read(file).split("\n")) {
          const comment = line.indexOf("--");
          if (comment < 0) continue;
          for (const key of templatePlaceholders(line.slice(comment))) {
            expect(String(values[key]), `${file}: ${line}`).not.toContain("\n");
          }
        }
      }
    }
  });

  it("refuses an owner role name that is not plain", () => {
    expect(() => renderSqlModule({ ...QUOTA_API, owner: 'x"; DROP' })).toThrow("is not plain");
  });
});
