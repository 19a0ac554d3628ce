/**
 * `node bin/infra/automation/preview-summary.js --stack NAME [--out FILE] [--refresh] [--work-dir DIR]
 * [--events FILE]`: runs `pulumi preview` on a stack of this project and writes what it would change as
 * Markdown (lib/pulumi/previewSummary.ts) to --out, to $GITHUB_STEP_SUMMARY when set, and to stdout.
 * Exit code 0 when the preview succeeded, 1 when it failed (the summary, with the errors, is written anyway).
 * --work-dir: another project directory (tests); --events: also write the raw engine events as JSON
 * (unredacted: a local debugging aid, never posted).
 * Error messages are redacted of the stack's secret configuration and the secret environment variables.
 */
import * as fs from "node:fs";
import type { EngineEvent } from "@pulumi/pulumi/automation";
import { renderPreviewMarkdown, summarizePreview } from "../../lib/pulumi/previewSummary";
import { collectSecrets, redactMessage } from "../../lib/pulumi/redact";
import { openStack } from "./workspace";

interface Options {
  stack: string;
  out?: string;
  refresh: boolean;
  workDir?: string;
  events?: string;
}

const USAGE =
  "usage: preview-summary.js --stack NAME [--out FILE] [--refresh] [--work-dir DIR] [--events FILE]";

function parseArgs(argv: string[]): Options {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    if (i < 0) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value\n${USAGE}`);
    return v;
  };
  const known = new Set(["--stack", "--out", "--refresh", "--work-dir", "--events"]);
  const unknown = argv.filter((a, i) => a.startsWith("--") && !known.has(a) && !known.has(argv[i - 1]));
  if (unknown.length > 0) throw new Error(`unknown option ${unknown[0]}\n${USAGE}`);
  const stack = value("--stack");
  if (!stack) throw new Error(USAGE);
  return {
    stack,
    out: value("--out"),
    refresh: argv.includes("--refresh"),
    workDir: value("--work-dir"),
    events: value("--events"),
  };
}

/** The last lines of an Automation API error, without the wrapper's stack trace. */
function errorText(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message
    .split("\n")
    .filter((l) => !/^\s+at /.test(l))
    .slice(-20)
    .join("\n")
    .trim();
}

async function main(argv: string[]): Promise<number> {
  const opts = parseArgs(argv);
  const stack = await openStack({ stackName: opts.stack, workDir: opts.workDir });
  const project = (await stack.workspace.projectSettings()).name;
  // Read before the preview: a stack whose secrets cannot be read gets no summary rather than an
  // unredacted one.
  const secrets = collectSecrets(await stack.getAllConfig(), process.env);
  const events: EngineEvent[] = [];
  let failure: unknown;
  try {
    await stack.preview({
      onEvent: (e) => events.push(e),
      diff: true,
      refresh: opts.refresh,
      color: "never",
    });
  } catch (err) {
    failure = err;
  }
  const summary = summarizePreview(events, { secrets });
  if (failure !== undefined && summary.ok) {
    // The engine failed without an error diagnostic (e.g. the CLI itself): report what it said.
    summary.ok = false;
    summary.errors.push(redactMessage(errorText(failure), secrets));
  }
  const markdown = renderPreviewMarkdown(summary, { stack: opts.stack, project });
  if (opts.events) fs.writeFileSync(opts.events, `${JSON.stringify(events, null, 1)}\n`);
  if (opts.out) fs.writeFileSync(opts.out, markdown);
  if (process.env.GITHUB_STEP_SUMMARY) fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, markdown);
  process.stdout.write(markdown);
  return summary.ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(errorText(err));
    process.exit(2);
  },
);
