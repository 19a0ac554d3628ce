/**
 * Per-database maintenance switch of the local router, for a restore in progress
 * (docs/architecture.md#snapshots-and-restore,
 * step 5): while `<stateDir>/router/maintenance/<database>` exists, every request for the host
 * serving that database gets the 503 page. A tenant's database is its subdomain, so
 * `setRouterMaintenance(stateDir, "acme", true)` takes `acme.<domain>` offline; its preview host
 * serves `acme--preview`, a database of its own with a switch of its own. nginx tests the file on
 * each request (`if (-f ...)`), so switching needs no reload and takes effect with the next request.
 */
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { routerDatabaseProblem, routerPaths } from "./config";
import { PRIVATE_FILE, TRAVERSED_DIR, ensureDirMode } from "../fs/stateModes";

/**
 * The flag file of one database (a tenant's subdomain, or `<sub>--preview`). Throws for any other
 * name (no path tricks).
 */
export function maintenanceFlag(stateDir: string, database: string): string {
  const problem = routerDatabaseProblem(database);
  if (problem) throw new Error(`router maintenance: database "${database}" ${problem}`);
  return path.join(routerPaths(stateDir).maintenanceDir, database);
}

/**
 * Routes the host of this database (a tenant's subdomain) to the 503 page (`on`) or back to the
 * ERP. Idempotent; works whether the router runs or not (a router started later honours the flag).
 */
export async function setRouterMaintenance(stateDir: string, database: string, on: boolean): Promise<void> {
  const flag = maintenanceFlag(stateDir, database);
  if (on) {
    const dir = path.dirname(flag);
    await ensureDirMode(dir, TRAVERSED_DIR); // the router's workers stat the flags
    const tmp = `${flag}.tmp-${process.pid}`;
    await fs.writeFile(tmp, `${new Date().toISOString()}\n`, { mode: PRIVATE_FILE });
    await fs.rename(tmp, flag);
  } else {
    await fs.rm(flag, { force: true });
  }
}

/** The databases under maintenance right now, sorted. */
export async function routerMaintenance(stateDir: string): Promise<string[]> {
  const entries = await fs
    .readdir(routerPaths(stateDir).maintenanceDir)
    .catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return [] as string[];
      throw err;
    });
  return entries.filter((name) => routerDatabaseProblem(name) === undefined).sort();
}
