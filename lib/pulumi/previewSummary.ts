import type { EngineEvent, StepEventMetadata } from "@pulumi/pulumi/automation";
import { redactMessage } from "./redact";

/**
 * Turns the engine events of a `pulumi preview` into what a reviewer of a stack change wants to know:
 * which tenants are added, suspended, restored…, how many resources change, and which keys of each.
 * Values are never copied out of the events (only key names, subdomains, states and restore targets),
 * so a secret cannot leak into a pull-request comment even where the engine would not mask it. The
 * engine's error messages are quoted, redacted (./redact.ts).
 */

export const CHANGE_OPS = ["create", "update", "replace", "delete"] as const;
export type ChangeOp = (typeof CHANGE_OPS)[number];

export interface ResourceChange {
  op: ChangeOp;
  urn: string;
  /** The full resource type, e.g. `pulumi-nodejs:dynamic/loomworks:TenantDatabase`. */
  type: string;
  /** The type without package and module: `TenantDatabase`, `Deployment`. */
  shortType: string;
  name: string;
  /** Names of the changed properties (never their values), sorted. */
  changedKeys: string[];
  /** The changed properties that force the replacement. */
  replaceKeys: string[];
}

export interface TenantStateChange {
  tenant: string;
  from: string;
  to: string;
}

export interface TenantChanges {
  added: Array<{ tenant: string; tier?: string; state?: string }>;
  removed: string[];
  suspended: TenantStateChange[];
  resumed: TenantStateChange[];
  archived: TenantStateChange[];
  /**
   * A PitrRestore, or on the kubernetes target a restore Job, created or replaced: the tenant is
   * brought back to `target` on `up` (null when the target is not readable in the preview: secret or
   * computed).
   */
  restored: Array<{ tenant: string; target: { kind: string; value: string } | null }>;
  /** A replaced TenantDatabase: the database is dropped and made anew. `keys` force the replacement. */
  recreated: Array<{ tenant: string; keys: string[] }>;
}

export interface PreviewSummary {
  /** False when the preview reported errors (invalid configuration, failing program or provider). */
  ok: boolean;
  counts: Record<ChangeOp | "same", number>;
  resources: ResourceChange[];
  tenants: TenantChanges;
  snapshotsAdded: Array<{ tenant: string; name: string }>;
  errors: string[];
}

const TENANT_DATABASE = /(^|[:/])TenantDatabase$/;
const PITR_RESTORE = /(^|[:/])PitrRestore$/;
const SNAPSHOT = /(^|[:/])Snapshot$/;
const KUBERNETES_JOB = "kubernetes:batch/v1:Job";
/** components/kubernetes/RestoreJob.ts: the name prefix and labels of a tenant's restore Job. */
const RESTORE_JOB_PREFIX = "loomworks-restore-";
const LABEL_OPS_JOB = "loomworks/ops-job";
const LABEL_TENANT = "loomworks/tenant";
const RESTORE_KINDS = ["snapshot", "time", "lsn"] as const;

/** The engine's step kinds mapped onto what a reviewer counts; the three steps of a replacement are one. */
const OP_OF_STEP: Record<string, ChangeOp | "same" | undefined> = {
  create: "create",
  update: "update",
  delete: "delete",
  replace: "replace",
  "create-replacement": "replace",
  "delete-replaced": "replace",
  same: "same",
};

const ANSI = new RegExp(String.fromCharCode(27) + "\\[[0-9;]*m", "g");

export function shortType(type: string): string {
  return type.slice(type.lastIndexOf(":") + 1);
}

function resourceName(urn: string): string {
  return urn.slice(urn.lastIndexOf("::") + 2);
}

/** A plain string, or undefined when absent, unknown or secret (`[secret]` in the events). */
function plainValue(v: unknown): string | undefined {
  if (typeof v !== "string" || v === "" || v === "[secret]" || v.startsWith("04da6b54-")) return undefined;
  return v;
}

function plainString(inputs: Record<string, unknown> | undefined, key: string): string | undefined {
  return plainValue(inputs?.[key]);
}

/** Pulumi's marker of a secret value in serialized state; such values are compared, never read. */
const SECRET_SIG = "4dabf18193072939515e22adb298388d";

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(SECRET_SIG in v);
}

