/**
 * Benchmark: tenant creation against a raw CREATE DATABASE from the same template.
 *
 * In a throw-away cluster (own state directory in /tmp, own port; destroyed at the end) it builds a
 * ~100 MB, ~400-table Odoo-shaped FIXTURE template (testkit/odoo-shaped-fixture.ts, not Odoo)
 * with ensureTemplate, then runs N rounds of five scenarios, their order rotating per round:
 *   (a) baseline: `CREATE DATABASE x TEMPLATE tmpl STRATEGY WAL_LOG` on an open superuser
 *       connection (the strategy createTenant uses, lib/tenant/sql.ts), then DROP (not timed);
 *   (a') the same with STRATEGY FILE_COPY (two checkpoints, no WAL for the copy);
 *   (b) createTenant with no spare (copies the template: registry row, role, database, ownership,
 *       sequences, grants, ERP admin with a pbkdf2-sha512 hash, identity, filestore, state,
 *       registry), then deleteTenant (not timed);
 *   (c) createTenant claiming a spare made just before by prepareSpare (lib/tenant/spares.ts; the
 *       preparation timed apart, as the background work it stands for);
 *   idle: a neighbour tenant alone, the baseline for what (a) and (a') cost it (bench/neighbour.ts:
 *       during (a) and (a') it commits single-row updates, a quarter of its table dirtied first).
 * Only the create part is timed. Before each timed create the cluster is settled (CHECKPOINT, WAL
 * archiving caught up) so no scenario pays for another's leftovers. createTenant's step log lines
 * are timestamped for a step breakdown, and a final pass replays the statements of the ownership
 * and erp-admin steps one by one.
 *
 *   node bin/bench/tenant-create.js [--rounds 15] [--warmup 1] [--profile-rounds 5]
 *                                   [--extra-tables 380] [--rows 115] [--payload 1000]
 *
 * Writes tenant-create.json in bench/results/.
 */
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { ensureCluster } from "../lib/pg/ensureCluster";
import { localAdminDsn, localClusterLayout, type LocalClusterSpec } from "../lib/pg/cluster";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { quoteIdent, withPlainClient as withClient } from "../lib/pg/client";
import { hashPbkdf2Sha512, ODOO_PBKDF2_ROUNDS } from "../lib/tenant/passlib";
import { createTenant, deleteTenant, type TenantSpec } from "../lib/tenant/provision";
import { dsnWithDatabase } from "../lib/pg/dsn";
import { reassignPublicObjectsSql } from "../lib/tenant/sql";
import { ensureTemplate } from "../lib/tenant/template";
import { dropSparesOf, prepareSpare } from "../lib/tenant/spares";
import { createNeighbour, dirtyNeighbour, summarize, withNeighbour, type NeighbourWindow } from "./neighbour";
import { fixtureSql, type FixtureOptions } from "../testkit/odoo-shaped-fixture";
import {
  findFreePort,
  loadNow,
  machineInfo,
  makeStateDir,
  now,
  stats,
  timed,
  writeResult,
  type Stats,
  settle,
  intFlags,
  removeThrowawayCluster,
  runBenchmark,
  benchTenantSpec,
} from "./common";

/** Fixture options giving a template of ≈100 MB pg_database_size (calibrated on PostgreSQL 15). */
export const BENCH_FIXTURE: FixtureOptions = { extraTables: 380, rowsPerTable: 115, payloadBytes: 1000 };
const TEMPLATE_DB = "bench_tmpl";
const RATIO_GOAL = 1.5;
type Strategy = "WAL_LOG" | "FILE_COPY";
const P95_GOAL_MS = 2000;

const log = (msg: string): void => console.log(`[tenant-create] ${msg}`);

interface StepLine {
  /** ms since the createTenant call started. */
  t: number;
  msg: string;
}

interface RoundB {
  ms: number;
  lines: StepLine[];
}

/**
 * Segments between consecutive createTenant log lines, named after the line that opens them.
 * A step line is logged after the registry journal write of that step (beginStep +
 * setProvisioningStep), so each segment is: the step itself + finishStep + the next step's journal
 * writes.
 */
