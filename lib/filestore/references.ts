/**
 * The store_fnames a tenant database's attachments reference, read by a platform session.
 * `public.ir_attachment` belongs to the tenant: it could have been turned into a view, given a
 * column of its own type with casts it wrote, or children of its own. Reading any of those would
 * run the tenant's code with the platform's rights, so the table is read only when it is a plain
 * table whose `store_fname` is `text` or `varchar` (built-in comparison and output only), and only
 * its own rows (`ONLY`). Otherwise the answer is a refusal with the reason.
 */
import type { Client } from "pg";

export type StoreNames = { names: string[] } | { refused: string };

export async function referencedStoreNames(db: Client): Promise<StoreNames> {
  const shape = await db.query<{ relkind: string; type: string | null }>(
    `SELECT c.relkind::text AS relkind, pg_catalog.format_type(a.atttypid, NULL) AS type
     FROM pg_catalog.pg_class c
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     LEFT JOIN pg_catalog.pg_attribute a
            ON a.attrelid = c.oid AND a.attname = 'store_fname' AND a.attnum > 0 AND NOT a.attisdropped
     WHERE n.nspname = 'public' AND c.relname = 'ir_attachment'`,
  );
  const t = shape.rows[0];
  if (!t) return { names: [] };
  if (t.relkind !== "r")
    return { refused: `public.ir_attachment is not a plain table (relkind ${t.relkind})` };
  if (t.type !== "text" && t.type !== "character varying") {
    return { refused: `public.ir_attachment.store_fname is ${t.type ?? "missing"}, not text or varchar` };
  }
  const rows = await db.query<{ f: string }>(
    "SELECT store_fname AS f FROM ONLY public.ir_attachment WHERE store_fname IS NOT NULL",
  );
  return { names: rows.rows.map((r) => r.f) };
}
