import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";

/** A value substituted for a `{{key}}` placeholder. `undefined` counts as missing. */
export type TemplateValue = string | number | boolean | undefined;
export type TemplateValues = Readonly<Record<string, TemplateValue>>;

/** `{{ key }}`: keys are letters, digits, `_`, `.` and `-`, starting with a letter or `_`. */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}/g;

/**
 * Replaces every `{{key}}` in `text` with `values[key]` in a single pass (a value that itself
 * contains `{{...}}` is not expanded again). Throws, naming all of them, when any placeholder has
 * no value.
 */
export function renderTemplate(text: string, values: TemplateValues): string {
  const missing = new Set<string>();
  const rendered = text.replace(PLACEHOLDER, (match: string, key: string) => {
    const value = Object.prototype.hasOwnProperty.call(values, key) ? values[key] : undefined;
    if (value === undefined) {
      missing.add(key);
      return match;
    }
    return String(value);
  });
  if (missing.size > 0) {
    const names = [...missing].sort().map((k) => `{{${k}}}`);
    throw new Error(`template placeholder(s) without a value: ${names.join(", ")}`);
  }
  return rendered;
}

/** Lists the placeholder names used in `text` (sorted, unique). */
export function templatePlaceholders(text: string): string[] {
  const keys = new Set<string>();
  for (const m of text.matchAll(PLACEHOLDER)) keys.add(m[1]);
  return [...keys].sort();
}

/**
 * The directories of files the program reads at run time, under the repository root, each with a
 * file that must be in it. Wherever the compiled program runs they must be next to its bin/ (the ops
 * image copies each: docker/ops/Dockerfile, checked by test/unit/ops-image-lint.test.ts).
 */
export const RUNTIME_FILE_DIRS = {
  /** Configuration templates (`*.tmpl`). */
  templates: "postgresql.conf.tmpl",
  /** The SQL installed in tenant databases (lib/sql/modules.ts). */
  sql: "common/schema.sql",
} as const;
export type RuntimeFileDir = keyof typeof RUNTIME_FILE_DIRS;

/**
 * The repository's `templates/` or `sql/` directory (LOOMWORKS_TEMPLATES_DIR, LOOMWORKS_SQL_DIR when
 * set). Works from the TypeScript sources (lib/templates) and from the compiled program
 * (bin/lib/templates), which tsc does not copy these files into.
 */
export function runtimeFileDir(name: RuntimeFileDir): string {
  const candidates = [
    process.env[`LOOMWORKS_${name.toUpperCase()}_DIR`],
    path.resolve(__dirname, "..", "..", name),
    path.resolve(__dirname, "..", "..", "..", name),
  ];
  for (const dir of candidates) {
    if (dir && existsSync(path.join(dir, RUNTIME_FILE_DIRS[name]))) return dir;
  }
  throw new Error(`${name} directory not found (looked in ${candidates.filter(Boolean).join(", ")})`);
}

/** The repository's `templates/` directory. */
export function templatesDir(): string {
  return runtimeFileDir("templates");
}

/** Reads `templates/<name>` (e.g. `postgresql.conf.tmpl`). */
export function loadTemplate(name: string): string {
  return readFileSync(path.join(templatesDir(), name), "utf8");
}

/** Reads `templates/<name>` and renders it. */
export function renderTemplateFile(name: string, values: TemplateValues): string {
  return renderNamed(name, loadTemplate(name), values);
}

/** Reads `sql/<name>` (e.g. `undo/capture.sql`) and renders it. */
export function renderSqlFile(name: string, values: TemplateValues): string {
  return renderNamed(`sql/${name}`, readFileSync(path.join(runtimeFileDir("sql"), name), "utf8"), values);
}

function renderNamed(name: string, text: string, values: TemplateValues): string {
  try {
    return renderTemplate(text, values);
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}`);
  }
}

/**
 * A digest of the cluster's configuration templates: passed to the cluster resource so that a change of
 * the project's templates shows as an update (re-render and reload) in the next preview.
 */
/** The templates the PostgreSQL cluster is configured from (what templatesHash covers). */
export const CLUSTER_TEMPLATES: readonly string[] = [
  "pg_hba.conf.tmpl",
  "pg_ident.conf.tmpl",
  "pgbackrest.conf.tmpl",
  "postgresql.conf.tmpl",
];

export function templatesHash(): string {
  const { createHash } = require("node:crypto") as typeof import("node:crypto");
  const { readdirSync, readFileSync } = require("node:fs") as typeof import("node:fs");
  const dir = templatesDir();
  const hash = createHash("sha256");
  // Only the cluster's own files: a change to the ERP's or the router's templates must not restart PostgreSQL.
  const names = readdirSync(dir)
    .filter((name) => CLUSTER_TEMPLATES.includes(name))
    .sort();
  for (const name of names) hash.update(name).update(readFileSync(path.join(dir, name)));
  return hash.digest("hex").slice(0, 16);
}