/** Dotted paths of the inputs that differ (objects one level deep: `limits.maxUsers`). */
function inputDiffKeys(olds: Record<string, unknown>, news: Record<string, unknown>, prefix = ""): string[] {
  const keys: string[] = [];
  for (const key of new Set([...Object.keys(olds), ...Object.keys(news)])) {
    const [a, b] = [olds[key], news[key]];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    if (prefix === "" && isPlainObject(a) && isPlainObject(b)) keys.push(...inputDiffKeys(a, b, `${key}.`));
    else keys.push(`${prefix}${key}`);
  }
  return keys;
}

/**
 * The engine's own diff when the provider gave one; dynamic providers give none, so then the inputs
 * of the old and new state are compared, as `pulumi preview --diff` does.
 */
function changedKeys(meta: StepEventMetadata): string[] {
  let keys: string[];
  if (meta.detailedDiff && Object.keys(meta.detailedDiff).length > 0) keys = Object.keys(meta.detailedDiff);
  else if (meta.diffs && meta.diffs.length > 0) keys = meta.diffs;
  else keys = inputDiffKeys(meta.old?.inputs ?? {}, meta.new?.inputs ?? {});
  return [...new Set([...keys, ...(meta.keys ?? [])])].sort();
}

function restoreTarget(inputs: Record<string, unknown> | undefined): { kind: string; value: string } | null {
  const target = inputs?.target;
  if (isPlainObject(target)) {
    for (const kind of RESTORE_KINDS) {
      const value = plainString(target, kind);
      if (value !== undefined) return { kind, value };
    }
  }
  return null;
}

/**
 * The tenant a Job restores, with the target of its container's `--time`/`--lsn`/`--snapshot`
 * argument; undefined when the Job is not a restore Job (name prefix and both labels).
 */
function restoreJob(
  inputs: Record<string, unknown> | undefined,
): TenantChanges["restored"][number] | undefined {
  const metadata = isPlainObject(inputs?.metadata) ? inputs.metadata : undefined;
  const labels = isPlainObject(metadata?.labels) ? metadata.labels : undefined;
  const tenant = plainString(labels, LABEL_TENANT);
  const name = plainString(metadata, "name");
  if (!tenant || !name?.startsWith(RESTORE_JOB_PREFIX) || plainString(labels, LABEL_OPS_JOB) !== "restore") {
    return undefined;
  }
  const spec = isPlainObject(inputs?.spec) ? inputs.spec : undefined;
  const template = isPlainObject(spec?.template) ? spec.template : undefined;
  const podSpec = isPlainObject(template?.spec) ? template.spec : undefined;
  const containers = Array.isArray(podSpec?.containers) ? (podSpec.containers as unknown[]) : [];
  for (const container of containers) {
    const args =
      isPlainObject(container) && Array.isArray(container.args) ? (container.args as unknown[]) : [];
    for (const kind of RESTORE_KINDS) {
      const i = args.indexOf(`--${kind}`);
      const value = i >= 0 ? plainValue(args[i + 1]) : undefined;
      if (value !== undefined) return { tenant, target: { kind, value } };
    }
  }
  return { tenant, target: null };
}

function cleanDiagnostic(message: string, secrets: readonly string[]): string {
  return redactMessage(message.replace(ANSI, "").trim(), secrets);
}

export interface SummarizeOptions {
  /** Values to redact from the engine's error messages (./redact.ts collectSecrets). */
  secrets?: readonly string[];
}

