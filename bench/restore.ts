/**
 * Benchmark: snapshots and one-tenant point-in-time restore, against restoring the whole cluster.
 *
 * One run, in a throw-away cluster (own state directory in /tmp, own port; destroyed at the end):
 *   1. builds the ~100 MB, ~400-table Odoo-shaped FIXTURE template (test/fixtures/odoo-shaped/
 *      generate.ts, not Odoo; same options as bench/tenant-create.ts) and the small committed
 *      fixture template (test/fixtures/odoo-shaped/template.sql); creates 12 tenants from the
 *      large one and one small tenant; takes a full backup (lib/backup/backups.ts takeBackup);
 *   2. snapshot create (lib/snapshot/snapshot.ts createSnapshot) N times for the small and for a
 *      100 MB tenant, interleaved, timed end to end;
 *   3. restoreTenant (lib/restore) of a 100 MB tenant to a snapshot taken after some writes, with
 *      rows changed after the snapshot (checked to be back after each restore), repeated; once per
 *      method (`--methods`: the overlapped pipeline against the sequential one it replaced,
 *      lib/restore/pipeline.ts; optionally the pgBackRest scratch restore), alternating; the small
 *      tenant too (restore time against tenant size);
 *   4. baselines to the same backup set and target: a whole-cluster `pgbackrest restore` into a
 *      scratch directory, started on a private unix socket (archive_mode off), then
 *      `pg_dump -Fc | pg_restore` of the one database into a new database of the live cluster;
 *      and the naive selective variant, the same with `--db-include`;
 *   5. grows the cluster to 36 tenants (100 MB each, or from the small template when the projected
 *      run time exceeds the budget: what matters for the comparison is the number of databases and
 *      files), takes a new full backup and repeats 2-4.
 * Every timed operation starts on a settled cluster (CHECKPOINT, WAL archiver caught up); the
 * restore methods alternate per round. Load averages are recorded next to every sample.
 *
 *   node bin/bench/restore.js [--tenants 12] [--grow-to 36] [--restores 3] [--small-restores 1]
 *                             [--snapshots 40] [--baseline-rounds 1] [--others auto|full|small]
 *                             [--budget-minutes 20] [--extra-tables 380] [--rows 115] [--payload 1000]
 *                             [--methods overlapped,sequential[,pgbackrest]] [--cluster-baselines 1|0]
 *   node bin/bench/restore.js --only-snapshots 1 [--rounds 30]   (snapshot create alone, against the
 *                             old filestore copy: bench/snapshot-create.ts)
 *
 * Writes restore.json in bench/results/ (rendered by bench/report.ts).
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { takeBackup } from "../lib/backup/backups";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { quoteIdent, withPlainClient as withClient } from "../lib/pg/client";
import { ensureCluster } from "../lib/pg/ensureCluster";
import { localAdminDsn, localClusterLayout, pgBin, type LocalClusterSpec } from "../lib/pg/cluster";
import { POSTGRES_USER, cleanChildEnv, runPgBackRest, stanzaInfo } from "../lib/pg/pgbackrest";
import { asUserCommand, runCommand } from "../lib/process/run";
import { restoreFilestorePath, restoreTenant, validateRestoreTarget, waitForArchive } from "../lib/restore";
import {
  configureScratch,
  prepareScratch,
  removeScratch,
  scratchLayout,
  startScratch,
} from "../lib/restore/scratch";
import { closeSnapshotConnections, createSnapshot, type CreatedSnapshot } from "../lib/snapshot/snapshot";
import { createTenant, type TenantSpec } from "../lib/tenant/provision";
import { dsnToPgEnv, dsnWithDatabase } from "../lib/pg/dsn";
import { loadSchema } from "../lib/restore/copy";
import { SCHEMA_JOBS } from "../lib/restore/pipeline";
import { ensureTemplate } from "../lib/tenant/template";
import { snapshotCreateBench } from "./snapshot-create";
import { FIXTURE_TEMPLATE_DUMP, fixtureSql, type FixtureOptions } from "../testkit/odoo-shaped-fixture";
import {
  REPO_ROOT,
  findFreePort,
  intFlag,
  loadNow,
  machineInfo,
  makeStateDir,
  mapLimit,
  now,
  parseFlags,
  stats,
  timed,
  writeResult,
  settle,
  removeThrowawayCluster,
  runBenchmark,
  treeFacts,
  benchTenantSpec,
} from "./common";
import type {
  BaselineKind,
  BaselineSample,
  ClusterFacts,
  LogLine,
  Method,
  Phase,
  RestoreSample,
  SnapshotSeries,
} from "./restore-result";

/** The same fixture options as bench/tenant-create.ts (≈100 MB pg_database_size on PostgreSQL 15). */
const BENCH_FIXTURE: FixtureOptions = { extraTables: 380, rowsPerTable: 115, payloadBytes: 1000 };
const TEMPLATE_DB = "bench_tmpl";
const SMALL_TEMPLATE_DB = "bench_tmpl_small";
// DNS labels: the swap switches the router's maintenance flag of the database (lib/router/maintenance.ts).
const SMALL_TENANT = "benchsmall";
const STANZA = "bench";
/** Files put into the filestores (content-addressed, as Odoo's attachments), so snapshots link something. */
const LARGE_FILESTORE_FILES = 300;
const SMALL_FILESTORE_FILES = 10;
/** Tables whose rows are changed after the restore target and compared after each restore. */
const DIGEST_TABLES = [
  "res_partner",
  "mail_message",
  "ir_config_parameter",
  "x_fixture_module_001",
  "x_fixture_module_002",
];

