/**
 * The state directory is nobody else's to read (issue 12, docs/operations/security.md): after the
 * integration cluster's set-up, a backup, the scheduler's files, a template build, the router (run
 * as root: its workers are an unprivileged user) and a maintenance flag, a walk of the real state
 * directory finds nothing another user can read or write. Services' own trees (PostgreSQL's data
 * directory, pgBackRest's repository) keep the modes their owner gives them, behind directories
 * others cannot enter.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { takeBackup } from "../../lib/backup/backups";
import { removeScheduler } from "../../lib/backup/daemon";
import { PRIVATE_DIR, PRIVATE_FILE, TRAVERSED_DIR } from "../../lib/fs/stateModes";
import { localClusterSpec } from "../../lib/pg/cluster";
import { clusterPaths } from "../../lib/pg/paths";
import { routerPaths } from "../../lib/router/config";
import { setRouterMaintenance } from "../../lib/router/maintenance";
import { applyRouter, stopRouter } from "../../lib/router/nginx";
import { dropTemplate, ensureTemplate } from "../../lib/tenant/template";
import { freePort } from "../../testkit/ports";
import { writeClusterSchedulerFiles } from "../helpers/jobs";

const pg = inject("pg");
const paths = clusterPaths(pg.stateDir);
const router = routerPaths(pg.stateDir);
const TEMPLATE_DB = `loomworks_template_modes_${randomBytes(3).toString("hex")}`;
const TEMPLATE_DUMP = path.resolve(__dirname, "..", "fixtures", "odoo-shaped", "template.sql");
/** Served to anyone who asks the router: the only files others may read. */
const PUBLIC_PAGES = new Set(["404.html", "503.html"].map((p) => path.join(router.htmlDir, p)));

interface Exposure {
  path: string;
  mode: string;
  owner: number;
  who: "group" | "others";
}

/**
 * Every entry under `root` that group or others can read or write: its own mode grants it and
 * every directory on the way down (`root` included) lets them through (x). Symbolic links are not
 * followed (their own mode means nothing).
 */
async function exposures(root: string): Promise<Exposure[]> {
  const out: Exposure[] = [];
  const walk = async (p: string, reach: { group: boolean; others: boolean }): Promise<void> => {
    const st = await fs.lstat(p);
    if (st.isSymbolicLink()) return;
    const mode = st.mode & 0o777;
    for (const [who, rw, x] of [
      ["group", 0o060, 0o010],
      ["others", 0o006, 0o001],
    ] as const) {
      if (reach[who] && mode & rw && !PUBLIC_PAGES.has(p))
        out.push({ path: p, mode: mode.toString(8), owner: st.uid, who });
      if (st.isDirectory()) reach = { ...reach, [who]: reach[who] && (mode & x) !== 0 };
    }
    if (!st.isDirectory() || (!reach.group && !reach.others)) return;
    for (const name of await fs.readdir(p)) await walk(path.join(p, name), reach);
  };
  await walk(root, { group: true, others: true });
  return out;
}

async function modeOf(p: string): Promise<number> {
  return (await fs.stat(p)).mode & 0o777;
}

beforeAll(async () => {
  await takeBackup(localClusterSpec(pg), pg.adminDsn, "incr");
  await writeClusterSchedulerFiles(pg);
  await ensureTemplate(pg.adminDsn, {
    name: "modes",
    database: TEMPLATE_DB,
    fromDump: TEMPLATE_DUMP,
    stateDir: pg.stateDir,
  });
  await applyRouter({
    stateDir: pg.stateDir,
    domain: "localhost",
    port: await freePort(),
    odooHttp: "127.0.0.1:9",
    odooWebsocket: "127.0.0.1:9",
    tenants: [{ subdomain: "acme", state: "active" }],
    workerProcesses: 1,
  });
  await setRouterMaintenance(pg.stateDir, "acme", true);
}, 300_000);

afterAll(async () => {
  await stopRouter(pg.stateDir).catch(() => undefined);
  await fs.rm(router.dir, { recursive: true, force: true });
  await removeScheduler(pg.stateDir).catch(() => undefined);
  await dropTemplate(pg.adminDsn, TEMPLATE_DB).catch(() => undefined);
  await fs.rm(path.join(pg.stateDir, "templates"), { recursive: true, force: true });
}, 120_000);

describe("the state directory after set-up, a backup, the scheduler, a template and the router", () => {
  it("holds what these wrote (the walk below is not of an empty tree)", async () => {
    for (const p of [
      paths.pgbackrestConf,
      path.join(paths.repoPath, "backup"),
      path.join(pg.stateDir, "scheduler", "cluster.json"),
      path.join(pg.stateDir, "scheduler", "schedule.json"),
      path.join(pg.stateDir, "templates", "modes.build.log"),
      router.config,
      router.errorLog,
      router.accessLog,
      path.join(router.maintenanceDir, "acme"),
    ])
      await expect(fs.stat(p), p).resolves.toBeDefined();
  });

  it("has nothing another user can read or write (the error pages aside)", async () => {
    expect(await exposures(pg.stateDir)).toEqual([]);
  });

  it("gives the platform's own files 0600 and directories 0700; only the service paths are 0711", async () => {
    expect((await modeOf(pg.stateDir)).toString(8)).toBe(TRAVERSED_DIR.toString(8));
    for (const f of [
      paths.pgbackrestConf,
      path.join(pg.stateDir, "scheduler", "cluster.json"),
      path.join(pg.stateDir, "scheduler", "schedule.json"),
      path.join(pg.stateDir, "templates", "modes.build.log"),
      router.config,
      router.errorLog,
      router.accessLog,
      router.startupLog,
      path.join(router.maintenanceDir, "acme"),
    ])
      expect((await modeOf(f)).toString(8), f).toBe(PRIVATE_FILE.toString(8));
    for (const d of [
      paths.postgresDir,
      paths.logDir,
      paths.pgbackrestDir,
      paths.repoPath,
      paths.filestoreDir,
      path.join(pg.stateDir, "templates"),
      router.logDir,
      router.runDir,
    ])
      expect((await modeOf(d)).toString(8), d).toBe(PRIVATE_DIR.toString(8));
    for (const d of [router.dir, router.htmlDir, router.maintenanceDir, path.join(pg.stateDir, "scheduler")])
      expect((await modeOf(d)).toString(8), d).toBe(TRAVERSED_DIR.toString(8));
  });
});
