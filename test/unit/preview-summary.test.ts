import * as fs from "node:fs";
import * as path from "node:path";
import type { EngineEvent, SummaryEvent } from "@pulumi/pulumi/automation";
import { describe, expect, it } from "vitest";
import { renderPreviewMarkdown, summarizePreview } from "../../lib/pulumi/previewSummary";
import { MAX_MESSAGE_CHARS, collectSecrets, redactMessage } from "../../lib/pulumi/redact";
import { LABEL_OPS_JOB, LABEL_TENANT, NAMES } from "../../components/kubernetes/common";
import { restoreJobName } from "../../components/kubernetes/RestoreJob";
import { repoRoot } from "../../testkit/repo";

interface K8sJobInputs {
  metadata: { name: string; labels: Record<string, string> };
  spec: { template: { spec: { containers: Array<{ args: unknown }> } } };
}

/** Events captured from real previews of a local stack, or hand-made in their shape (see each `note`). */
function captured(name: string): EngineEvent[] {
  const file = path.join(repoRoot, "test", "fixtures", "preview-events", `${name}.json`);
  return (JSON.parse(fs.readFileSync(file, "utf8")) as { events: EngineEvent[] }).events;
}

const ctx = { stack: "capture", project: "loomworks-hosting" };
const render = (events: EngineEvent[]) => renderPreviewMarkdown(summarizePreview(events), ctx);

function engineSummary(events: EngineEvent[]): SummaryEvent {
  const event = events.find((e) => e.summaryEvent);
  if (!event?.summaryEvent) throw new Error("fixture without a summary event");
  return event.summaryEvent;
}

/** A deep copy of the fixture's step event for `urnSuffix`, for variations of a real event. */
function stepOf(events: EngineEvent[], urnSuffix: string): EngineEvent {
  const event = events.find((e) => e.resourcePreEvent?.metadata.urn.endsWith(urnSuffix));
  if (!event) throw new Error(`no step for ${urnSuffix}`);
  return structuredClone(event);
}

function tenantsSection(markdown: string): string {
  return markdown.split("#### Tenants\n\n")[1].split("\n\n")[0];
}

