/**
 * `npm run compose -- --stack <s> [--out DIR] [--file PATH]`: renders the docker target of stack
 * `<s>` (`Pulumi.<s>.yaml`, or `--file`) as a Compose project into DIR (default `compose/<s>/`):
 * docker-compose.yml, docker-compose.dev.yml, .env.example and the files they mount
 * (components/docker/compose.ts). Run from the checkout's root. A bad stack configuration fails with
 * the same messages as `pulumi preview`; nothing is written then.
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { renderCompose } from "../components/docker/compose";
import { SECRET_PLACEHOLDER } from "../components/docker/composeLayout";
import { ConfigError } from "../infra/config/load";
import { parseStackFile } from "../infra/config/stackFile";

const USAGE = "usage: npm run compose -- --stack <name> [--out DIR] [--file Pulumi.<name>.yaml]";

function parseArgs(argv: string[]): { stack: string; out: string; file: string } {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === "--") continue;
    if (!["--stack", "--out", "--file"].includes(flag)) throw new Error(`unknown argument ${flag}\n${USAGE}`);
    const value = argv[++i];
    if (!value) throw new Error(`${flag} needs a value\n${USAGE}`);
    values.set(flag, value);
  }
  const stack = values.get("--stack");
  if (!stack) throw new Error(`--stack is required\n${USAGE}`);
  return {
    stack,
    out: path.resolve(values.get("--out") ?? path.join("compose", stack)),
    file: path.resolve(values.get("--file") ?? `Pulumi.${stack}.yaml`),
  };
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  const config = parseStackFile(readFileSync(args.file, "utf8"), path.basename(args.file));
  if (config.platform.target !== "docker")
    throw new Error(
      `${path.basename(args.file)}: platform.target is ${config.platform.target}; compose renders the docker target only`,
    );
  const checkoutDir = path.relative(args.out, process.cwd()).split(path.sep).join("/") || ".";
  const project = /^name:\s*(\S+)/m.exec(readFileSync("Pulumi.yaml", "utf8"))?.[1];
  if (!project) throw new Error("Pulumi.yaml: no project name (run from the checkout's root)");
  const { files } = renderCompose({ stack: args.stack, project, config, checkoutDir });
  for (const f of files) {
    const target = path.join(args.out, f.path);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, f.content, { mode: f.mode ?? 0o644 });
    chmodSync(target, f.mode ?? 0o644);
  }
  console.log(`${files.length} files in ${path.relative(process.cwd(), args.out) || "."}:`);
  console.log(
    `  cp .env.example .env  (then set every value: no service starts while one of its secrets is ${SECRET_PLACEHOLDER}), docker compose up -d`,
  );
}

try {
  main();
} catch (err) {
  console.error(
    err instanceof ConfigError ? `invalid stack configuration:\n${err.message}` : (err as Error).message,
  );
  process.exit(1);
}
