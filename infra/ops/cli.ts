/**
 * The operator command (`npm run ops -- <command> ...`, i.e. `node bin/infra/ops/cli.js`):
 *
 *   undo <tenant> <operation> [--on-conflict abort|skip|force] [--dry-run] [--yes]
 *   operations <tenant> [--session ID] [--limit N]
 *   quota <tenant>
 *
 * Common options: --state-dir DIR (the stack's state directory, default .loomworks/dev: the dev
 * stack's), or LOOMWORKS_ADMIN_DSN in the environment. `undo` connects as the tenant: its DSN from
 * the outputs of --stack NAME (default dev), or LOOMWORKS_TENANT_DSN in the environment (never on
 * the command line: it holds the password). Exit codes of undo: lib/ops/commands.ts.
 */
import * as path from "node:path";
import * as readline from "node:readline/promises";
import {
  operationsCommand,
  quotaCommand,
  undoCommand,
  UNDO_EXIT,
  type CommandIo,
} from "../../lib/ops/commands";
import { operatorAdminDsn, tenantDsnFromOutputs } from "../../lib/ops/connect";
import type { OnConflict } from "../../lib/undo/undo";

const USAGE = `usage:
  ops undo <tenant> <operation> [--on-conflict abort|skip|force] [--dry-run] [--yes] [--stack NAME]
  ops operations <tenant> [--session ID] [--limit N] [--state-dir DIR]
  ops quota <tenant> [--state-dir DIR]`;

interface Parsed {
  command: string;
  positional: string[];
  flags: Map<string, string | true>;
}

const VALUE_FLAGS = new Set(["--on-conflict", "--state-dir", "--session", "--limit", "--stack"]);
const BOOLEAN_FLAGS = new Set(["--dry-run", "--yes"]);

export function parseCli(argv: string[]): Parsed {
  const [command = "", ...rest] = argv;
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (VALUE_FLAGS.has(a)) {
      const v = rest[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      flags.set(a, v);
    } else if (BOOLEAN_FLAGS.has(a)) flags.set(a, true);
    else if (a.startsWith("--")) throw new Error(`unknown option ${a}\n${USAGE}`);
    else positional.push(a);
  }
  return { command, positional, flags };
}

function terminalIo(): CommandIo {
  return {
    out: (line) => void process.stdout.write(`${line}\n`),
    confirm: (question) =>
      new Promise<boolean>((resolve) => {
        const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
        // stdin closed without an answer (no terminal, Ctrl-D): no.
        rl.once("close", () => resolve(false));
        rl.question(`${question} [y/N] `).then(
          (answer) => {
            resolve(/^y(es)?$/i.test(answer.trim()));
            rl.close();
          },
          () => resolve(false),
        );
      }),
  };
}

/** The tenant's own DSN: LOOMWORKS_TENANT_DSN, else the stack's `tenants` output. */
async function operatorTenantDsn(subdomain: string, stackName: string): Promise<string> {
  if (process.env.LOOMWORKS_TENANT_DSN) return process.env.LOOMWORKS_TENANT_DSN;
  // Loaded only here: the Pulumi automation API is slow to load and the other commands need none.
  const { openStack } = await import("../automation/workspace");
  const stack = await openStack({ stackName });
  return tenantDsnFromOutputs(await stack.outputs(), subdomain, stackName);
}

async function main(argv: string[]): Promise<number> {
  const { command, positional, flags } = parseCli(argv);
  const stateDir = path.resolve(String(flags.get("--state-dir") ?? ".loomworks/dev"));
  const need = (n: number): void => {
    if (positional.length !== n) throw new Error(`${command} takes ${n} argument(s)\n${USAGE}`);
  };
  const io = terminalIo();
  switch (command) {
    case "undo": {
      need(2);
      const onConflict = String(flags.get("--on-conflict") ?? "abort");
      if (!["abort", "skip", "force"].includes(onConflict)) {
        throw new Error(`--on-conflict must be abort, skip or force\n${USAGE}`);
      }
      return undoCommand(
        await operatorTenantDsn(positional[0], String(flags.get("--stack") ?? "dev")),
        positional[0],
        positional[1],
        { onConflict: onConflict as OnConflict, dryRun: flags.has("--dry-run"), yes: flags.has("--yes") },
        io,
      );
    }
    case "operations": {
      need(1);
      const limit = Number(flags.get("--limit") ?? 50);
      if (!Number.isInteger(limit) || limit < 1) throw new Error("--limit must be a positive integer");
      const session = flags.get("--session");
      return operationsCommand(
        await operatorAdminDsn(stateDir),
        positional[0],
        { limit, ...(typeof session === "string" ? { session } : {}) },
        io,
      );
    }
    case "quota":
      need(1);
      return quotaCommand(await operatorAdminDsn(stateDir), positional[0], io);
    default:
      throw new Error(USAGE);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: Error) => {
      process.stderr.write(`ops: ${err.message}\n`);
      process.exitCode = UNDO_EXIT.error;
    },
  );
}
