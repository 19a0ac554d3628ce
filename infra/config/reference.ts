/**
 * The stack-key reference of docs/configuration.md, generated from the zod schemas themselves
 * (`npm run docs:config` writes it; test/unit/config-docs.test.ts fails when the committed file
 * differs): every key with its default and its rule, read from the schema, and its description from
 * ./descriptions.ts, which must describe exactly the keys the schemas have.
 */
import { z } from "zod";
import {
  DEFAULT_TEMPLATE,
  LIMIT_KEYS,
  RULES,
  TIERS,
  limitOverridesSchema,
  platformSchema,
  tenantSchema,
  tierOverridesSchema,
} from "./schema";
import { odooConfigSchema } from "./odoo";
import { dockerConfigSchema } from "./docker";
import { DNS01_PROVIDERS, DNS01_SCHEMAS, KUBERNETES_RULES, kubernetesConfigSchema } from "./kubernetes";
import { DEFAULT_TIER_LIMITS, mergeTierLimits } from "./tiers";
import { RESERVED_SUBDOMAINS, SUBDOMAIN_RULES } from "./subdomain";
import { CONFIG_DESCRIPTIONS } from "./descriptions";

/** One stack key as the reference shows it. */
export interface KeyReference {
  /** Full dotted path: `platform.backups.retentionFull`, `tenants.<subdomain>.tier`. */
  path: string;
  /** "required", "none" (optional, absent by default) or the default as YAML-ish text. */
  default: string;
  /** The rule every value must follow (the schema's own message). */
  rule: string;
}

/** A table of the reference: the keys under one stack section. */
interface Section {
  /** The heading, e.g. `platform.kubernetes` (GitHub's anchor: `#platformkubernetes`). */
  title: string;
  /** Prefix of the rows' paths. */
  prefix: string;
  schema: z.ZodTypeAny;
}

/** Name placeholders of maps whose keys the user chooses. */
const NAME_PLACEHOLDERS: Record<string, string> = {
  "platform.templates": "<name>",
  "tenants.<subdomain>.snapshots": "<name>",
};

/** Rules a schema checks in code rather than through a `rule(...)` message. */
const CODED_RULES: Record<string, string> = {
  "platform.kubernetes.tls.dns01": `must be a map with provider (${DNS01_PROVIDERS.join(", ")}) and its settings`,
  "platform.kubernetes.tls.dns01.provider": KUBERNETES_RULES.provider,
  "tenants.<subdomain>.snapshots.<name>": RULES.snapshotSettings,
};

/** Keys that get a section of their own (listed as one row in their parent). */
const SUBSECTIONS = ["platform.odoo", "platform.docker", "platform.kubernetes"];

function tenantEntrySchema(): z.ZodTypeAny {
  return tenantSchema("acme", { tiers: mergeTierLimits() });
}

const SECTIONS: readonly Section[] = [
  { title: "platform", prefix: "platform", schema: platformSchema },
  { title: "platform.odoo", prefix: "platform.odoo", schema: odooConfigSchema },
  { title: "platform.docker", prefix: "platform.docker", schema: dockerConfigSchema },
  { title: "platform.kubernetes", prefix: "platform.kubernetes", schema: kubernetesConfigSchema },
  { title: "tiers", prefix: "tiers.<tier>", schema: limitOverridesSchema },
  { title: "tenants", prefix: "tenants.<subdomain>", schema: tenantEntrySchema() },
];

interface Unwrapped {
  base: z.ZodTypeAny;
  /** Every schema on the way down, outermost first (errorMaps live on any of them). */
  chain: z.ZodTypeAny[];
  defaultValue?: unknown;
  optional: boolean;
}

/** Strips effects, defaults and optionals off a schema, noting the default and optionality. */
function unwrap(schema: z.ZodTypeAny): Unwrapped {
  const chain: z.ZodTypeAny[] = [];
  let current = schema;
  let defaultValue: unknown;
  let hasDefault = false;
  let optional = false;
  for (;;) {
    chain.push(current);
    if (current instanceof z.ZodEffects) current = current.innerType();
    else if (current instanceof z.ZodDefault) {
      if (!hasDefault) {
        defaultValue = current._def.defaultValue();
        hasDefault = true;
      }
      current = current._def.innerType;
    } else if (current instanceof z.ZodOptional) {
      optional = true;
      current = current.unwrap();
    } else break;
  }
  return { base: current, chain, ...(hasDefault ? { defaultValue } : {}), optional };
}

/** The rule message a `rule(...)` errorMap gives (the innermost one), if any. */
function ruleOf(chain: readonly z.ZodTypeAny[]): string | undefined {
  for (const schema of [...chain].reverse()) {
    const errorMap = schema._def.errorMap;
    if (errorMap !== undefined) {
      const issue = { code: z.ZodIssueCode.custom, path: [], message: "" } as z.ZodIssueOptionalMessage;
      return errorMap(issue, { data: 0, defaultError: "" }).message;
    }
  }
  return undefined;
}

function showDefault(u: Unwrapped): string {
  if ("defaultValue" in u) {
    const v = u.defaultValue;
    if (typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0) {
      return u.base instanceof z.ZodObject ? "its keys' defaults" : "`{}`";
    }
    return `\`${JSON.stringify(v)}\``;
  }
  return u.optional ? "none" : "required";
}

function fallbackRule(base: z.ZodTypeAny): string {
  if (base instanceof z.ZodLiteral) return `must be ${JSON.stringify(base.value)}`;
  if (base instanceof z.ZodObject) return "must be a map";
  return "see the description";
}