describe("summarizePreview on captured previews", () => {
  it("names the tenant changes of a config change: added, suspended, restored, snapshot", () => {
    const events = captured("tenant-changes");
    const s = summarizePreview(events);
    expect(s.ok).toBe(true);
    expect(s.tenants).toEqual({
      added: [{ tenant: "charlie", tier: "enterprise", state: "active" }],
      removed: [],
      suspended: [{ tenant: "alpha", from: "active", to: "suspended" }],
      resumed: [],
      archived: [],
      restored: [{ tenant: "bravo", target: { kind: "snapshot", value: "before" } }],
      recreated: [],
    });
    expect(s.snapshotsAdded).toEqual([{ tenant: "bravo", name: "before" }]);
    expect(tenantsSection(render(events))).toBe(
      [
        "- **added** (1): `charlie` (enterprise)",
        "- **suspended** (1): `alpha` (active → suspended)",
        "- **restored** (1): `bravo` to snapshot `before`",
        "- **snapshots added** (1): `bravo/before`",
      ].join("\n"),
    );
  });

  it.each(["tenant-changes", "replace-and-remove", "no-changes", "kubernetes-restore"])(
    "counts what the engine's own summary counts (%s)",
    (name) => {
      const events = captured(name);
      const engine = engineSummary(events).resourceChanges;
      const { counts } = summarizePreview(events);
      for (const op of ["create", "update", "replace", "delete", "same"] as const) {
        expect(counts[op], op).toBe(engine[op] ?? 0);
      }
    },
  );

  it("counts a replacement once although the engine reports three steps for it", () => {
    const events = captured("replace-and-remove");
    const steps = events.filter((e) =>
      e.resourcePreEvent?.metadata.urn.endsWith("TenantTemplate::template-default"),
    );
    expect(steps.map((e) => e.resourcePreEvent?.metadata.op).sort()).toEqual([
      "create-replacement",
      "delete-replaced",
      "replace",
    ]);
    const s = summarizePreview(events);
    expect(s.counts.replace).toBe(1);
    expect(s.resources.filter((r) => r.op === "replace")).toEqual([
      expect.objectContaining({
        shortType: "TenantTemplate",
        name: "template-default",
        changedKeys: ["dumpHash", "fromDump"],
        replaceKeys: ["dumpHash"],
      }),
    ]);
    expect(s.tenants.removed).toEqual(["bravo"]);
    expect(render(events)).toContain(
      "- TenantTemplate `template-default` — `dumpHash` (forces replacement), `fromDump`",
    );
  });

  it("lists the changed keys of an update, nested ones by path, without values", () => {
    const events = captured("replace-and-remove");
    const alpha = summarizePreview(events).resources.find(
      (r) => r.type.endsWith("TenantDatabase") && r.op === "update",
    );
    expect(alpha?.changedKeys).toEqual([
      "adminEmail",
      "limits.maxAiOperationsDaily",
      "limits.maxSnapshots",
      "limits.maxStorageGb",
      "limits.maxUsers",
      "tier",
    ]);
    const markdown = render(events);
    expect(markdown).toContain("`adminEmail`");
    expect(markdown).not.toContain("boss@alpha.example");
    expect(markdown).not.toContain("owner@alpha.example");
  });

  it("a config error: the failure and its message, no table and no resource list", () => {
    const events = captured("invalid-config");
    const s = summarizePreview(events);
    expect(s.ok).toBe(false);
    expect(s.errors).toHaveLength(1);
    expect(s.errors[0]).toMatch(/tenant "Bad--Name": key "subdomain": must be lowercase/);
    const markdown = render(events);
    expect(markdown).toContain("The preview failed");
    expect(markdown).toContain('tenant "Bad--Name": key "subdomain"');
    expect(markdown).not.toContain("| operation");
    expect(markdown).not.toContain("<details>");
    expect(markdown).not.toContain("#### Tenants");
  });

  it('an empty preview says "No changes"', () => {
    const markdown = render(captured("no-changes"));
    expect(markdown).toContain("**No changes** (23 resources unchanged)");
    expect(markdown).toContain("No tenant changes.");
    expect(markdown).not.toContain("| operation");
  });

  it("the Markdown does not depend on the order the steps arrived in", () => {
    const events = captured("replace-and-remove");
    const reversed = [...events].reverse();
    expect(render(reversed)).toBe(render(events));
    const resources = summarizePreview(events).resources.map((r) => `${r.op} ${r.shortType} ${r.name}`);
    expect(resources).toEqual([
      "update LocalRouter router",
      "update TenantDatabase alpha",
      "update TenantGuards alpha-guards",
      "replace TenantTemplate template-default",
      "delete RandomSecret bravo-admin-password",
      "delete RandomSecret bravo-role-password",
      "delete Tenant bravo",
      "delete TenantDatabase bravo",
      "delete TenantGuards bravo-guards",
    ]);
  });
});

describe("secret values never reach the summary", () => {
  /** Every string inside the secret values (`{ <sig>: ..., ciphertext }`) of a fixture's states. */
  function secretStrings(events: EngineEvent[]): string[] {
    const found: string[] = [];
    const walk = (v: unknown, inSecret: boolean) => {
      if (typeof v === "string") {
        if (inSecret) found.push(v);
      } else if (v && typeof v === "object") {
        const secret = inSecret || "4dabf18193072939515e22adb298388d" in v;
        for (const child of Object.values(v)) walk(child, secret);
      }
    };
    walk(events, false);
    return found;
  }

  it.each(["tenant-changes", "replace-and-remove"])("no ciphertext of the captured secrets (%s)", (name) => {
    const events = captured(name);
    const secrets = secretStrings(events).filter((s) => s.length > 20);
    expect(secrets.length).toBeGreaterThan(5);
    const markdown = render(events);
    for (const secret of secrets) expect(markdown).not.toContain(secret);
  });

  it("a changed secret shows as its key name only, whether masked or encrypted", () => {
    const events = captured("tenant-changes");
    const step = stepOf(events, "TenantDatabase::alpha");
    const meta = step.resourcePreEvent!.metadata;
    meta.old!.inputs.rolePassword = "[secret]";
    meta.new!.inputs.rolePassword = {
      "4dabf18193072939515e22adb298388d": "x",
      ciphertext: "v1:ZmFrZS1uZXctcGFzc3dvcmQ=",
    };
    meta.new!.inputs.adminEmail = "plaintext-value@example.test";
    const markdown = render([step]);
    expect(markdown).toContain("- TenantDatabase `alpha` — `adminEmail`, `rolePassword`, `state`");
    expect(markdown).not.toContain("ZmFrZS1uZXctcGFzc3dvcmQ");
    expect(markdown).not.toContain("plaintext-value");
    expect(markdown).not.toContain("[secret]");
  });

  it("a detailed diff from a provider gives key names, its values are not read", () => {
    const step = stepOf(captured("tenant-changes"), "LocalRouter::router");
    step.resourcePreEvent!.metadata.detailedDiff = {
      "tenants[2]": { diffKind: "add" as never, inputDiff: true },
    };
    expect(summarizePreview([step]).resources[0].changedKeys).toEqual(["tenants[2]"]);
  });
});

