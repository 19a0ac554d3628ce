/**
 * Benchmark: snapshot create (issue 16: p95 ≤ 50 ms whatever the tenant's filestore holds), the
 * O(1) createSnapshot against the baseline measured in the same run and interleaved with it: the
 * same call followed by the hard-link copy of the filestore that createSnapshot made before
 * (bench/snapshot-baseline.ts). Also the other side of the trade: the restore's filestore step,
 * which now links exactly the files the restored database references (lib/filestore/assemble.ts)
 * instead of `cp -al` of a snapshot's copy (the old lib/fs/linkTree.ts).
 *
 * In a throw-away cluster (own state directory in /tmp and port; destroyed at the end): tenants
 * from the small committed fixture template with 0, 300 and 3,000 files (Odoo's layout, 1-4 KB
 * each), a full backup (so the backup set comes from the registry, as in production); then
 * `--rounds` rounds, each timing, per tenant in a rotating order, one new create and one baseline.
 *
 *   node bin/bench/snapshot-create.js [--rounds 30] [--restore-rounds 5]
 *   node bin/bench/restore.js --only-snapshots 1 [--rounds 30] [--restore-rounds 5]
 *
 * Writes <RESULTS_DIR>/snapshot-create.json (rendered by bench/report.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { takeBackup } from "../lib/backup/backups";
import { assembleFilestore } from "../lib/filestore/assemble";
import { linkTree } from "../lib/fs/linkTree";
import { ensureCluster } from "../lib/pg/ensureCluster";
import { localAdminDsn, localClusterLayout, type LocalClusterSpec } from "../lib/pg/cluster";
import { closeSnapshotConnections, createSnapshot, type CreateTimings } from "../lib/snapshot/snapshot";
import { createTenant, type TenantSpec } from "../lib/tenant/provision";
import { ensureTemplate } from "../lib/tenant/template";
import { FIXTURE_TEMPLATE_DUMP } from "../testkit/odoo-shaped-fixture";
import {
  findFreePort,
  intFlag,
  loadNow,
  machineInfo,
  makeStateDir,
  now,
  parseFlags,
  removeThrowawayCluster,
  stats,
  writeResult,
  type MachineInfo,
  type Stats,
  benchTenantSpec,
} from "./common";
import { linkCopyTree } from "./snapshot-baseline";

export const SNAPSHOT_CREATE_GOAL_P95_MS = 50;
const FILE_COUNTS = [0, 300, 3000];
const TEMPLATE_DB = "bench_snap_tmpl";

export interface SnapshotCreateSeries {
  tenant: string;
  files: number;
  filestoreBytes: number;
  /** createSnapshot as it is now. */
  created: Stats;
  /** The same call plus the old hard-link copy of the filestore. */
  baseline: Stats;
  /** Medians of createSnapshot's own steps (new). */
  steps: Partial<Record<keyof CreateTimings, number>>;
  /** Median of the copy alone (baseline). */
  copyMedianMs: number;
  loadStart: number[];
  loadEnd: number[];
}

export interface RestoreFilestoreSeries {
  files: number;
  /** Links exactly the referenced files (every file here is referenced). */
  assemble: Stats;
  /** `cp -al` of the whole directory, as restores did. */
  copyTree: Stats;
  loadStart: number[];
  loadEnd: number[];
}

export interface SnapshotCreateResult {
  machine: MachineInfo;
  settings: { rounds: number; restoreRounds: number };
  goals: { p95Ms: number };
  series: SnapshotCreateSeries[];
  restoreFilestore: RestoreFilestoreSeries[];
  totalMs: number;
}

const log = (msg: string): void =>
  console.log(`[snapshot-create] ${new Date().toISOString().slice(11, 19)} ${msg}`);

/** `n` content-addressed files of 1-4 KB in Odoo's layout; their relative names. */
function fillFilestore(dir: string, n: number, seed: string): { names: string[]; bytes: number } {
  const names: string[] = [];
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const body = Buffer.concat([Buffer.from(`${seed}:${i}\n`), randomBytes(1024 + ((i * 331) % 3072))]);
    const sha = createHash("sha1").update(body).digest("hex");
    fs.mkdirSync(path.join(dir, sha.slice(0, 2)), { recursive: true });
    fs.writeFileSync(path.join(dir, sha.slice(0, 2), sha), body);
    names.push(`${sha.slice(0, 2)}/${sha}`);
    bytes += body.length;
  }
  return { names, bytes };
}

