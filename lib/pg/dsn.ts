/** Connection URLs (`postgres://…`): another database, libpq environment variables, redaction. */

function parseDsn(dsn: string): URL {
  if (!/^postgres(ql)?:\/\//.test(dsn)) {
    throw new Error("expected a postgres:// connection URL (as built by lib/pg/client.ts adminDsn)");
  }
  return new URL(dsn);
}

/** The same connection URL pointed at another database. */
export function dsnWithDatabase(dsn: string, database: string): string {
  const url = parseDsn(dsn);
  url.pathname = "/" + encodeURIComponent(database);
  return url.toString();
}

/** The database a connection URL names (`postgres` when none). */
export function dsnDatabase(dsn: string): string {
  const url = parseDsn(dsn);
  const db = decodeURIComponent(url.pathname.replace(/^\//, ""));
  return db || "postgres";
}

/**
 * libpq environment variables for a connection URL, so that client programs (psql, pg_restore,
 * an initializer command) connect without the password appearing on a command line.
 */
export function dsnToPgEnv(dsn: string): Record<string, string> {
  const url = parseDsn(dsn);
  const env: Record<string, string> = {};
  const socketHost = url.searchParams.get("host");
  env.PGHOST = socketHost ?? url.hostname.replace(/^\[(.*)\]$/, "$1");
  env.PGPORT = url.port || "5432";
  if (url.username) env.PGUSER = decodeURIComponent(url.username);
  if (url.password) env.PGPASSWORD = decodeURIComponent(url.password);
  env.PGDATABASE = dsnDatabase(dsn);
  const sslmode = url.searchParams.get("sslmode");
  if (sslmode) env.PGSSLMODE = sslmode;
  return env;
}

/** A DSN with its password replaced by `***`, for log and error messages. */
export function redactDsn(dsn: string): string {
  try {
    const url = parseDsn(dsn);
    if (url.password) url.password = "***";
    return url.toString();
  } catch {
    return "<unparseable dsn>";
  }
}