describe("tenant state transitions", () => {
  const alphaWith = (from: string, to: string) => {
    const step = stepOf(captured("tenant-changes"), "TenantDatabase::alpha");
    const meta = step.resourcePreEvent!.metadata;
    meta.old!.inputs.state = from;
    meta.new!.inputs.state = to;
    return summarizePreview([step]).tenants;
  };

  it("suspended → active is a resume, → archived an archive, an unchanged state neither", () => {
    expect(alphaWith("suspended", "active").resumed).toEqual([
      { tenant: "alpha", from: "suspended", to: "active" },
    ]);
    expect(alphaWith("active", "archived").archived).toEqual([
      { tenant: "alpha", from: "active", to: "archived" },
    ]);
    const unchanged = alphaWith("active", "active");
    expect([...unchanged.suspended, ...unchanged.resumed, ...unchanged.archived]).toEqual([]);
  });

  it("a replaced restore (new target) counts as a restore with its new target", () => {
    const step = stepOf(captured("tenant-changes"), "PitrRestore::bravo-restore");
    const meta = step.resourcePreEvent!.metadata;
    meta.op = "replace";
    meta.new!.inputs.target = { time: "2026-11-26T10:00:00Z" };
    const s = summarizePreview([step]);
    expect(s.tenants.restored).toEqual([
      { tenant: "bravo", target: { kind: "time", value: "2026-11-26T10:00:00Z" } },
    ]);
    expect(tenantsSection(renderPreviewMarkdown(s, ctx))).toBe(
      "- **restored** (1): `bravo` to time `2026-11-26T10:00:00Z`",
    );
  });

  it("a restore target that is secret is not shown", () => {
    const step = stepOf(captured("tenant-changes"), "PitrRestore::bravo-restore");
    step.resourcePreEvent!.metadata.new!.inputs.target = "[secret]";
    const s = summarizePreview([step]);
    expect(s.tenants.restored).toEqual([{ tenant: "bravo", target: null }]);
    expect(tenantsSection(renderPreviewMarkdown(s, ctx))).toBe(
      "- **restored** (1): `bravo` (target not shown)",
    );
  });
});

