/** Ending the sessions of a database or a role, as the platform does before it changes or drops them. */
import type { Client } from "pg";

/**
 * Which sessions {@link terminateSessions} ends: those connected to a database or those logged in as
 * a role; never the calling session itself.
 */
export type SessionFilter = ({ database: string } | { role: string }) & {
  /** Only ordinary client connections (background workers and walsenders are left alone). */
  clientBackendsOnly?: boolean;
  /** How long to wait for each session to exit, in ms (pg_terminate_backend's timeout); 0 = do not wait. */
  waitMs: number;
};

/** Terminates the sessions `filter` selects; returns how many were signalled. */
export async function terminateSessions(client: Client, filter: SessionFilter): Promise<number> {
  const [column, name] = "database" in filter ? ["datname", filter.database] : ["usename", filter.role];
  const clientOnly = filter.clientBackendsOnly ? " AND backend_type = 'client backend'" : "";
  const r = await client.query<{ n: string }>(
    `SELECT pg_catalog.count(pg_catalog.pg_terminate_backend(pid, $2)) AS n FROM pg_catalog.pg_stat_activity
     WHERE ${column} = $1 AND pid <> pg_catalog.pg_backend_pid()${clientOnly}`,
    [name, filter.waitMs],
  );
  return Number(r.rows[0]?.n ?? 0);
}
