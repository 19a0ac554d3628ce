/**
 * A 5-field cron subset, evaluated in UTC: `minute hour day-of-month month day-of-week`.
 *
 * Each field is a comma-separated list of items; an item is `*`, a number, a range `a-b`, or one
 * of those followed by a step `/n` (`*` + `/n` is every n-th value of the field's range,
 * `a-b/n` every n-th value from a to b). Day-of-week is 0-7, 0 and 7 both Sunday. Names (`MON`,
 * `JAN`) and the `@daily` forms are not supported.
 *
 * As in classic cron: when both day-of-month and day-of-week are restricted (neither field
 * starts with `*`), a day matches when EITHER matches; otherwise both must.
 */

export interface CronField {
  /** The allowed values, ascending. */
  values: number[];
  /** True when the field text starts with `*` (unrestricted for the day-of-month/day-of-week rule). */
  star: boolean;
}

export interface CronSchedule {
  expression: string;
  minute: CronField;
  hour: CronField;
  dayOfMonth: CronField;
  month: CronField;
  dayOfWeek: CronField;
}

const FIELDS = [
  { name: "minute", min: 0, max: 59 },
  { name: "hour", min: 0, max: 23 },
  { name: "day-of-month", min: 1, max: 31 },
  { name: "month", min: 1, max: 12 },
  { name: "day-of-week", min: 0, max: 7 },
] as const;

/** A cron expression that cannot be parsed; `detail` is the reason without the expression. */
export class CronError extends Error {
  override readonly name = "CronError";
  constructor(
    readonly expression: string,
    readonly detail: string,
  ) {
    super(`cron expression ${JSON.stringify(expression)}: ${detail}`);
  }
}

function parseNumber(text: string, field: (typeof FIELDS)[number], expr: string): number {
  if (!/^[0-9]{1,4}$/.test(text)) {
    throw new CronError(expr, `${field.name} "${text}" is not a number`);
  }
  const n = Number(text);
  if (n < field.min || n > field.max) {
    throw new CronError(expr, `${field.name} value ${n} is out of range ${field.min}-${field.max}`);
  }
  return n;
}

function parseField(text: string, index: number, expr: string): CronField {
  const field = FIELDS[index];
  const values = new Set<number>();
  for (const item of text.split(",")) {
    if (item === "") throw new CronError(expr, `${field.name} "${text}" has an empty list item`);
    const [range, stepText, extra] = item.split("/");
    if (extra !== undefined) throw new CronError(expr, `${field.name} "${item}" has more than one "/"`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^[0-9]{1,4}$/.test(stepText) || Number(stepText) < 1) {
        throw new CronError(expr, `${field.name} step "${stepText}" must be a positive number`);
      }
      step = Number(stepText);
    }
    let lo: number;
    let hi: number;
    if (range === "*") {
      lo = field.min;
      hi = field.name === "day-of-week" ? 6 : field.max;
    } else if (range.includes("-")) {
      const parts = range.split("-");
      if (parts.length !== 2) throw new CronError(expr, `${field.name} range "${range}" is malformed`);
      lo = parseNumber(parts[0], field, expr);
      hi = parseNumber(parts[1], field, expr);
      if (lo > hi) throw new CronError(expr, `${field.name} range "${range}" runs backwards`);
    } else {
      lo = parseNumber(range, field, expr);
      // `5/15` means 5, 20, 35, 50 (from 5 to the end of the field), as in common crons.
      hi = stepText !== undefined ? field.max : lo;
    }
    for (let v = lo; v <= hi; v += step) values.add(field.name === "day-of-week" && v === 7 ? 0 : v);
  }
  return { values: [...values].sort((a, b) => a - b), star: text.startsWith("*") };
}

/** Parses an expression; throws a {@link CronError} naming the field and the rule on any problem. */
export function parseCron(expression: string): CronSchedule {
  if (typeof expression !== "string") throw new CronError(String(expression), "must be a string");
  const parts = expression.trim().split(/\s+/);
  if (expression.trim() === "" || parts.length !== 5) {
    throw new CronError(
      expression,
      `must have 5 fields (minute hour day-of-month month day-of-week), got ${expression.trim() === "" ? 0 : parts.length}`,
    );
  }
  const [minute, hour, dayOfMonth, month, dayOfWeek] = parts.map((p, i) => parseField(p, i, expression));
  return { expression, minute, hour, dayOfMonth, month, dayOfWeek };
}

/** The reason an expression is invalid, or undefined when it parses (for config validation). */
export function cronProblem(expression: string): string | undefined {
  try {
    parseCron(expression);
    return undefined;
  } catch (err) {
    return err instanceof CronError ? err.detail : (err as Error).message;
  }
}

function dayMatches(s: CronSchedule, date: Date): boolean {
  const dom = s.dayOfMonth.values.includes(date.getUTCDate());
  const dow = s.dayOfWeek.values.includes(date.getUTCDay());
  if (!s.dayOfMonth.star && !s.dayOfWeek.star) return dom || dow;
  return dom && dow;
}

/** True when the minute containing `date` (UTC) matches the schedule. */
export function cronMatches(schedule: CronSchedule | string, date: Date): boolean {
  const s = typeof schedule === "string" ? parseCron(schedule) : schedule;
  return (
    s.minute.values.includes(date.getUTCMinutes()) &&
    s.hour.values.includes(date.getUTCHours()) &&
    s.month.values.includes(date.getUTCMonth() + 1) &&
    dayMatches(s, date)
  );
}

const MINUTE = 60_000;
/** How far ahead nextRun searches: covers every leap day (and thus every satisfiable expression). */
const SEARCH_YEARS = 9;

/**
 * The first whole UTC minute strictly after `after` that matches the expression. Throws a
 * CronError for an invalid expression or one that never matches (e.g. `0 0 30 2 *`).
 */
export function nextRun(expression: CronSchedule | string, after: Date): Date {
  const s = typeof expression === "string" ? parseCron(expression) : expression;
  if (Number.isNaN(after.getTime())) throw new Error("nextRun: `after` is not a valid date");
  let t = new Date(Math.floor(after.getTime() / MINUTE) * MINUTE + MINUTE);
  const limit = Date.UTC(after.getUTCFullYear() + SEARCH_YEARS, 0, 1);
  while (t.getTime() < limit) {
    if (!s.month.values.includes(t.getUTCMonth() + 1)) {
      t = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 1));
      continue;
    }
    if (!dayMatches(s, t)) {
      t = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate() + 1));
      continue;
    }
    if (!s.hour.values.includes(t.getUTCHours())) {
      t = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate(), t.getUTCHours() + 1));
      continue;
    }
    if (!s.minute.values.includes(t.getUTCMinutes())) {
      t = new Date(t.getTime() + MINUTE);
      continue;
    }
    return t;
  }
  throw new CronError(s.expression, `never matches (no matching minute within ${SEARCH_YEARS} years)`);
}
