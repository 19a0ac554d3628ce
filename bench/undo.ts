/**
 * Benchmark: the cost of undo capture
 * (docs/architecture.md#undo, lib/undo/sql.ts) on pgbench-style writes, and
 * undo of 10,000-row operations.
 *
 * In a throw-away cluster (own state directory in /tmp, own port; destroyed at the end; the project's
 * postgresql.conf, WAL archiving on) with one non-superuser login role owning every database (the
 * tenant role: pgbench and the undo connect as it, like the ERP; guards are installed as superuser):
 *
 *   1. pgbench-style writes with the real pgbench binary: a custom TPC-B-like script (pgbench's own five
 *      statements in BEGIN ... END), `-n`, simple query protocol as the ERP's driver uses, on pgbench
 *      tables WITH primary keys (history gets an identity id). One database per scenario with identical
 *      data files: `pgbench -i` ran once, as the tenant role, in the baseline database; the others are
 *      FILE_COPY copies of it with the guards installed afterwards (installGuards attaches capture to the
 *      existing tables; the event-trigger path, capture attached to tables the tenant creates, is what
 *      the probe and undo tables below go through).
 *        baseline  no guards installed (no capture triggers);
 *        idle      guards installed, plain script: capture triggers whose WHEN is false;
 *        op        guards installed, each transaction starts with
 *                  `SELECT loomworks_undo.begin_operation('bench', 'write', NULL)` (what each AI tool
 *                  transaction does); limits written with maxAiOperationsDaily = 2147483647;
 *        reuse     as op, but every transaction joins one operation with use_operation (begun once per run).
 *      Many short rounds (a burst of other work on the machine spoils a few pairs, not the medians),
 *      interleaved, the order rotating per round; before every run the tables are reset as
 *      pgbench's own vacuum step does (history truncated, tables vacuumed; the undo logs truncated),
 *      then CHECKPOINT and the WAL archiver caught up. Recorded per run: tps (without initial
 *      connection time), mean latency, per-statement latencies (-r), WAL bytes/records/full-page images,
 *      server and pgbench CPU time per transaction, and for the capturing scenarios the change log's
 *      rows and bytes.
 *   1a. One session per database (--session-rounds, 0 skips; bench/undo-session.ts): the same transaction
 *      in a DO block committing each one, the backend's CPU time per transaction: baseline, idle, the
 *      operation set by set_config, begin_operation. The server's work alone, hardly moved by the load.
 *   1b. The dormant trigger alone (--probe-rounds, 0 skips): bulk and single-row INSERT/UPDATE/DELETE of a
 *      table the tenant role creates, in the baseline and the idle database, rolled back; backend CPU
 *      time per row and per statement.
 *   2. Where the capture cost goes (skipped with --profile-rounds 0): one client (no waiting for a
 *      CPU), no warm-up, baseline and idle against copies of the op database with track_functions = 'pl'
 *      (pg_stat_user_functions: time per call of capture(), begin_operation() and what it calls): as it
 *      is; with the operation set by a plain `SET LOCAL loomworks.operation` instead of begin_operation
 *      (capture alone); capture() with an empty body (the cost of firing the triggers); the change log
 *      with undo API v3's (table_oid, row_key) index added back, without any index, UNLOGGED (no WAL);
 *      capture() without its pinned search_path. Experiments on
 *      throw-away copies; none of them is a configuration of the platform. Server CPU per transaction
 *      (the postmaster's reaped children) is recorded for every run, here and in 1.
 *   3. Undo: in a guarded database, a fixture-like table (13 columns: text, numeric, date, timestamp,
 *      boolean, a foreign key to a partner table; 50,000 rows) and three 10,000-row operations per
 *      round, order rotating: INSERT of new rows, DELETE of existing rows, UPDATE of existing rows,
 *      each one transaction with begin_operation. Timed: the write with capture and without (the same
 *      statement outside any operation, rolled back), a dry run (planning only, rolled back), and
 *      `BEGIN; SELECT loomworks_undo.undo_operation(op); COMMIT`. The change log's growth per captured
 *      row is recorded (pg_total_relation_size: heap, TOAST and indexes).
 *
 *   node bin/bench/undo.js [--rounds 8] [--seconds 8] [--warmup-seconds 3] [--clients 4] [--threads 2]
 *                          [--scale 10] [--profile-rounds 3] [--profile-seconds 5] [--profile-clients 1]
 *                          [--probe-rounds 3] [--probe-rows 100000] [--undo-rounds 5] [--undo-rows 10000]
 *                          [--session-rounds 5] [--session-transactions 500]
 *
 * About 10 minutes with the defaults on 2 cores. Writes undo.json in bench/results/ (rendered by
 * bench/report.ts). Measures only; never asserts.
 */
import { createHash, randomBytes, randomInt } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { installGuards, readGuards } from "../lib/guards/install";
import { ensureCluster } from "../lib/pg/ensureCluster";
import {
  LOCAL_HOST,
  localAdminDsn,
  localClusterLayout,
  pgBin,
  type LocalClusterSpec,
} from "../lib/pg/cluster";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { adminDsn, quoteIdent, withPlainClient as withClient } from "../lib/pg/client";
import { runCommand } from "../lib/process/run";
import { writeQuotaLimits } from "../lib/quota/sql";
import { dsnToPgEnv, dsnWithDatabase } from "../lib/pg/dsn";
import { passwordClause } from "../lib/pg/scram";
import {
  CAPTURE_TRIGGER,
  OPERATION_SETTING,
  UNDO_API_VERSION,
  UNDO_SCHEMA,
  undoApiSql,
} from "../lib/undo/sql";
import { beginOperation, undoOperation, type UndoResult } from "../lib/undo/undo";
import { sessionPhase, type SessionResult } from "./undo-session";
import {
  findFreePort,
  loadNow,
  machineInfo,
  makeStateDir,
  now,
  settle,
  stats,
  timed,
  writeResult,
  type Stats,
  intFlags,
  removeThrowawayCluster,
  runBenchmark,
} from "./common";

const OP_RATIO_GOAL = 0.8;
const IDLE_RATIO_GOAL = 0.98;
const UNDO_GOAL_MS = 2000;
const MAX_AI_OPERATIONS = 2_147_483_647;
const OWNER = "bench_undo_tenant";

const log = (msg: string): void => console.log(`[undo] ${msg}`);

// ---------------------------------------------------------------------------------------------
// pgbench scenarios

type ScenarioName =
  | "baseline"
  | "idle"
  | "op"
  | "reuse"
  | "op-tracked"
  | "op-set-only"
  | "op-calls-only"
  | "op-row-index"
  | "op-no-index"
  | "op-unpinned"
  | "op-unlogged";

interface Scenario {
  name: ScenarioName;
  label: string;
  database: string;
  guards: boolean;
  /** SQL run as a superuser in the database once, after it was copied (profile experiments). */
  alter?: string[];
  /** Profile: track_functions = 'pl' in the database, pg_stat_user_functions read after each run. */
  track?: boolean;
  /** An operation is begun (and committed) before each run; its id goes to `prefix`. */
  oneOperation?: boolean;
  /** Statements after BEGIN; `opId` is the run's operation when `oneOperation`. */
  prefix: (opId: string) => string[];
}

