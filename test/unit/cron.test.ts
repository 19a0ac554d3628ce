import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CronError, cronMatches, cronProblem, nextRun, parseCron } from "../../lib/backup/cron";
import { DEFAULT_BACKUP_SCHEDULE } from "../../lib/backup/schedule-defaults";

const at = (iso: string): Date => new Date(iso);
const iso = (d: Date): string => d.toISOString();

describe("parseCron", () => {
  it("expands numbers, stars, steps, ranges and lists", () => {
    const s = parseCron("*/15 1-3,22 1,15 */6 1-5");
    expect(s.minute.values).toEqual([0, 15, 30, 45]);
    expect(s.hour.values).toEqual([1, 2, 3, 22]);
    expect(s.dayOfMonth.values).toEqual([1, 15]);
    expect(s.month.values).toEqual([1, 7]);
    expect(s.dayOfWeek.values).toEqual([1, 2, 3, 4, 5]);
    expect(parseCron("0 0 * * 7").dayOfWeek.values).toEqual([0]);
    expect(parseCron("0 0 * * 0,7").dayOfWeek.values).toEqual([0]);
    expect(parseCron("10-40/10 * * * *").minute.values).toEqual([10, 20, 30, 40]);
    expect(parseCron("  5   4 * * *  ").minute.values).toEqual([5]);
  });

  it.each([
    ["", "must have 5 fields (minute hour day-of-month month day-of-week), got 0"],
    ["* * * *", "must have 5 fields (minute hour day-of-month month day-of-week), got 4"],
    ["* * * * * *", "must have 5 fields (minute hour day-of-month month day-of-week), got 6"],
    ["60 * * * *", "minute value 60 is out of range 0-59"],
    ["0 24 * * *", "hour value 24 is out of range 0-23"],
    ["0 0 0 * *", "day-of-month value 0 is out of range 1-31"],
    ["0 0 * 13 *", "month value 13 is out of range 1-12"],
    ["0 0 * * 8", "day-of-week value 8 is out of range 0-7"],
    ["*/0 * * * *", 'minute step "0" must be a positive number'],
    ["5-1 * * * *", 'minute range "5-1" runs backwards'],
    ["1,,2 * * * *", 'minute "1,,2" has an empty list item'],
    ["@daily * * * *", 'minute "@daily" is not a number'],
    ["0 0 * JAN *", 'month "JAN" is not a number'],
    ["0 1-2-3 * * *", 'hour range "1-2-3" is malformed'],
    ["0 */2/3 * * *", 'hour "*/2/3" has more than one "/"'],
  ])("refuses %j: %s", (expr, detail) => {
    expect(() => parseCron(expr)).toThrow(CronError);
    expect(cronProblem(expr)).toBe(detail);
    expect(() => parseCron(expr)).toThrow(`cron expression ${JSON.stringify(expr)}: ${detail}`);
  });

  it("accepts the default schedule", () => {
    for (const expr of Object.values(DEFAULT_BACKUP_SCHEDULE)) expect(cronProblem(expr)).toBeUndefined();
  });
});

describe("nextRun (UTC)", () => {
  it.each([
    // every minute: the next whole minute, never `after` itself
    ["* * * * *", "2026-03-04T10:20:00.000Z", "2026-03-04T10:21:00.000Z"],
    ["* * * * *", "2026-03-04T10:20:59.999Z", "2026-03-04T10:21:00.000Z"],
    // weekly full backup: Sunday 01:00 (2026-03-04 is a Wednesday)
    ["0 1 * * 0", "2026-03-04T10:20:00Z", "2026-03-08T01:00:00.000Z"],
    ["0 1 * * 0", "2026-03-08T01:00:00Z", "2026-03-15T01:00:00.000Z"],
    ["0 1 * * 7", "2026-03-08T00:59:59Z", "2026-03-08T01:00:00.000Z"],
    // daily diff Monday to Saturday
    ["0 1 * * 1-6", "2026-03-07T01:00:00Z", "2026-03-09T01:00:00.000Z"],
    ["0 1 * * 1-6", "2026-03-08T23:00:00Z", "2026-03-09T01:00:00.000Z"],
    // every 6 hours
    ["0 */6 * * *", "2026-03-04T10:20:00Z", "2026-03-04T12:00:00.000Z"],
    ["0 */6 * * *", "2026-12-31T23:59:00Z", "2027-01-01T00:00:00.000Z"],
    // lists, month boundaries, leap day
    ["30 2 1,15 * *", "2026-01-15T02:30:00Z", "2026-02-01T02:30:00.000Z"],
    ["0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00.000Z"],
    ["0 0 31 * *", "2026-04-01T00:00:00Z", "2026-05-31T00:00:00.000Z"],
    // day-of-month OR day-of-week when both are restricted
    ["0 12 13 * 5", "2026-03-01T00:00:00Z", "2026-03-06T12:00:00.000Z"],
    ["0 12 13 * 5", "2026-03-12T12:00:00Z", "2026-03-13T12:00:00.000Z"],
    // ... but AND when one of them is a star form
    ["0 12 */2 * 5", "2026-03-01T00:00:00Z", "2026-03-13T12:00:00.000Z"],
  ])("%s after %s is %s", (expr, after, expected) => {
    expect(iso(nextRun(expr, at(after)))).toBe(expected);
  });

  it("refuses an expression that never matches", () => {
    expect(() => nextRun("0 0 30 2 *", at("2026-01-01T00:00:00Z"))).toThrow(/never matches/);
  });

  it("property: the result is later than `after`, a whole minute, matching, and the first such minute", () => {
    const item = (min: number, max: number) =>
      fc.oneof(
        fc.constant("*"),
        fc.integer({ min, max }).map(String),
        fc.integer({ min: 1, max: Math.max(1, max - min) }).map((n) => `*/${n}`),
        fc
          .tuple(fc.integer({ min, max }), fc.integer({ min, max }))
          .map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
      );
    const field = (min: number, max: number) =>
      fc.array(item(min, max), { minLength: 1, maxLength: 3 }).map((xs) => xs.join(","));
    const expression = fc
      .tuple(field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 7))
      .map((parts) => parts.join(" "));
    const after = fc
      .integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2090, 0, 1) })
      .map((ms) => new Date(ms));
    fc.assert(
      fc.property(expression, after, (expr, when) => {
        const next = nextRun(expr, when);
        expect(next.getTime()).toBeGreaterThan(when.getTime());
        expect(next.getTime() % 60_000).toBe(0);
        expect(cronMatches(expr, next)).toBe(true);
        // No earlier matching minute in between (checked over a bounded window).
        const start = Math.floor(when.getTime() / 60_000) * 60_000 + 60_000;
        const stop = Math.min(next.getTime(), start + 2 * 24 * 60 * 60_000);
        const parsed = parseCron(expr);
        let earlier: string | undefined;
        for (let t = start; t < stop && !earlier; t += 60_000) {
          if (cronMatches(parsed, new Date(t))) earlier = new Date(t).toISOString();
        }
        expect(earlier).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});
