import { Client, type ClientConfig } from "pg";

export interface DsnParts {
  /** Host name, IP address (v4 or v6) or an absolute unix socket directory. */
  host: string;
  port: number;
  user: string;
  password?: string;
  /** Defaults to `postgres`. */
  database?: string;
}

/**
 * Builds a `postgres://` URL; every part is URL-encoded. A socket directory as `host` goes into
 * the `host` query parameter (understood by `pg` and libpq).
 */
export function adminDsn(parts: DsnParts): string {
  const { host, port, user, password } = parts;
  const database = parts.database ?? "postgres";
  if (!host) throw new Error("adminDsn: host is required");
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`adminDsn: invalid port ${port}`);
  if (!user) throw new Error("adminDsn: user is required");
  const auth = encodeURIComponent(user) + (password === undefined ? "" : `:${encodeURIComponent(password)}`);
  const db = encodeURIComponent(database);
  if (host.startsWith("/")) {
    return `postgres://${auth}@localhost:${port}/${db}?host=${encodeURIComponent(host)}`;
  }
  const hostPart = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return `postgres://${auth}@${hostPart}:${port}/${db}`;
}

/**
 * What every platform session runs with, whatever the database's or role's own settings say. A
 * tenant owns objects in its database and could once set database defaults; settings sent at
 * connection start (startup options) take precedence over `ALTER DATABASE/ROLE ... SET`, so:
 *  - `search_path` holds only pg_catalog and the session's own temp schema: no name the platform
 *    writes unqualified can resolve to a function, operator or table a tenant created;
 *  - timeouts off and transactions writable, so no setting of the tenant's makes a check fail or
 *    lifts read-only enforcement; the rest keeps parsing, quoting and PL/pgSQL as the platform's
 *    code expects.
 * Only user-settable parameters: the platform's role need not be a superuser.
 */
export const PLATFORM_SESSION_SETTINGS: Readonly<Record<string, string>> = {
  search_path: "pg_catalog, pg_temp",
  statement_timeout: "0",
  lock_timeout: "0",
  idle_in_transaction_session_timeout: "0",
  idle_session_timeout: "0",
  default_transaction_read_only: "off",
  default_transaction_isolation: "read committed",
  default_transaction_deferrable: "off",
  synchronous_commit: "on",
  row_security: "on",
  check_function_bodies: "on",
  standard_conforming_strings: "on",
  exit_on_error: "off",
  DateStyle: "ISO, MDY",
  IntervalStyle: "postgres",
  bytea_output: "hex",
  default_tablespace: "",
  temp_tablespaces: "",
  default_table_access_method: "heap",
  local_preload_libraries: "",
  "plpgsql.variable_conflict": "error",
  "plpgsql.extra_warnings": "none",
  "plpgsql.extra_errors": "none",
};

/** `-c name=value` startup options (libpq's `options`, PGOPTIONS): spaces and backslashes escaped. */
export function startupOptions(settings: Readonly<Record<string, string>>): string {
  return Object.entries(settings)
    .map(([name, value]) => `-c ${name}=${value.replace(/[\\ ]/g, (c) => `\\${c}`)}`)
    .join(" ");
}

/** PLATFORM_SESSION_SETTINGS as startup options, for `pg` clients and for PGOPTIONS of psql & co. */
export const PLATFORM_SESSION_OPTIONS = startupOptions(PLATFORM_SESSION_SETTINGS);

/**
 * The client configuration of a platform session: the platform's settings first, then options the
 * DSN or config carries itself (an explicit choice of the platform's, e.g. the registry's path).
 */
export function platformClientConfig(dsn: string | ClientConfig): ClientConfig {
  const config: ClientConfig = typeof dsn === "string" ? { connectionString: dsn } : { ...dsn };
  const own: string[] = [];
  if (config.connectionString) {
    const { connectionString, options } = withoutOptionsParam(config.connectionString);
    config.connectionString = connectionString;
    if (options) own.push(options);
  }
  if (config.options) own.push(config.options);
  return { ...SESSION_DEFAULTS, ...config, options: [PLATFORM_SESSION_OPTIONS, ...own].join(" ") };
}

const SESSION_DEFAULTS = { connectionTimeoutMillis: 15_000, application_name: "loomworks-hosting" };

/** A DSN's `options` query parameter taken out (pg would let it replace the config's own). */
function withoutOptionsParam(dsn: string): { connectionString: string; options?: string } {
  if (!/^postgres(ql)?:\/\//.test(dsn) || !dsn.includes("options=")) return { connectionString: dsn };
  const url = new URL(dsn);
  const options = url.searchParams.get("options") ?? undefined;
  url.searchParams.delete("options");
  return { connectionString: url.toString(), ...(options ? { options } : {}) };
}

async function runWith<T>(config: ClientConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client(config);
  client.on("error", () => {
    /* reported through the pending query or connect() instead */
  });
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Connects as the platform (settings pinned: {@link PLATFORM_SESSION_SETTINGS}), runs `fn`, and
 * always ends the connection. Connection errors after `fn` started (e.g. the server shutting down)
 * surface as query errors, never as an unhandled `error` event. SQL run through it names tenant
 * objects with their schema (`public.res_users`): nothing but pg_catalog is on its search_path.
 */
export async function withClient<T>(
  dsn: string | ClientConfig,
  fn: (client: Client) => Promise<T>,
): Promise<T> {
  return runWith(platformClientConfig(dsn), fn);
}

/**
 * A plain session: the server's, database's and role's own defaults apply (search_path included),
 * as they do for a tenant or the ERP. For tests playing a tenant; the platform uses withClient.
 */
export async function withPlainClient<T>(
  dsn: string | ClientConfig,
  fn: (client: Client) => Promise<T>,
): Promise<T> {
  const config = typeof dsn === "string" ? { connectionString: dsn } : dsn;
  return runWith({ ...SESSION_DEFAULTS, ...config }, fn);
}

function rejectNul(value: string, what: string): void {
  if (value.includes("\0")) throw new Error(`${what} must not contain a NUL character`);
}

/** Quotes an SQL identifier: `"` around it, embedded `"` doubled. Always quotes (case is kept). */
export function quoteIdent(name: string): string {
  rejectNul(name, "identifier");
  if (name.length === 0) throw new Error("identifier must not be empty");
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Quotes an SQL string literal: `'` doubled; when the value contains a backslash it is written as
 * `E'...'` with backslashes doubled, which reads back the same whatever standard_conforming_strings is.
 */
export function quoteLiteral(value: string): string {
  rejectNul(value, "string literal");
  const body = value.replace(/'/g, "''");
  if (value.includes("\\")) return `E'${body.replace(/\\/g, "\\\\")}'`;
  return `'${body}'`;
}
