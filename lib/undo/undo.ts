/**
 * Typed wrappers of the undo SQL API (lib/undo/sql.ts) for the operator command, tests and
 * benchmarks. The ERP calls the SQL functions directly; these add nothing but types.
 */
import type { Client } from "pg";
import { UNDO_SCHEMA } from "./sql";

export type OperationKind = "write" | "destructive";
export type OnConflict = "abort" | "skip" | "force";
export type ConflictReason =
  "changed" | "deleted" | "key_taken" | "referenced" | "later_operation" | "parent_conflict";

export interface UndoConflict {
  /** Table name (schema-qualified unless in `public`). */
  table: string;
  /** Primary key of the row, e.g. `{ "id": 42 }`. */
  key: Record<string, unknown>;
  reason: ConflictReason;
  /** The row as the operation left it (null: the operation deleted it). */
  expected: Record<string, unknown> | null;
  /** The row now (null: no such row). */
  current: Record<string, unknown> | null;
  /** Later operations (still in effect) that changed the row; null: none (a change outside any operation). */
  operations: string[] | null;
  /** For `referenced`: rows (table, key) that reference the row to delete. */
  referenced_by?: Array<{ table: string; key: Record<string, unknown> | null }>;
  /** For `parent_conflict`: the row this one points at, which cannot come back. */
  parent?: { table: string; key: Record<string, unknown> | null };
}

export interface UndoResult {
  operation_id: string;
  applied: boolean;
  undo_operation_id: string | null;
  on_conflict: OnConflict;
  dry_run: boolean;
  /** Rows the undo plans to restore (conflicting ones included). */
  rows: number;
  /** What the undo does (or did): rows re-inserted, restored, deleted. */
  restored: { inserted: number; updated: number; deleted: number };
  skipped: number;
  conflicts: UndoConflict[];
  later_operations: string[];
  /** Per table (schema-qualified unless in `public`): every table the undo touches, and what it does there. */
  tables: Record<string, { rows: number; inserted: number; updated: number; deleted: number }>;
  /** More than one row: the ERP's undo button asks first (the operator command asks for any row). */
  confirmation_required: boolean;
  /** Set when the undo was refused after planning (nothing changed). */
  error?: string;
  hint?: string;
}

export interface OperationSummary {
  operation_id: string;
  tables: Record<string, { inserted: number; updated: number; deleted: number }>;
  inserted: number;
  updated: number;
  deleted: number;
}

export interface OperationRow {
  id: string;
  session_id: string | null;
  kind: "write" | "destructive" | "undo";
  description: string | null;
  started_at: Date;
  ended_at: Date | null;
  started_by: string;
  snapshot_id: string | null;
  undoes: string | null;
  undone: boolean;
  undone_by: string | null;
  summary: OperationSummary;
}

/** Starts an operation for the current transaction (the caller must be inside BEGIN ... COMMIT). */
export async function beginOperation(
  db: Client,
  sessionId: string,
  kind: OperationKind = "write",
  description?: string,
): Promise<string> {
  const r = await db.query<{ id: string }>(`SELECT ${UNDO_SCHEMA}.begin_operation($1, $2, $3) AS id`, [
    sessionId,
    kind,
    description ?? null,
  ]);
  return r.rows[0].id;
}

export async function useOperation(db: Client, operationId: string): Promise<void> {
  await db.query(`SELECT ${UNDO_SCHEMA}.use_operation($1)`, [operationId]);
}

export async function endOperation(db: Client, operationId: string): Promise<OperationSummary> {
  const r = await db.query<{ s: OperationSummary }>(`SELECT ${UNDO_SCHEMA}.end_operation($1) AS s`, [
    operationId,
  ]);
  return r.rows[0].s;
}

/** Runs `undo_operation` in the caller's transaction (or its own statement, when outside one). */
export async function undoOperation(
  db: Client,
  operationId: string,
  opts: { onConflict?: OnConflict; dryRun?: boolean } = {},
): Promise<UndoResult> {
  const r = await db.query<{ r: UndoResult }>(`SELECT ${UNDO_SCHEMA}.undo_operation($1, $2, $3) AS r`, [
    operationId,
    opts.onConflict ?? "abort",
    opts.dryRun ?? false,
  ]);
  return r.rows[0].r;
}

export async function listOperations(db: Client, sessionId?: string): Promise<OperationRow[]> {
  const r = await db.query<OperationRow>(`SELECT * FROM ${UNDO_SCHEMA}.operations($1)`, [sessionId ?? null]);
  return r.rows;
}

/**
 * The confirmation rule shared by the operator command and the ERP's undo button: an undo that
 * touches more than one row is shown and confirmed first.
 */
export function needsConfirmation(plan: Pick<UndoResult, "rows">): boolean {
  return plan.rows > 1;
}

/**
 * The operator command's rule: it changes another party's data, so it asks before any change
 * (`--yes` answers in advance).
 */
export function operatorMustConfirm(plan: Pick<UndoResult, "rows">): boolean {
  return plan.rows > 0;
}

/** The totals, then one line per table, then one per conflict: the plan as people read it. */
export function describePlan(plan: UndoResult): string[] {
  const lines = [
    `operation ${plan.operation_id}: ${plan.rows} row(s) to restore — ` +
      `${plan.restored.inserted} re-inserted, ${plan.restored.updated} restored, ${plan.restored.deleted} deleted`,
  ];
  for (const [table, t] of Object.entries(plan.tables ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(
      `  table ${table}: ${t.rows} row(s) — ${t.inserted} re-inserted, ${t.updated} restored, ${t.deleted} deleted`,
    );
  }
  for (const c of plan.conflicts) {
    const by = c.operations?.length
      ? `by operation(s) ${c.operations.join(", ")}`
      : c.reason === "referenced"
        ? `by ${(c.referenced_by ?? []).map((r) => `${r.table} ${JSON.stringify(r.key)}`).join(", ")}`
        : c.reason === "parent_conflict" && c.parent
          ? `its parent ${c.parent.table} ${JSON.stringify(c.parent.key)} cannot come back`
          : "outside any operation";
    lines.push(`  conflict: ${c.table} ${JSON.stringify(c.key)} ${c.reason.replace("_", " ")} (${by})`);
  }
  if (plan.later_operations.length > 0) {
    lines.push(`  later operations on the same rows: ${plan.later_operations.join(", ")}`);
  }
  if (plan.error) lines.push(`  refused: ${plan.error}`);
  return lines;
}
