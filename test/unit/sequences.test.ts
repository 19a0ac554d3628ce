import { describe, expect, it } from "vitest";
import { plannedValue, type SequenceParams } from "../../lib/pg/sequences";

const UP: SequenceParams = { increment: 1n, min: 1n, max: 2147483647n };
const DOWN: SequenceParams = { increment: -1n, min: -2147483648n, max: -1n };
const called = (v: bigint) => ({ lastValue: v, isCalled: true });
const fresh = (v: bigint) => ({ lastValue: v, isCalled: false });

describe("plannedValue", () => {
  it("keeps the current value when there is no column, or the column is empty or not past it", () => {
    expect(plannedValue(called(22n), UP, undefined)).toEqual({
      ...called(22n),
      raised: false,
      exhausted: false,
    });
    expect(plannedValue(called(22n), UP, null)).toEqual({ ...called(22n), raised: false, exhausted: false });
    expect(plannedValue(called(22n), UP, 22n)).toEqual({ ...called(22n), raised: false, exhausted: false });
    expect(plannedValue(called(22n), UP, 5n)).toMatchObject({ lastValue: 22n, raised: false });
  });

  it("raises a sequence behind its column to the column's maximum, called", () => {
    expect(plannedValue(called(19n), UP, 22n)).toEqual({ ...called(22n), raised: true, exhausted: false });
  });

  it("a sequence never called hands out its last_value next: raised only when the column holds it", () => {
    expect(plannedValue(fresh(1n), UP, 0n)).toMatchObject({ ...fresh(1n), raised: false });
    expect(plannedValue(fresh(1n), UP, 1n)).toEqual({ ...called(1n), raised: true, exhausted: false });
    expect(plannedValue(fresh(10n), { ...UP, increment: 5n }, 5n)).toMatchObject({ raised: false });
    expect(plannedValue(fresh(10n), { ...UP, increment: 5n }, 10n)).toMatchObject({
      ...called(10n),
      raised: true,
    });
  });

  it("descending: lowered to the column's minimum", () => {
    expect(plannedValue(fresh(-1n), DOWN, -5n)).toEqual({ ...called(-5n), raised: true, exhausted: false });
    expect(plannedValue(called(-9n), DOWN, -5n)).toMatchObject({ ...called(-9n), raised: false });
  });

  it("past the sequence's limit: set to the limit, reported exhausted", () => {
    const small = { increment: 1n, min: 1n, max: 32767n };
    expect(plannedValue(called(10n), small, 40000n)).toEqual({
      ...called(32767n),
      raised: true,
      exhausted: true,
    });
    expect(plannedValue(called(10n), small, 32767n)).toMatchObject({ lastValue: 32767n, exhausted: true });
    expect(plannedValue(fresh(-1n), DOWN, -2147483649n)).toMatchObject({
      lastValue: -2147483648n,
      exhausted: true,
    });
  });

  it("exact beyond 2^53", () => {
    const big = { increment: 1n, min: 1n, max: 9223372036854775807n };
    expect(plannedValue(fresh(1n), big, 9007199254740993n).lastValue).toBe(9007199254740993n);
  });
});