const GOALS = {
  snapshotP95Ms: 100,
  restoreMs: 5_000,
  unavailableMs: 100,
  /** median(36 tenants) / median(12 tenants): "grows with the tenant, not with the number of tenants". */
  scalingRatio: 1.25,
};

const log = (msg: string): void => console.log(`[restore] ${new Date().toISOString().slice(11, 19)} ${msg}`);
const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------------------------------------
// helpers

/** md5 of the rows of the digest tables, in a stable order. */
async function digest(dsn: string): Promise<string> {
  return withClient(dsn, async (c) => {
    const h = createHash("md5");
    for (const t of DIGEST_TABLES) {
      const r = await c.query<{ h: string | null }>(
        `SELECT md5(coalesce(string_agg(x::text, '|' ORDER BY x.id), '')) AS h FROM public.${quoteIdent(t)} x`,
      );
      h.update(`${t}:${r.rows[0].h ?? ""};`);
    }
    return h.digest("hex");
  });
}

/** Some writes before the restore target (between the backup and the snapshot). */
const WRITES_BEFORE = (tag: string): string[] => [
  "UPDATE res_partner SET name = name || ' (edited)' WHERE id % 7 = 0",
  "UPDATE x_fixture_module_001 SET amount = amount + 1",
  `INSERT INTO ir_config_parameter (key, value) VALUES ('bench.before', '${tag}')
   ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
];

/** The changes after the snapshot that each restore must undo. */
const CHANGES_AFTER = (tag: string): string[] => [
  `UPDATE x_fixture_module_001 SET name = 'changed after the snapshot ${tag}'`,
  "UPDATE x_fixture_module_002 SET payload = NULL WHERE id % 2 = 0",
  "DELETE FROM mail_message WHERE id % 2 = 0",
  "UPDATE res_partner SET email = 'changed@after.example' WHERE id % 5 = 0",
  `INSERT INTO ir_config_parameter (key, value) VALUES ('bench.after', '${tag}')
   ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
];

async function runSql(dsn: string, statements: string[]): Promise<void> {
  await withClient(dsn, async (c) => {
    for (const s of statements) await c.query(s);
  });
}

/** Writes `n` content-addressed files (Odoo's layout: <2 hex>/<sha1>) into a filestore. */
async function fillFilestore(dir: string, n: number, seed: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const content = Buffer.concat([Buffer.from(`${seed}-${i}\n`), randomBytes(2048 + ((i * 977) % 30_000))]);
    const sha = createHash("sha1").update(content).digest("hex");
    await fs.mkdir(path.join(dir, sha.slice(0, 2)), { recursive: true });
    await fs.writeFile(path.join(dir, sha.slice(0, 2), sha), content);
  }
}

/** Exit code of a child process (a spawn error rejects). */
const exited = (child: ReturnType<typeof spawn>): Promise<number> =>
  new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });

/** `pg_dump -Fc` (as postgres, from the scratch socket) piped into `pg_restore` (live cluster, TCP). */
async function dumpPipeRestore(dumpArgs: string[], restoreArgs: string[], password: string): Promise<void> {
  const [dcmd, dargv] = asUserCommand(POSTGRES_USER, pgBin("pg_dump"), dumpArgs);
  const dump = spawn(dcmd, dargv, { cwd: "/", env: cleanChildEnv(), stdio: ["ignore", "pipe", "pipe"] });
  const restore = spawn(pgBin("pg_restore"), restoreArgs, {
    cwd: "/",
    env: cleanChildEnv({ PGPASSWORD: password }),
    stdio: ["pipe", "ignore", "pipe"],
  });
  let stderr = "";
  dump.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  restore.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  restore.stdin.on("error", () => undefined);
  dump.stdout.pipe(restore.stdin);
  const [d, r] = await Promise.all([exited(dump), exited(restore)]);
  if (d !== 0 || r !== 0) {
    throw new Error(
      `pg_dump | pg_restore failed (pg_dump ${d}, pg_restore ${r}): ` +
        stderr.trim().split("\n").slice(-5).join(" / "),
    );
  }
}

