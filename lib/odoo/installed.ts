/**
 * The Odoo 18 installed on this machine, as a user's machine has it (the official package layout: an
 * `odoo` command whose Python imports the `odoo` package, every addon under `odoo/addons`). The
 * local target runs it; the project never installs it. Found from `LOOMWORKS_ODOO_BIN` (a path to
 * the command) or the `odoo` command on PATH.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";

export const ODOO_BIN_ENV = "LOOMWORKS_ODOO_BIN";

export interface InstalledOdoo {
  /** The `odoo` command (absolute). */
  command: string;
  /** The Python its first line names. */
  python: string;
  /** `<odoo package>/addons`: Odoo's own addons. */
  addonsDir: string;
  /** e.g. "18.0". */
  version: string;
}

function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? "").split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** The interpreter of a script's `#!` line (`#!/usr/bin/env python3` resolved on PATH). */
function interpreterOf(command: string, env: NodeJS.ProcessEnv): string | undefined {
  const first = readFileSync(command, "utf8").split("\n", 1)[0];
  const m = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
  if (!m) return undefined;
  if (path.basename(m[1]) === "env" && m[2]) return onPath(m[2], env);
  return m[1];
}

/** Imports Odoo (and so its dependencies): ~1 s. */
const IMPORT_PROBE =
  "import os, odoo.release as r; import odoo; print(os.path.join(os.path.dirname(odoo.__file__), 'addons')); print(r.major_version)";
/** Finds the package and reads its release.py without importing Odoo: ~40 ms. */
const LOCATE_PROBE =
  "import importlib.util, os, runpy; s = importlib.util.find_spec('odoo'); " +
  "d = list(s.submodule_search_locations)[0]; print(os.path.join(d, 'addons')); " +
  "print(runpy.run_path(os.path.join(d, 'release.py'))['major_version'])";

/**
 * The installed Odoo, or undefined (with the reason) when there is none usable. `probe` "import"
 * proves its Python can import it; "locate" (what every `pulumi up` of the local target runs)
 * only finds the package and its version, and an Odoo missing a dependency fails when it starts.
 */
export function findInstalledOdoo(
  env: NodeJS.ProcessEnv = process.env,
  probe: "import" | "locate" = "import",
): { odoo: InstalledOdoo } | { missing: string } {
  const command = env[ODOO_BIN_ENV] || onPath("odoo", env);
  if (!command) return { missing: `no odoo command on PATH and ${ODOO_BIN_ENV} is not set` };
  if (!existsSync(command)) return { missing: `${ODOO_BIN_ENV}=${command} does not exist` };
  const python = interpreterOf(command, env);
  if (!python) return { missing: `${command} is not a Python script` };
  try {
    const script = probe === "import" ? IMPORT_PROBE : LOCATE_PROBE;
    const out = execFileSync(python, ["-c", script], {
      encoding: "utf8",
      timeout: 60_000,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const [addonsDir, version] = out.trim().split("\n");
    if (!existsSync(path.join(addonsDir, "base", "__manifest__.py")))
      return { missing: `${command}: no base addon in ${addonsDir}` };
    if (!/^\d+\.\d+$/.test(version ?? ""))
      return { missing: `${command}: no Odoo version in its release.py` };
    return { odoo: { command: path.resolve(command), python, addonsDir, version } };
  } catch (err) {
    return { missing: `${command}: its Python (${python}) cannot import odoo: ${(err as Error).message}` };
  }
}

/** The project's ERP addons (docker/addons), from the source tree or the compiled program (bin/). */
export function projectAddonsDir(): string {
  const candidates = [
    path.resolve(__dirname, "..", "..", "docker", "addons"),
    path.resolve(__dirname, "..", "..", "..", "docker", "addons"),
  ];
  const found = candidates.find((dir) => existsSync(path.join(dir, "loomworks_tenants", "__manifest__.py")));
  if (!found) throw new Error(`the project's ERP addons are not in ${candidates.join(" or ")}`);
  return found;
}

/** The local target's addons_path: the project's addons, then the installed Odoo's when there is one. */
export function localAddonsPath(projectAddonsDir: string, odoo?: InstalledOdoo): string {
  return [path.resolve(projectAddonsDir), ...(odoo ? [odoo.addonsDir] : [])].join(",");
}
