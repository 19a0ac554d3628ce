/**
 * Sequences re-logged in a database's own WAL history and raised to the maximum of the integer
 * column that owns them. Used after a database is copied from a template (tenant provisioning),
 * once for tenants copied before that, and after a point-in-time restore.
 *
 * Why: `nextval` WAL-logs a sequence 32 values ahead and then hands out the reserved values
 * without writing WAL (`log_cnt` counts them down). `CREATE DATABASE ... TEMPLATE` copies the
 * template's sequence pages with their reserve, so the copy hands out values that no WAL record of
 * the copy covers, until the first `nextval` after the next checkpoint. Crash recovery and a
 * point-in-time restore replay the copied page and rewind the sequence below ids already in the
 * tables. `setval` always writes WAL and resets the reserve: after it, the WAL says where the
 * sequence is. A restore additionally raises every owned sequence to its column's maximum, which
 * repairs targets from before the re-log (tenants copied before this fix).
 *
 * The tenant is hostile. Names it controls (schemas, tables, sequences) are resolved only by
 * statements run as the object's owner (`SET LOCAL ROLE`), and only when that owner (or a
 * superuser) also owns the schema, so whatever a swapped name leads to runs with the rights of
 * whoever could swap it; the sequence is locked (a no-op `ALTER SEQUENCE ... OWNER
 * TO` its owner: ACCESS EXCLUSIVE, which `nextval` waits for) and the locked relation is checked
 * to be the one from the catalog before `setval` is called by OID. Only `pg_catalog` functions
 * are called, schema-qualified, under `search_path = pg_catalog, pg_temp`; column values are read
 * only from int2/int4/int8 columns with `pg_catalog.max`/`min`, and compared in JavaScript.
 */
import type { Client, QueryResult } from "pg";
import { quoteIdent } from "./client";

/** int2, int4, int8: the only column types read. */
const INTEGER_TYPE_OIDS = [21, 23, 20];
/** lock_not_available: a tenant transaction holds the sequence longer than the lock timeout. */
const LOCK_NOT_AVAILABLE = "55P03";
/** deadlock_detected: our wait was part of a cycle with a tenant transaction. */
const DEADLOCK_DETECTED = "40P01";
const LOCK_ATTEMPTS = 5;
/** Sequences locked together in one transaction. */
const GROUP_SIZE = 100;
/** Below deadlock_timeout (1 s, superuser-only), so a group never waits long enough to fight one. */
const GROUP_LOCK_TIMEOUT_MS = 500;

export interface SequenceParams {
  increment: bigint;
  min: bigint;
  max: bigint;
}

export interface SequenceValue {
  lastValue: bigint;
  isCalled: boolean;
}

/**
 * Who can make a relation's name lead elsewhere: its owner (rename it) and its schema's owner
 * (rename the schema, create objects in it). Statements that resolve the name run as the owner,
 * so only when the schema's owner is a superuser or that same owner (`nameSafe`) is the name used.
 */
interface NamedRelation {
  schema: string;
  owner: string;
  ownerIsSuperuser: boolean;
  nameSafe: boolean;
}

/** The integer column that owns a sequence (serial: pg_depend 'a'; identity: 'i'). */
export interface OwningColumn extends NamedRelation {
  table: string;
  column: string;
}

export interface SequenceInfo extends SequenceParams, NamedRelation {
  oid: number;
  name: string;
  column?: OwningColumn;
}

export interface SequenceOutcome {
  sequence: string;
  before: SequenceValue | null;
  after: SequenceValue | null;
  /** max (min for a descending sequence) of the owning column; null for an empty table. */
  columnBound?: bigint | null;
  raised: boolean;
  /** The column's values reach the sequence's limit: set to the limit, nextval now fails. */
  exhausted: boolean;
  /** What could not be done, when something could not (the sequence is still re-logged). */
  note?: string;
}

export interface RelogSummary {
  sequences: number;
  relogged: number;
  raised: string[];
  exhausted: string[];
  notes: string[];
  outcomes: SequenceOutcome[];
}

export interface RelogOptions {
  /** Raise each sequence to its owning column's maximum (default true). */
  raiseToColumn?: boolean;
  /** Per attempt to lock one sequence (default 5000 ms); retried {@link LOCK_ATTEMPTS} times. */
  lockTimeoutMs?: number;
}