const METHODS: Method[] = ["overlapped", "sequential", "pgbackrest"];

/** `--methods a,b`: the restoreTenant variants measured (default: the two pipelines, selective scratch). */
function methodsFlag(value: string | undefined): { methods: Method[]; note: string } {
  const methods = (value ?? "overlapped,sequential").split(",").map((m) => m.trim()) as Method[];
  for (const m of methods) {
    if (!METHODS.includes(m)) throw new Error(`--methods: ${m} is not one of ${METHODS.join(", ")}`);
  }
  return {
    methods,
    note:
      `${methods.join(", ")} (overlapped: lib/restore/pipeline.ts, the default; sequential: the pipeline ` +
      "before, each piece after the previous one, kept as the baseline with LOOMWORKS_RESTORE_PIPELINE=sequential; " +
      "both with the selective scratch restore; pgbackrest: `pgbackrest restore --db-include` scratch, overlapped)",
  };
}

// ---------------------------------------------------------------------------------------------

/** loadSchema's two ways on one tenant's definitions (its pre-data, dumped once), interleaved. */
export interface SchemaLoadAB {
  tables: number;
  jobs: number;
  parallelMs: number[];
  oneTransactionMs: number[];
  /** Rounds whose parallel load fell back to one transaction (should be none for an ERP schema). */
  fallbacks: number;
}

async function schemaLoadAB(
  adminDsn: string,
  database: string,
  stateDir: string,
  rounds: number,
): Promise<SchemaLoadAB> {
  const dir = path.join(stateDir, "schema-ab");
  await fs.rm(dir, { recursive: true, force: true });
  const env = cleanChildEnv(dsnToPgEnv(dsnWithDatabase(adminDsn, database)));
  const dumped = await runCommand(pgBin("pg_dump"), ["-Fd", "--section=pre-data", "-f", dir], { env });
  if (dumped.code !== 0) throw new Error(`pg_dump of ${database}'s definitions: ${dumped.stderr}`);
  const target = "bench_schema_ab";
  const fresh = (): Promise<void> =>
    withClient(adminDsn, async (c) => {
      await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(target)} WITH (FORCE)`);
      await c.query(`CREATE DATABASE ${quoteIdent(target)} TEMPLATE template0 STRATEGY WAL_LOG`);
    });
  const out: SchemaLoadAB = {
    tables: 0,
    jobs: SCHEMA_JOBS,
    parallelMs: [],
    oneTransactionMs: [],
    fallbacks: 0,
  };
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? [SCHEMA_JOBS, 1] : [1, SCHEMA_JOBS];
      for (const jobs of order) {
        await fresh();
        await withClient(adminDsn, (c) => settle(c));
        const t = await timed(() => loadSchema(adminDsn, target, dir, () => false, { jobs, reset: fresh }));
        if (jobs === 1) out.oneTransactionMs.push(t.ms);
        else {
          out.parallelMs.push(t.ms);
          if (!t.value.parallel) out.fallbacks++;
        }
      }
    }
    out.tables = await withClient(dsnWithDatabase(adminDsn, target), async (c) =>
      Number(
        (await c.query<{ n: string }>("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'"))
          .rows[0].n,
      ),
    );
  } finally {
    await withClient(adminDsn, (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(target)} WITH (FORCE)`));
    await fs.rm(dir, { recursive: true, force: true });
  }
  return out;
}

