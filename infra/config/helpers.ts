/**
 * Building blocks of the configuration schemas (schema.ts and the per-area schema files): the
 * issue conventions of schema.ts's header — every message states the rule, unknown keys are
 * reported with a "did you mean" hint, nulls count as absent, numbers and booleans may be strings.
 */
import { z } from "zod";

export const TEXT_RULE = "must be a non-empty string without leading or trailing whitespace";
export const BOOLEAN_RULE = "must be true or false";

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Marks a custom issue's offending value explicitly (`got`) or suppresses it (`noGot`). */
export interface IssueParams {
  got?: unknown;
  noGot?: boolean;
  /** The issue reports an unknown key (listed after the known keys' issues). */
  unknownKey?: boolean;
}

/** Parameters giving every issue of a schema the same rule message. */
export function rule(message: string): { errorMap: z.ZodErrorMap } {
  return {
    errorMap: (issue, ctx) => ({
      message:
        issue.code === z.ZodIssueCode.invalid_type && ctx.data === undefined
          ? `is required; ${message}`
          : message,
    }),
  };
}

export function peek<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown): T | undefined {
  const r = schema.safeParse(value);
  return r.success ? r.data : undefined;
}

/** Optimal-string-alignment distance (edit distance counting a transposition as one edit). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2][j - 2] + 1);
      d[i][j] = v;
    }
  }
  return d[a.length][b.length];
}

/** The known key closest to `key`, if it is close enough to be a likely typo. */
export function suggestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const distance = k.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, k);
    if (distance < bestDistance) {
      best = k;
      bestDistance = distance;
    }
  }
  return bestDistance <= (key.length >= 6 ? 2 : 1) ? best : undefined;
}

/** Message for an unknown key, with a hint when it looks like a typo of a known one. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const suggestion = suggestKey(key, known);
  return suggestion !== undefined
    ? `is not a known key (did you mean "${suggestion}"?)`
    : `is not a known key; known keys: ${known.join(", ")}`;
}

/** A copy of a map without its null-valued keys; `null` itself becomes `{}`. */
export function dropNullValues(v: unknown): unknown {
  if (v === null) return {};
  if (!isPlainObject(v)) return v;
  return Object.fromEntries(Object.entries(v).filter(([, value]) => value !== null));
}

/**
 * A map with exactly the keys of `shape` (nulls count as absent). Unknown keys are reported
 * one issue each; `check` adds cross-field issues on the (null-free) raw map.
 */
export function strictMap<S extends z.ZodRawShape>(
  shape: S,
  message: string,
  check?: (value: Record<string, unknown>, ctx: z.RefinementCtx) => void,
) {
  const known = Object.keys(shape);
  return z.preprocess(
    (raw, ctx) => {
      const v = dropNullValues(raw);
      if (isPlainObject(v)) {
        for (const key of Object.keys(v)) {
          if (!known.includes(key)) {
            ctx.addIssue({
              code: z.ZodIssueCode.custom,
              path: [key],
              message: unknownKeyMessage(key, known),
              params: { noGot: true, unknownKey: true } satisfies IssueParams,
            });
          }
        }
        check?.(v, ctx);
      }
      return v;
    },
    z.object(shape, rule(message)).strip(),
  );
}

/**
 * A map whose keys are names matching `pattern` (checked one issue per bad name) and whose
 * values follow `value`.
 */
export function namedMap<V extends z.ZodTypeAny>(
  pattern: Pick<RegExp, "test">,
  nameRule: string,
  value: V,
  message: string,
) {
  const name = z.string().superRefine((key, ctx) => {
    if (!pattern.test(key)) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: nameRule,
        params: { got: key } satisfies IssueParams,
      });
    }
  });
  return z.record(name, value, rule(message));
}

/** Adds an issue unless exactly one of `keys` is present in `v`. */
export function requireExactlyOne(
  v: Record<string, unknown>,
  keys: readonly string[],
  message: string,
  ctx: z.RefinementCtx,
): void {
  const given = keys.filter((k) => v[k] !== undefined);
  if (given.length !== 1) {
    ctx.addIssue({
      code: z.ZodIssueCode.custom,
      message: given.length === 0 ? `${message} (none given)` : `${message} (got ${given.join(" and ")})`,
      params: { noGot: true } satisfies IssueParams,
    });
  }
}

export function integer(min: number, max: number, message: string) {
  return z.preprocess(
    (v) => (typeof v === "string" && /^[0-9]{1,15}$/.test(v) ? Number(v) : v),
    z.number(rule(message)).int().min(min).max(max),
  );
}

export const booleanSchema = z.preprocess(
  (v) => (v === "true" ? true : v === "false" ? false : v),
  z.boolean(rule(BOOLEAN_RULE)),
);

export function text(message: string = TEXT_RULE) {
  return z.string(rule(message)).regex(/^\S(?:[\s\S]*\S)?$/);
}
