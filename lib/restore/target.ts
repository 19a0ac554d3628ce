/**
 * Restore targets: parsing, the recovery window and the choice of backup set (pure, unit-tested in
 * test/unit/restore.test.ts), and {@link validateRestoreTarget}, the read-only check the
 * PitrRestore provider runs from `check()` so that `pulumi preview` fails before anything changes.
 *
 * Semantics of the targets:
 *  - `snapshot`: the state at the snapshot's restore point. Its LSN (the end of the restore-point
 *    record) is used as an exclusive LSN target: every WAL record that starts before it is replayed,
 *    nothing after it.
 *  - `lsn`: the same, for an LSN given by hand (e.g. `pg_current_wal_lsn()` read at some moment).
 *  - `time`: every transaction committed at or before the time (recovery_target_time, inclusive).
 *
 * The window is [start of the oldest backup in `pgbackrest info`, now]. The backup set is the newest
 * backup that ended before the target (pgBackRest 2.45 does not choose one for LSN targets).
 */
import type { Client } from "pg";
import { withClient } from "../pg/client";
import { clusterPaths } from "../pg/paths";
import {
  stanzaInfo,
  type PgBackRestBackup,
  type PgBackRestStanzaInfo,
  type PgBackRestTarget,
} from "../pg/pgbackrest";
import { backupsInRepo, repoUsable } from "../pg/repositories";
import { REGISTRY_DATABASE, registryDsn } from "../registry/registry";

export const RESTORE_KINDS = ["snapshot", "time", "lsn"] as const;
export type RestoreKind = (typeof RESTORE_KINDS)[number];

/** A tenant's `restore` entry: exactly one of the three. */
export interface RestoreTarget {
  snapshot?: string;
  time?: string;
  lsn?: string;
}

/** A refused target: the message names the tenant and the configuration key. */
export class RestoreTargetError extends Error {
  constructor(
    readonly subdomain: string,
    readonly key: string,
    readonly reason: string,
  ) {
    super(`tenant "${subdomain}": key "${key}": ${reason}`);
    this.name = "RestoreTargetError";
  }
}

export interface BackupRef {
  label: string;
  type: string;
  /** ISO times. */
  start: string;
  stop: string;
  startLsn: string;
  stopLsn: string;
}

export interface ResolvedRestoreTarget {
  kind: RestoreKind;
  /** `restore.snapshot` | `restore.time` | `restore.lsn` */
  key: string;
  /** pgBackRest `--type`. */
  type: "lsn" | "time";
  /** pgBackRest `--target`. */
  value: string;
  /** `--target-exclusive` (LSN targets). */
  exclusive: boolean;
  /** The target LSN (snapshot and lsn targets). */
  lsn?: string;
  /** The target time, ISO (time targets). */
  time?: string;
  /** Human-readable target for messages. */
  display: string;
  backup: BackupRef;
  /** Start of the recovery window (oldest backup's start), ISO. */
  windowStart: string;
  /** With an offsite repository: the repository the backup set is read from (`--repo`). */
  repo?: number;
  /** Why an earlier repository was passed over (repo1 lost, or the target before its window). */
  repoFallback?: string;
}

// ---------------------------------------------------------------------------------------------
// LSNs

const LSN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function isLsn(value: string): boolean {
  return LSN.test(value);
}

