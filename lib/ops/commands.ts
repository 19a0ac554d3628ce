/**
 * The operator command's subcommands (infra/ops/cli.ts parses arguments and wires the terminal):
 *
 *   undo <tenant> <operation> [--on-conflict abort|skip|force] [--dry-run] [--yes]
 *   operations <tenant> [--session ID] [--limit N]
 *   quota <tenant>
 *
 * `undo` runs as the tenant: it connects with the tenant's own DSN (never the platform's superuser,
 * whose rights the tenant's triggers would get; SET ROLE would not do, tenant code can RESET it) and
 * refuses a connection whose role is a superuser or bypasses row-level security. It shows the plan
 * first, every table it will touch included, asks before changing anything (operatorMustConfirm:
 * any row; --yes skips the question), and never applies a plan other than the one shown: the plan is
 * computed again in the applying transaction and, if it differs (someone changed the rows
 * meanwhile), nothing is applied. The SQL refuses a planned row of a table that is not a captured
 * user table (LWN02), whatever the log says.
 */
import { Client } from "pg";
import { withClient } from "../pg/client";
import { readQuotaStatus } from "../quota/sql";
import { registryDsn } from "../registry/registry";
import { dsnWithDatabase } from "../pg/dsn";
import {
  describePlan,
  listOperations,
  operatorMustConfirm,
  undoOperation,
  type OnConflict,
  type UndoResult,
} from "../undo/undo";

/** Exit codes of `undo` (documented in docs/developer/undo-api.md). */
export const UNDO_EXIT = {
  /** Applied, every row restored. */
  applied: 0,
  error: 1,
  /** Conflicts with on_conflict abort, or the rows changed after the plan was shown: nothing changed. */
  conflicts: 2,
  /** Applied with conflicting rows skipped or forced. */
  appliedWithConflicts: 3,
  /** The operator did not confirm: nothing changed. */
  declined: 4,
} as const;

export interface CommandIo {
  out: (line: string) => void;
  /** Asks a yes/no question; resolves true only for an explicit yes. */
  confirm: (question: string) => Promise<boolean>;
}

async function tenantDatabase(adminDsn: string, subdomain: string): Promise<string> {
  return withClient(registryDsn(adminDsn), async (reg) => {
    const r = await reg.query<{ database_name: string }>(
      "SELECT database_name FROM tenants WHERE subdomain = $1",
      [subdomain],
    );
    if (!r.rows[0]) throw new Error(`no tenant "${subdomain}" in the platform registry`);
    return r.rows[0].database_name;
  });
}

async function withTenant<T>(
  adminDsn: string,
  subdomain: string,
  fn: (db: Client) => Promise<T>,
): Promise<T> {
  const database = await tenantDatabase(adminDsn, subdomain);
  return withClient(dsnWithDatabase(adminDsn, database), fn);
}

/**
 * A session as the tenant opens it: the tenant's own role, database and settings (not the
 * platform's pinned ones: the undo runs with the tenant's rights only, and the tenant's triggers,
 * fired by it, see the search path they were written for).
 */
async function withTenantSession<T>(tenantDsn: string, fn: (db: Client) => Promise<T>): Promise<T> {
  const db = new Client({ connectionString: tenantDsn, application_name: "loomworks-ops-undo" });
  db.on("error", () => {
    /* reported through the pending query instead */
  });
  await db.connect();
  try {
    return await fn(db);
  } finally {
    await db.end().catch(() => undefined);
  }
}

/**
 * Refuses a connection that is not the tenant's own kind of role: a superuser or a role bypassing
 * row-level security would lend its rights to the tenant's triggers.
 */
async function assertTenantSession(db: Client, subdomain: string): Promise<void> {
  const r = await db.query<{ role: string; privileged: boolean }>(
    `SELECT r.rolname AS role, r.rolsuper OR r.rolbypassrls OR r.rolcreaterole AS privileged
     FROM pg_catalog.pg_roles r WHERE r.rolname = pg_catalog.session_user()`,
  );
  const me = r.rows[0];
  if (!me || me.privileged) {
    throw new Error(
      `undo of tenant "${subdomain}" refused: the connection's role ${me?.role ?? "?"} is privileged; ` +
        `the undo runs as the tenant, with the tenant's own DSN (scripts/tenant-dsn.sh ${subdomain})`,
    );
  }
}

