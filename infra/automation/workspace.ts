import * as fs from "node:fs";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { clearStaleLocks } from "../../lib/pulumi/staleLocks";

/** The checkout this compiled file belongs to (bin/infra/automation → three levels up). */
export const projectDir = path.resolve(__dirname, "..", "..", "..");

/** Only the development stack has a passphrase default; every other stack needs it from the environment. */
export const DEV_PASSPHRASE = "loomworks-dev";

export interface OpenStackOptions {
  stackName: string;
  workDir?: string;
  env?: Record<string, string>;
}

/** The backend every script uses unless PULUMI_BACKEND_URL says otherwise: file:// under .loomworks. */
export function backendUrl(workDir: string, env: NodeJS.ProcessEnv = process.env): string {
  // An unset CI secret expands to "": taken as set, it would send pulumi to the Pulumi Cloud login.
  if (env.PULUMI_BACKEND_URL === "") throw new Error("PULUMI_BACKEND_URL is set but empty");
  return env.PULUMI_BACKEND_URL ?? `file://${path.join(workDir, ".loomworks", "pulumi-state")}`;
}

/**
 * Selects (or creates) a stack of the project with the project's own Pulumi CLI, after removing locks
 * left by a killed `pulumi` on this machine, so an interrupted update can be finished by the next one.
 */
export async function openStack(opts: OpenStackOptions): Promise<Stack> {
  const workDir = opts.workDir ?? projectDir;
  const backend = backendUrl(workDir, { ...process.env, ...opts.env });
  if (backend.startsWith("file://")) {
    // The stack state (configuration, outputs, encrypted secrets) is the operator's alone.
    const dir = backend.slice("file://".length).split("?")[0];
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  }
  const passphrase =
    opts.env?.PULUMI_CONFIG_PASSPHRASE ??
    process.env.PULUMI_CONFIG_PASSPHRASE ??
    (opts.stackName === "dev" ? DEV_PASSPHRASE : undefined);
  if (passphrase === "" && opts.stackName !== "dev") {
    throw new Error(`stack "${opts.stackName}": PULUMI_CONFIG_PASSPHRASE is set but empty`);
  }
  if (passphrase === undefined && !process.env.PULUMI_CONFIG_PASSPHRASE_FILE) {
    throw new Error(`stack "${opts.stackName}": set PULUMI_CONFIG_PASSPHRASE (only "dev" has a default)`);
  }
  for (const lock of clearStaleLocks(backend)) console.error(`removed the stale lock ${lock}`);

  const toolsRoot = path.join(projectDir, ".tools");
  const pulumiCommand = fs.existsSync(path.join(toolsRoot, "bin", "pulumi"))
    ? await PulumiCommand.get({ root: toolsRoot })
    : await PulumiCommand.get();
  const envVars: Record<string, string> = {
    PULUMI_BACKEND_URL: backend,
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: "true",
    PATH: `${path.join(toolsRoot, "bin")}:${process.env.PATH ?? ""}`,
    ...(passphrase !== undefined ? { PULUMI_CONFIG_PASSPHRASE: passphrase } : {}),
    ...opts.env,
  };
  return LocalWorkspace.createOrSelectStack(
    { stackName: opts.stackName, workDir },
    { envVars, pulumiCommand },
  );
}