/** `X/Y` → a 64-bit position. */
export function parseLsn(value: string): bigint {
  const m = LSN.exec(value.trim());
  if (!m) throw new Error(`"${value}" is not an LSN (expected X/Y in hexadecimal, e.g. 0/5A3B2C10)`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

/** A 64-bit position → `X/Y` as PostgreSQL prints it (uppercase hex, no padding). */
export function formatLsn(value: bigint): string {
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

export function compareLsn(a: string, b: string): number {
  const x = parseLsn(a);
  const y = parseLsn(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// times

const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$/i;

/** Milliseconds since the epoch of an ISO 8601 timestamp with a zone; undefined when malformed. */
export function parseTargetTime(value: string): number | undefined {
  if (!ISO_WITH_ZONE.test(value.trim())) return undefined;
  const ms = Date.parse(value.trim().replace(" ", "T"));
  return Number.isNaN(ms) ? undefined : ms;
}

/** `YYYY-MM-DD HH:MM:SS.mmm+00`, the form handed to recovery_target_time. */
export function pgTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "+00");
}

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString();

// ---------------------------------------------------------------------------------------------
// planning (pure)

/** The kind and value of a target; throws a RestoreTargetError unless exactly one is set. */
export function targetKind(subdomain: string, target: RestoreTarget): { kind: RestoreKind; value: string } {
  const set = RESTORE_KINDS.filter((k) => target[k] !== undefined && target[k] !== null);
  if (set.length !== 1) {
    throw new RestoreTargetError(
      subdomain,
      "restore",
      `must name exactly one of ${RESTORE_KINDS.join(", ")}`,
    );
  }
  const kind = set[0];
  const value = target[kind];
  if (typeof value !== "string" || value.trim() === "") {
    throw new RestoreTargetError(subdomain, `restore.${kind}`, "must be a non-empty string");
  }
  return { kind, value: value.trim() };
}

/** Two targets name the same thing (and, for snapshots, the same LSN). */
export function sameTarget(a: RestoreTarget, b: RestoreTarget, lsnA?: string | null, lsnB?: string | null) {
  const norm = (t: RestoreTarget) =>
    JSON.stringify(RESTORE_KINDS.map((k) => (typeof t[k] === "string" ? t[k]?.trim() : null)));
  if (norm(a) !== norm(b)) return false;
  if (a.snapshot !== undefined && lsnA && lsnB) return compareLsn(lsnA, lsnB) === 0;
  return true;
}

function usableBackups(backups: readonly PgBackRestBackup[]): PgBackRestBackup[] {
  return backups.filter((b) => !b.error && b.lsn !== undefined);
}

function backupRef(b: PgBackRestBackup): BackupRef {
  return {
    label: b.label,
    type: b.type,
    start: iso(b.timestamp.start),
    stop: iso(b.timestamp.stop),
    startLsn: b.lsn?.start ?? "",
    stopLsn: b.lsn?.stop ?? "",
  };
}

export interface PlanInput {
  subdomain: string;
  target: RestoreTarget;
  /** The snapshot's LSN (snapshot targets). */
  snapshotLsn?: string;
  now: Date;
  /** The live cluster's `pg_current_wal_lsn()`. */
  currentLsn: string;
  backups: readonly PgBackRestBackup[];
}

/**
 * Resolves a target against the repository's backups: refuses targets outside
 * [oldest backup's start, now] and picks the newest backup that ended before the target.
 */
export function planRestoreTarget(p: PlanInput): ResolvedRestoreTarget {
  const { kind, value } = targetKind(p.subdomain, p.target);
  const key = `restore.${kind}`;
  const fail = (reason: string): never => {
    throw new RestoreTargetError(p.subdomain, key, reason);
  };
  const backups = usableBackups(p.backups);
  if (backups.length === 0)
    fail("the backup repository holds no backup yet, so there is nothing to restore from");
  const oldest = [...backups].sort((a, b) => a.timestamp.start - b.timestamp.start)[0];
  const windowStart = iso(oldest.timestamp.start);
  const oldestLsn = oldest.lsn?.start ?? "0/0";

  if (kind === "time") {
    const ms = parseTargetTime(value);
    if (ms === undefined)
      fail(`"${value}" is not an ISO 8601 timestamp with a time zone (e.g. 2026-11-26T10:00:00Z)`);
    const at = ms as number;
    const display = new Date(at).toISOString();
    if (at > p.now.getTime()) fail(`${display} is in the future (now ${p.now.toISOString()})`);
    if (at < oldest.timestamp.start * 1000) {
      fail(`${display} is before the recovery window, which starts at ${windowStart}`);
    }
    // Backup times are whole seconds (truncated): require the stop second to be over.
    const candidates = backups.filter((b) => (b.timestamp.stop + 1) * 1000 <= at);
    const chosen = candidates.sort((a, b) => a.timestamp.stop - b.timestamp.stop).at(-1);
    if (!chosen) {
      const first = [...backups].sort((a, b) => a.timestamp.stop - b.timestamp.stop)[0];
      fail(
        `${display} is inside the first backup of the recovery window (${first.label}, ${windowStart} to ` +
          `${iso(first.timestamp.stop)}); the earliest restorable time is ${iso(first.timestamp.stop + 1)}`,
      );
    }
    const b = chosen as PgBackRestBackup;
    return {
      kind,
      key,
      type: "time",
      value: pgTimestamp(at),
      exclusive: false,
      time: display,
      display,
      backup: backupRef(b),
      windowStart,
    };
  }

  let lsnText: string;
  let what: string;
  if (kind === "lsn") {
    if (!isLsn(value)) fail(`"${value}" is not an LSN (expected X/Y in hexadecimal, e.g. 0/5A3B2C10)`);
    lsnText = value;
    what = formatLsn(parseLsn(value));
  } else {
    if (!p.snapshotLsn) fail(`snapshot "${value}" has no recorded LSN (is the snapshot created?)`);
    if (!isLsn(p.snapshotLsn as string)) fail(`snapshot "${value}" has an invalid LSN "${p.snapshotLsn}"`);
    lsnText = p.snapshotLsn as string;
    what = `snapshot "${value}" (LSN ${formatLsn(parseLsn(lsnText))})`;
  }
  const lsn = parseLsn(lsnText);
  if (lsn > parseLsn(p.currentLsn)) {
    fail(`${what} is in the future (the cluster's current WAL position is ${p.currentLsn})`);
  }
  if (lsn < parseLsn(oldestLsn)) {
    fail(`${what} is before the recovery window, which starts at ${windowStart} (LSN ${oldestLsn})`);
  }
  const candidates = backups.filter((b) => parseLsn(b.lsn?.stop ?? "0/0") <= lsn);
  const chosen = candidates.sort((a, b) => compareLsn(a.lsn?.stop ?? "0/0", b.lsn?.stop ?? "0/0")).at(-1);
  if (!chosen) {
    const first = [...backups].sort((a, b) => a.timestamp.stop - b.timestamp.stop)[0];
    fail(
      `${what} is inside the first backup of the recovery window (${first.label}, LSN ${first.lsn?.start} to ` +
        `${first.lsn?.stop}); the earliest restorable LSN is ${first.lsn?.stop}`,
    );
  }
  const formatted = formatLsn(lsn);
  return {
    kind,
    key,
    type: "lsn",
    value: formatted,
    exclusive: true,
    lsn: formatted,
    display: kind === "lsn" ? formatted : what,
    backup: backupRef(chosen as PgBackRestBackup),
    windowStart,
  };
}

// ---------------------------------------------------------------------------------------------
// read-only validation against the live cluster and repository

export interface ValidateRestoreTargetOptions {
  /** Superuser DSN of the live cluster. */
  adminDsn: string;
  /** The local target's state directory (pgBackRest configuration under it). */
  stateDir: string;
  stanza: string;
  subdomain: string;
  target: RestoreTarget;
  /** The Snapshot resource's `lsn` output; looked up in the registry when absent. */
  snapshotLsn?: string;
  now?: Date;
}

/** The pgBackRest configuration and stanza of a local cluster under `stateDir`. */
export function pgbackrestTargetFor(stateDir: string, stanza: string): PgBackRestTarget {
  return { config: clusterPaths(stateDir).pgbackrestConf, stanza };
}

export interface SnapshotRecord {
  lsn: string;
  filestorePath: string | null;
  createdAt: Date;
}

/** A tenant's newest manual snapshot of that name in the registry (read-only; undefined when none). */
export async function findSnapshot(
  admin: Client,
  adminDsn: string,
  subdomain: string,
  name: string,
): Promise<SnapshotRecord | undefined> {
  const reg = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [REGISTRY_DATABASE]);
  if (!reg.rowCount) return undefined;
  return withClient(registryDsn(adminDsn), async (r) => {
    const t = await r.query<{ t: string | null }>("SELECT to_regclass('public.snapshots')::text AS t");
    if (!t.rows[0].t) return undefined;
    const rows = await r.query<{ lsn: string | null; filestore_path: string | null; created_at: Date }>(
      `SELECT lsn::text AS lsn, filestore_path, created_at FROM snapshots
       WHERE subdomain = $1 AND name = $2 AND lsn IS NOT NULL ORDER BY created_at DESC LIMIT 1`,
      [subdomain, name],
    );
    const row = rows.rows[0];
    return row?.lsn
      ? { lsn: row.lsn, filestorePath: row.filestore_path, createdAt: row.created_at }
      : undefined;
  });
}

/**
 * Resolves and checks a restore target without changing anything: reads `pgbackrest info` and the
 * live cluster's current WAL position (and the registry, for a snapshot whose LSN is not given).
 * Throws a RestoreTargetError naming the tenant and key when the target is outside the window.
 */
export async function validateRestoreTarget(
  opts: ValidateRestoreTargetOptions,
): Promise<ResolvedRestoreTarget> {
  const { kind, value } = targetKind(opts.subdomain, opts.target);
  const info = await stanzaInfo(pgbackrestTargetFor(opts.stateDir, opts.stanza));
  return withClient(opts.adminDsn, async (admin) => {
    const cur = await admin.query<{ lsn: string }>(
      "SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text AS lsn",
    );
    let snapshotLsn = opts.snapshotLsn;
    if (kind === "snapshot" && !snapshotLsn) {
      snapshotLsn = (await findSnapshot(admin, opts.adminDsn, opts.subdomain, value))?.lsn;
    }
    return planAcrossRepos(info, {
      subdomain: opts.subdomain,
      target: opts.target,
      snapshotLsn,
      now: opts.now ?? new Date(),
      currentLsn: cur.rows[0].lsn,
    });
  });
}

/**
 * With several repositories, the restore reads from one explicitly: the first (repo1 before the
 * offsite repo2) that is usable and whose backups reach the target; a lost or emptied repo1, or a
 * target older than its window (each repository keeps its own number of full backups), falls back
 * to the next. With one repository: planRestoreTarget over its backups, as always.
 */
export function planAcrossRepos(
  info: PgBackRestStanzaInfo,
  p: Omit<PlanInput, "backups">,
): ResolvedRestoreTarget {
  const repos = (info.repo ?? []).map((r) => r.key).sort((a, b) => a - b);
  if (repos.length <= 1) return planRestoreTarget({ ...p, backups: info.backup });
  const passed: string[] = [];
  let firstError: unknown;
  for (const repo of repos) {
    if (!repoUsable(info, repo)) {
      const status = info.repo?.find((r) => r.key === repo)?.status;
      passed.push(`repo${repo} is not usable (${status?.message ?? "unknown"})`);
      continue;
    }
    try {
      const planned = planRestoreTarget({ ...p, backups: backupsInRepo(info, repo) });
      return { ...planned, repo, ...(passed.length ? { repoFallback: passed.join("; ") } : {}) };
    } catch (err) {
      if (!(err instanceof RestoreTargetError)) throw err;
      firstError ??= err;
      passed.push(`repo${repo}: ${err.reason}`);
    }
  }
  if (firstError) throw firstError;
  throw new RestoreTargetError(
    p.subdomain,
    `restore.${targetKind(p.subdomain, p.target).kind}`,
    `no repository can be read: ${passed.join("; ")}`,
  );
}