/** Builds the summary from every event of one preview, in the order they arrived. */
export function summarizePreview(
  events: readonly EngineEvent[],
  options: SummarizeOptions = {},
): PreviewSummary {
  const steps = new Map<string, { op: ChangeOp | "same"; meta: StepEventMetadata }>();
  const errors: string[] = [];
  for (const event of events) {
    const meta = event.resourcePreEvent?.metadata;
    // Provider resources are not counted by the engine's own summary either.
    if (meta && !meta.type.startsWith("pulumi:providers:")) {
      const op = OP_OF_STEP[meta.op];
      // The replace step carries the diff; its create/delete halves only repeat the URN.
      if (op && (!steps.has(meta.urn) || meta.op === "replace")) steps.set(meta.urn, { op, meta });
    }
    const diag = event.diagnosticEvent;
    if (diag?.severity === "error") {
      const message = cleanDiagnostic(diag.message, options.secrets ?? []);
      if (message !== "" && !errors.includes(message)) errors.push(message);
    }
  }

  const counts: PreviewSummary["counts"] = { create: 0, update: 0, replace: 0, delete: 0, same: 0 };
  const resources: ResourceChange[] = [];
  const tenants: TenantChanges = {
    added: [],
    removed: [],
    suspended: [],
    resumed: [],
    archived: [],
    restored: [],
    recreated: [],
  };
  const snapshotsAdded: PreviewSummary["snapshotsAdded"] = [];

  for (const { op, meta } of steps.values()) {
    counts[op] += 1;
    if (op === "same") continue;
    const name = resourceName(meta.urn);
    resources.push({
      op,
      urn: meta.urn,
      type: meta.type,
      shortType: shortType(meta.type),
      name,
      changedKeys: op === "update" || op === "replace" ? changedKeys(meta) : [],
      replaceKeys: op === "replace" ? [...(meta.keys ?? [])].sort() : [],
    });
    const oldIn = meta.old?.inputs;
    const newIn = meta.new?.inputs;
    if (TENANT_DATABASE.test(meta.type)) {
      const tenant = plainString(newIn, "subdomain") ?? plainString(oldIn, "subdomain") ?? name;
      if (op === "create") {
        tenants.added.push({ tenant, tier: plainString(newIn, "tier"), state: plainString(newIn, "state") });
      } else if (op === "delete") {
        tenants.removed.push(tenant);
      } else {
        if (op === "replace") tenants.recreated.push({ tenant, keys: [...(meta.keys ?? [])].sort() });
        const from = plainString(oldIn, "state") ?? "active";
        const to = plainString(newIn, "state") ?? from;
        if (from !== to) {
          const change = { tenant, from, to };
          if (to === "suspended") tenants.suspended.push(change);
          else if (to === "archived") tenants.archived.push(change);
          else if (to === "active") tenants.resumed.push(change);
        }
      }
    } else if (PITR_RESTORE.test(meta.type) && (op === "create" || op === "replace")) {
      tenants.restored.push({
        tenant: plainString(newIn, "subdomain") ?? name,
        target: restoreTarget(newIn),
      });
    } else if (meta.type === KUBERNETES_JOB && (op === "create" || op === "replace")) {
      const restore = restoreJob(newIn);
      if (restore) tenants.restored.push(restore);
    } else if (SNAPSHOT.test(meta.type) && op === "create") {
      snapshotsAdded.push({
        tenant: plainString(newIn, "subdomain") ?? "?",
        name: plainString(newIn, "name") ?? name,
      });
    }
  }

  const byTenant = <T extends { tenant: string }>(a: T, b: T) => a.tenant.localeCompare(b.tenant);
  const opIndex = (op: ChangeOp) => CHANGE_OPS.indexOf(op);
  resources.sort(
    (a, b) =>
      opIndex(a.op) - opIndex(b.op) || a.shortType.localeCompare(b.shortType) || a.urn.localeCompare(b.urn),
  );
  tenants.added.sort(byTenant);
  tenants.removed.sort();
  tenants.suspended.sort(byTenant);
  tenants.resumed.sort(byTenant);
  tenants.archived.sort(byTenant);
  tenants.restored.sort(byTenant);
  tenants.recreated.sort(byTenant);
  snapshotsAdded.sort((a, b) => byTenant(a, b) || a.name.localeCompare(b.name));

  return { ok: errors.length === 0, counts, resources, tenants, snapshotsAdded, errors };
}

const OP_WORDS: Record<ChangeOp, string> = {
  create: "to create",
  update: "to update",
  replace: "to replace",
  delete: "to delete",
};

/** Inline code that stays inline code whatever the text holds (backticks, newlines). */
function code(text: string): string {
  const flat = text.replace(/\s+/g, " ");
  const fence = flat.includes("`") ? "`` " : "`";
  return `${fence}${flat}${fence.split("").reverse().join("")}`;
}

function fenced(text: string): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  const fence = "`".repeat(longest + 1);
  return `${fence}text\n${text}\n${fence}`;
}

