import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { repoRoot } from "../../testkit/repo";

export { repoRoot };

/**
 * Compiles the program into bin/ (tsc), as `scripts/setup.sh` does: the integration and e2e suites
 * run the compiled code the way production does (Pulumi program, providers, job CLI).
 */
export function compileProgram(): void {
  execFileSync(
    process.execPath,
    [path.join(repoRoot, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"],
    {
      cwd: repoRoot,
      stdio: "inherit",
    },
  );
}
