/**
 * bench/undo.ts, phase "one session": the pgbench transaction's statements in a DO block that commits
 * after each transaction, in one session per database, timed as the backend's CPU time
 * (/proc/<pid>/schedstat, nanoseconds). No network, no client, no other session: the server's work
 * per transaction with and without capture, which the machine's load moves far less than tps.
 * PL/pgSQL rebuilds its expressions once per transaction, so committing each one matters: a loop in
 * one transaction would hide that part of capture's cost.
 */
import { promises as fs } from "node:fs";
import { withPlainClient as withClient } from "../lib/pg/client";
import { OPERATION_SETTING, UNDO_SCHEMA } from "../lib/undo/sql";
import { loadNow, stats, type Stats } from "./common";

export type SessionMode = "baseline" | "idle" | "set" | "op";

export const SESSION_MODE_LABEL: Record<SessionMode, string> = {
  baseline: "no guards installed (no capture)",
  idle: "capture installed, no operation",
  set: "capture, the operation set by `set_config` (no begin_operation)",
  op: "begin_operation, then capture",
};

export interface SessionResult {
  transactions: number;
  rounds: number;
  method: string;
  modes: Array<{ mode: SessionMode; label: string; serverUsPerTx: Stats; load: number[][] }>;
}

async function backendCpuNs(pid: number): Promise<number> {
  return Number((await fs.readFile(`/proc/${pid}/schedstat`, "utf8")).split(" ")[0]);
}

/** The DO block of `n` TPC-B-like transactions, each committed, with `prefix` at its start. */
function block(n: number, scale: number, prefix: string): string {
  return (
    `DO $do$ DECLARE v_aid int; v_tid int; v_delta int; BEGIN FOR i IN 1 .. ${n} LOOP ` +
    `v_aid := 1 + (pg_catalog.random() * ${100_000 * scale - 1})::int; v_tid := 1 + (pg_catalog.random() * ${10 * scale - 1})::int; ` +
    `v_delta := (pg_catalog.random() * 10000)::int - 5000; ${prefix} ` +
    "UPDATE pgbench_accounts SET abalance = abalance + v_delta WHERE aid = v_aid; " +
    "PERFORM abalance FROM pgbench_accounts WHERE aid = v_aid; " +
    "UPDATE pgbench_tellers SET tbalance = tbalance + v_delta WHERE tid = v_tid; " +
    `UPDATE pgbench_branches SET bbalance = bbalance + v_delta WHERE bid = 1 + i % ${scale}; ` +
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (v_tid, 1, v_aid, v_delta, CURRENT_TIMESTAMP); " +
    "COMMIT; END LOOP; END $do$"
  );
}

const PREFIX: Record<SessionMode, (opId: string) => string> = {
  baseline: () => "",
  idle: () => "",
  set: (opId) => `PERFORM pg_catalog.set_config('${OPERATION_SETTING}', '${opId}', true);`,
  op: () => `PERFORM ${UNDO_SCHEMA}.begin_operation('bench', 'write', NULL);`,
};

/**
 * `rounds` interleaved rounds (order rotating) after a warm-up one, `n` transactions per mode and
 * round. `dsns.baseline`: a database without guards; `dsns.guarded`: one with them (the tenant role
 * connects to both). `opId`: an operation of the guarded database for the `set` mode.
 */
export async function sessionPhase(
  dsns: { baseline: string; guarded: string },
  opId: string,
  n: number,
  rounds: number,
  scale: number,
): Promise<SessionResult> {
  const modes: SessionMode[] = ["baseline", "idle", "set", "op"];
  const samples = new Map<SessionMode, number[]>(modes.map((m) => [m, []]));
  const loads = new Map<SessionMode, number[][]>(modes.map((m) => [m, []]));
  await withClient(dsns.baseline, (base) =>
    withClient(dsns.guarded, async (guarded) => {
      const pid = async (c: typeof base): Promise<number> =>
        Number((await c.query<{ p: number }>("SELECT pg_backend_pid() AS p")).rows[0].p);
      const pids = { base: await pid(base), guarded: await pid(guarded) };
      for (let r = -1; r < rounds; r++) {
        const order = modes.map((_, i) => modes[(i + Math.max(r, 0)) % modes.length]);
        for (const mode of order) {
          const c = mode === "baseline" ? base : guarded;
          const p = mode === "baseline" ? pids.base : pids.guarded;
          const t0 = await backendCpuNs(p);
          await c.query(block(n, scale, PREFIX[mode](opId)));
          const us = (await backendCpuNs(p)) - t0;
          if (r < 0) continue;
          samples.get(mode)?.push(us / 1000 / n);
          loads.get(mode)?.push(loadNow());
        }
      }
    }),
  );
  return {
    transactions: n,
    rounds,
    method:
      "the pgbench transaction's five statements in a DO block committing after each transaction, one session " +
      "per database (the tenant role), backend CPU time from /proc/<pid>/schedstat; one warm-up round, then " +
      "interleaved rounds with the order rotating",
    modes: modes.map((mode) => ({
      mode,
      label: SESSION_MODE_LABEL[mode],
      serverUsPerTx: stats(samples.get(mode) ?? []),
      load: loads.get(mode) ?? [],
    })),
  };
}
