import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LocalWorkspace, PulumiCommand, type Stack } from "@pulumi/pulumi/automation";
import { clearStaleLocks } from "../lib/pulumi/staleLocks";
import { FIXTURE_TEMPLATE_DUMP } from "./odoo-shaped-fixture";
import { freePort } from "./ports";
import { repoRoot } from "./repo";

export { repoRoot };
export const fixtureDump = FIXTURE_TEMPLATE_DUMP;

export interface TenantEntry {
  tier?: string;
  adminEmail?: string;
  state?: string;
  limits?: Record<string, number>;
  forceDestroy?: boolean;
  [key: string]: unknown;
}

/**
 * A throw-away local stack driven through the Automation API: its own project directory (linking the
 * compiled program and node_modules of this checkout), file:// backend, state directory and port.
 */
export class LocalTestStack {
  private constructor(
    readonly dir: string,
    readonly stateDir: string,
    readonly postgresPort: number,
    /** The stack's router port: a free one, never the default 8080 a dev stack may hold. */
    readonly routerPort: number,
    readonly env: Record<string, string>,
    readonly stack: Stack,
  ) {}

  /**
   * `opts.path`: directories put before the Pulumi CLI's on the stack's PATH (e.g. an ambient provider
   * plugin); `opts.env`: further environment variables of every `pulumi` run.
   */
  static async create(
    name: string,
    opts: { path?: string[]; env?: Record<string, string> } = {},
  ): Promise<LocalTestStack> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `loomworks-e2e-${name}-`));
    fs.chmodSync(dir, 0o755);
    const projectDir = path.join(dir, "project");
    fs.mkdirSync(projectDir);
    fs.copyFileSync(path.join(repoRoot, "Pulumi.yaml"), path.join(projectDir, "Pulumi.yaml"));
    fs.symlinkSync(path.join(repoRoot, "bin"), path.join(projectDir, "bin"));
    fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(projectDir, "node_modules"));
    const backend = path.join(dir, "pulumi-state");
    fs.mkdirSync(backend);
    const env = {
      PULUMI_BACKEND_URL: `file://${backend}`,
      PULUMI_CONFIG_PASSPHRASE: "e2e-test-passphrase",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DIY_BACKEND_NO_LEGACY_WARNING: "true",
      PATH: [...(opts.path ?? []), path.join(repoRoot, ".tools", "bin"), process.env.PATH].join(":"),
      ...opts.env,
    };
    const pulumiCommand = await PulumiCommand.get({ root: path.join(repoRoot, ".tools") });
    const stack = await LocalWorkspace.createOrSelectStack(
      { stackName: name, workDir: projectDir },
      { envVars: env, pulumiCommand },
    );
    const port = await freePort();
    const routerPort = await freePort();
    return new LocalTestStack(projectDir, path.join(dir, "state"), port, routerPort, env, stack);
  }

  /** Writes the stack's `loomworks:platform` and `loomworks:tenants` config. */
  async configure(
    tenants: Record<string, TenantEntry>,
    platform: Record<string, unknown> = {},
  ): Promise<void> {
    await this.stack.setAllConfig({
      "loomworks:platform": {
        value: JSON.stringify({
          target: "local",
          stateDir: this.stateDir,
          postgresPort: this.postgresPort,
          routerPort: this.routerPort,
          archiveTimeoutSeconds: 30,
          templates: { default: { fromDump: fixtureDump } },
          ...platform,
        }),
      },
      "loomworks:tenants": { value: JSON.stringify(tenants) },
    });
  }

  /** `pulumi up` through the Automation API, after clearing locks a killed run left (as our scripts do). */
  async up(log = false) {
    clearStaleLocks(this.env.PULUMI_BACKEND_URL);
    return this.stack.up({ onOutput: log ? (s) => process.stdout.write(s) : undefined, color: "never" });
  }

  /**
   * Runs the `pulumi` CLI on this stack in a process group of its own (so a crash point that kills its
   * group takes down exactly the engine, the language host, the program and the providers).
   */
  cli(
    args: string[],
    extraEnv: Record<string, string> = {},
    onStart?: (pid: number) => void,
  ): Promise<{ code: number | null; signal: string | null; output: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        "pulumi",
        [...args, "--stack", this.stack.name, "--non-interactive", "--color", "never"],
        {
          cwd: this.dir,
          env: { ...process.env, ...this.env, ...extraEnv },
          detached: true,
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      child.on("error", reject);
      if (child.pid !== undefined) onStart?.(child.pid);
      child.on("close", (code, signal) => resolve({ code, signal, output }));
    });
  }

  async outputs(): Promise<Record<string, unknown>> {
    const outs = await this.stack.outputs();
    return Object.fromEntries(Object.entries(outs).map(([k, v]) => [k, v.value]));
  }

  /** Removes the stack's resources (if any), the stack and its directory. */
  async dispose(): Promise<void> {
    try {
      clearStaleLocks(this.env.PULUMI_BACKEND_URL);
      await this.stack.destroy({ color: "never" });
      await this.stack.workspace.removeStack(this.stack.name);
    } finally {
      fs.rmSync(path.dirname(this.dir), { recursive: true, force: true });
    }
  }
}
