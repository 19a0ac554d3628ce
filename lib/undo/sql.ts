/**
 * The undo API inside each tenant database (docs/architecture.md#undo, docs/configuration.md#sql-api):
 * schema `loomworks_undo`, its SQL in sql/undo/, installed by lib/guards/install.ts.
 *
 * Capture: an AFTER ROW trigger `loomworks_undo_capture` on every user table, with
 * `WHEN (current_setting('loomworks.operation', true) <> '')`, so a write outside an AI operation
 * costs one GUC lookup and queues nothing. Rows changed by `ON DELETE CASCADE` / `SET NULL` fire
 * the child tables' triggers in the same transaction and are captured like any other. The trigger's
 * arguments are the table's primary-key columns (the row key is stored with every change). An
 * event trigger attaches capture to tables created later and keeps the arguments right when a
 * primary key changes; another refuses to drop or disable the platform's triggers (superusers
 * excepted). TRUNCATE inside an operation is refused (row triggers do not see it).
 *
 * Privileges (v3; docs/operations/security.md): the tenant role may read the logs and call the
 * documented API; it cannot write any table of the schema. The log accepts rows only from the capture
 * path: capture() is SECURITY DEFINER (owned by the NOLOGIN guard owner role, search_path pinned)
 * and refuses to run from any trigger but the platform's capture trigger on a user table; the DDL
 * guard refuses a tenant's trigger that calls a platform function or carries a platform trigger's
 * name unless it is exactly what attach() makes. An undo refuses any planned row whose table is not
 * a captured user table (LWN02), runs with the caller's rights (the operator's undo connects as the
 * tenant), and is recorded as an undo only by close_undo(), which checks in the log that the rows
 * were brought back. Internals that write (prune, attach_all) are the platform's only; the rest the
 * tenant may reach only does what the documented API does. The daily AI-operation counter
 * (loomworks_quota.take_ai_operation) is not reachable by the tenant at all.
 *
 * `loomworks.operation` is set with set_config(..., is_local => true) by the public (SECURITY
 * INVOKER) wrappers: a function carrying a `SET` clause (as every SECURITY DEFINER function here
 * does) restores on exit every setting changed inside it, so the definer parts return the id and the
 * invoker wrapper sets it.
 */
import { quoteIdent } from "../pg/client";
import { GUARD_OWNER_ROLE } from "../pg/ownerRole";
import { renderSqlModule, renderSqlModuleRemoval, type SqlModule } from "../sql/modules";
import { GUARD_SQLSTATES } from "../sql/sqlstates";

export const UNDO_SCHEMA = "loomworks_undo";
export const UNDO_API_VERSION = 4;
/** The setting holding the current transaction's operation id. */
export const OPERATION_SETTING = "loomworks.operation";
export const CAPTURE_TRIGGER = "loomworks_undo_capture";
export const TRUNCATE_TRIGGER = "loomworks_undo_truncate";

/**
 * Tables never captured, whatever the stack says: notifications, logs, presence, outgoing mail
 * (sent mails are deleted, which would make every later undo report a conflict) and number
 * sequences (`ir_sequence`: an undo must never hand out an invoice number twice).
 */
export const DEFAULT_EXCLUDED_TABLES: readonly string[] = Object.freeze([
  "bus_bus",
  "bus_presence",
  "ir_logging",
  "ir_profile",
  "res_users_log",
  "ir_cron_trigger",
  "ir_cron_progress",
  "ir_sequence",
  "ir_sequence_date_range",
  "mail_mail",
]);

/** SQLSTATEs raised by the API (declared in lib/sql/sqlstates.ts). */
export const UNDO_ERRORS = {
  noPrimaryKey: GUARD_SQLSTATES.noPrimaryKey,
  notCaptured: GUARD_SQLSTATES.notCaptured,
  badOperation: GUARD_SQLSTATES.badOperation,
  operationActive: GUARD_SQLSTATES.operationActive,
  sideEffects: GUARD_SQLSTATES.sideEffects,
  verification: GUARD_SQLSTATES.verification,
  truncate: GUARD_SQLSTATES.truncate,
  guardedTrigger: GUARD_SQLSTATES.guardedTrigger,
} as const;

/**
 * The undo API as an SQL module (sql/undo/): tables, capture, operations and their undo; the
 * tenant's grants.
 * The installer runs it after the guard owner role and the snapshot API exist. `hstoreSchema`: where
 * the hstore extension is (HSTORE_SCHEMA_SQL), or the API's own schema, where it is then created.
 * Attaching capture to every table is a separate call (`SELECT loomworks_undo.attach_all()`), made by
 * the installer after this.
 */
export function undoApiModule(hstoreSchema: string = UNDO_SCHEMA): SqlModule {
  return {
    name: "undo",
    schema: UNDO_SCHEMA,
    version: UNDO_API_VERSION,
    owner: GUARD_OWNER_ROLE,
    definitions: ["tables.sql", "capture.sql", "operations.sql"],
    grants: ["grants.sql"],
    removal: ["remove.sql"],
    values: {
      hstore: quoteIdent(hstoreSchema),
      operation_setting: OPERATION_SETTING,
      capture_trigger: CAPTURE_TRIGGER,
      truncate_trigger: TRUNCATE_TRIGGER,
    },
  };
}

/** The installation script (see {@link undoApiModule}). */
export function undoApiSql(hstoreSchema: string = UNDO_SCHEMA): string {
  return renderSqlModule(undoApiModule(hstoreSchema));
}

/** Removal: event triggers, every capture trigger, the schema. */
export function removeUndoApiSql(): string {
  return renderSqlModuleRemoval(undoApiModule());
}

/** Where hstore lives in the database `db` is connected to (undefined: not installed). */
export const HSTORE_SCHEMA_SQL =
  "SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hstore'";