const BEGIN_OP = `SELECT ${UNDO_SCHEMA}.begin_operation('bench', 'write', NULL);`;

/** A profile copy of the op database: `alter` applied, functions tracked. */
const profileCopy = (name: ScenarioName, label: string, database: string, alter: string[]): Scenario => ({
  name,
  label,
  database,
  guards: true,
  alter,
  track: true,
  prefix: () => [BEGIN_OP],
});

const SCENARIOS: Record<ScenarioName, Scenario> = {
  baseline: {
    name: "baseline",
    label: "baseline: no guards installed (no capture)",
    database: "bench_u_base",
    guards: false,
    prefix: () => [],
  },
  idle: {
    name: "idle",
    label: "capture installed, no operation active",
    database: "bench_u_idle",
    guards: true,
    prefix: () => [],
  },
  op: {
    name: "op",
    label: "operation active: begin_operation in every transaction",
    database: "bench_u_op",
    guards: true,
    prefix: () => [BEGIN_OP],
  },
  reuse: {
    name: "reuse",
    label: "operation active: use_operation of one operation in every transaction",
    database: "bench_u_reuse",
    guards: true,
    oneOperation: true,
    prefix: (opId) => [`SELECT ${UNDO_SCHEMA}.use_operation('${opId}');`],
  },
  "op-tracked": profileCopy("op-tracked", "op as it is", "bench_u_tracked", []),
  "op-set-only": {
    ...profileCopy(
      "op-set-only",
      "capture alone: one operation for the run, set by `SET LOCAL loomworks.operation` (no begin_operation or use_operation)",
      "bench_u_setonly",
      [],
    ),
    oneOperation: true,
    prefix: (opId) => [`SET LOCAL ${OPERATION_SETTING} = '${opId}';`],
  },
  "op-calls-only": profileCopy(
    "op-calls-only",
    "op, capture() replaced by `BEGIN RETURN NULL; END` (firing the triggers, nothing captured)",
    "bench_u_calls",
    [
      `CREATE OR REPLACE FUNCTION ${UNDO_SCHEMA}.capture() RETURNS trigger LANGUAGE plpgsql AS ` +
        "$fn$ BEGIN RETURN NULL; END $fn$",
    ],
  ),
  "op-row-index": profileCopy(
    "op-row-index",
    "op, with undo API v3's (table_oid, row_key) index on change_log added back",
    "bench_u_rowidx",
    [`CREATE INDEX change_log_row ON ${UNDO_SCHEMA}.change_log (table_oid, row_key)`],
  ),
  "op-no-index": profileCopy("op-no-index", "op, change_log without any index", "bench_u_noidx", [
    `DROP INDEX ${UNDO_SCHEMA}.change_log_operation`,
    `DROP INDEX ${UNDO_SCHEMA}.change_log_id`,
  ]),
  "op-unpinned": profileCopy(
    "op-unpinned",
    "op, capture() without its pinned search_path (not safe for a SECURITY DEFINER function: its cost only)",
    "bench_u_unpinned",
    [`ALTER FUNCTION ${UNDO_SCHEMA}.capture() RESET search_path`],
  ),
  "op-unlogged": profileCopy(
    "op-unlogged",
    "op, change_log UNLOGGED (its rows and indexes write no WAL)",
    "bench_u_unlogged",
    [`ALTER TABLE ${UNDO_SCHEMA}.change_log SET UNLOGGED`],
  ),
};

const MAIN: ScenarioName[] = ["baseline", "idle", "op", "reuse"];
const PROFILE: ScenarioName[] = [
  "baseline",
  "idle",
  "op-tracked",
  "op-set-only",
  "op-calls-only",
  "op-row-index",
  "op-no-index",
  "op-unpinned",
  "op-unlogged",
];

/** The TPC-B-like transaction of pgbench's built-in script, with `prefix` right after BEGIN. */
function tpcbScript(scale: number, prefix: string[]): string {
  return (
    [
      `\\set aid random(1, ${100_000 * scale})`,
      `\\set bid random(1, ${scale})`,
      `\\set tid random(1, ${10 * scale})`,
      "\\set delta random(-5000, 5000)",
      "BEGIN;",
      ...prefix,
      "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;",
      "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;",
      "UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;",
      "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;",
      "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);",
      "END;",
    ].join("\n") + "\n"
  );
}

interface PgbenchRun {
  scenario: ScenarioName;
  round: number;
  tps: number;
  transactions: number;
  failed: number;
  latencyMs: number;
  /** Per-statement mean latency (ms), pgbench -r, in script order (meta-commands left out). */
  statements: Array<{ sql: string; ms: number }>;
  walBytes: number;
  /** WAL records and full-page images written during the run (pg_stat_wal, whole cluster). */
  walRecords: number;
  walFpi: number;
  /**
   * CPU time per transaction (µs): the server's (every backend and worker that exited during the run:
   * the postmaster's reaped children, /proc/<postmaster>/stat cutime + cstime) and pgbench's own.
   * Unlike tps, hardly moved by other work on the machine.
   */
  serverCpuUsPerTx: number;
  clientCpuUsPerTx: number;
  /** Tracked (profile) scenarios: pg_stat_user_functions of the run (ms). */
  functions?: Array<{ name: string; calls: number; totalMs: number; selfMs: number }>;
  /** Capturing scenarios: rows in loomworks_undo.change_log and its total size after the run. */
  changeRows?: number;
  changeBytes?: number;
  load: number[];
}

/** Figures out of pgbench's report. */
export function parsePgbench(
  out: string,
): Omit<
  PgbenchRun,
  | "scenario"
  | "round"
  | "walBytes"
  | "walRecords"
  | "walFpi"
  | "load"
  | "serverCpuUsPerTx"
  | "clientCpuUsPerTx"
> {
  const num = (re: RegExp): number => {
    const m = re.exec(out);
    return m ? Number(m[1]) : NaN;
  };
  const statements: Array<{ sql: string; ms: number }> = [];
  const at = out.indexOf("statement latencies in milliseconds");
  if (at >= 0) {
    for (const line of out.slice(at).split("\n").slice(1)) {
      const m = /^\s+(-?[\d.]+)\s+(?:\d+\s+)?(.+)$/.exec(line);
      if (!m) break;
      if (!m[2].startsWith("\\")) statements.push({ sql: m[2].trim(), ms: Number(m[1]) });
    }
  }
  return {
    tps: num(/^tps = ([\d.]+) \(without initial connection time\)/m),
    transactions: num(/^number of transactions actually processed: (\d+)/m),
    failed: Number.isNaN(num(/^number of failed transactions: (\d+)/m))
      ? 0
      : num(/^number of failed transactions: (\d+)/m),
    latencyMs: num(/^latency average = ([\d.]+) ms/m),
    statements,
  };
}

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds of a process's reaped children (cutime + cstime of /proc/<pid>/stat). */
async function childrenCpuSeconds(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name: state is field 3; cutime and cstime are fields 16 and 17.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS_PER_SECOND;
}