/** The aggregate giving a column's bound for the sequence's direction. */
const agg = (seq: SequenceParams): "max" | "min" => (seq.increment > 0n ? "max" : "min");
const display = (schema: string, name: string): string => `${quoteIdent(schema)}.${quoteIdent(name)}`;

/** An SQL literal of a bigint that came from the server or from {@link plannedValue}. */
function int8Literal(v: bigint): string {
  return `'${v.toString()}'::pg_catalog.int8`;
}

function parseInt8(text: unknown, what: string): bigint {
  if (typeof text !== "string" || !/^-?\d{1,19}$/.test(text)) {
    throw new Error(`${what}: expected an integer, got ${JSON.stringify(text)}`);
  }
  return BigInt(text);
}

/**
 * The value to `setval` a sequence to: its current value, or the owning column's bound when the
 * next `nextval` would not pass it, clamped to the sequence's limit. `bound` is the column's
 * max (ascending sequence) or min (descending); null/undefined for none.
 */
export function plannedValue(
  current: SequenceValue,
  params: SequenceParams,
  bound: bigint | null | undefined,
): SequenceValue & { raised: boolean; exhausted: boolean } {
  const ascending = params.increment > 0n;
  const unchanged = { ...current, raised: false, exhausted: false };
  if (bound === null || bound === undefined) return unchanged;
  // The last value handed out (or, for a sequence never called, the one before its next).
  const last = current.isCalled ? current.lastValue : current.lastValue - params.increment;
  const behind = ascending ? bound > last : bound < last;
  if (!behind) return unchanged;
  const limit = ascending ? params.max : params.min;
  const exhausted = ascending ? bound >= limit : bound <= limit;
  return { lastValue: exhausted ? limit : bound, isCalled: true, raised: true, exhausted };
}

/** Every permanent sequence of the database with its parameters and owning integer column. */
export async function listSequences(db: Client): Promise<SequenceInfo[]> {
  const rows = await inTransaction(db, async () => {
    const r = await db.query<{
      oid: string;
      schema: string;
      name: string;
      owner: string;
      owner_super: boolean;
      name_safe: boolean;
      increment: string;
      min: string;
      max: string;
      table_schema: string | null;
      table_name: string | null;
      column_name: string | null;
      table_owner: string | null;
      table_owner_super: boolean | null;
      table_name_safe: boolean | null;
    }>(
      // A schema owned by pg_database_owner (public) is the database owner's.
      `WITH schemas AS (
         SELECT n.oid, n.nspname, r.oid AS owner, r.rolsuper AS owner_super
         FROM pg_catalog.pg_namespace n
         CROSS JOIN (SELECT d.datdba FROM pg_catalog.pg_database d
                     WHERE d.datname = pg_catalog.current_database()) db
         JOIN pg_catalog.pg_roles r
           ON r.oid = CASE WHEN n.nspowner = 'pg_database_owner'::pg_catalog.regrole::pg_catalog.oid
                           THEN db.datdba ELSE n.nspowner END)
       SELECT c.oid::pg_catalog.text AS oid, n.nspname::pg_catalog.text AS schema,
              c.relname::pg_catalog.text AS name, ro.rolname::pg_catalog.text AS owner,
              ro.rolsuper AS owner_super, (n.owner_super OR n.owner = c.relowner) AS name_safe,
              s.seqincrement::pg_catalog.text AS increment, s.seqmin::pg_catalog.text AS min,
              s.seqmax::pg_catalog.text AS max,
              tn.nspname::pg_catalog.text AS table_schema, t.relname::pg_catalog.text AS table_name,
              a.attname::pg_catalog.text AS column_name, tro.rolname::pg_catalog.text AS table_owner,
              tro.rolsuper AS table_owner_super, (tn.owner_super OR tn.owner = t.relowner) AS table_name_safe
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
       JOIN schemas n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_roles ro ON ro.oid = c.relowner
       LEFT JOIN pg_catalog.pg_depend d
              ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
             AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjsubid > 0
             AND d.deptype IN ('a', 'i')
       LEFT JOIN (pg_catalog.pg_class t
                  JOIN schemas tn ON tn.oid = t.relnamespace
                  JOIN pg_catalog.pg_roles tro ON tro.oid = t.relowner
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid)
              ON t.oid = d.refobjid AND a.attnum = d.refobjsubid AND t.relkind IN ('r', 'p')
             AND NOT a.attisdropped AND a.atttypid = ANY ($1::pg_catalog.oid[])
       WHERE c.relkind = 'S' AND c.relpersistence = 'p'
       ORDER BY c.oid`,
      [INTEGER_TYPE_OIDS],
    );
    return r.rows;
  });
  return rows.map((r) => ({
    oid: Number(r.oid),
    schema: r.schema,
    name: r.name,
    owner: r.owner,
    ownerIsSuperuser: r.owner_super,
    nameSafe: r.name_safe,
    increment: BigInt(r.increment),
    min: BigInt(r.min),
    max: BigInt(r.max),
    ...(r.table_schema !== null && r.table_name !== null && r.column_name !== null && r.table_owner !== null
      ? {
          column: {
            schema: r.table_schema,
            table: r.table_name,
            column: r.column_name,
            owner: r.table_owner,
            ownerIsSuperuser: r.table_owner_super === true,
            nameSafe: r.table_name_safe === true,
          },
        }
      : {}),
  }));
}

