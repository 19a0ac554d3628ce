/**
 * The shape of bench/restore.ts's result file: written by the benchmark, read by bench/report.ts.
 */
import type { RestoreTimings } from "../lib/restore/restore";
import type { Stats } from "./common";

/**
 * How restoreTenant was run: `overlapped` and `sequential` are the selective scratch restore with
 * that pipeline (lib/restore/pipeline.ts; `sequential` is the pipeline before, the baseline);
 * `pgbackrest` is the `pgbackrest restore --db-include` scratch with the default pipeline.
 * `selective` and `current` are in result files of earlier runs (one pipeline then).
 */
export type Method = "overlapped" | "sequential" | "pgbackrest" | "selective" | "current";
export type BaselineKind = "whole-cluster" | "db-include";

export interface LogLine {
  t: number;
  msg: string;
}

export interface RestoreSample {
  tenants: number;
  tenant: string;
  size: "large" | "small";
  method: Method;
  round: number;
  ok: boolean;
  error?: string;
  /** restoreTenant end to end, as the caller sees it. */
  wallMs: number;
  timings: RestoreTimings;
  /** The changed tables are back as at the snapshot. */
  verified: boolean;
  load: number[];
  lines: LogLine[];
}

export interface BaselineSample {
  tenants: number;
  kind: BaselineKind;
  round: number;
  ok: boolean;
  error?: string;
  parts: {
    archiveWaitMs?: number;
    pgbackrestMs?: number;
    recoveryMs?: number;
    /** CREATE DATABASE in the live cluster + pg_dump -Fc | pg_restore. */
    dumpRestoreMs?: number;
    cleanupMs?: number;
  };
  totalMs: number;
  /** Up to the data being in the live cluster (without removing the scratch directory). */
  toDataMs: number;
  /** The restored scratch data directory (before recovery). */
  scratchFiles?: number;
  scratchBytes?: number;
  verified: boolean;
  load: number[];
}

export interface SnapshotSeries {
  tenant: string;
  size: "large" | "small";
  databaseBytes: number;
  filestoreFiles: number;
  /** First create of the series (new pool, cold caches); not in the samples. */
  coldMs: number;
  samplesMs: number[];
  /** createSnapshot's own step timings, medians. */
  parts: Record<string, number>;
  stats: Stats;
}

export interface ClusterFacts {
  tenantDatabases: number;
  databases: number;
  databaseBytes: number;
  dataDirBytes: number;
  dataDirFiles: number;
  baseFiles: number;
  backup: { label: string; ms: number; sizeBytes?: number; repoBytes?: number };
}

export interface Phase {
  tenants: number;
  loadStart: number[];
  loadEnd: number[];
  cluster: ClusterFacts;
  snapshots: SnapshotSeries[];
  restores: RestoreSample[];
  baselines: BaselineSample[];
  restoreTarget: { large: string; small: string };
  ms: number;
}