/** CPU seconds a process has used itself (utime + stime of /proc/<pid>/stat). */
async function ownCpuSeconds(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

/** The children's user + system seconds of bash's `times` (its second line). */
export function parseTimes(stderr: string): number {
  const lines = stderr.trim().split("\n");
  const last = lines[lines.length - 1] ?? "";
  let total = 0;
  for (const m of last.matchAll(/(\d+)m([\d.]+)s/g)) total += Number(m[1]) * 60 + Number(m[2]);
  return total;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Per function over the runs that tracked them: µs per call and calls per transaction (medians). */
function functionSummary(
  runs: PgbenchRun[],
): Array<{ name: string; callsPerTx: number; totalUsPerCall: number; selfUsPerCall: number }> | undefined {
  const tracked = runs.filter((r) => r.functions && r.functions.length > 0);
  if (tracked.length === 0) return undefined;
  const names = [...new Set(tracked.flatMap((r) => (r.functions ?? []).map((f) => f.name)))];
  return (
    names
      .map((name) => {
        const per = tracked
          .map((r) => ({ r, f: (r.functions ?? []).find((x) => x.name === name) }))
          .filter((x) => x.f && x.f.calls > 0);
        const med = (g: (x: (typeof per)[number]) => number): number => stats(per.map(g)).median;
        return {
          name,
          callsPerTx: med((x) => (x.f?.calls ?? 0) / x.r.transactions),
          totalUsPerCall: med((x) => ((x.f?.totalMs ?? 0) * 1000) / (x.f?.calls ?? 1)),
          selfUsPerCall: med((x) => ((x.f?.selfMs ?? 0) * 1000) / (x.f?.calls ?? 1)),
        };
      })
      // Not the calls made once per run (the operation begun before a run), only per transaction.
      .filter((f) => f.callsPerTx >= 0.5)
  );
}

// ---------------------------------------------------------------------------------------------
// The dormant trigger, per row

/** Bulk: one statement over all rows (per-row cost). Single: one statement per row, in a DO loop. */
type ProbeKind = "insert" | "update" | "delete" | "insert-1" | "update-1" | "delete-1";

interface DormantResult {
  rows: number;
  /** Statements of the single-row kinds (per-statement figures). */
  singleRowStatements: number;
  rounds: number;
  method: string;
  kinds: Array<{
    kind: ProbeKind;
    baselineUsPerRow: Stats;
    idleUsPerRow: Stats;
    /** Difference of the medians (per row for the bulk kinds, per statement for the single-row ones). */
    extraUsPerRow: number;
    baselineWallUsPerRow: Stats;
    idleWallUsPerRow: Stats;
  }>;
}

/**
 * Bulk INSERT, UPDATE and DELETE of `rows` rows of a pgbench_accounts-shaped table, each in a
 * transaction rolled back, in the baseline database and in the idle one (capture attached by the event
 * trigger, no operation): CPU time of the backend (/proc/<pid>/stat) per row. Interleaved; the table
 * vacuumed before every statement.
 */
async function dormantProbe(
  dsns: { baseline: string; idle: string },
  rows: number,
  rounds: number,
): Promise<DormantResult> {
  const single = Math.max(1, Math.floor(rows / 2));
  const loop = (body: string): string =>
    `DO $do$ BEGIN FOR i IN 1 .. ${single} LOOP ${body}; END LOOP; END $do$`;
  const statements: Record<ProbeKind, string> = {
    insert: `INSERT INTO bench_probe SELECT g, g % 10, 0, '' FROM generate_series(${rows + 1}, ${2 * rows}) g`,
    update: "UPDATE bench_probe SET balance = balance + 1",
    delete: "DELETE FROM bench_probe",
    "insert-1": loop(`INSERT INTO bench_probe VALUES (${rows} + i, i % 10, 0, '')`),
    "update-1": loop("UPDATE bench_probe SET balance = balance + 1 WHERE id = i"),
    "delete-1": loop("DELETE FROM bench_probe WHERE id = i"),
  };
  const perStatement = (k: ProbeKind): number => (k.endsWith("-1") ? single : rows);
  const kinds: ProbeKind[] = ["insert", "update", "delete", "insert-1", "update-1", "delete-1"];
  const samples = { baseline: new Map<ProbeKind, number[]>(), idle: new Map<ProbeKind, number[]>() };
  const wall = { baseline: new Map<ProbeKind, number[]>(), idle: new Map<ProbeKind, number[]>() };
  const put = (m: Map<ProbeKind, number[]>, k: ProbeKind, v: number): void =>
    void m.set(k, [...(m.get(k) ?? []), v]);
  await withClient(dsns.baseline, async (base) =>
    withClient(dsns.idle, async (idle) => {
      const sessions = { baseline: base, idle };
      for (const db of Object.values(sessions)) {
        await db.query(
          "CREATE TABLE bench_probe (id integer PRIMARY KEY, bid integer NOT NULL, balance integer NOT NULL, filler char(84))",
        );
        await db.query(`INSERT INTO bench_probe SELECT g, g % 10, 0, '' FROM generate_series(1, ${rows}) g`);
      }
      const attached = await idle.query<{ n: string }>(
        "SELECT count(*) AS n FROM pg_trigger WHERE tgrelid = 'bench_probe'::regclass AND tgname = $1",
        [CAPTURE_TRIGGER],
      );
      if (Number(attached.rows[0].n) !== 1)
        throw new Error("no capture trigger on bench_probe in the idle database");
      const pids = {
        baseline: Number((await base.query<{ p: number }>("SELECT pg_backend_pid() AS p")).rows[0].p),
        idle: Number((await idle.query<{ p: number }>("SELECT pg_backend_pid() AS p")).rows[0].p),
      };
      for (let r = -1; r < rounds; r++) {
        for (const kind of kinds) {
          const order =
            (r + kinds.indexOf(kind)) % 2 === 0
              ? (["baseline", "idle"] as const)
              : (["idle", "baseline"] as const);
          for (const which of order) {
            const db = sessions[which];
            await db.query("VACUUM bench_probe");
            await db.query("BEGIN");
            const cpu0 = await ownCpuSeconds(pids[which]);
            const t = await timed(() => db.query(statements[kind]));
            const cpu1 = await ownCpuSeconds(pids[which]);
            await db.query("ROLLBACK");
            if (r < 0) continue; // warm-up
            put(samples[which], kind, ((cpu1 - cpu0) * 1e6) / perStatement(kind));
            put(wall[which], kind, (t.ms * 1000) / perStatement(kind));
          }
        }
      }
    }),
  );
  return {
    rows,
    singleRowStatements: single,
    rounds,
    method:
      "bulk statements on a 4-column table (integer primary key, 84-character filler) in the baseline and the " +
      "idle database, one session each, each statement in a transaction rolled back, the table vacuumed first; " +
      "and single-row statements by primary key in a DO loop (per statement: the executor set up for each); " +
      "one warm-up round, then interleaved rounds; backend CPU time from /proc/<pid>/stat (10 ms ticks)",
    kinds: kinds.map((kind) => {
      const b = stats(samples.baseline.get(kind) ?? []);
      const i = stats(samples.idle.get(kind) ?? []);
      return {
        kind,
        baselineUsPerRow: b,
        idleUsPerRow: i,
        extraUsPerRow: i.median - b.median,
        baselineWallUsPerRow: stats(wall.baseline.get(kind) ?? []),
        idleWallUsPerRow: stats(wall.idle.get(kind) ?? []),
      };
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Undo fixture

type UndoKind = "insert" | "delete" | "update";
const UNDO_KINDS: UndoKind[] = ["insert", "delete", "update"];
const UNDO_DB = "bench_u_undo";
const PARTNERS = 1000;
const BACKGROUND_ROWS = 50_000;

const UNDO_SCHEMA_SQL = `
CREATE TABLE bench_partner (
    id serial PRIMARY KEY,
    name varchar NOT NULL,
    email varchar,
    active boolean DEFAULT true,
    create_date timestamp without time zone
);
CREATE TABLE bench_move_line (
    id serial PRIMARY KEY,
    partner_id integer NOT NULL REFERENCES bench_partner (id) ON DELETE RESTRICT,
    name varchar NOT NULL,
    ref varchar,
    quantity numeric NOT NULL DEFAULT 1,
    price_unit numeric(14, 2),
    balance numeric,
    date date,
    state varchar,
    active boolean DEFAULT true,
    note text,
    create_date timestamp without time zone,
    write_date timestamp without time zone
);
CREATE INDEX bench_move_line_partner_id ON bench_move_line (partner_id);
CREATE INDEX bench_move_line_date ON bench_move_line (date);
`;

/** Inserts lines g = $1..$2 (ids from the serial). */
const INSERT_LINES_SQL = `
INSERT INTO bench_move_line (partner_id, name, ref, quantity, price_unit, balance, date, state, active, note,
                             create_date, write_date)
SELECT 1 + g % ${PARTNERS}, 'Line ' || g, 'INV/2026/' || lpad(g::text, 8, '0'), 1 + g % 17,
       round((g % 997) * 1.37, 2), round((1 + g % 17) * (g % 997) * 1.37, 2), date '2026-01-01' + g % 365,
       (ARRAY['draft', 'posted', 'cancel'])[1 + g % 3], g % 11 <> 0, 'Imported by the AI assistant, batch ' || (g / 100),
       localtimestamp, localtimestamp
FROM generate_series($1::int, $2::int) AS g`;

function undoStatement(kind: UndoKind, rows: number): { sql: string; params: unknown[] } {
  switch (kind) {
    case "insert":
      return { sql: INSERT_LINES_SQL, params: [1_000_001, 1_000_000 + rows] };
    case "delete":
      return { sql: "DELETE FROM bench_move_line WHERE id BETWEEN 1 AND $1", params: [rows] };
    case "update":
      return {
        sql:
          "UPDATE bench_move_line SET quantity = quantity + 1, balance = balance + price_unit, state = 'posted', " +
          "note = note || ' (revised)', write_date = localtimestamp WHERE id BETWEEN 1 AND $1",
        params: [rows],
      };
  }
}

interface UndoSample {
  kind: UndoKind;
  round: number;
  operationId: string;
  /** The write statement with capture (inside its operation), and without (no operation; rolled back). */
  forwardCapturedMs: number;
  forwardPlainMs: number;
  /** COMMIT of the operation's transaction. */
  commitMs: number;
  changeRows: number;
  /** Growth of loomworks_undo.change_log from the operation's rows: total, heap, indexes. */
  changeBytes: { total: number; heap: number; indexes: number; toast: number };
  /** undo_operation(op, dry_run => true) in a transaction rolled back. */
  dryRunMs: number;
  /** BEGIN; SELECT undo_operation(op); COMMIT as the tenant role. */
  undoMs: number;
  undoStatementMs: number;
  undoCommitMs: number;
  restored: UndoResult["restored"];
  applied: boolean;
  conflicts: number;
  load: number[];
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const {
    rounds,
    seconds,
    "warmup-seconds": warmupSeconds,
    clients,
    threads,
    scale,
    "profile-rounds": profileRounds,
    "profile-seconds": profileSeconds,
    "profile-clients": profileClientsFlag,
    "session-rounds": sessionRounds,
    "session-transactions": sessionTransactions,
    "probe-rounds": probeRounds,
    "probe-rows": probeRowsFlag,
    "undo-rounds": undoRounds,
    "undo-rows": undoRows,
  } = intFlags(process.argv.slice(2), {
    rounds: 8,
    seconds: 8,
    "warmup-seconds": 3,
    clients: 4,
    threads: 2,
    scale: 10,
    "profile-rounds": 3,
    "profile-seconds": 5,
    "profile-clients": 1,
    "probe-rounds": 3,
    "probe-rows": 100_000,
    "undo-rounds": 5,
    "undo-rows": 10_000,
    "session-rounds": 5,
    "session-transactions": 500,
  });
  const profileClients = Math.max(1, profileClientsFlag);
  const probeRows = Math.max(1, probeRowsFlag);
  if (undoRows > BACKGROUND_ROWS) throw new Error(`--undo-rows is limited to ${BACKGROUND_ROWS}`);
  const machine = machineInfo();
  const started = now();
  log(
    `load ${machine.load.join(" ")} on ${machine.nproc} cores; pgbench ${rounds} rounds × ${MAIN.length} ` +
      `scenarios × ${seconds} s (-c ${clients} -j ${threads}, scale ${scale}); profile ${profileRounds} rounds; ` +
      `undo ${undoRounds} rounds of ${undoRows} rows`,
  );

  const stateDir = await makeStateDir("loomworks-bench-undo-");
  const spec: LocalClusterSpec = {
    stateDir,
    // A random start: several benchmarks may look for a port at the same moment.
    port: await findFreePort(26_432 + randomInt(2000)),
    archiveTimeoutSeconds: 60,
    superuserPassword: randomBytes(24).toString("base64url"),
    stanza: "bench",
    retentionFull: 1,
  };
  const ownerPassword = randomBytes(24).toString("base64url");
  const ownerDsn = (database: string): string =>
    adminDsn({ host: LOCAL_HOST, port: spec.port, user: OWNER, password: ownerPassword, database });
  try {
    const cluster = await timed(() => ensureCluster(spec, (m) => log(`cluster: ${m}`)));
    const superDsn = localAdminDsn(spec);
    const postmasterPid = Number(
      (await fs.readFile(path.join(localClusterLayout(spec).paths.dataDir, "postmaster.pid"), "utf8")).split(
        "\n",
      )[0],
    );
    const superIn = (database: string): string => dsnWithDatabase(superDsn, database);

    const result = await withClient(superDsn, async (admin) => {
      const setting = async (name: string): Promise<string> =>
        (await admin.query<{ v: string }>("SELECT current_setting($1) AS v", [name])).rows[0].v;
      const postgres = await setting("server_version");
      const settings: Record<string, string> = {};
      for (const name of [
        "shared_buffers",
        "synchronous_commit",
        "fsync",
        "wal_compression",
        "full_page_writes",
        "archive_mode",
        "max_wal_size",
      ])
        settings[name] = await setting(name);
      await admin.query(`CREATE ROLE ${quoteIdent(OWNER)} LOGIN ${passwordClause(ownerPassword)}`);

      // -- databases
      const setupStart = now();
      const guardAndLimit = async (database: string): Promise<void> => {
        await withClient(superIn(database), async (db) => {
          await installGuards(db);
          await writeQuotaLimits(db, {
            subdomain: "bench",
            tier: "bench",
            limits: { maxUsers: 1000, maxStorageGb: 1000, maxAiOperationsDaily: MAX_AI_OPERATIONS },
          });
        });
      };
      const pgbenchEnv = (database: string): NodeJS.ProcessEnv => ({
        PATH: process.env.PATH,
        PGAPPNAME: "loomworks-bench",
        ...dsnToPgEnv(ownerDsn(database)),
      });
      const initPgbench = async (database: string): Promise<void> => {
        const r = await runCommand(pgBin("pgbench"), ["-i", "-q", "-s", String(scale), "-I", "dtGvp"], {
          env: pgbenchEnv(database),
          timeoutMs: 30 * 60_000,
        });
        if (r.code !== 0) throw new Error(`pgbench -i (${database}) failed: ${r.stderr.trim()}`);
        await withClient(ownerDsn(database), (db) =>
          db.query(
            "ALTER TABLE pgbench_history ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
          ),
        );
      };
      // pgbench -i once, as the tenant role; every other database is a FILE_COPY copy of it (identical
      // data files), guards installed afterwards (installGuards attaches capture to the tables).
      const base = SCENARIOS.baseline.database;
      await admin.query(`CREATE DATABASE ${quoteIdent(base)} OWNER ${quoteIdent(OWNER)}`);
      await initPgbench(base);
      const wanted = new Set<ScenarioName>([...MAIN, ...(profileRounds > 0 ? PROFILE : [])]);
      const captureIn = async (database: string) =>
        withClient(superIn(database), async (db) => {
          const g = await readGuards(db);
          const t = await db.query<{ rel: string; args: string }>(
            `SELECT tgrelid::regclass::text AS rel, encode(tgargs, 'escape') AS args FROM pg_trigger
             WHERE tgname = $1 ORDER BY 1`,
            [CAPTURE_TRIGGER],
          );
          return {
            capturedTables: g.capturedTables,
            uncaptured: g.uncapturedTables,
            triggers: t.rows.map((r) => `${r.rel}(${r.args.replace(/\\000/g, ",").replace(/,$/, "")})`),
          };
        });
      let capture: Awaited<ReturnType<typeof captureIn>> | undefined;
      for (const name of wanted) {
        const sc = SCENARIOS[name];
        if (sc.database === base) continue;
        await admin.query(
          `CREATE DATABASE ${quoteIdent(sc.database)} TEMPLATE ${quoteIdent(base)} OWNER ${quoteIdent(OWNER)} STRATEGY FILE_COPY`,
        );
        if (sc.guards) {
          await guardAndLimit(sc.database);
          const c = await captureIn(sc.database);
          if (c.uncaptured.length > 0 || c.capturedTables < 4)
            throw new Error(
              `capture not attached to every pgbench table in ${sc.database}: ${JSON.stringify(c)}`,
            );
          capture ??= c;
        }
        await withClient(superIn(sc.database), async (db) => {
          for (const sql of sc.alter ?? []) await db.query(sql);
          if (sc.track)
            await db.query(`ALTER DATABASE ${quoteIdent(sc.database)} SET track_functions = 'pl'`);
        });
      }
      if (!capture) throw new Error("no capturing scenario");
      log(`capture: ${capture.triggers.join(" ")}`);
      const dbBytes = Number(
        (await admin.query<{ b: string }>("SELECT pg_database_size($1) AS b", [base])).rows[0].b,
      );
      const setupMs = now() - setupStart;
      log(
        `pgbench databases ready in ${(setupMs / 1000).toFixed(1)} s (${(dbBytes / 1e6).toFixed(0)} MB each)`,
      );

      // -- pgbench runs
      const scriptDir = path.join(stateDir, "scripts");
      await fs.mkdir(scriptDir, { recursive: true });
      const scripts: Partial<Record<ScenarioName, string>> = {};
      for (const name of wanted) scripts[name] = tpcbScript(scale, SCENARIOS[name].prefix(":op-id"));

      const walNow = async (): Promise<{ lsn: string; records: number; fpi: number }> => {
        const r = await admin.query<{ l: string; records: string; fpi: string }>(
          "SELECT pg_current_wal_lsn()::text AS l, wal_records AS records, wal_fpi AS fpi FROM pg_stat_wal",
        );
        return { lsn: r.rows[0].l, records: Number(r.rows[0].records), fpi: Number(r.rows[0].fpi) };
      };
      const runOnce = async (
        name: ScenarioName,
        round: number,
        secs: number,
        c: number,
        j: number,
      ): Promise<PgbenchRun> => {
        const sc = SCENARIOS[name];
        let opId = "";
        await withClient(superIn(sc.database), async (db) => {
          await db.query("TRUNCATE pgbench_history");
          if (sc.guards) await db.query(`TRUNCATE ${UNDO_SCHEMA}.change_log, ${UNDO_SCHEMA}.operation_log`);
          await db.query(
            "VACUUM (ANALYZE) pgbench_branches, pgbench_tellers, pgbench_accounts, pgbench_history",
          );
          if (sc.track) await db.query("SELECT pg_stat_reset()");
        });
        if (sc.oneOperation) {
          opId = await withClient(ownerDsn(sc.database), async (db) => {
            await db.query("BEGIN");
            const id = await beginOperation(db, "bench", "write", "one operation for a whole pgbench run");
            await db.query("COMMIT");
            return id;
          });
        }
        const file = path.join(scriptDir, `${name}.sql`);
        await fs.writeFile(file, tpcbScript(scale, sc.prefix(opId)));
        await settle(admin);
        const walBefore = await walNow();
        const cpuBefore = await childrenCpuSeconds(postmasterPid);
        // Through bash for `times`: pgbench's own CPU time.
        const r = await runCommand(
          "bash",
          [
            "-c",
            '"$0" "$@"; rc=$?; times >&2; exit $rc',
            pgBin("pgbench"),
            ...["-n", "-r", "-c", String(c), "-j", String(j), "-T", String(secs), "-f", file],
          ],
          { env: pgbenchEnv(sc.database), timeoutMs: (secs + 300) * 1000 },
        );
        const walAfter = await walNow();
        // pgbench's backends exit after it; wait until the postmaster has reaped them.
        for (let i = 0; i < 100; i++) {
          const n = await admin.query<{ n: string }>(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
            [sc.database],
          );
          if (Number(n.rows[0].n) === 0) break;
          await sleep(50);
        }
        await sleep(100);
        const cpuAfter = await childrenCpuSeconds(postmasterPid);
        const wal = await admin.query<{ b: string }>("SELECT pg_wal_lsn_diff($1, $2) AS b", [
          walAfter.lsn,
          walBefore.lsn,
        ]);
        if (r.code !== 0) throw new Error(`pgbench (${name}) failed: ${r.stderr.trim()}\n${r.stdout.trim()}`);
        const parsed = parsePgbench(r.stdout);
        const run: PgbenchRun = {
          scenario: name,
          round,
          ...parsed,
          serverCpuUsPerTx: ((cpuAfter - cpuBefore) * 1e6) / parsed.transactions,
          clientCpuUsPerTx: (parseTimes(r.stderr) * 1e6) / parsed.transactions,
          walBytes: Number(wal.rows[0].b),
          walRecords: walAfter.records - walBefore.records,
          walFpi: walAfter.fpi - walBefore.fpi,
          load: loadNow(),
        };
        if (sc.track) {
          // pgbench's backends have exited, so their function counts are flushed.
          const f = await withClient(superIn(sc.database), (db) =>
            db.query<{ name: string; calls: string; total: number; self: number }>(
              `SELECT schemaname || '.' || funcname AS name, calls, total_time AS total, self_time AS self
               FROM pg_stat_user_functions ORDER BY total_time DESC`,
            ),
          );
          run.functions = f.rows.map((x) => ({
            name: x.name,
            calls: Number(x.calls),
            totalMs: Number(x.total),
            selfMs: Number(x.self),
          }));
        }
        if (sc.guards) {
          const c = await withClient(superIn(sc.database), (db) =>
            db.query<{ n: string; b: string }>(
              `SELECT count(*) AS n, pg_total_relation_size('${UNDO_SCHEMA}.change_log') AS b FROM ${UNDO_SCHEMA}.change_log`,
            ),
          );
          run.changeRows = Number(c.rows[0].n);
          run.changeBytes = Number(c.rows[0].b);
        }
        return run;
      };

      const phase = async (
        names: ScenarioName[],
        n: number,
        secs: number,
        c: number,
        j: number,
        warmup: number,
        tag: string,
      ): Promise<{ runs: PgbenchRun[]; order: ScenarioName[][] }> => {
        const runs: PgbenchRun[] = [];
        const order: ScenarioName[][] = [];
        if (warmup > 0) {
          for (const name of names) {
            const w = await runOnce(name, -1, warmup, c, j);
            log(`${tag} warm-up ${name}: ${w.tps.toFixed(0)} tps`);
          }
        }
        for (let r = 0; r < n; r++) {
          // Rotate the order so drift (caches, checkpoints, other load) hits every scenario alike.
          const rotated = names.map((_, i) => names[(i + r) % names.length]);
          order.push(rotated);
          const line: string[] = [];
          for (const name of rotated) {
            const run = await runOnce(name, r, secs, c, j);
            runs.push(run);
            line.push(`${name} ${run.tps.toFixed(0)}`);
          }
          log(`${tag} round ${r + 1}/${n}: ${line.join(", ")} tps (load ${loadNow()[0]})`);
        }
        return { runs, order };
      };

      const summarize = (names: ScenarioName[], runs: PgbenchRun[], reference: ScenarioName) => {
        const refRuns = runs.filter((x) => x.scenario === reference);
        const refTps = stats(refRuns.map((x) => x.tps));
        const cpuPerTx = (xs: PgbenchRun[]): number =>
          stats(xs.map((x) => x.serverCpuUsPerTx + x.clientCpuUsPerTx)).median;
        return names.map((name) => {
          const own = runs.filter((x) => x.scenario === name);
          const tps = stats(own.map((x) => x.tps));
          const paired = own
            .map((x) => x.tps / (refRuns.find((b) => b.round === x.round)?.tps ?? NaN))
            .filter(Number.isFinite);
          const statementNames = own[0]?.statements.map((s) => s.sql) ?? [];
          const captured = own.filter((x) => x.changeRows !== undefined && x.changeRows > 0);
          return {
            name,
            label: SCENARIOS[name].label,
            database: SCENARIOS[name].database,
            tps,
            ratio: tps.median / refTps.median,
            /** CPU per transaction (server + pgbench) of the reference over this one's: the throughput
             * ratio a CPU-bound run would show on a machine doing nothing else. */
            cpuRatio: cpuPerTx(refRuns) / cpuPerTx(own),
            pairedRatio: stats(paired),
            latencyMs: stats(own.map((x) => x.latencyMs)),
            walBytesPerTx: stats(own.map((x) => x.walBytes / x.transactions)),
            serverCpuUsPerTx: stats(own.map((x) => x.serverCpuUsPerTx)),
            clientCpuUsPerTx: stats(own.map((x) => x.clientCpuUsPerTx)),
            walRecordsPerTx: stats(own.map((x) => x.walRecords / x.transactions)).median,
            walFpiPerTx: stats(own.map((x) => x.walFpi / x.transactions)).median,
            functions: functionSummary(own),
            failed: own.reduce((s, x) => s + x.failed, 0),
            statements: statementNames.map((sql, i) => ({
              sql,
              ms: stats(own.map((x) => x.statements[i]?.ms ?? NaN).filter(Number.isFinite)).median,
            })),
            changeLog:
              captured.length > 0
                ? {
                    rowsPerTx: stats(captured.map((x) => (x.changeRows as number) / x.transactions)).median,
                    bytesPerRow: stats(
                      captured.map((x) => (x.changeBytes as number) / (x.changeRows as number)),
                    ),
                  }
                : undefined,
          };
        });
      };

      log(`pgbench: ${rounds} rounds of ${MAIN.join(", ")}`);
      const pgbenchStart = now();
      const main = await phase(MAIN, rounds, seconds, clients, threads, warmupSeconds, "pgbench");
      const mainSummary = summarize(MAIN, main.runs, "baseline");
      const pgbenchMs = now() - pgbenchStart;

      // -- one session per database, the server's CPU per transaction (no client, no network)
      let session: SessionResult | undefined;
      if (sessionRounds > 0) {
        log(`one session: ${sessionRounds} rounds of ${sessionTransactions} transactions per mode`);
        const opDb = SCENARIOS.op.database;
        const sessionOp = await withClient(ownerDsn(opDb), async (db) => {
          await db.query("BEGIN");
          const id = await beginOperation(db, "bench", "write", "the set mode of the one-session phase");
          await db.query("COMMIT");
          return id;
        });
        session = await sessionPhase(
          { baseline: ownerDsn(SCENARIOS.baseline.database), guarded: ownerDsn(opDb) },
          sessionOp,
          sessionTransactions,
          sessionRounds,
          scale,
        );
        for (const m of session.modes)
          log(`  ${m.mode.padEnd(8)}: ${m.serverUsPerTx.median.toFixed(1)} µs of server CPU per transaction`);
      }

      // -- the dormant trigger per row: bulk statements in one session, backend CPU time
      let dormant: DormantResult | undefined;
      if (probeRounds > 0) {
        log(
          `dormant capture: ${probeRounds} rounds of ${probeRows}-row INSERT/UPDATE/DELETE and as many ` +
            "single-row statements (rolled back)",
        );
        dormant = await dormantProbe(
          { baseline: ownerDsn(SCENARIOS.baseline.database), idle: ownerDsn(SCENARIOS.idle.database) },
          probeRows,
          probeRounds,
        );
        for (const k of dormant.kinds)
          log(
            `  ${k.kind.padEnd(8)}: ${k.baselineUsPerRow.median.toFixed(2)} µs per ${k.kind.endsWith("-1") ? "statement" : "row"} ` +
              `without capture, ${k.idleUsPerRow.median.toFixed(2)} with the dormant trigger (+${k.extraUsPerRow.toFixed(2)})`,
          );
      }

      let profile:
        | {
            rounds: number;
            seconds: number;
            clients: number;
            order: ScenarioName[][];
            runs: PgbenchRun[];
            scenarios: typeof mainSummary;
          }
        | undefined;
      if (profileRounds > 0) {
        log(`profile: ${profileRounds} rounds of ${PROFILE.join(", ")}`);
        const p = await phase(
          PROFILE,
          profileRounds,
          profileSeconds,
          profileClients,
          Math.min(threads, profileClients),
          0,
          "profile",
        );
        profile = {
          rounds: profileRounds,
          seconds: profileSeconds,
          order: p.order,
          runs: p.runs,
          clients: profileClients,
          scenarios: summarize(PROFILE, p.runs, "baseline"),
        };
      }
      for (const name of wanted) {
        if (name !== "baseline")
          await admin.query(`DROP DATABASE ${quoteIdent(SCENARIOS[name].database)} WITH (FORCE)`);
      }

      // -- undo
      log(`undo: ${undoRounds} rounds of ${UNDO_KINDS.join(", ")} (${undoRows} rows)`);
      const undoStart = now();
      await admin.query(`CREATE DATABASE ${quoteIdent(UNDO_DB)} OWNER ${quoteIdent(OWNER)}`);
      await guardAndLimit(UNDO_DB);
      const undo = await withClient(ownerDsn(UNDO_DB), async (db) => {
        await db.query(UNDO_SCHEMA_SQL);
        await db.query(
          `INSERT INTO bench_partner (name, email, create_date)
           SELECT 'Partner ' || g, 'partner' || g || '@example.com', localtimestamp FROM generate_series(1, ${PARTNERS}) g`,
        );
        await db.query(INSERT_LINES_SQL, [1, BACKGROUND_ROWS]);
        await db.query("ANALYZE bench_partner, bench_move_line");
        const tableBytes = Number(
          (await db.query<{ b: string }>("SELECT pg_total_relation_size('bench_move_line') AS b")).rows[0].b,
        );
        return withClient(superIn(UNDO_DB), async (su) => {
          const g = await readGuards(su);
          if (g.uncapturedTables.length > 0) throw new Error(`uncaptured: ${g.uncapturedTables.join(", ")}`);
          const sizes = async (): Promise<{
            total: number;
            heap: number;
            indexes: number;
            toast: number;
          }> => {
            const r = await su.query<{ total: string; heap: string; indexes: string; toast: string }>(
              `SELECT pg_total_relation_size(c.oid) AS total, pg_relation_size(c.oid) AS heap,
                      pg_indexes_size(c.oid) AS indexes,
                      coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0) AS toast
               FROM pg_class c WHERE c.oid = '${UNDO_SCHEMA}.change_log'::regclass`,
            );
            const x = r.rows[0];
            return {
              total: Number(x.total),
              heap: Number(x.heap),
              indexes: Number(x.indexes),
              toast: Number(x.toast),
            };
          };
          const samples: UndoSample[] = [];
          for (let r = 0; r < undoRounds; r++) {
            // Every round from the same state: empty logs, table vacuumed.
            await su.query(`TRUNCATE ${UNDO_SCHEMA}.change_log, ${UNDO_SCHEMA}.operation_log`);
            await su.query("VACUUM (ANALYZE) bench_move_line, bench_partner");
            const kinds = UNDO_KINDS.map((_, i) => UNDO_KINDS[(i + r) % UNDO_KINDS.length]);
            const line: string[] = [];
            for (const kind of kinds) {
              const st = undoStatement(kind, undoRows);
              await settle(admin);
              await db.query("BEGIN");
              const plain = await timed(() => db.query(st.sql, st.params));
              await db.query("ROLLBACK");

              const before = await sizes();
              await settle(admin);
              await db.query("BEGIN");
              const opId = await beginOperation(db, "bench-undo", "write", `${kind} of ${undoRows} rows`);
              const captured = await timed(() => db.query(st.sql, st.params));
              const commit = await timed(() => db.query("COMMIT"));
              const after = await sizes();
              const changeRows = Number(
                (
                  await su.query<{ n: string }>(
                    `SELECT count(*) AS n FROM ${UNDO_SCHEMA}.change_log WHERE operation_id = $1`,
                    [opId],
                  )
                ).rows[0].n,
              );

              await settle(admin);
              await db.query("BEGIN");
              const dry = await timed(() => undoOperation(db, opId, { dryRun: true }));
              await db.query("ROLLBACK");

              await settle(admin);
              const t0 = now();
              await db.query("BEGIN");
              const stmt = await timed(() => undoOperation(db, opId));
              const undoCommit = await timed(() => db.query("COMMIT"));
              const undoMs = now() - t0;
              const res = stmt.value;
              samples.push({
                kind,
                round: r,
                operationId: opId,
                forwardCapturedMs: captured.ms,
                forwardPlainMs: plain.ms,
                commitMs: commit.ms,
                changeRows,
                changeBytes: {
                  total: after.total - before.total,
                  heap: after.heap - before.heap,
                  indexes: after.indexes - before.indexes,
                  toast: after.toast - before.toast,
                },
                dryRunMs: dry.ms,
                undoMs,
                undoStatementMs: stmt.ms,
                undoCommitMs: undoCommit.ms,
                restored: res.restored,
                applied: res.applied,
                conflicts: res.conflicts.length,
                load: loadNow(),
              });
              if (!res.applied)
                log(`  ${kind}: undo NOT applied: ${res.error ?? ""} ${res.conflicts.length} conflicts`);
              line.push(`${kind} ${undoMs.toFixed(0)} ms`);
            }
            log(`undo round ${r + 1}/${undoRounds}: ${line.join(", ")} (load ${loadNow()[0]})`);
          }
          return { tableBytes, samples };
        });
      });
      const undoKinds = UNDO_KINDS.map((kind) => {
        const s = undo.samples.filter((x) => x.kind === kind);
        return {
          kind,
          undoMs: stats(s.map((x) => x.undoMs)),
          undoStatementMs: stats(s.map((x) => x.undoStatementMs)),
          undoCommitMs: stats(s.map((x) => x.undoCommitMs)),
          dryRunMs: stats(s.map((x) => x.dryRunMs)),
          forwardCapturedMs: stats(s.map((x) => x.forwardCapturedMs)),
          forwardPlainMs: stats(s.map((x) => x.forwardPlainMs)),
          commitMs: stats(s.map((x) => x.commitMs)),
          bytesPerRow: stats(s.map((x) => x.changeBytes.total / x.changeRows)),
          heapBytesPerRow: stats(s.map((x) => x.changeBytes.heap / x.changeRows)),
          indexBytesPerRow: stats(s.map((x) => x.changeBytes.indexes / x.changeRows)),
          allApplied: s.every((x) => x.applied),
        };
      });
      const undoMs = now() - undoStart;

      const op = mainSummary.find((x) => x.name === "op");
      const idle = mainSummary.find((x) => x.name === "idle");
      const insertUndo = undoKinds.find((k) => k.kind === "insert");
      const worstUndo = Math.max(...undoKinds.map((k) => k.undoMs.median));
      return {
        benchmark: "undo",
        machine,
        loadEnd: loadNow(),
        postgres,
        settings,
        /** Which capture code was measured: the undo API's version and a hash of its installation SQL. */
        undoApi: {
          version: UNDO_API_VERSION,
          sqlSha256: createHash("sha256").update(undoApiSql()).digest("hex").slice(0, 16),
        },
        clusterSetupMs: cluster.ms,
        totalMs: now() - started,
        pgbench: {
          binary: pgBin("pgbench"),
          clients,
          threads,
          seconds,
          warmupSeconds,
          scale,
          rounds,
          databaseBytes: dbBytes,
          setupMs,
          ms: pgbenchMs,
          capture,
          method:
            "one database per scenario with identical data files (`pgbench -i` once, as the tenant role, in " +
            "the baseline database; the others FILE_COPY copies of it, guards installed afterwards); rounds " +
            "interleaved with the order rotating; before each run: history truncated, tables vacuumed, undo " +
            "logs truncated, CHECKPOINT and WAL archiver caught up; `pgbench -n -r` with a custom TPC-B-like " +
            "script, simple query protocol, connected as the database owner (non-superuser)",
          scripts,
          order: main.order,
          runs: main.runs,
          scenarios: mainSummary,
        },
        session,
        dormant,
        profile,
        undo: {
          database: UNDO_DB,
          rows: undoRows,
          rounds: undoRounds,
          backgroundRows: BACKGROUND_ROWS,
          partners: PARTNERS,
          tableBytes: undo.tableBytes,
          table:
            "bench_move_line: 13 columns (serial id, integer partner_id → bench_partner NOT NULL, varchar name/ref/" +
            "state, numeric quantity/balance, numeric(14,2) price_unit, date, boolean, text note, two timestamps), " +
            "3 indexes",
          method:
            "per round: undo logs truncated and table vacuumed, then the three kinds in rotating order; each: " +
            "the write without capture (no operation, rolled back), the write in its own operation (committed), " +
            "a dry run (rolled back), the undo (BEGIN; undo_operation; COMMIT); CHECKPOINT and WAL archiver " +
            "caught up before each timed step",
          ms: undoMs,
          samples: undo.samples,
          kinds: undoKinds,
        },
        goals: {
          opRatio: {
            goal: OP_RATIO_GOAL,
            value: op?.ratio ?? NaN,
            // Both ratios (bench/report.ts ratioGoal): a loaded machine moves tps far more than CPU time.
            met: (op?.ratio ?? 0) >= OP_RATIO_GOAL && (op?.cpuRatio ?? 0) >= OP_RATIO_GOAL,
            cpuRatio: op?.cpuRatio ?? NaN,
          },
          idleRatio: {
            goal: IDLE_RATIO_GOAL,
            value: idle?.ratio ?? NaN,
            met: (idle?.ratio ?? 0) >= IDLE_RATIO_GOAL && (idle?.cpuRatio ?? 0) >= IDLE_RATIO_GOAL,
            cpuRatio: idle?.cpuRatio ?? NaN,
          },
          undoMs: {
            goalMs: UNDO_GOAL_MS,
            valueMs: insertUndo?.undoMs.median ?? NaN,
            met: (insertUndo?.undoMs.median ?? Infinity) <= UNDO_GOAL_MS,
            worstKindMs: worstUndo,
            allKindsMet: worstUndo <= UNDO_GOAL_MS,
          },
        },
      };
    });

    const file = await writeResult("undo", result);
    const s = (x: Stats, unit: string): string =>
      `median ${x.median.toFixed(0)} ${unit}, min ${x.min.toFixed(0)}, max ${x.max.toFixed(0)}`;
    for (const sc of result.pgbench.scenarios) {
      log(
        `${sc.name.padEnd(8)} ${s(sc.tps, "tps")}; ratio ${sc.ratio.toFixed(3)} (paired median ` +
          `${sc.pairedRatio.median.toFixed(3)}); CPU/tx ${sc.serverCpuUsPerTx.median.toFixed(0)} + ` +
          `${sc.clientCpuUsPerTx.median.toFixed(0)} µs (ratio ${sc.cpuRatio.toFixed(3)}); WAL ${sc.walBytesPerTx.median.toFixed(0)} B/tx` +
          (sc.changeLog
            ? `; change_log ${sc.changeLog.bytesPerRow.median.toFixed(0)} B/row, ${sc.changeLog.rowsPerTx.toFixed(1)} rows/tx`
            : ""),
      );
    }
    for (const sc of result.profile?.scenarios ?? []) {
      const fn = (sc.functions ?? [])
        .map(
          (f) =>
            `${f.name.replace(/^loomworks_\w+\./, "")} ${f.totalUsPerCall.toFixed(1)} µs×${f.callsPerTx.toFixed(0)}`,
        )
        .join(", ");
      log(
        `profile ${sc.name.padEnd(15)} ${s(sc.tps, "tps")}; vs baseline ${sc.ratio.toFixed(3)}; server CPU/tx ` +
          `${sc.serverCpuUsPerTx.median.toFixed(0)} µs; ${fn}`,
      );
    }
    for (const k of result.undo.kinds) {
      log(
        `undo ${k.kind.padEnd(6)} ${s(k.undoMs, "ms")} (dry run ${k.dryRunMs.median.toFixed(0)} ms; write ` +
          `${k.forwardCapturedMs.median.toFixed(0)} ms captured vs ${k.forwardPlainMs.median.toFixed(0)} ms; ` +
          `${k.bytesPerRow.median.toFixed(0)} B/change row)`,
      );
    }
    const g = result.goals;
    log(
      `goals: op ratio ${g.opRatio.value.toFixed(3)} (>= ${g.opRatio.goal}: ${g.opRatio.met}); idle ratio ` +
        `${g.idleRatio.value.toFixed(3)} (>= ${g.idleRatio.goal}: ${g.idleRatio.met}); undo ${g.undoMs.valueMs.toFixed(0)} ms ` +
        `(<= ${g.undoMs.goalMs}: ${g.undoMs.met})`,
    );
    log(`wrote ${file} (${(result.totalMs / 60_000).toFixed(1)} min)`);
  } finally {
    await removeThrowawayCluster(spec, stateDir, log);
  }
}

runBenchmark(main);
