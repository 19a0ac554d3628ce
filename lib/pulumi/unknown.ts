/**
 * Pulumi's unknown values: during a preview an input that depends on a resource not created or
 * updated yet reaches a dynamic provider's check and diff as the SDK's sentinel string. Such a
 * value can be neither validated nor compared yet; `pulumi up` calls the provider again with it.
 */
import { unknownValue } from "@pulumi/pulumi/runtime";

/** The sentinel itself (for tests and for inputs built by hand). */
export const UNKNOWN: string = unknownValue;

/** True for a value not computed yet. */
export function isUnknown(v: unknown): boolean {
  return v === unknownValue;
}

/** True when the value, or anything inside it (array items, object values), is not computed yet. */
export function containsUnknown(v: unknown): boolean {
  if (isUnknown(v)) return true;
  if (Array.isArray(v)) return v.some(containsUnknown);
  if (v !== null && typeof v === "object") return Object.values(v).some(containsUnknown);
  return false;
}

/** A value that can be checked now: present and computed. */
export function isKnown(v: unknown): boolean {
  return v !== undefined && !isUnknown(v);
}
