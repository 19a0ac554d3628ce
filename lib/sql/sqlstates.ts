/**
 * The SQLSTATEs the guards raise, declared here only. Class `LW`: the ERP tells them apart from
 * PostgreSQL's own. The SQL files name them `{{sqlstate.<key>}}` (lib/sql/modules.ts passes these
 * values); TypeScript and the tests import them; docs/developer/undo-api.md lists them for people.
 */
export const GUARD_SQLSTATES = {
  /** The operation changed rows of a table without a primary key. */
  noPrimaryKey: "LWN01",
  /** The operation's log names a table that is not a captured user table of the tenant. */
  notCaptured: "LWN02",
  /** Unknown operation, already undone, ended, or of the wrong kind. */
  badOperation: "LWO01",
  /** An operation is already active in this transaction. */
  operationActive: "LWO02",
  /** Undoing would change rows the operation did not touch (cascades); nothing was changed. */
  sideEffects: "LWX01",
  /** The rows did not end in their recorded state after the undo; nothing was changed. */
  verification: "LWX02",
  /** TRUNCATE inside an operation. */
  truncate: "LWT01",
  /** Dropping or disabling one of the platform's triggers. */
  guardedTrigger: "LWG01",
  /** User limit reached (the res_users trigger). */
  userLimit: "LWU01",
  /** A table may not inherit from res_users (the quota DDL guard). */
  userTableInheritance: "LWU02",
  /** Daily AI-operation limit reached (take_ai_operation). */
  aiLimit: "LWA01",
  /** Daily pre_ai restore point limit reached (take_pre_ai_snapshot). */
  preAiLimit: "LWS01",
} as const;

export type GuardSqlstate = keyof typeof GUARD_SQLSTATES;

/** The renderer's values for the SQL files: `sqlstate.<key>` → the code. */
export function sqlstateValues(): Record<string, string> {
  return Object.fromEntries(Object.entries(GUARD_SQLSTATES).map(([k, v]) => [`sqlstate.${k}`, v]));
}