/**
 * Opens every transaction of this module: read-write and without a statement timeout whatever the
 * database's defaults (which its owner sets), and the pinned search_path. Commits asynchronously
 * (one WAL flush per sequence would cost a millisecond each): WAL is flushed in order, so the
 * caller's next synchronous commit (its step journal) makes every setval before it durable.
 */
const BEGIN = [
  "BEGIN READ WRITE",
  "SET LOCAL search_path = pg_catalog, pg_temp",
  "SET LOCAL statement_timeout = 0",
  "SET LOCAL synchronous_commit = off",
];

/** {@link BEGIN}; COMMIT, or ROLLBACK on error. */
async function inTransaction<T>(db: Client, fn: () => Promise<T>): Promise<T> {
  await db.query(BEGIN.join("; "));
  try {
    const result = await fn();
    await db.query("COMMIT");
    return result;
  } catch (err) {
    await db.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/** `SET LOCAL ROLE` to the relation's owner (the session's superuser for a superuser's relation). */
function asOwner(rel: NamedRelation): string {
  return rel.ownerIsSuperuser ? "RESET ROLE" : `SET LOCAL ROLE ${quoteIdent(rel.owner)}`;
}

interface LockedRead {
  value: SequenceValue;
  bound: bigint | null | undefined;
}

interface Item {
  seq: SequenceInfo;
  /** Read the owning column's bound (max, or min when descending). */
  readColumn: boolean;
}

/**
 * Opens a transaction over `items`: each owning column's bound (as the table's owner), then each
 * sequence locked and read (as its owner). Throws unless every relation read is the catalog's,
 * locked by us; the caller rolls back.
 */
async function beginLockAndRead(db: Client, items: Item[], lockTimeoutMs: number): Promise<LockedRead[]> {
  const statements = [...BEGIN, `SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`];
  const boundAt = new Map<number, number>();
  items.forEach(({ seq, readColumn }, i) => {
    const col = readColumn ? seq.column : undefined;
    if (!col) return;
    statements.push(asOwner(col));
    boundAt.set(i, statements.length);
    statements.push(
      `SELECT pg_catalog.${agg(seq)}(${quoteIdent(col.column)})::pg_catalog.text AS bound ` +
        `FROM ${display(col.schema, col.table)}`,
    );
  });
  for (const { seq } of items) {
    statements.push(
      asOwner(seq),
      `ALTER SEQUENCE ${display(seq.schema, seq.name)} OWNER TO ${quoteIdent(seq.owner)}`,
    );
  }
  const stateAt = items.map(({ seq }) => {
    statements.push(asOwner(seq));
    statements.push(
      `SELECT s.tableoid::pg_catalog.text AS oid, s.last_value::pg_catalog.text AS last_value, s.is_called
       FROM ${display(seq.schema, seq.name)} s`,
    );
    return statements.length - 1;
  });
  // The relations this transaction holds ACCESS EXCLUSIVE: each sequence read must be one of them.
  statements.push(
    `SELECT l.relation::pg_catalog.text AS oid FROM pg_catalog.pg_locks l
     WHERE l.pid = pg_catalog.pg_backend_pid() AND l.locktype = 'relation'
       AND l.mode = 'AccessExclusiveLock' AND l.granted`,
  );
  const results = (await db.query(statements.join(";\n"))) as unknown as QueryResult[];
  const locked = new Set((results[results.length - 1].rows as Array<{ oid: string }>).map((r) => r.oid));
  return items.map(({ seq }, i) => {
    const name = display(seq.schema, seq.name);
    const row = results[stateAt[i]].rows[0] as
      { oid: string; last_value: string; is_called: boolean } | undefined;
    if (!row || row.oid !== String(seq.oid) || !locked.has(row.oid)) {
      throw new Error(
        `sequence ${name} changed while it was being re-logged (its name no longer leads to it)`,
      );
    }
    const value = { lastValue: parseInt8(row.last_value, name), isCalled: row.is_called === true };
    const at = boundAt.get(i);
    if (at === undefined) return { value, bound: undefined };
    const text = (results[at].rows[0] as { bound: string | null } | undefined)?.bound ?? null;
    return { value, bound: text === null ? null : parseInt8(text, `${agg(seq)} of ${seq.column?.column}`) };
  });
}

/** `setval` by OID (as the session's superuser: it runs no tenant code), then COMMIT. */
async function setvalAndCommit(
  db: Client,
  values: Array<{ seq: SequenceInfo; v: SequenceValue }>,
): Promise<void> {
  const calls = values.map(
    ({ seq, v }) =>
      `pg_catalog.setval('${seq.oid}'::pg_catalog.regclass, ${int8Literal(v.lastValue)}, ${v.isCalled})`,
  );
  await db.query(`RESET ROLE; SELECT ${calls.join(", ")}; COMMIT`);
}

/** The outcome of one sequence read under lock, and the value it was set to. */
function outcomeOf(
  seq: SequenceInfo,
  read: LockedRead,
  note?: string,
): SequenceOutcome & { next: SequenceValue } {
  const next = plannedValue(read.value, seq, read.bound);
  return {
    sequence: display(seq.schema, seq.name),
    before: read.value,
    after: { lastValue: next.lastValue, isCalled: next.isCalled },
    ...(read.bound !== undefined ? { columnBound: read.bound } : {}),
    raised: next.raised,
    exhausted: next.exhausted,
    ...(note ? { note } : {}),
    next: { lastValue: next.lastValue, isCalled: next.isCalled },
  };
}

/**
 * Many sequences in one transaction (two round trips). Its locks are given up before PostgreSQL's
 * deadlock check (1 s) would pick a tenant transaction waiting for one of them; on any error the
 * caller falls back to one sequence at a time.
 */
async function relogTogether(
  db: Client,
  seqs: SequenceInfo[],
  opts: Required<RelogOptions>,
): Promise<SequenceOutcome[]> {
  const items = seqs.map((seq) => ({ seq, readColumn: readsColumn(seq, opts) }));
  try {
    const reads = await beginLockAndRead(db, items, Math.min(opts.lockTimeoutMs, GROUP_LOCK_TIMEOUT_MS));
    const outcomes = seqs.map((seq, i) => outcomeOf(seq, reads[i], columnNote(seq, opts)));
    await setvalAndCommit(
      db,
      outcomes.map((o, i) => ({ seq: seqs[i], v: o.next })),
    );
    return outcomes.map(({ next: _next, ...o }) => o);
  } catch {
    await db.query("ROLLBACK").catch(() => undefined);
    const outcomes: SequenceOutcome[] = [];
    for (const seq of seqs) outcomes.push(await relogOne(db, seq, opts));
    return outcomes;
  }
}

/** The owning column is read when asked for and its table's name is safe to use (see NamedRelation). */
function readsColumn(seq: SequenceInfo, opts: Required<RelogOptions>): boolean {
  return opts.raiseToColumn && seq.column !== undefined && seq.column.nameSafe;
}

/** Why an owning column is not read, when it is not for its name's sake. */
function columnNote(seq: SequenceInfo, opts: Required<RelogOptions>): string | undefined {
  const col = seq.column;
  if (!opts.raiseToColumn || !col || col.nameSafe) return undefined;
  return `${col.table}.${col.column} is in a schema another role owns: not read`;
}

/** One sequence: locked, raised if behind its column, re-logged; one transaction, retried. */
async function relogOne(
  db: Client,
  seq: SequenceInfo,
  opts: Required<RelogOptions>,
): Promise<SequenceOutcome> {
  let readColumn = readsColumn(seq, opts);
  let note = columnNote(seq, opts);
  for (let attempt = 1; ; attempt++) {
    try {
      const [read] = await beginLockAndRead(db, [{ seq, readColumn }], opts.lockTimeoutMs);
      const { next, ...outcome } = outcomeOf(seq, read, note);
      await setvalAndCommit(db, [{ seq, v: next }]);
      return outcome;
    } catch (err) {
      await db.query("ROLLBACK").catch(() => undefined);
      const code = (err as { code?: string }).code;
      const waited = code === LOCK_NOT_AVAILABLE || code === DEADLOCK_DETECTED;
      if (waited && attempt < LOCK_ATTEMPTS) {
        await new Promise((r) => setTimeout(r, 200 * attempt));
        continue;
      }
      if (readColumn && !waited) {
        // The column could not be read (privileges its owner revoked from itself, say): re-log alone.
        note = `${agg(seq)} of ${seq.column?.table}.${seq.column?.column} not read: ${(err as Error).message}`;
        readColumn = false;
        continue;
      }
      throw new Error(`re-logging sequence ${display(seq.schema, seq.name)}: ${(err as Error).message}`);
    }
  }
}

/**
 * A sequence in a schema another role owns (a superuser's in the tenant's schema, as a trusted
 * extension leaves one): its name could be swapped under its owner's rights, so it is neither
 * locked nor read by name; `setval` by OID to the value `pg_sequence_last_value` reports (NULL:
 * never called, and a first `nextval` writes WAL).
 */
async function relogByOid(db: Client, seq: SequenceInfo): Promise<SequenceOutcome> {
  const sequence = display(seq.schema, seq.name);
  const r = await inTransaction(db, () =>
    db.query<{ v: string | null }>(
      `SELECT pg_catalog.setval(x.o, x.v, true)::pg_catalog.text AS v
       FROM (SELECT '${seq.oid}'::pg_catalog.regclass AS o,
                    pg_catalog.pg_sequence_last_value('${seq.oid}'::pg_catalog.regclass) AS v) x
       WHERE x.v IS NOT NULL`,
    ),
  );
  const v = r.rows[0]?.v;
  const value = v === undefined || v === null ? null : { lastValue: parseInt8(v, sequence), isCalled: true };
  return {
    sequence,
    before: value,
    after: value,
    raised: false,
    exhausted: false,
    note: "in a schema another role owns: re-logged by OID, not locked nor raised",
  };
}

/**
 * Re-logs every permanent sequence of the database `db` is connected to (as a superuser), each
 * raised first to its owning integer column's maximum (minimum when descending). Idempotent;
 * safe on a live database (each sequence is locked for a moment, in its own transaction).
 */
export async function relogSequences(db: Client, options: RelogOptions = {}): Promise<RelogSummary> {
  const opts: Required<RelogOptions> = {
    raiseToColumn: options.raiseToColumn ?? true,
    lockTimeoutMs: options.lockTimeoutMs ?? 5000,
  };
  const sequences = await listSequences(db);
  const outcomes: SequenceOutcome[] = [];
  const lockable: SequenceInfo[] = [];
  for (const seq of sequences) {
    if (!seq.nameSafe) outcomes.push(await relogByOid(db, seq));
    else lockable.push(seq);
  }
  for (let i = 0; i < lockable.length; i += GROUP_SIZE) {
    outcomes.push(...(await relogTogether(db, lockable.slice(i, i + GROUP_SIZE), opts)));
  }
  return {
    sequences: sequences.length,
    relogged: outcomes.filter((o) => o.after !== null).length,
    raised: outcomes.filter((o) => o.raised).map((o) => o.sequence),
    exhausted: outcomes.filter((o) => o.exhausted).map((o) => o.sequence),
    notes: outcomes.flatMap((o) => (o.note ? [`${o.sequence}: ${o.note}`] : [])),
    outcomes,
  };
}

/** One line for logs: how many sequences were re-logged and which were raised. */
export function describeRelog(s: RelogSummary): string {
  const raised = s.raised.length ? `; raised to their column's maximum: ${s.raised.join(", ")}` : "";
  const exhausted = s.exhausted.length ? `; at their limit: ${s.exhausted.join(", ")}` : "";
  return `${s.relogged} of ${s.sequences} sequence(s) re-logged${raised}${exhausted}`;
}