describe("restores on the kubernetes target (restore Jobs)", () => {
  const jobOf = (events: EngineEvent[], tenant: string) => {
    const event = events.find(
      (e) =>
        e.resourcePreEvent?.metadata.op === "create" &&
        e.resourcePreEvent.metadata.urn.includes(`Job::${NAMES.restorePrefix}-${tenant}-`),
    );
    if (!event) throw new Error(`no restore Job for ${tenant}`);
    return structuredClone(event);
  };
  const jobInputs = (event: EngineEvent) => event.resourcePreEvent!.metadata.new!.inputs as K8sJobInputs;

  it("the hand-made fixture holds the Jobs RestoreJob.ts makes: name, labels", () => {
    const events = captured("kubernetes-restore");
    const metadata = jobInputs(jobOf(events, "acme")).metadata;
    expect(metadata.name).toBe(restoreJobName("acme", { time: "2026-11-25T22:00:00Z" }));
    expect(metadata.labels[LABEL_OPS_JOB]).toBe("restore");
    expect(metadata.labels[LABEL_TENANT]).toBe("acme");
    expect(jobInputs(jobOf(events, "globex")).metadata.name).toBe(
      restoreJobName("globex", { lsn: "0/3A0001C8" }),
    );
  });

  it("a created restore Job is a restore of its tenant, with the target of its args", () => {
    const events = captured("kubernetes-restore");
    const s = summarizePreview(events);
    expect(s.ok).toBe(true);
    // The old target's Job is deleted: that is no restore.
    expect(s.resources.filter((r) => r.op === "delete").map((r) => r.name)).toEqual([
      restoreJobName("acme", { time: "2026-11-20T08:00:00Z" }),
    ]);
    expect(s.tenants.restored).toEqual([
      { tenant: "acme", target: { kind: "time", value: "2026-11-25T22:00:00Z" } },
      { tenant: "globex", target: { kind: "lsn", value: "0/3A0001C8" } },
    ]);
    expect(tenantsSection(render(events))).toBe(
      "- **restored** (2): `acme` to time `2026-11-25T22:00:00Z`, `globex` to lsn `0/3A0001C8`",
    );
  });

  it("a replaced restore Job (a failed one, resumed) is a restore too", () => {
    const step = jobOf(captured("kubernetes-restore"), "globex");
    step.resourcePreEvent!.metadata.op = "replace";
    expect(summarizePreview([step]).tenants.restored).toEqual([
      { tenant: "globex", target: { kind: "lsn", value: "0/3A0001C8" } },
    ]);
  });

  it("args not known in the preview: the restore is listed, its target not shown", () => {
    const step = jobOf(captured("kubernetes-restore"), "acme");
    jobInputs(step).spec.template.spec.containers[0].args = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
    const s = summarizePreview([step]);
    expect(s.tenants.restored).toEqual([{ tenant: "acme", target: null }]);
    expect(tenantsSection(renderPreviewMarkdown(s, ctx))).toBe(
      "- **restored** (1): `acme` (target not shown)",
    );
  });

  it("a Job without the restore label or name is no restore", () => {
    const otherJob = jobOf(captured("kubernetes-restore"), "acme");
    jobInputs(otherJob).metadata.labels[LABEL_OPS_JOB] = "backup-full";
    const otherName = jobOf(captured("kubernetes-restore"), "globex");
    jobInputs(otherName).metadata.name = "loomworks-backup-full-29123";
    const s = summarizePreview([otherJob, otherName]);
    expect(s.counts.create).toBe(2);
    expect(s.tenants.restored).toEqual([]);
  });
});

describe("a replaced tenant database (its data deleted)", () => {
  const replacedAlpha = (keys: string[]) => {
    const step = stepOf(captured("tenant-changes"), "TenantDatabase::alpha");
    const meta = step.resourcePreEvent!.metadata;
    meta.op = "replace";
    meta.keys = keys;
    for (const key of keys) meta.new!.inputs[key] = `${String(meta.old!.inputs[key])}-v2`;
    return step;
  };

  it("is named in the Tenants section with the keys forcing it, and in the headline", () => {
    const s = summarizePreview([replacedAlpha(["roleName", "database"])]);
    expect(s.tenants.recreated).toEqual([{ tenant: "alpha", keys: ["database", "roleName"] }]);
    const markdown = renderPreviewMarkdown(s, ctx);
    expect(tenantsSection(markdown).split("\n")[0]).toBe(
      "- **recreated (data deleted and made anew)** (1): `alpha` (keys: `database`, `roleName`)",
    );
    expect(markdown.split("\n")[2]).toBe(
      "**1 to replace** (0 unchanged). ⚠️ **1 tenant database recreated — data deleted:** `alpha`.",
    );
  });

  it("one key: `key:`; a state change in the same replacement is listed as well", () => {
    const step = replacedAlpha(["filestoreRoot"]);
    step.resourcePreEvent!.metadata.new!.inputs.state = "suspended";
    expect(tenantsSection(render([step]))).toBe(
      [
        "- **recreated (data deleted and made anew)** (1): `alpha` (key: `filestoreRoot`)",
        "- **suspended** (1): `alpha` (active → suspended)",
      ].join("\n"),
    );
  });

  it("other replacements (a template) recreate no tenant and add nothing to the headline", () => {
    const events = captured("replace-and-remove");
    expect(summarizePreview(events).tenants.recreated).toEqual([]);
    expect(render(events)).not.toContain("recreated");
  });
});

