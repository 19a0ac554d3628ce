import type { TestProject } from "vitest/node";
import { findInstalledOdoo } from "../../lib/odoo/installed";
import { compileProgram } from "../helpers/compile";

/**
 * The real-ERP suite runs only where an Odoo 18 is installed (the `odoo` command on PATH or
 * LOOMWORKS_ODOO_BIN): otherwise it says so in one line and every test is skipped.
 */
export default function setup(project: TestProject): void {
  const found = findInstalledOdoo();
  if ("missing" in found) {
    console.log(`[odoo] real-ERP tests skipped: ${found.missing}`);
    project.provide("odoo", null);
    return;
  }
  if (!found.odoo.version.startsWith("18.")) {
    console.log(`[odoo] real-ERP tests skipped: ${found.odoo.command} is Odoo ${found.odoo.version}, not 18`);
    project.provide("odoo", null);
    return;
  }
  compileProgram();
  project.provide("odoo", found.odoo);
}