function segments(round: RoundB, subdomain: string): Array<{ name: string; ms: number }> {
  const out: Array<{ name: string; ms: number }> = [];
  const marks = [{ t: 0, msg: "(start: ensureRegistry, connect admin + registry, first journal write)" }];
  for (const l of round.lines) {
    let msg = l.msg.startsWith(`${subdomain}: `) ? l.msg.slice(subdomain.length + 2) : l.msg;
    if (msg.startsWith("created database ")) msg = "database (after CREATE DATABASE returned)";
    else if (msg === "database") msg = "database (up to CREATE DATABASE returning)";
    else if (msg.startsWith("spare ")) msg = "spare (up to the claim's commit)";
    else if (msg.startsWith("claimed spare database ")) msg = "spare (after the claim)";
    else if (/sequence\(s\) re-logged|sequences re-logged when/.test(msg))
      msg = "sequences (after the re-log)";
    marks.push({ t: l.t, msg });
  }
  marks.push({ t: round.ms, msg: "(end)" });
  for (let i = 0; i < marks.length - 1; i++)
    out.push({ name: marks[i].msg, ms: marks[i + 1].t - marks[i].t });
  return out;
}

/**
 * Replays the statements of createTenant's two heaviest post-copy steps one by one with timings
 * (a replica for profiling: same SQL and hash as lib/tenant/provision.ts, run on a raw copy).
 */
