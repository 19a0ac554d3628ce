/**
 * The system tools the suites run. A missing one fails the tests that need it, naming the Debian
 * package scripts/setup.sh installs: the suites never skip silently for lack of a tool.
 */
import { spawnSync } from "node:child_process";

interface Tool {
  /** A command that exits 0 when the tool is there. */
  probe: string[];
  /** The Debian package that provides it. */
  aptPackage: string;
}

export const TOOLS = {
  nginx: { probe: ["nginx", "-v"], aptPackage: "nginx-light" },
  shellcheck: { probe: ["shellcheck", "--version"], aptPackage: "shellcheck" },
  // Debian's python3-passlib (not a pyenv interpreter, which would not have it).
  passlib: { probe: ["/usr/bin/python3", "-c", "import passlib.hash"], aptPackage: "python3-passlib" },
} satisfies Record<string, Tool>;

/** Throws "<tool> not found: run ./scripts/setup.sh (apt-get install <package>)" unless the tool runs. */
export function requireTool(name: keyof typeof TOOLS): void {
  const tool: Tool = TOOLS[name];
  const r = spawnSync(tool.probe[0], tool.probe.slice(1), { encoding: "utf8" });
  if (r.status !== 0) {
    throw new Error(`${name} not found: run ./scripts/setup.sh (apt-get install ${tool.aptPackage})`);
  }
}