/** Same plan: same rows, same actions, same conflicting keys. */
function samePlan(a: UndoResult, b: UndoResult): boolean {
  const keys = (r: UndoResult) =>
    r.conflicts
      .map((c) => `${c.table}:${JSON.stringify(c.key)}:${c.reason}`)
      .sort()
      .join("|");
  return (
    a.rows === b.rows && JSON.stringify(a.restored) === JSON.stringify(b.restored) && keys(a) === keys(b)
  );
}

export interface UndoCommandOptions {
  onConflict: OnConflict;
  dryRun: boolean;
  yes: boolean;
}

/** `tenantDsn`: the tenant's own connection string (its role, its database). */
export async function undoCommand(
  tenantDsn: string,
  subdomain: string,
  operationId: string,
  opts: UndoCommandOptions,
  io: CommandIo,
): Promise<number> {
  return withTenantSession(tenantDsn, async (db) => {
    await assertTenantSession(db, subdomain);
    await db.query("BEGIN READ WRITE");
    let plan: UndoResult;
    try {
      plan = await undoOperation(db, operationId, { onConflict: opts.onConflict, dryRun: true });
    } finally {
      await db.query("ROLLBACK");
    }
    for (const line of describePlan(plan)) io.out(line);
    const conflicted = plan.conflicts.length > 0;
    if (conflicted && opts.onConflict === "abort") {
      io.out("nothing changed: conflicts (rerun with --on-conflict skip to restore the other rows)");
      return UNDO_EXIT.conflicts;
    }
    if (opts.dryRun) {
      io.out("dry run: nothing changed");
      return conflicted ? UNDO_EXIT.conflicts : UNDO_EXIT.applied;
    }
    if (operatorMustConfirm(plan) && !opts.yes) {
      const verb = opts.onConflict === "force" ? "overwrite" : "restore";
      if (!(await io.confirm(`${verb} ${plan.rows} row(s) of tenant ${subdomain}?`))) {
        io.out("not confirmed: nothing changed");
        return UNDO_EXIT.declined;
      }
    }
    await db.query("BEGIN READ WRITE");
    try {
      const done = await undoOperation(db, operationId, { onConflict: opts.onConflict });
      if (!samePlan(plan, done) || !done.applied) {
        await db.query("ROLLBACK");
        for (const line of describePlan(done)) io.out(line);
        io.out(
          done.applied
            ? "the rows changed after the plan was shown: nothing changed (run the command again)"
            : "nothing changed",
        );
        return UNDO_EXIT.conflicts;
      }
      await db.query("COMMIT");
      io.out(`undone by operation ${done.undo_operation_id} (undo that operation to redo)`);
      return conflicted ? UNDO_EXIT.appliedWithConflicts : UNDO_EXIT.applied;
    } catch (err) {
      await db.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
  });
}

export async function operationsCommand(
  adminDsn: string,
  subdomain: string,
  opts: { session?: string; limit: number },
  io: CommandIo,
): Promise<number> {
  return withTenant(adminDsn, subdomain, async (db) => {
    const rows = await listOperations(db, opts.session);
    for (const op of rows.slice(0, opts.limit)) {
      const s = op.summary;
      const state = op.undone ? `undone by ${op.undone_by}` : op.ended_at ? "ended" : "open";
      const what = op.kind === "undo" ? `undo of ${op.undoes}` : (op.description ?? "");
      io.out(
        `${op.started_at.toISOString()} ${op.id} ${op.kind.padEnd(11)} ${state.padEnd(12)} ` +
          `+${s.inserted} ~${s.updated} -${s.deleted} ${op.session_id ?? "-"} ${what}`,
      );
    }
    if (rows.length === 0) io.out(`no operations recorded for tenant ${subdomain}`);
    return 0;
  });
}

export async function quotaCommand(adminDsn: string, subdomain: string, io: CommandIo): Promise<number> {
  return withTenant(adminDsn, subdomain, async (db) => {
    io.out(JSON.stringify(await readQuotaStatus(db), null, 2));
    return 0;
  });
}
