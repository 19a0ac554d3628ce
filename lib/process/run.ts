import { spawn } from "node:child_process";

export interface RunOptions {
  /** Run as this system user (via runuser) when the current process is root. */
  asUser?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  code: number;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: RunResult,
  ) {
    const detail = (result.stderr || result.stdout).trim().split("\n").slice(-15).join("\n");
    super(`command failed (exit ${result.code}): ${command}\n${detail}`);
    this.name = "CommandError";
  }
}

const isRoot = (): boolean => typeof process.getuid === "function" && process.getuid() === 0;

/** Wraps a command so it runs as `user` when we are root; unchanged otherwise. */
export function asUserCommand(user: string | undefined, file: string, args: string[]): [string, string[]] {
  if (!user || !isRoot()) return [file, args];
  return ["runuser", ["-u", user, "--", file, ...args]];
}

/** Runs a command to completion; never throws, the caller inspects `code`. */
export function runCommand(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const [cmd, argv] = asUserCommand(opts.asUser, file, args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    if (opts.timeoutMs) {
      timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs);
    }
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ stdout, stderr, code: code ?? (signal ? 128 : 1) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs a command and throws a CommandError (with the tail of its output) unless it exits 0. */
export async function mustRun(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const result = await runCommand(file, args, opts);
  if (result.code !== 0) throw new CommandError([file, ...args].join(" "), result);
  return result;
}