async function profileSteps(
  admin: Client,
  adminDsn: string,
  n: number,
): Promise<Array<Stats & { name: string }>> {
  const samples = new Map<string, number[]>();
  const put = (name: string, ms: number): void => void samples.set(name, [...(samples.get(name) ?? []), ms]);
  for (let i = 0; i < n; i++) {
    const name = `bench_p_${i}`;
    await settle(admin);
    await admin.query(`CREATE ROLE ${quoteIdent(name)} NOLOGIN`);
    await admin.query(
      `CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(TEMPLATE_DB)} STRATEGY WAL_LOG`,
    );
    try {
      const t = async (label: string, fn: () => Promise<unknown>): Promise<void> =>
        put(label, (await timed(fn)).ms);
      await t("ownership: ALTER DATABASE ... OWNER TO", () =>
        admin.query(`ALTER DATABASE ${quoteIdent(name)} OWNER TO ${quoteIdent(name)}`),
      );
      let start = now();
      await withClient(dsnWithDatabase(adminDsn, name), async (db) => {
        put("ownership: connect to the new database (first backend)", now() - start);
        await t("ownership: reassign DO block (ALTER ... OWNER per object)", () =>
          db.query(reassignPublicObjectsSql(name)),
        );
      });
      start = now();
      await withClient(dsnWithDatabase(adminDsn, name), async (db) => {
        put("erp-admin: connect to the new database (second backend)", now() - start);
        await t("erp-admin: to_regclass('public.res_users')", () =>
          db.query("SELECT to_regclass($1)::text AS t", ["public.res_users"]),
        );
        let hash = "";
        await t(`erp-admin: pbkdf2-sha512 hash (${ODOO_PBKDF2_ROUNDS} rounds)`, async () => {
          hash = await hashPbkdf2Sha512("bench-password");
        });
        await t("erp-admin: UPDATE res_users", () =>
          db.query("UPDATE res_users SET login = $1, password = $2 WHERE id = 2 RETURNING partner_id", [
            "owner@bench.example",
            hash,
          ]),
        );
        await t("erp-admin: to_regclass(res_partner) + information_schema.columns lookup", async () => {
          await db.query("SELECT to_regclass($1)::text AS t", ["public.res_partner"]);
          await db.query(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2",
            ["res_partner", "email"],
          );
        });
        await t("erp-admin: UPDATE res_partner", () =>
          db.query("UPDATE res_partner SET email = $1 WHERE id = 3", ["owner@bench.example"]),
        );
      });
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(name)}`);
    }
  }
  return [...samples.entries()].map(([name, ms]) => ({ name, ...stats(ms) }));
}

async function main(): Promise<void> {
  const flags = intFlags(process.argv.slice(2), {
    rounds: 15,
    warmup: 1,
    "profile-rounds": 5,
    "extra-tables": BENCH_FIXTURE.extraTables,
    rows: BENCH_FIXTURE.rowsPerTable,
    payload: BENCH_FIXTURE.payloadBytes,
  });
  const { rounds, warmup, "profile-rounds": profileRounds } = flags;
  const fixture: FixtureOptions = {
    extraTables: flags["extra-tables"],
    rowsPerTable: flags.rows,
    payloadBytes: flags.payload,
  };
  const machine = machineInfo();
  log(`load ${machine.load.join(" ")} on ${machine.nproc} cores; ${rounds} rounds (+${warmup} warm-up)`);

  const stateDir = await makeStateDir("loomworks-bench-");
  const spec: LocalClusterSpec = {
    stateDir,
    port: await findFreePort(),
    archiveTimeoutSeconds: 60,
    superuserPassword: randomBytes(24).toString("base64url"),
    stanza: "bench",
    retentionFull: 1,
  };
  const filestoreRoot = localClusterLayout(spec).paths.filestoreDir;
  try {
    const cluster = await timed(() => ensureCluster(spec, (m) => log(`cluster: ${m}`)));
    const adminDsn = localAdminDsn(spec);

    const dump = path.join(stateDir, "bench-fixture.sql");
    await fs.writeFile(dump, fixtureSql(fixture));
    const dumpBytes = (await fs.stat(dump)).size;
    log(`fixture ${JSON.stringify(fixture)}: ${(dumpBytes / 2 ** 20).toFixed(1)} MiB of SQL`);
    const build = await timed(() =>
      ensureTemplate(adminDsn, { name: "bench", database: TEMPLATE_DB, stateDir, fromDump: dump }, (m) =>
        log(m),
      ),
    );

    const result = await withClient(adminDsn, async (admin) => {
      const version = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v"))
        .rows[0].v;
      const size = await admin.query<{ bytes: string }>("SELECT pg_database_size($1) AS bytes", [
        TEMPLATE_DB,
      ]);
      const templateBytes = Number(size.rows[0].bytes);
      log(
        `template ${TEMPLATE_DB}: ${(templateBytes / 1e6).toFixed(1)} MB, built in ${build.ms.toFixed(0)} ms`,
      );

      let tableCount = -1;
      let copyBytes = -1;
      const windows: Record<Strategy | "idle", NeighbourWindow[]> = { WAL_LOG: [], FILE_COPY: [], idle: [] };
      /** A raw CREATE DATABASE with `strategy`, the neighbour writing meanwhile (its window recorded). */
      const runRaw = async (
        name: string,
        strategy: Strategy,
        round: number,
        inspect = false,
      ): Promise<number> => {
        await settle(admin);
        await dirtyNeighbour(adminDsn, round);
        const { window, value } = await withNeighbour(adminDsn, () =>
          timed(() =>
            admin.query(
              `CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(TEMPLATE_DB)} STRATEGY ${strategy}`,
            ),
          ),
        );
        windows[strategy].push(window);
        if (inspect) {
          copyBytes = Number(
            (await admin.query<{ b: string }>("SELECT pg_database_size($1) AS b", [name])).rows[0].b,
          );
          tableCount = await withClient(dsnWithDatabase(adminDsn, name), async (db) =>
            Number(
              (
                await db.query<{ n: string }>(
                  "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace " +
                    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')",
                )
              ).rows[0].n,
            ),
          );
        }
        await admin.query(`DROP DATABASE ${quoteIdent(name)} WITH (FORCE)`);
        return (value as { ms: number }).ms;
      };
      /** The neighbour alone for as long as a median WAL_LOG copy took so far (its baseline). */
      const runIdle = async (round: number): Promise<void> => {
        await settle(admin);
        await dirtyNeighbour(adminDsn, round);
        const ms = a.length > 0 ? stats(a).median : 1000;
        windows.idle.push((await withNeighbour(adminDsn, undefined, ms)).window);
      };

      const tenantSpec = (name: string): TenantSpec =>
        benchTenantSpec(name, { template: TEMPLATE_DB, filestoreRoot });
      /** createTenant end to end; with `spare`, a spare of the template made first (not timed). */
      const spareMs: number[] = [];
      const runB = async (name: string, spare = false): Promise<RoundB> => {
        if (spare) {
          const made = await timed(() => prepareSpare(admin, adminDsn, TEMPLATE_DB));
          if (!made.value.spare) throw new Error("no spare was made");
          spareMs.push(made.ms);
        } else await dropSparesOf(admin, TEMPLATE_DB);
        await settle(admin);
        const s = tenantSpec(name);
        const lines: StepLine[] = [];
        const start = now();
        await createTenant(adminDsn, s, (msg) => lines.push({ t: now() - start, msg }));
        const ms = now() - start;
        await deleteTenant(adminDsn, { ...s, forceDestroy: true });
        if (spare !== lines.some((l) => l.msg.startsWith("claimed spare database")))
          throw new Error(`${name}: expected ${spare ? "a" : "no"} spare to be claimed`);
        return { ms, lines };
      };

      const a: number[] = [];
      const f: number[] = [];
      const b: RoundB[] = [];
      const c: RoundB[] = [];
      await createNeighbour(admin, adminDsn);
      for (let w = 0; w < warmup; w++) {
        const wa = await runRaw(`bench_a_warm${w}`, "WAL_LOG", w, w === 0);
        const wf = await runRaw(`bench_f_warm${w}`, "FILE_COPY", w);
        const wb = await runB(`bench_b_warm${w}`);
        const wc = await runB(`bench_c_warm${w}`, true);
        log(
          `warm-up ${w + 1}: WAL_LOG ${wa.toFixed(0)} ms, FILE_COPY ${wf.toFixed(0)} ms, ` +
            `createTenant ${wb.ms.toFixed(0)} ms, from a spare ${wc.ms.toFixed(0)} ms`,
        );
      }
      if (tableCount < 0) await runRaw("bench_a_inspect", "WAL_LOG", 0, true);
      for (const k of Object.keys(windows) as Array<keyof typeof windows>) windows[k] = [];
      spareMs.length = 0;
      log(`copy: ${tableCount} tables in schema public, ${(copyBytes / 1e6).toFixed(1)} MB`);

      const loadDuring: number[][] = [];
      for (let r = 0; r < rounds; r++) {
        const tag = String(r).padStart(2, "0");
        const scenarios: Array<() => Promise<void>> = [
          async () => void a.push(await runRaw(`bench_a_${tag}`, "WAL_LOG", r)),
          async () => void f.push(await runRaw(`bench_f_${tag}`, "FILE_COPY", r)),
          async () => void b.push(await runB(`bench_b_${tag}`)),
          async () => void c.push(await runB(`bench_c_${tag}`, true)),
          () => runIdle(r),
        ];
        // Rotate the order so drift (caches, WAL recycling, other load) hits every scenario alike.
        for (let i = 0; i < scenarios.length; i++) await scenarios[(i + r) % scenarios.length]();
        loadDuring.push(loadNow());
        log(
          `round ${r + 1}/${rounds}: WAL_LOG ${a[r].toFixed(0)} ms, FILE_COPY ${f[r].toFixed(0)} ms, ` +
            `createTenant ${b[r].ms.toFixed(0)} ms, from a spare ${c[r].ms.toFixed(0)} ms (load ${loadNow()[0]})`,
        );
      }

      // The admin password hash on its own (the erp-admin step's CPU part), same rounds as createTenant.
      const hashMs: number[] = [];
      for (let i = 0; i < 5; i++) hashMs.push((await timed(() => hashPbkdf2Sha512("bench-password"))).ms);

      log(`profiling the ownership and erp-admin statements (${profileRounds} rounds)`);
      const statements = await profileSteps(admin, adminDsn, profileRounds);

      // Paired per round: createTenant's own CREATE DATABASE (between its "database" and "created
      // database" lines) against the baseline of the same round, and everything else createTenant does.
      const dbStep = b.map((round) => {
        const from = round.lines.find((l) => / database$/.test(l.msg))?.t ?? NaN;
        const to = round.lines.find((l) => l.msg.startsWith("created database "))?.t ?? NaN;
        return to - from;
      });
      const paired = {
        createDatabaseInCreateTenant: { samplesMs: dbStep, ...stats(dbStep) },
        createDatabaseMinusBaseline: stats(dbStep.map((d, i) => d - a[i])),
        restOfCreateTenant: stats(b.map((round, i) => round.ms - dbStep[i])),
      };

      const baseline = stats(a);
      const tenant = stats(b.map((x) => x.ms));
      const spare = stats(c.map((x) => x.ms));
      const fileCopy = stats(f);
      const ratio = tenant.median / baseline.median;
      const breakdownOf = (rounds: RoundB[], prefix: string) => {
        const bySegment = new Map<string, number[]>();
        rounds.forEach((round, i) => {
          for (const seg of segments(round, `${prefix}${String(i).padStart(2, "0")}`)) {
            bySegment.set(seg.name, [...(bySegment.get(seg.name) ?? []), seg.ms]);
          }
        });
        return [...bySegment.entries()].map(([name, ms]) => ({ name, samplesMs: ms, ...stats(ms) }));
      };
      const breakdown = breakdownOf(b, "bench_b_");
      return {
        benchmark: "tenant-create",
        machine,
        loadEnd: loadNow(),
        loadDuring,
        postgres: version,
        clusterSetupMs: cluster.ms,
        template: {
          fixture,
          dumpBytes,
          buildMs: build.ms,
          databaseBytes: templateBytes,
          copyBytes,
          tables: tableCount,
        },
        rounds,
        warmup,
        method:
          "interleaved rounds, the order of the five scenarios rotating per round; CHECKPOINT + archiver " +
          "caught up before each timed create; baselines timed on an open superuser connection (statement " +
          "only); createTenant timed end to end (its own connections and registry included); the spare of (c) " +
          "made before the CHECKPOINT and timed apart; drops/deletes not timed",
        baseline: { name: "CREATE DATABASE ... TEMPLATE ... STRATEGY WAL_LOG", samplesMs: a, ...baseline },
        createTenant: { name: "createTenant (full provisioning)", samplesMs: b.map((x) => x.ms), ...tenant },
        ratio,
        fileCopy: {
          name: "CREATE DATABASE ... TEMPLATE ... STRATEGY FILE_COPY",
          samplesMs: f,
          ...fileCopy,
          ratioToWalLog: fileCopy.median / baseline.median,
        },
        fromSpare: {
          name: "createTenant claiming a spare made ahead (lib/tenant/spares.ts)",
          samplesMs: c.map((x) => x.ms),
          ...spare,
          ratioToBaseline: spare.median / baseline.median,
          breakdown: breakdownOf(c, "bench_c_"),
          prepareSpare: { samplesMs: spareMs, ...stats(spareMs) },
        },
        neighbour: {
          method:
            "a neighbour database of 100,000 rows (~25 MB): after the CHECKPOINT, a quarter of it updated " +
            "(dirty in shared buffers), then single-row UPDATE commits in a loop on its own connection " +
            "for the duration of the CREATE DATABASE (idle: as long as the median WAL_LOG copy, nothing else)",
          idle: summarize(windows.idle),
          walLog: summarize(windows.WAL_LOG),
          fileCopy: summarize(windows.FILE_COPY),
        },
        goals: {
          ratio: { goal: RATIO_GOAL, value: ratio, met: ratio <= RATIO_GOAL },
          p95: { goalMs: P95_GOAL_MS, valueMs: tenant.p95, met: tenant.p95 <= P95_GOAL_MS },
          p95FromSpare: { goalMs: P95_GOAL_MS, valueMs: spare.p95, met: spare.p95 <= P95_GOAL_MS },
        },
        breakdown,
        paired,
        statements,
        pbkdf2: { rounds: ODOO_PBKDF2_ROUNDS, ...stats(hashMs) },
      };
    });

    const file = await writeResult("tenant-create", result);
    const s = (x: Stats): string =>
      `median ${x.median.toFixed(0)} ms, p95 ${x.p95.toFixed(0)}, min ${x.min.toFixed(0)}, max ${x.max.toFixed(0)}`;
    log(`baseline      : ${s(result.baseline)}`);
    log(`createTenant  : ${s(result.createTenant)}`);
    log(`FILE_COPY     : ${s(result.fileCopy)} (${result.fileCopy.ratioToWalLog.toFixed(2)} x WAL_LOG)`);
    log(`from a spare  : ${s(result.fromSpare)} (prepareSpare ${s(result.fromSpare.prepareSpare)})`);
    for (const [k, n] of Object.entries({
      idle: result.neighbour.idle,
      WAL_LOG: result.neighbour.walLog,
      FILE_COPY: result.neighbour.fileCopy,
    }))
      log(`neighbour ${k}: ${n.commitsPerSecond.toFixed(0)} commits/s, latency ${s(n.latency)}`);
    log(
      `ratio ${result.ratio.toFixed(2)} (goal <= ${RATIO_GOAL}); p95 ${result.createTenant.p95.toFixed(0)} ms`,
    );
    for (const seg of result.breakdown) log(`  ${seg.median.toFixed(0).padStart(6)} ms  ${seg.name}`);
    log(`pbkdf2-sha512 (${ODOO_PBKDF2_ROUNDS} rounds) alone: median ${result.pbkdf2.median.toFixed(0)} ms`);
    const p = result.paired;
    log(
      `paired: CREATE DATABASE inside createTenant median ${p.createDatabaseInCreateTenant.median.toFixed(0)} ms ` +
        `(minus same-round baseline: median ${p.createDatabaseMinusBaseline.median.toFixed(0)} ms); ` +
        `rest of createTenant median ${p.restOfCreateTenant.median.toFixed(0)} ms`,
    );
    for (const st of result.statements) log(`  ${st.median.toFixed(0).padStart(6)} ms  ${st.name}`);
    log(`wrote ${file}`);
  } finally {
    await removeThrowawayCluster(spec, stateDir, log);
  }
}

runBenchmark(main);
