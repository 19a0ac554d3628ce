/**
 * Deep equality of the JSON-like values a dynamic provider receives: object key order does not
 * matter (a JSON object has none), and a key holding `undefined` counts as absent (as it
 * would once written to the state).
 */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameValue(x, b[i]))
    );
  }
  if (isRecord(a) && isRecord(b)) {
    const keys = definedKeys(a);
    const other = definedKeys(b);
    return keys.length === other.length && keys.every((k) => b[k] !== undefined && sameValue(a[k], b[k]));
  }
  return false;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object";
}

function definedKeys(o: Record<string, unknown>): string[] {
  return Object.keys(o).filter((k) => o[k] !== undefined);
}