describe("redaction of error messages", () => {
  /** `pulumi config --show-secrets --json` of a stack with `config set --path --secret` on the platform. */
  const config = {
    "loomworks:platform": {
      value: JSON.stringify({
        backups: { cipherPassphrase: "super-secret-passphrase" },
        kubernetes: { tls: { dns01: { apiToken: "cf-token-0123456789", short: "x" } } },
        target: "kubernetes",
        templates: { default: { key: "default-template" } },
      }),
      secret: true,
    },
    "loomworks:monitoringPassword": { value: "mon-pass-42", secret: true },
    "loomworks:tenants": {
      value: JSON.stringify({ acme: { adminEmail: "owner@acme.example" } }),
      secret: false,
    },
  };
  const env = {
    PULUMI_CONFIG_PASSPHRASE: "stack-passphrase-1",
    GITHUB_TOKEN: "ghs_abcdefghijklmnop",
    DB_PASSWORD: "db-password-9",
    APP_SECRET: "app-secret-value",
    HOME: "/home/runner",
    SHORT_TOKEN: "abc",
  };

  it("collects the secret config values, secret leaves of structured ones, and secret env vars", () => {
    const secrets = collectSecrets(config, env);
    expect(secrets).toEqual(
      expect.arrayContaining([
        "super-secret-passphrase",
        "cf-token-0123456789",
        "default-template",
        "mon-pass-42",
        "stack-passphrase-1",
        "ghs_abcdefghijklmnop",
        "db-password-9",
        "app-secret-value",
      ]),
    );
    for (const plain of ["kubernetes", "x", "owner@acme.example", "/home/runner", "abc"]) {
      expect(secrets).not.toContain(plain);
    }
  });

  it("AI provider keys: every value of platform.ai.keys, whatever its name, and *_KEY variables", () => {
    const aiConfig = {
      "loomworks:platform": {
        value: JSON.stringify({
          target: "docker",
          ai: { keys: { OPENAI_API_KEY: "sk-openai-abcdef0123", COHERE_API: "cohere-value-4567" } },
        }),
        secret: true,
      },
    };
    const secrets = collectSecrets(aiConfig, { MISTRAL_API_KEY: "mistral-value-89ab", HOME: "/root" });
    expect(secrets).toEqual(
      expect.arrayContaining(["sk-openai-abcdef0123", "cohere-value-4567", "mistral-value-89ab"]),
    );
    expect(secrets).not.toContain("docker");
    expect(secrets).not.toContain("/root");
    const message =
      "error: docker:index/container:Container resource 'erp': env OPENAI_API_KEY=sk-openai-abcdef0123 " +
      "COHERE_API=cohere-value-4567 MISTRAL_API_KEY=mistral-value-89ab";
    const events: EngineEvent[] = [
      { sequence: 1, timestamp: 0, diagnosticEvent: { message, color: "never", severity: "error" } },
    ];
    const markdown = renderPreviewMarkdown(summarizePreview(events, { secrets }), ctx);
    expect(markdown).toContain("OPENAI_API_KEY=[secret] COHERE_API=[secret] MISTRAL_API_KEY=[secret]");
    for (const value of ["sk-openai-abcdef0123", "cohere-value-4567", "mistral-value-89ab"])
      expect(markdown).not.toContain(value);
  });

  it("an AI keys Secret changed in a preview shows its key names only", () => {
    const step = stepOf(captured("tenant-changes"), "LocalRouter::router");
    const meta = step.resourcePreEvent!.metadata;
    meta.op = "update" as never;
    meta.type = "kubernetes:core/v1:Secret";
    meta.urn = meta.urn.replace(/LocalRouter::router$/, "kubernetes:core/v1:Secret::erp-ai-keys");
    meta.old!.inputs = { stringData: { OPENAI_API_KEY: "sk-old-value-0123456789" } };
    meta.new!.inputs = { stringData: { OPENAI_API_KEY: "sk-new-value-9876543210" } };
    meta.detailedDiff = { "stringData.OPENAI_API_KEY": { diffKind: "update" as never, inputDiff: true } };
    const markdown = render([step]);
    expect(markdown).toContain("`stringData.OPENAI_API_KEY`");
    expect(markdown).not.toContain("sk-old-value");
    expect(markdown).not.toContain("sk-new-value");
  });

  it("a diagnostic with a configured secret and a DSN password reaches the comment redacted", () => {
    const secrets = collectSecrets(config, env);
    const message =
      "error: loomworks:PitrRestore resource 'acme-restore': pgbackrest failed: cipher-pass=super-secret-passphrase\n" +
      "connecting to postgres://postgres:Xy7%21dsn-pass@postgres.loomworks.svc:5432/postgres: " +
      'token "cf-token-0123456789" rejected; {"password":"mon-pass-42"}';
    const events: EngineEvent[] = [
      { sequence: 1, timestamp: 0, diagnosticEvent: { message, color: "never", severity: "error" } },
    ];
    const s = summarizePreview(events, { secrets });
    expect(s.errors).toEqual([
      "error: loomworks:PitrRestore resource 'acme-restore': pgbackrest failed: cipher-pass=[secret]\n" +
        "connecting to postgres://postgres:[secret]@postgres.loomworks.svc:5432/postgres: " +
        'token "[secret]" rejected; {"password":"[secret]"}',
    ]);
    const markdown = renderPreviewMarkdown(s, ctx);
    for (const secret of [
      "super-secret-passphrase",
      "Xy7%21dsn-pass",
      "cf-token-0123456789",
      "mon-pass-42",
    ]) {
      expect(markdown).not.toContain(secret);
    }
  });

  it("redacts a secret in its JSON-escaped and URL-encoded forms, the longer of two first", () => {
    const secret = 'pa"ss/wo rd';
    expect(redactMessage(`a ${JSON.stringify(secret)} b ${encodeURIComponent(secret)}`, [secret])).toBe(
      'a "[secret]" b [secret]',
    );
    expect(redactMessage("key=abcd1234-extra", ["abcd1234", "abcd1234-extra"])).toBe("key=[secret]");
    expect(redactMessage("host=db password='p w' user=x password=plain1", [])).toBe(
      "host=db password=[secret] user=x password=[secret]",
    );
  });

  it("cuts a long message after redaction, so no secret is cut in half", () => {
    const secret = "0123456789abcdef";
    const message = `${"x".repeat(MAX_MESSAGE_CHARS - 4)}${secret}${"y".repeat(3000)}`;
    const redacted = redactMessage(message, [secret]);
    expect(redacted).toBe(`${"x".repeat(MAX_MESSAGE_CHARS - 4)}[sec… (truncated)`);
    expect(redacted).not.toContain("0123");
    expect(redactMessage("short", [])).toBe("short");
  });
});