/** The rows of one schema under `prefix`, depth first in the schema's key order. */
function walk(schema: z.ZodTypeAny, prefix: string, rows: KeyReference[], isRoot: boolean): void {
  const u = unwrap(schema);
  if (!isRoot) {
    const rule = CODED_RULES[prefix] ?? (ruleOf(u.chain) || fallbackRule(u.base));
    rows.push({ path: prefix, default: showDefault(u), rule });
  }
  if (!isRoot && SUBSECTIONS.includes(prefix)) return;
  if (u.base instanceof z.ZodObject) {
    for (const [key, value] of Object.entries(u.base.shape as z.ZodRawShape))
      walk(value, `${prefix}.${key}`, rows, false);
  } else if (u.base instanceof z.ZodRecord && !(u.base.valueSchema instanceof z.ZodString)) {
    walk(
      u.base.valueSchema as z.ZodTypeAny,
      `${prefix}.${NAME_PLACEHOLDERS[prefix] ?? "<key>"}`,
      rows,
      false,
    );
  } else if (prefix.endsWith(".tls.dns01")) {
    const providerKey = `${prefix}.provider`;
    rows.push({ path: providerKey, default: "required", rule: CODED_RULES[providerKey] });
    for (const provider of DNS01_PROVIDERS) {
      const providerRows: KeyReference[] = [];
      walk(DNS01_SCHEMAS[provider], `${prefix}[${provider}]`, providerRows, true);
      rows.push(...providerRows.filter((r) => !r.path.endsWith(`[${provider}].provider`)));
    }
  }
}

/** Every stack key the schemas define, section by section. */
export function configKeys(): { section: Section; keys: KeyReference[] }[] {
  return SECTIONS.map((section) => {
    const keys: KeyReference[] = [];
    walk(section.schema, section.prefix, keys, true);
    return { section, keys };
  });
}

function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\n/g, " ");
}

function table(keys: readonly KeyReference[], prefix: string): string {
  const lines = ["| key | default | rule | description |", "| --- | --- | --- | --- |"];
  for (const key of keys) {
    const shown = key.path.slice(prefix.length + 1);
    const description = CONFIG_DESCRIPTIONS[key.path] ?? "";
    lines.push(`| \`${cell(shown)}\` | ${cell(key.default)} | ${cell(key.rule)} | ${cell(description)} |`);
  }
  return lines.join("\n");
}

function tierTable(): string {
  const lines = [`| tier | ${LIMIT_KEYS.join(" | ")} |`, `| --- |${LIMIT_KEYS.map(() => " --- |").join("")}`];
  for (const tier of TIERS) {
    lines.push(
      `| \`${tier}\` | ${LIMIT_KEYS.map((k) => String(DEFAULT_TIER_LIMITS[tier][k])).join(" | ")} |`,
    );
  }
  return lines.join("\n");
}

function subdomainRules(): string {
  const { notString: _notString, reserved: _reserved, ...rules } = SUBDOMAIN_RULES;
  const reserved = [...RESERVED_SUBDOMAINS].map((n) => `\`${n}\``).join(", ");
  return [
    ...Object.values(rules).map((r) => `- ${r}`),
    `- must not be a reserved name: ${reserved}`,
    "- is unique (a YAML map has each key once)",
  ].join("\n");
}

/** The generated part of docs/configuration.md (between the markers). */
export function renderConfigReference(): string {
  const tiersMap = unwrap(tierOverridesSchema).base;
  const tierKeys = tiersMap instanceof z.ZodObject ? Object.keys(tiersMap.shape as z.ZodRawShape) : [];
  if (tierKeys.join() !== TIERS.join())
    throw new Error(`loomworks:tiers keys ${tierKeys.join()} are not the tiers ${TIERS.join()}`);
  const parts: string[] = [];
  for (const { section, keys } of configKeys()) {
    parts.push(`### ${section.title}`, "");
    if (section.title === "tiers") {
      parts.push(
        `\`loomworks:tiers.<tier>\` (\`<tier>\`: ${TIERS.join(", ")}) overrides any of the built-in limits:`,
        "",
        tierTable(),
        "",
      );
    }
    if (section.title === "tenants") {
      parts.push(
        `\`loomworks:tenants.<subdomain>\`: one entry per tenant; the key is its subdomain (also its database and role name). A subdomain:`,
        "",
        subdomainRules(),
        "",
        `A tenant without \`template\` is copied from the template \`${DEFAULT_TEMPLATE}\`.`,
        "",
      );
    }
    parts.push(table(keys, section.prefix), "");
  }
  return parts.join("\n").trimEnd();
}

export const REFERENCE_BEGIN =
  "<!-- BEGIN generated by `npm run docs:config` (infra/config/reference.ts); do not edit -->";
export const REFERENCE_END = "<!-- END generated -->";

/**
 * `markdown` (the content of `file`) with the text between the markers replaced by the current
 * reference, formatted as `prettier --check` wants it.
 */
export async function withConfigReference(markdown: string, file: string): Promise<string> {
  const begin = markdown.indexOf(REFERENCE_BEGIN);
  const end = markdown.indexOf(REFERENCE_END);
  if (begin === -1 || end < begin) throw new Error(`${file} lacks the generated-reference markers`);
  const replaced = `${markdown.slice(0, begin + REFERENCE_BEGIN.length)}\n\n${renderConfigReference()}\n\n${markdown.slice(end)}`;
  const prettier = await import("prettier");
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(replaced, { ...options, filepath: file });
}