async function main(): Promise<void> {
  // The snapshot-create part alone (issue 16): bench/snapshot-create.ts.
  if (process.argv.includes("--only-snapshots")) return snapshotCreateBench(process.argv.slice(2));
  const flags = parseFlags(process.argv.slice(2), [
    "tenants",
    "grow-to",
    "restores",
    "small-restores",
    "snapshots",
    "baseline-rounds",
    "others",
    "budget-minutes",
    "extra-tables",
    "rows",
    "payload",
    "create-concurrency",
    "methods",
    "cluster-baselines",
  ]);
  const nTenants = intFlag(flags, "tenants", 12);
  const growTo = intFlag(flags, "grow-to", 36);
  const restores = intFlag(flags, "restores", 3);
  const smallRestores = intFlag(flags, "small-restores", 1);
  const nSnapshots = intFlag(flags, "snapshots", 40);
  const baselineRounds = intFlag(flags, "baseline-rounds", 1);
  /** 0: no whole-cluster / --db-include baselines (they take ~1 min each at 12 tenants). */
  const clusterBaselines = intFlag(flags, "cluster-baselines", 1) > 0;
  const budgetMs = intFlag(flags, "budget-minutes", 20) * 60_000;
  const schemaRounds = intFlag(flags, "schema-rounds", 5);
  const createConcurrency = Math.max(1, intFlag(flags, "create-concurrency", 2));
  const othersFlag = flags.others ?? "auto";
  if (!["auto", "full", "small"].includes(othersFlag))
    throw new Error("--others must be auto, full or small");
  const fixture: FixtureOptions = {
    extraTables: intFlag(flags, "extra-tables", BENCH_FIXTURE.extraTables),
    rowsPerTable: intFlag(flags, "rows", BENCH_FIXTURE.rowsPerTable),
    payloadBytes: intFlag(flags, "payload", BENCH_FIXTURE.payloadBytes),
  };
  if (nTenants < 2) throw new Error("--tenants must be at least 2 (one restore target per phase)");

  const runStart = now();
  const machine = machineInfo();
  const { methods, note: methodNote } = methodsFlag(flags.methods);
  log(`load ${machine.load.join(" ")} on ${machine.nproc} cores; methods: ${methods.join(", ")}`);

  const stateDir = await makeStateDir("loomworks-bench-restore-");
  const spec: LocalClusterSpec = {
    stateDir,
    port: await findFreePort(26532),
    archiveTimeoutSeconds: 60,
    superuserPassword: randomBytes(24).toString("base64url"),
    stanza: STANZA,
    retentionFull: 2,
  };
  const layout = localClusterLayout(spec);
  const filestoreRoot = layout.paths.filestoreDir;
  const snapshotRoot = path.join(stateDir, "snapshots");
  const pgbr = layout.pgbackrest;
  const failures: string[] = [];

  try {
    const cluster = await timed(() => ensureCluster(spec, (m) => log(`cluster: ${m}`)));
    const adminDsn = localAdminDsn(spec);
    const admin = <T>(fn: (c: Client) => Promise<T>): Promise<T> => withClient(adminDsn, fn);
    const dbDsn = (db: string): string => dsnWithDatabase(adminDsn, db);
    const pgbackrestVersion = (await runCommand("pgbackrest", ["version"])).stdout.trim();
    const postgres = await admin(
      async (c) => (await c.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0].v,
    );

    // -- templates ------------------------------------------------------------------------------
    const dump = path.join(stateDir, "bench-fixture.sql");
    await fs.writeFile(dump, fixtureSql(fixture));
    const build = await timed(() =>
      ensureTemplate(adminDsn, { name: "bench", database: TEMPLATE_DB, stateDir, fromDump: dump }, (m) =>
        log(m),
      ),
    );
    await fs.rm(dump, { force: true });
    await ensureTemplate(adminDsn, {
      name: "bench-small",
      database: SMALL_TEMPLATE_DB,
      stateDir,
      fromDump: FIXTURE_TEMPLATE_DUMP,
    });
    const dbSize = (db: string): Promise<number> =>
      admin(async (c) =>
        Number((await c.query<{ b: string }>("SELECT pg_database_size($1) AS b", [db])).rows[0].b),
      );
    const tableCount = (db: string): Promise<number> =>
      withClient(dbDsn(db), async (c) =>
        Number(
          (
            await c.query<{ n: string }>(
              "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')",
            )
          ).rows[0].n,
        ),
      );
    const templateBytes = await dbSize(TEMPLATE_DB);
    log(`template ${TEMPLATE_DB}: ${(templateBytes / 1e6).toFixed(1)} MB, built in ${secs(build.ms)}`);

    // -- tenants --------------------------------------------------------------------------------
    const tenantSpec = (name: string, template: string): TenantSpec =>
      benchTenantSpec(name, { template, filestoreRoot });
    const tenants = new Map<string, TenantSpec>();
    const createMs: number[] = [];
    const createMany = async (names: string[], template: string): Promise<void> => {
      await mapLimit(names, createConcurrency, async (name) => {
        const s = tenantSpec(name, template);
        const t = await timed(() => createTenant(adminDsn, s));
        if (template === TEMPLATE_DB) createMs.push(t.ms);
        tenants.set(name, s);
        const files = name === SMALL_TENANT ? SMALL_FILESTORE_FILES : LARGE_FILESTORE_FILES;
        await fillFilestore(path.join(filestoreRoot, name), files, name);
      });
    };
    const tenantName = (i: number): string => `bencht${String(i).padStart(2, "0")}`;
    const initial = Array.from({ length: nTenants }, (_, i) => tenantName(i));
    const created = await timed(async () => {
      await createMany(initial, TEMPLATE_DB);
      await createMany([SMALL_TENANT], SMALL_TEMPLATE_DB);
    });
    log(
      `${nTenants} tenants of ${TEMPLATE_DB} + ${SMALL_TENANT} created in ${secs(created.ms)} ` +
        `(${createConcurrency} in flight; createTenant median ${secs(stats(createMs).median)})`,
    );
    const tables = await tableCount(tenantName(0));
    const smallBytes = await dbSize(SMALL_TENANT);
    const smallTables = await tableCount(SMALL_TENANT);
    const largeBytes = await dbSize(tenantName(0));

    // -- one phase ------------------------------------------------------------------------------
    const clusterFacts = async (backup: ClusterFacts["backup"]): Promise<ClusterFacts> => {
      const q = await admin((c) =>
        c.query<{ n: string; t: string; b: string }>(
          "SELECT count(*) AS n, count(*) FILTER (WHERE datname ~ '^bencht[0-9]+$' OR datname = $1) AS t, " +
            "sum(pg_database_size(datname)) AS b FROM pg_database",
          [SMALL_TENANT],
        ),
      );
      const all = await treeFacts(layout.paths.dataDir);
      const base = await treeFacts(path.join(layout.paths.dataDir, "base"));
      return {
        tenantDatabases: Number(q.rows[0].t),
        databases: Number(q.rows[0].n),
        databaseBytes: Number(q.rows[0].b),
        dataDirBytes: all.bytes,
        dataDirFiles: all.files,
        baseFiles: base.files,
        backup,
      };
    };

    const fullBackup = async (): Promise<ClusterFacts["backup"]> => {
      await admin(settle);
      const t = await timed(() => takeBackup(spec, adminDsn, "full", (m) => log(m)));
      const info = await stanzaInfo(pgbr);
      const b = info.backup.find((x) => x.label === t.value.backup.label);
      return {
        label: t.value.backup.label,
        ms: t.ms,
        sizeBytes: b?.info?.size,
        repoBytes: b?.info?.repository.size,
      };
    };

    const snapshotSeries = async (phaseTenants: number, large: string): Promise<SnapshotSeries[]> => {
      const series = [
        { tenant: SMALL_TENANT, size: "small" as const, files: SMALL_FILESTORE_FILES },
        { tenant: large, size: "large" as const, files: LARGE_FILESTORE_FILES },
      ];
      const samples = new Map<string, { cold: number; ms: number[]; parts: Record<string, number[]> }>();
      const one = async (tenant: string, name: string): Promise<{ ms: number; snap: CreatedSnapshot }> => {
        const t = await timed(() =>
          createSnapshot(adminDsn, {
            subdomain: tenant,
            database: tenant,
            name,
            kind: "manual",
            filestoreRoot,
            snapshotRoot,
            pgbackrest: pgbr,
          }),
        );
        return { ms: t.ms, snap: t.value };
      };
      await admin(settle);
      for (const s of series) {
        const cold = await one(s.tenant, `bench-cold-${phaseTenants}`);
        samples.set(s.tenant, { cold: cold.ms, ms: [], parts: {} });
      }
      for (let i = 0; i < nSnapshots; i++) {
        const order = i % 2 === 0 ? series : [...series].reverse();
        for (const s of order) {
          const r = await one(s.tenant, `bench-${phaseTenants}-${i}`);
          const acc = samples.get(s.tenant)!;
          acc.ms.push(r.ms);
          for (const [k, v] of Object.entries(r.snap.timings ?? {})) (acc.parts[k] ??= []).push(v);
        }
        if (i % 10 === 9) await admin(settle);
      }
      const out: SnapshotSeries[] = [];
      for (const s of series) {
        const acc = samples.get(s.tenant)!;
        const st = stats(acc.ms);
        out.push({
          tenant: s.tenant,
          size: s.size,
          databaseBytes: await dbSize(s.tenant),
          filestoreFiles: s.files,
          coldMs: acc.cold,
          samplesMs: acc.ms,
          parts: Object.fromEntries(Object.entries(acc.parts).map(([k, v]) => [k, stats(v).median])),
          stats: st,
        });
        log(
          `snapshot ${s.size} (${s.tenant}): p50 ${st.median.toFixed(1)} ms, p95 ${st.p95.toFixed(1)} ms, ` +
            `max ${st.max.toFixed(1)} ms (n=${st.n}; first ${acc.cold.toFixed(0)} ms)`,
        );
      }
      return out;
    };

    /** Writes, snapshot, expected digest: the restore target of one tenant for one phase. */
    const prepareTarget = async (
      tenant: string,
      phaseTenants: number,
    ): Promise<{ name: string; snap: CreatedSnapshot; digest: string }> => {
      await runSql(dbDsn(tenant), WRITES_BEFORE(`${phaseTenants}`));
      const name = `restore-target-${phaseTenants}`;
      const snap = await createSnapshot(adminDsn, {
        subdomain: tenant,
        database: tenant,
        name,
        kind: "manual",
        filestoreRoot,
        snapshotRoot,
        pgbackrest: pgbr,
      });
      return { name, snap, digest: await digest(dbDsn(tenant)) };
    };

    const restoreOnce = async (
      phaseTenants: number,
      tenant: string,
      size: "large" | "small",
      target: { name: string; snap: CreatedSnapshot; digest: string },
      method: Method,
      round: number,
    ): Promise<RestoreSample> => {
      const tspec = tenants.get(tenant)!;
      await runSql(dbDsn(tenant), CHANGES_AFTER(`${phaseTenants}-${method}-${round}`));
      if ((await digest(dbDsn(tenant))) === target.digest)
        throw new Error("the changes did not change the digest");
      await admin(settle);
      const lines: LogLine[] = [];
      const before = process.env.LOOMWORKS_RESTORE_METHOD;
      process.env.LOOMWORKS_RESTORE_METHOD = method === "pgbackrest" ? "pgbackrest" : "selective";
      const start = now();
      const sample: RestoreSample = {
        tenants: phaseTenants,
        tenant,
        size,
        method,
        round,
        ok: false,
        wallMs: NaN,
        timings: {},
        verified: false,
        load: [],
        lines,
      };
      try {
        const result = await restoreTenant({
          adminDsn,
          stateDir,
          stanza: STANZA,
          subdomain: tenant,
          database: tenant,
          roleName: tspec.roleName,
          tenantState: "active",
          target: { snapshot: target.name },
          snapshotLsn: target.snap.lsn,
          snapshotFilestore: target.snap.filestorePath,
          filestoreRoot,
          pipeline: method === "sequential" ? "sequential" : "overlapped",
          log: (m) => lines.push({ t: Math.round(now() - start), msg: m }),
        });
        sample.wallMs = now() - start;
        sample.ok = result.state === "done";
        sample.timings = result.timings;
        sample.verified = (await digest(dbDsn(tenant))) === target.digest;
        // Not part of the measurement: the kept pre-restore copy goes, so the cluster stays at N tenants.
        await admin((c) =>
          c.query(`DROP DATABASE IF EXISTS ${quoteIdent(result.preRestoreDatabase)} WITH (FORCE)`),
        );
        await fs.rm(restoreFilestorePath(filestoreRoot, result.preRestoreDatabase), {
          recursive: true,
          force: true,
        });
      } catch (err) {
        sample.wallMs = now() - start;
        sample.error = (err as Error).message.split("\n").slice(0, 3).join(" / ");
        failures.push(`${phaseTenants} tenants, restore ${tenant} (${method}): ${sample.error}`);
      } finally {
        if (before === undefined) delete process.env.LOOMWORKS_RESTORE_METHOD;
        else process.env.LOOMWORKS_RESTORE_METHOD = before;
      }
      sample.load = loadNow();
      const tm = sample.timings;
      log(
        `restore ${tenant} [${method}] at ${phaseTenants} tenants: ${sample.ok ? secs(sample.wallMs) : "FAILED"}` +
          (sample.ok
            ? ` (validate ${tm.validateMs}, scratch ${tm.scratchRestoreMs}, verify ${tm.verifyMs}, copy ` +
              `${tm.copyMs}, swap ${tm.swapMs}, cleanup ${tm.cleanupMs} ms; unavailable ${tm.unavailableMs} ms; ` +
              `verified ${sample.verified})`
            : `: ${sample.error}`) +
          ` load ${sample.load[0]}`,
      );
      return sample;
    };

    const baselineOnce = async (
      phaseTenants: number,
      kind: BaselineKind,
      round: number,
      tenant: string,
      target: { name: string; snap: CreatedSnapshot; digest: string },
    ): Promise<BaselineSample> => {
      const sample: BaselineSample = {
        tenants: phaseTenants,
        kind,
        round,
        ok: false,
        parts: {},
        totalMs: NaN,
        toDataMs: NaN,
        verified: false,
        load: [],
      };
      const copyDb = `bench_bl_${kind === "whole-cluster" ? "w" : "i"}_${phaseTenants}_${round}`;
      const scratch = scratchLayout(
        path.join(stateDir, "bench-baseline", `${kind}-${phaseTenants}-${round}`),
        await findFreePort(27532),
      );
      await admin(settle);
      try {
        const resolved = await validateRestoreTarget({
          adminDsn,
          stateDir,
          stanza: STANZA,
          subdomain: tenant,
          target: { snapshot: target.name },
          snapshotLsn: target.snap.lsn,
        });
        await prepareScratch(scratch);
        const p = sample.parts;
        const t0 = now();
        p.archiveWaitMs = (await timed(() => admin((c) => waitForArchive(c, 60_000)))).ms;
        p.pgbackrestMs = (
          await timed(() =>
            runPgBackRest(
              pgbr,
              "restore",
              [
                `--pg1-path=${scratch.dataDir}`,
                `--set=${resolved.backup.label}`,
                ...(kind === "db-include" ? [`--db-include=${tenant}`] : []),
                `--type=${resolved.type}`,
                `--target=${resolved.value}`,
                ...(resolved.exclusive ? ["--target-exclusive"] : []),
                "--target-action=promote",
                "--archive-mode=off",
              ],
              { timeoutMs: 60 * 60_000 },
            ),
          )
        ).ms;
        const pause = now();
        const facts = await treeFacts(scratch.dataDir); // not timed
        const paused = now() - pause;
        sample.scratchFiles = facts.files;
        sample.scratchBytes = facts.bytes;
        const t1 = now();
        await configureScratch(scratch, pgbr);
        await startScratch(scratch, 30 * 60_000);
        p.recoveryMs = now() - t1;
        const t2 = now();
        await admin((c) =>
          c.query(`CREATE DATABASE ${quoteIdent(copyDb)} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C'`),
        );
        await dumpPipeRestore(
          ["-Fc", "-h", scratch.runDir, "-p", String(scratch.port), "-U", "postgres", "-d", tenant],
          ["-h", "127.0.0.1", "-p", String(spec.port), "-U", "postgres", "--exit-on-error", "-d", copyDb],
          spec.superuserPassword,
        );
        p.dumpRestoreMs = now() - t2;
        sample.toDataMs = now() - t0 - paused;
        p.cleanupMs = (await timed(() => removeScratch(scratch))).ms;
        sample.totalMs = now() - t0 - paused;
        sample.ok = true;
        sample.verified = (await digest(dbDsn(copyDb))) === target.digest;
      } catch (err) {
        sample.error = (err as Error).message.split("\n").slice(0, 3).join(" / ");
        failures.push(`${phaseTenants} tenants, baseline ${kind}: ${sample.error}`);
        await removeScratch(scratch).catch(() => undefined);
      } finally {
        await admin((c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(copyDb)} WITH (FORCE)`)).catch(
          () => undefined,
        );
      }
      sample.load = loadNow();
      const p = sample.parts;
      log(
        `baseline ${kind} at ${phaseTenants} tenants: ${sample.ok ? secs(sample.totalMs) : "FAILED"}` +
          (sample.ok
            ? ` (archive wait ${p.archiveWaitMs?.toFixed(0)}, pgbackrest ${p.pgbackrestMs?.toFixed(0)}, ` +
              `recovery ${p.recoveryMs?.toFixed(0)}, dump|restore ${p.dumpRestoreMs?.toFixed(0)}, cleanup ` +
              `${p.cleanupMs?.toFixed(0)} ms; scratch ${sample.scratchFiles} files, ` +
              `${((sample.scratchBytes ?? 0) / 1e9).toFixed(2)} GB; verified ${sample.verified})`
            : `: ${sample.error}`) +
          ` load ${sample.load[0]}`,
      );
      return sample;
    };

    const runPhase = async (phaseTenants: number, large: string): Promise<Phase> => {
      const phaseStart = now();
      const loadStart = loadNow();
      log(`== phase: ${phaseTenants} tenants (load ${loadStart.join(" ")})`);
      const backup = await fullBackup();
      const facts = await clusterFacts(backup);
      log(
        `cluster: ${facts.tenantDatabases} tenant databases, ${facts.databases} databases, ` +
          `${(facts.dataDirBytes / 1e9).toFixed(2)} GB, ${facts.dataDirFiles} files (${facts.baseFiles} in base/); ` +
          `full backup ${backup.label} in ${secs(backup.ms)}`,
      );
      const snapshots = await snapshotSeries(phaseTenants, large);
      const targetLarge = await prepareTarget(large, phaseTenants);
      const targetSmall = await prepareTarget(SMALL_TENANT, phaseTenants);
      const baselinePlan: BaselineKind[] = [];
      if (clusterBaselines) {
        for (let i = 0; i < baselineRounds; i++) baselinePlan.push("whole-cluster");
        baselinePlan.push("db-include");
      }
      const restoreSamples: RestoreSample[] = [];
      const baselines: BaselineSample[] = [];
      const broken = new Set<Method>();
      const rounds = Math.max(restores, baselinePlan.length);
      for (let r = 0; r < rounds; r++) {
        if (r < restores) {
          const order = r % 2 === 0 ? methods : [...methods].reverse();
          for (const m of order) {
            if (broken.has(m)) continue;
            const s = await restoreOnce(phaseTenants, large, "large", targetLarge, m, r);
            restoreSamples.push(s);
            if (!s.ok) broken.add(m);
          }
        }
        const kind = baselinePlan[r];
        if (kind) {
          const round = baselinePlan.slice(0, r).filter((k) => k === kind).length;
          baselines.push(await baselineOnce(phaseTenants, kind, round, large, targetLarge));
        }
      }
      for (let r = 0; r < smallRestores; r++) {
        for (const m of methods) {
          if (broken.has(m)) continue;
          restoreSamples.push(await restoreOnce(phaseTenants, SMALL_TENANT, "small", targetSmall, m, r));
        }
      }
      return {
        tenants: phaseTenants,
        loadStart,
        loadEnd: loadNow(),
        cluster: facts,
        snapshots,
        restores: restoreSamples,
        baselines,
        restoreTarget: { large, small: SMALL_TENANT },
        ms: now() - phaseStart,
      };
    };

    const phases: Phase[] = [];
    phases.push(await runPhase(nTenants, tenantName(0)));

    // -- grow -----------------------------------------------------------------------------------
    let others: { mode: "full" | "small"; reason: string; projectedMs?: number } | undefined;
    if (growTo > nTenants) {
      const extra = growTo - nTenants;
      const elapsed = now() - runStart;
      const p1 = phases[0];
      const createEstimate = (extra * stats(createMs).median) / createConcurrency;
      const backupEstimate = p1.cluster.backup.ms * (growTo / nTenants);
      const phaseEstimate = (p1.ms - p1.cluster.backup.ms) * 2;
      const projectedMs = elapsed + createEstimate + backupEstimate + phaseEstimate + 60_000;
      let mode: "full" | "small";
      let reason: string;
      if (othersFlag === "auto") {
        mode = projectedMs <= budgetMs ? "full" : "small";
        reason =
          `projected run time with ${extra} more 100 MB tenants ${secs(projectedMs)} ` +
          `${mode === "full" ? "within" : "over"} the budget of ${secs(budgetMs)}`;
      } else {
        mode = othersFlag as "full" | "small";
        reason = `--others ${othersFlag}`;
      }
      others = { mode, reason, projectedMs };
      log(`growing to ${growTo} tenants: ${mode === "full" ? "100 MB" : "small"} others (${reason})`);
      const names = Array.from({ length: extra }, (_, i) => tenantName(nTenants + i));
      const grown = await timed(() => createMany(names, mode === "full" ? TEMPLATE_DB : SMALL_TEMPLATE_DB));
      log(`${extra} more tenants created in ${secs(grown.ms)}`);
      phases.push(await runPhase(growTo, tenantName(1)));
    }

    // -- the definitions' load on its own: parallel sessions (restoreTenant's) vs one transaction --
    const schemaLoad = await schemaLoadAB(adminDsn, tenantName(0), stateDir, schemaRounds);
    log(
      `definitions of ${tenantName(0)} (${schemaLoad.tables} tables): ${SCHEMA_JOBS} sessions median ` +
        `${stats(schemaLoad.parallelMs).median.toFixed(0)} ms, one transaction ` +
        `${stats(schemaLoad.oneTransactionMs).median.toFixed(0)} ms`,
    );

    await closeSnapshotConnections();
    const result = {
      benchmark: "restore",
      machine,
      loadEnd: loadNow(),
      postgres,
      pgbackrest: pgbackrestVersion,
      clusterSetupMs: cluster.ms,
      template: {
        fixture,
        buildMs: build.ms,
        databaseBytes: templateBytes,
        tenantBytes: largeBytes,
        tables,
        filestoreFiles: LARGE_FILESTORE_FILES,
      },
      small: {
        fromDump: path.relative(REPO_ROOT, FIXTURE_TEMPLATE_DUMP),
        databaseBytes: smallBytes,
        tables: smallTables,
        filestoreFiles: SMALL_FILESTORE_FILES,
      },
      createTenantMs: stats(createMs),
      createConcurrency,
      others,
      methods,
      methodNote,
      settings: { restores, smallRestores, snapshots: nSnapshots, baselineRounds, clusterBaselines },
      goals: GOALS,
      method:
        "every timed operation on a settled cluster (CHECKPOINT, archiver caught up); restore methods " +
        "alternate per round; restores of one tenant repeat to the same snapshot (its database in the " +
        "phase's full backup), the rows changed after the snapshot re-applied before each and checked " +
        "after; the kept pre-restore database is dropped after each restore (not timed)",
      baselineCommands: {
        "whole-cluster":
          "pgbackrest restore --set=<backup> --type=lsn --target=<snapshot LSN> --target-exclusive " +
          "--target-action=promote --archive-mode=off; start with the scratch settings of lib/restore/scratch.ts " +
          "(unix socket only, archive_mode off); CREATE DATABASE; pg_dump -Fc | pg_restore --exit-on-error",
        "db-include": "the same with --db-include=<tenant database>",
      },
      phases,
      schemaLoad,
      failures,
      totalMs: now() - runStart,
    };
    const file = await writeResult("restore", result);
    log(`wrote ${file} (run ${secs(result.totalMs)})`);
  } finally {
    await closeSnapshotConnections().catch(() => undefined);
    await removeThrowawayCluster(spec, stateDir, log);
  }
}

runBenchmark(main);
