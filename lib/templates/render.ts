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
 * The repository's `templates/` directory. Works from the TypeScript sources (lib/templates) and
 * from the compiled program (bin/lib/templates), which tsc does not copy the templates into.
 */
export function templatesDir(): string {
  const candidates = [
    process.env.LOOMWORKS_TEMPLATES_DIR,
    path.resolve(__dirname, "..", "..", "templates"),
    path.resolve(__dirname, "..", "..", "..", "templates"),
  ];
  for (const dir of candidates) {
    if (dir && existsSync(path.join(dir, "postgresql.conf.tmpl"))) return dir;
  }
  throw new Error(`templates directory not found (looked in ${candidates.filter(Boolean).join(", ")})`);
}

/** Reads `templates/<name>` (e.g. `postgresql.conf.tmpl`). */
export function loadTemplate(name: string): string {
  return readFileSync(path.join(templatesDir(), name), "utf8");
}

/** Reads `templates/<name>` and renders it. */
export function renderTemplateFile(name: string, values: TemplateValues): string {
  try {
    return renderTemplate(loadTemplate(name), values);
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
