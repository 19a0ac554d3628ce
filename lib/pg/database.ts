/** A database as the admin sees it in the catalog, and an admin session inside a database that may refuse connections. */
import type { Client } from "pg";
import { quoteIdent, withClient } from "./client";
import { dsnWithDatabase } from "./dsn";

export interface DbCatalog {
  allowConnections: boolean;
  isTemplate: boolean;
  owner: string;
  comment: string | null;
}

export async function databaseCatalog(admin: Client, database: string): Promise<DbCatalog | undefined> {
  const r = await admin.query<{
    datallowconn: boolean;
    datistemplate: boolean;
    owner: string;
    comment: string | null;
  }>(
    `SELECT datallowconn, datistemplate, pg_get_userbyid(datdba)::text AS owner,
            shobj_description(oid, 'pg_database') AS comment
     FROM pg_database WHERE datname = $1`,
    [database],
  );
  const row = r.rows[0];
  return row
    ? {
        allowConnections: row.datallowconn,
        isTemplate: row.datistemplate,
        owner: row.owner,
        comment: row.comment,
      }
    : undefined;
}

/**
 * Runs `fn` connected to `database` as the admin. A database that refuses connections
 * (suspended, archived) is opened for the duration and closed again; its tenant role is NOLOGIN
 * in those states, so nobody else gets in meanwhile.
 */
export async function withDatabase<T>(
  admin: Client,
  adminDsn: string,
  database: string,
  fn: (db: Client) => Promise<T>,
): Promise<T> {
  const cat = await databaseCatalog(admin, database);
  if (!cat) throw new Error(`database "${database}" does not exist`);
  if (!cat.allowConnections)
    await admin.query(`ALTER DATABASE ${quoteIdent(database)} ALLOW_CONNECTIONS true`);
  try {
    return await withClient(dsnWithDatabase(adminDsn, database), fn);
  } finally {
    if (!cat.allowConnections) {
      await admin.query(`ALTER DATABASE ${quoteIdent(database)} ALLOW_CONNECTIONS false`);
    }
  }
}
