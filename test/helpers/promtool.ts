/**
 * promtool (Debian's prometheus package, installed by scripts/setup.sh): the alert rules' unit tests
 * and the check of the jobs' pushed metrics. Missing, it fails the test with the install hint.
 */
import { spawnSync } from "node:child_process";

export const PROMTOOL = process.env.PROMTOOL ?? "promtool";

/** `promtool <args>` (stdin `input`): its exit status and its stdout and stderr together. */
export function promtool(
  args: string[],
  opts: { cwd?: string; input?: string } = {},
): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL, args, { ...opts, encoding: "utf8", timeout: 120_000 });
  if (r.error) {
    const hint =
      (r.error as NodeJS.ErrnoException).code === "ENOENT"
        ? " (run scripts/setup.sh: Debian package prometheus)"
        : "";
    throw new Error(`cannot run ${PROMTOOL}${hint}: ${r.error.message}`);
  }
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** `promtool check metrics` on a text exposition body (a linter: names, units, HELP). */
export function checkMetrics(body: string): { status: number | null; output: string } {
  return promtool(["check", "metrics"], { input: body });
}
