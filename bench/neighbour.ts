/**
 * A neighbour tenant writing while something else runs on the cluster: what a CREATE DATABASE
 * costs everyone else. Its own database holds a table of ~25 MB; before each measured window the
 * neighbour dirties a quarter of it in shared buffers (as a busy tenant would between checkpoints),
 * then commits single-row updates (synchronous_commit on) in a loop until the window ends.
 */
import type { Client } from "pg";
import { quoteIdent, withPlainClient as withClient } from "../lib/pg/client";
import { dsnWithDatabase } from "../lib/pg/dsn";
import { now, stats, type Stats } from "./common";

export const NEIGHBOUR_DB = "bench_neighbour";
const ROWS = 100_000;

export interface NeighbourWindow {
  ms: number;
  commits: number;
  latenciesMs: number[];
}

export interface NeighbourSummary {
  windows: number;
  /** Commits per second, median over the windows. */
  commitsPerSecond: number;
  /** Every commit's latency, pooled over the windows. */
  latency: Stats;
}

export async function createNeighbour(admin: Client, adminDsn: string): Promise<void> {
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(NEIGHBOUR_DB)} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${quoteIdent(NEIGHBOUR_DB)} TEMPLATE template0`);
  await withClient(dsnWithDatabase(adminDsn, NEIGHBOUR_DB), (db) =>
    db.query(
      `CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL);
       INSERT INTO t SELECT g, 0, repeat('x', 200) FROM generate_series(1, ${ROWS}) g;`,
    ),
  );
}

/** Dirties a quarter of the neighbour's table (after the caller's CHECKPOINT, before the window). */
export async function dirtyNeighbour(adminDsn: string, round: number): Promise<void> {
  await withClient(dsnWithDatabase(adminDsn, NEIGHBOUR_DB), (db) =>
    db.query("UPDATE t SET v = v + 1 WHERE id % 4 = $1", [round % 4]),
  );
}

/**
 * Runs `work` while the neighbour commits single-row updates; the window is `work`'s duration
 * (or `idleMs` when `work` is undefined: the neighbour alone).
 */
export async function withNeighbour<T>(
  adminDsn: string,
  work: (() => Promise<T>) | undefined,
  idleMs = 1000,
): Promise<{ window: NeighbourWindow; value: T | undefined }> {
  return withClient(dsnWithDatabase(adminDsn, NEIGHBOUR_DB), async (db) => {
    let running = true;
    const latenciesMs: number[] = [];
    const loop = (async () => {
      while (running) {
        const t = now();
        await db.query("UPDATE t SET v = v + 1 WHERE id = $1", [1 + Math.floor(Math.random() * ROWS)]);
        latenciesMs.push(now() - t);
      }
    })();
    const start = now();
    let value: T | undefined;
    try {
      if (work) value = await work();
      else await new Promise<void>((r) => setTimeout(r, idleMs));
    } finally {
      running = false;
      await loop;
    }
    const ms = now() - start;
    return { window: { ms, commits: latenciesMs.length, latenciesMs }, value };
  });
}

export function summarize(windows: NeighbourWindow[]): NeighbourSummary {
  return {
    windows: windows.length,
    commitsPerSecond: stats(windows.map((w) => (w.commits * 1000) / w.ms)).median,
    latency: stats(windows.flatMap((w) => w.latenciesMs)),
  };
}