describe("the Markdown cannot be broken by the text it quotes", () => {
  it("an error containing a code fence stays inside its block", () => {
    const markdown = render([
      {
        sequence: 1,
        timestamp: 0,
        diagnosticEvent: { message: "bad value:\n```\n# not a heading\n", color: "never", severity: "error" },
      },
    ]);
    expect(markdown).toContain("````text\nbad value:\n```\n# not a heading\n````");
  });
});

/**
 * A reader for the YAML subset the workflow files keep to (block mappings, block sequences, `|`
 * scalars, plain or quoted single-line scalars). Anything else fails loudly, so the checks below
 * never pass on a misread file.
 */
type Yaml = string | Yaml[] | { [key: string]: Yaml };

function parseYamlSubset(source: string): Yaml {
  const lines = source.split("\n").map((raw, i) => {
    if (raw.includes("\t")) throw new Error(`line ${i + 1}: tab`);
    return { raw, no: i + 1, indent: raw.length - raw.trimStart().length, text: raw.trim() };
  });
  let i = 0;
  const skip = () => {
    while (i < lines.length && (lines[i].text === "" || lines[i].text.startsWith("#"))) i++;
  };
  const scalar = (v: string, no: number): string => {
    if (/^[[{&*>!|]/.test(v) || / #/.test(v)) throw new Error(`line ${no}: unsupported YAML: ${v}`);
    const quoted = /^"(.*)"$|^'(.*)'$/.exec(v);
    return quoted ? (quoted[1] ?? quoted[2]) : v;
  };
  const literal = (parentIndent: number): string => {
    const body: string[] = [];
    while (i < lines.length && (lines[i].text === "" || lines[i].indent > parentIndent))
      body.push(lines[i++].raw);
    const indent = Math.min(...body.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
    return `${body
      .map((l) => l.slice(indent))
      .join("\n")
      .trimEnd()}\n`;
  };
  const block = (indent: number): Yaml => {
    skip();
    if (lines[i].text.startsWith("- ")) {
      const items: Yaml[] = [];
      for (skip(); i < lines.length && lines[i].indent === indent && lines[i].text.startsWith("- "); skip()) {
        const rest = lines[i].text.slice(2);
        if (/^[\w.-]+:( |$)/.test(rest)) {
          lines[i] = { ...lines[i], indent: indent + 2, text: rest };
          items.push(block(indent + 2));
        } else items.push(scalar(rest, lines[i++].no));
      }
      return items;
    }
    const map: Record<string, Yaml> = {};
    for (skip(); i < lines.length && lines[i].indent >= indent; skip()) {
      const { no, text } = lines[i];
      if (lines[i].indent > indent) throw new Error(`line ${no}: unexpected indentation`);
      const m = /^([\w.-]+):(?: (.*))?$/.exec(text);
      if (!m) throw new Error(`line ${no}: not a "key: value" line: ${text}`);
      if (m[1] in map) throw new Error(`line ${no}: duplicate key ${m[1]}`);
      i++;
      const rest = m[2] ?? "";
      if (rest === "|") map[m[1]] = literal(indent);
      else if (rest !== "") map[m[1]] = scalar(rest, no);
      else {
        skip();
        if (i >= lines.length || lines[i].indent <= indent) throw new Error(`line ${no}: empty value`);
        map[m[1]] = block(lines[i].indent);
      }
    }
    return map;
  };
  return block(0);
}

describe("the CI workflow", () => {
  const read = (rel: string) => fs.readFileSync(path.join(repoRoot, rel), "utf8");
  const asMap = (v: Yaml | undefined) => v as Record<string, Yaml>;
  const workflow = asMap(parseYamlSubset(read(".github/workflows/pulumi.yml")));
  const setup = asMap(parseYamlSubset(read(".github/actions/setup/action.yml")));
  const jobs = asMap(workflow.jobs);
  const steps = (job: string) => asMap(jobs[job]).steps as Array<Record<string, string>>;
  const allSteps = [
    ...steps("preview"),
    ...steps("up"),
    ...(asMap(setup.runs).steps as Array<Record<string, string>>),
  ];

  it("the reader refuses what it does not understand", () => {
    expect(() => parseYamlSubset("a: { b: 1 }\n")).toThrow(/unsupported/);
    expect(() => parseYamlSubset("a: 1\na: 2\n")).toThrow(/duplicate/);
    expect(() => parseYamlSubset("a:\n\tb: 1\n")).toThrow(/tab/);
    expect(parseYamlSubset("a:\n  - b: 1\n    c: |\n      x\n      y\n  - d\n")).toEqual({
      a: [{ b: "1", c: "x\ny\n" }, "d"],
    });
  });

  it("runs a preview on pull requests and up on pushes to main", () => {
    expect(workflow.on).toEqual({ pull_request: { branches: ["main"] }, push: { branches: ["main"] } });
    expect(asMap(jobs.preview).if).toBe("github.event_name == 'pull_request'");
    expect(asMap(jobs.up).if).toBe("github.event_name == 'push' && github.ref == 'refs/heads/main'");
    expect(asMap(workflow.env).STACK).toBe("prod");
    expect(fs.existsSync(path.join(repoRoot, "Pulumi.prod.yaml"))).toBe(true);
    const preview = steps("preview").find((s) => s.id === "preview");
    expect(preview?.run).toBe(
      'node bin/infra/automation/preview-summary.js --stack "$STACK" --out preview.md',
    );
    expect(preview?.["continue-on-error"]).toBe("true");
    expect(steps("up").at(-1)?.run).toBe('node bin/infra/automation/run.js up --stack "$STACK"');
  });

  it("posts the summary as one PR comment, also when the preview failed, then fails the job", () => {
    const names = steps("preview").map((s) => s.name ?? s.uses);
    const comment = steps("preview").find((s) => s.uses?.startsWith("actions/github-script@"));
    expect(comment?.if).toBe("always() && hashFiles('preview.md') != ''");
    const script = asMap(comment?.with as unknown as Yaml).script as string;
    expect(script).toContain('readFileSync("preview.md"');
    expect(script).toMatch(/updateComment[\s\S]*createComment/);
    expect(names.indexOf("Fail when the preview failed")).toBe(names.length - 1);
    expect(steps("preview").at(-1)?.if).toBe("steps.preview.outcome == 'failure'");
  });

  it("takes the passphrase and the backend from secrets; minimal permissions", () => {
    const env = asMap(workflow.env);
    expect(env.PULUMI_CONFIG_PASSPHRASE).toBe("${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
    expect(env.PULUMI_BACKEND_URL).toBe("${{ secrets.PULUMI_BACKEND_URL }}");
    expect(workflow.permissions).toEqual({ contents: "read" });
    expect(asMap(jobs.preview).permissions).toEqual({ contents: "read", "pull-requests": "write" });
    expect(asMap(jobs.up).permissions).toEqual({ contents: "read" });
  });

  it("never runs two ups at once, and a preview never cancels an up", () => {
    const up = asMap(asMap(jobs.up).concurrency);
    const preview = asMap(asMap(jobs.preview).concurrency);
    expect(up).toEqual({ group: "pulumi-up-prod", "cancel-in-progress": "false" });
    expect(preview.group).not.toBe(up.group);
  });

  it("pins every action by tag; local actions exist", () => {
    const uses = allSteps.map((s) => s.uses).filter((u): u is string => u !== undefined);
    expect(uses.length).toBeGreaterThan(4);
    for (const use of uses) {
      if (use.startsWith("./")) expect(fs.existsSync(path.join(repoRoot, use, "action.yml")), use).toBe(true);
      else expect(use, use).toMatch(/^[\w-]+\/[\w-]+@v\d+(\.\d+){0,2}$/);
    }
  });

  it("every script and compiled program it runs exists in the repository", () => {
    const runs = allSteps.map((s) => s.run).filter((r): r is string => r !== undefined);
    const scripts = runs.flatMap((r) => r.match(/\.\/scripts\/[\w.-]+/g) ?? []);
    const programs = runs.flatMap((r) => r.match(/bin\/[\w/.-]+\.js/g) ?? []);
    expect(scripts).toContain("./scripts/ensure-pulumi.sh");
    expect(programs).toEqual(["bin/infra/automation/preview-summary.js", "bin/infra/automation/run.js"]);
    for (const script of scripts) {
      const stat = fs.statSync(path.join(repoRoot, script));
      expect(stat.mode & 0o111, script).not.toBe(0);
    }
    for (const program of programs) {
      const source = program.replace(/^bin\//, "").replace(/\.js$/, ".ts");
      expect(fs.existsSync(path.join(repoRoot, source)), source).toBe(true);
    }
    // The options the workflow passes are the ones the programs read.
    expect(read("infra/automation/preview-summary.ts")).toMatch(/"--stack"[\s\S]*"--out"/);
    expect(read("infra/automation/run.ts")).toContain('"up"');
    expect(runs).toContain("npx tsc -p tsconfig.json");
  });
});