const median = (xs: number[]): number => stats(xs).median;
const SETTLE_MS = 100;
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function snapshotCreateBench(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, ["rounds", "restore-rounds", "only-snapshots"]);
  const rounds = intFlag(flags, "rounds", 30);
  const restoreRounds = intFlag(flags, "restore-rounds", 5);
  const runStart = now();
  const machine = machineInfo();
  log(`load ${machine.load.join(" ")} on ${machine.nproc} cores; ${rounds} rounds`);
  const stateDir = await makeStateDir("loomworks-bench-snapshot-");
  const spec: LocalClusterSpec = {
    stateDir,
    port: await findFreePort(26632),
    archiveTimeoutSeconds: 60,
    superuserPassword: randomBytes(24).toString("base64url"),
    stanza: "benchsnap",
    retentionFull: 2,
  };
  const layout = localClusterLayout(spec);
  const filestoreRoot = layout.paths.filestoreDir;
  const snapshotRoot = path.join(stateDir, "snapshots");
  const scratch = path.join(stateDir, "bench-scratch");
  try {
    await ensureCluster(spec, (m) => log(`cluster: ${m}`));
    const adminDsn = localAdminDsn(spec);
    await ensureTemplate(adminDsn, {
      name: "snap",
      database: TEMPLATE_DB,
      stateDir,
      fromDump: FIXTURE_TEMPLATE_DUMP,
    });
    const tenants: { spec: TenantSpec; files: number; names: string[]; bytes: number }[] = [];
    for (const files of FILE_COUNTS) {
      const name = `bench_snap_f${files}`;
      const s = benchTenantSpec(name, { template: TEMPLATE_DB, filestoreRoot });
      await createTenant(adminDsn, s);
      const filled = fillFilestore(path.join(filestoreRoot, name), files, name);
      tenants.push({ spec: s, files, ...filled });
      log(`${name}: ${files} files, ${(filled.bytes / 1e6).toFixed(1)} MB`);
    }
    await takeBackup(spec, adminDsn, "full", (m) => log(m));

    const samples = tenants.map(() => ({
      created: [] as number[],
      baseline: [] as number[],
      copy: [] as number[],
      steps: [] as CreateTimings[],
      loadStart: loadNow(),
    }));
    const snap = (t: (typeof tenants)[number], name: string) =>
      createSnapshot(adminDsn, {
        subdomain: t.spec.subdomain,
        database: t.spec.database,
        name,
        kind: "auto",
        filestoreRoot,
        snapshotRoot,
        pgbackrest: layout.pgbackrest,
      });
    // A first call per tenant opens the registry pool: not a sample.
    for (const t of tenants) await snap(t, "warm-up");
    for (let r = 0; r < rounds; r++) {
      for (let k = 0; k < tenants.length; k++) {
        const i = (k + r) % tenants.length;
        const t = tenants[i];
        const s = samples[i];
        const newFirst = r % 2 === 0;
        for (const which of newFirst ? ["new", "baseline"] : ["baseline", "new"]) {
          const t0 = now();
          const created = await snap(t, `${which}-${r}`);
          if (which === "new") {
            s.created.push(now() - t0);
            if (created.timings) s.steps.push(created.timings);
          } else {
            const c0 = now();
            linkCopyTree(path.join(filestoreRoot, t.spec.database), path.join(scratch, created.id));
            const end = now();
            s.baseline.push(end - t0);
            s.copy.push(end - c0);
            fs.rmSync(path.join(scratch, created.id), { recursive: true, force: true });
          }
          // The copy's and its removal's writes settle before the next timed call, whichever it is.
          await pause(SETTLE_MS);
        }
      }
      if ((r + 1) % 10 === 0) log(`round ${r + 1}/${rounds}, load ${loadNow().join(" ")}`);
    }
    const series: SnapshotCreateSeries[] = tenants.map((t, i) => {
      const s = samples[i];
      const steps: SnapshotCreateSeries["steps"] = {};
      for (const k of ["register", "restorePoint", "record", "total"] as const) {
        steps[k] = median(s.steps.map((x) => x[k]));
      }
      const out = {
        tenant: t.spec.subdomain,
        files: t.files,
        filestoreBytes: t.bytes,
        created: stats(s.created),
        baseline: stats(s.baseline),
        steps,
        copyMedianMs: median(s.copy),
        loadStart: s.loadStart,
        loadEnd: loadNow(),
      };
      log(
        `${t.files} files: new p50 ${out.created.median.toFixed(1)} / p95 ${out.created.p95.toFixed(1)} ms; ` +
          `baseline p50 ${out.baseline.median.toFixed(1)} / p95 ${out.baseline.p95.toFixed(1)} ms`,
      );
      return out;
    });

    // The restore's filestore step, old and new, on the same files.
    const restoreFilestore: RestoreFilestoreSeries[] = [];
    for (const t of tenants.filter((x) => x.files > 0)) {
      const live = path.join(filestoreRoot, t.spec.database);
      const assemble: number[] = [];
      const copyTree: number[] = [];
      const loadStart = loadNow();
      for (let r = 0; r < restoreRounds; r++) {
        for (const which of r % 2 === 0 ? ["assemble", "copy"] : ["copy", "assemble"]) {
          const dst = path.join(scratch, `restore-${which}-${r}`);
          const t0 = now();
          if (which === "assemble") {
            assembleFilestore(dst, t.names, [live]);
            assemble.push(now() - t0);
          } else {
            fs.mkdirSync(dst, { recursive: true });
            await linkTree(live, dst, false);
            copyTree.push(now() - t0);
          }
          fs.rmSync(dst, { recursive: true, force: true });
        }
      }
      restoreFilestore.push({
        files: t.files,
        assemble: stats(assemble),
        copyTree: stats(copyTree),
        loadStart,
        loadEnd: loadNow(),
      });
    }
    await closeSnapshotConnections();
    const result: SnapshotCreateResult = {
      machine,
      settings: { rounds, restoreRounds },
      goals: { p95Ms: SNAPSHOT_CREATE_GOAL_P95_MS },
      series,
      restoreFilestore,
      totalMs: now() - runStart,
    };
    log(`wrote ${await writeResult("snapshot-create", result)}`);
  } finally {
    await closeSnapshotConnections();
    await removeThrowawayCluster(spec, stateDir, log);
  }
}

if (require.main === module) {
  snapshotCreateBench(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