function tenantLines(s: PreviewSummary): string[] {
  const t = s.tenants;
  const stateChange = (c: TenantStateChange) => `${code(c.tenant)} (${c.from} → ${c.to})`;
  const lines: string[] = [];
  const line = (label: string, items: string[]) => {
    if (items.length > 0) lines.push(`- **${label}** (${items.length}): ${items.join(", ")}`);
  };
  line(
    "recreated (data deleted and made anew)",
    t.recreated.map((r) =>
      r.keys.length > 0
        ? `${code(r.tenant)} (${r.keys.length > 1 ? "keys" : "key"}: ${r.keys.map(code).join(", ")})`
        : code(r.tenant),
    ),
  );
  line(
    "added",
    t.added.map((a) => {
      const details = [a.tier, a.state && a.state !== "active" ? a.state : undefined].filter(Boolean);
      return details.length > 0 ? `${code(a.tenant)} (${details.join(", ")})` : code(a.tenant);
    }),
  );
  line("removed", t.removed.map(code));
  line("suspended", t.suspended.map(stateChange));
  line("resumed", t.resumed.map(stateChange));
  line("archived", t.archived.map(stateChange));
  line(
    "restored",
    t.restored.map((r) =>
      r.target
        ? `${code(r.tenant)} to ${r.target.kind} ${code(r.target.value)}`
        : `${code(r.tenant)} (target not shown)`,
    ),
  );
  line(
    "snapshots added",
    s.snapshotsAdded.map((n) => code(`${n.tenant}/${n.name}`)),
  );
  return lines;
}

function headline(s: PreviewSummary): string {
  if (!s.ok) return "❌ **The preview failed** — nothing can be applied until the errors below are fixed.";
  const parts = CHANGE_OPS.filter((op) => s.counts[op] > 0).map((op) => `${s.counts[op]} ${OP_WORDS[op]}`);
  if (parts.length === 0) return `✅ **No changes** (${s.counts.same} resources unchanged).`;
  const counts = `**${parts.join(" · ")}** (${s.counts.same} unchanged).`;
  const recreated = s.tenants.recreated.map((r) => code(r.tenant));
  if (recreated.length === 0) return counts;
  const databases = recreated.length > 1 ? "tenant databases" : "tenant database";
  return `${counts} ⚠️ **${recreated.length} ${databases} recreated — data deleted:** ${recreated.join(", ")}.`;
}

/** The summary as GitHub-flavoured Markdown: headline, tenants, counts, then the resources folded away. */
export function renderPreviewMarkdown(s: PreviewSummary, ctx: { stack: string; project: string }): string {
  const out: string[] = [
    `### Pulumi preview: ${code(ctx.project)} / ${code(ctx.stack)}`,
    "",
    headline(s),
    "",
  ];
  if (!s.ok) {
    out.push("#### Errors", "");
    for (const error of s.errors) out.push(fenced(error), "");
    return `${out.join("\n").trimEnd()}\n`;
  }
  const tenants = tenantLines(s);
  out.push("#### Tenants", "", ...(tenants.length > 0 ? tenants : ["No tenant changes."]), "");
  if (s.resources.length === 0) return `${out.join("\n").trimEnd()}\n`;

  out.push("| operation | resources |", "| --- | ---: |");
  for (const op of CHANGE_OPS) out.push(`| ${op} | ${s.counts[op]} |`);
  out.push(`| unchanged | ${s.counts.same} |`, "");

  out.push(`<details><summary>Resources to change (${s.resources.length})</summary>`, "");
  for (const op of CHANGE_OPS) {
    const changes = s.resources.filter((r) => r.op === op);
    if (changes.length === 0) continue;
    out.push(`**${op}**`, "");
    for (const r of changes) {
      const keyText = (k: string) =>
        r.replaceKeys.includes(k) ? `${code(k)} (forces replacement)` : code(k);
      const keys = r.changedKeys.length > 0 ? ` — ${r.changedKeys.map(keyText).join(", ")}` : "";
      out.push(`- ${r.shortType} ${code(r.name)}${keys}`);
    }
    out.push("");
  }
  out.push("</details>");
  return `${out.join("\n")}\n`;
}
