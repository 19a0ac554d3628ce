/**
 * What an `ir_attachment.store_fname` names in a tenant's filestore. The value is the tenant's to
 * write (a tenant holding its DSN can put anything there), so the platform resolves it the way the
 * ERP does (Odoo's `_full_path` deletes every "." and strips "/" and "\" at both ends: a name can
 * never climb out of the filestore) and, on top, accepts only plain relative names: segments of
 * letters, digits, "_" and "-", none empty, not the GC's `checklist` spool. Anything else names no
 * file the platform will link.
 */

/** Longest accepted name (Odoo's are 43 characters: `<2 hex>/<40 hex>`). */
export const MAX_STORE_NAME_CHARS = 512;
const SEGMENT = /^[A-Za-z0-9_-]+$/;
/** Odoo's spool of files to garbage-collect, inside the filestore. */
export const CHECKLIST_DIR = "checklist";

/** The relative file a store_fname names (as the ERP resolves it), or undefined when refused. */
export function storeFileName(raw: string): string | undefined {
  if (raw.length === 0 || raw.length > MAX_STORE_NAME_CHARS) return undefined;
  const name = raw.replace(/\./g, "").replace(/^[/\\]+|[/\\]+$/g, "");
  if (name.length === 0) return undefined;
  const segments = name.split("/");
  if (segments.length > 8 || !segments.every((s) => SEGMENT.test(s))) return undefined;
  if (segments[0] === CHECKLIST_DIR) return undefined;
  return segments.join("/");
}
