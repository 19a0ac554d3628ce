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
 * Connects, runs `fn`, and always ends the connection. Connection errors after `fn` started
 * (e.g. the server shutting down) surface as query errors, never as an unhandled `error` event.
 */
export async function withClient<T>(
  dsn: string | ClientConfig,
  fn: (client: Client) => Promise<T>,
): Promise<T> {
  const config: ClientConfig =
    typeof dsn === "string"
      ? { connectionString: dsn, connectionTimeoutMillis: 15_000, application_name: "loomworks-hosting" }
      : { connectionTimeoutMillis: 15_000, application_name: "loomworks-hosting", ...dsn };
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
