/**
 * Pure helpers for tenant provisioning: name rules, DSN manipulation, SCRAM verifiers and the
 * SQL text builders that do not need a connection. Unit-tested in test/unit/tenant-sql.test.ts.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { quoteIdent, quoteLiteral } from "../pg/client";

/** PostgreSQL truncates identifiers at 63 bytes (NAMEDATALEN - 1). */
export const MAX_IDENTIFIER_BYTES = 63;
/** Suffix of a template database while it is being built. */
export const BUILDING_SUFFIX = "__building";

const DB_NAME = /^[a-z0-9][a-z0-9_-]*$/;
const ROLE_NAME = /^[a-z_][a-z0-9_-]*$/;
/** Names the platform itself uses; no tenant may take them. */
export const RESERVED_NAMES = new Set([
  "postgres",
  "template0",
  "template1",
  "loomworks_mgmt",
  "loomworks_hosting_admin",
  "loomworks_tenant",
  "public",
  "pg_database_owner",
]);

/** Throws unless `name` is a database name the platform may create for a tenant or template. */
export function checkDatabaseName(name: string, what = "database"): void {
  if (!DB_NAME.test(name)) {
    throw new Error(
      `${what} name "${name}" is invalid: use lowercase letters, digits, "_" and "-", starting alphanumeric`,
    );
  }
  const limit = MAX_IDENTIFIER_BYTES - BUILDING_SUFFIX.length;
  if (Buffer.byteLength(name) > limit) {
    throw new Error(
      `${what} name "${name}" is too long (max ${limit} characters, leaving room for suffixes)`,
    );
  }
  if (RESERVED_NAMES.has(name) || name.startsWith("pg_")) {
    throw new Error(`${what} name "${name}" is reserved by PostgreSQL or the platform`);
  }
}

/** Throws unless `name` is a role name the platform may create for a tenant. */
export function checkRoleName(name: string): void {
  if (!ROLE_NAME.test(name)) {
    throw new Error(
      `role name "${name}" is invalid: use lowercase letters, digits, "_" and "-", not starting with a digit`,
    );
  }
  if (Buffer.byteLength(name) > MAX_IDENTIFIER_BYTES) {
    throw new Error(`role name "${name}" is too long (max ${MAX_IDENTIFIER_BYTES} characters)`);
  }
  if (RESERVED_NAMES.has(name) || name.startsWith("pg_")) {
    throw new Error(`role name "${name}" is reserved by PostgreSQL or the platform`);
  }
}

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

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * A SCRAM-SHA-256 verifier in PostgreSQL's `pg_authid.rolpassword` format. Passing the verifier
 * instead of the plain password to CREATE/ALTER ROLE keeps the password out of the server log and
 * `pg_stat_activity`. Only printable-ASCII passwords are pre-hashed (SASLprep is the identity for
 * them); for anything else the caller falls back to letting the server hash it.
 */
export function scramSha256Verifier(
  password: string,
  opts: { salt?: Buffer; iterations?: number } = {},
): string {
  if (!PRINTABLE_ASCII.test(password)) throw new Error("scramSha256Verifier: only printable ASCII passwords");
  const salt = opts.salt ?? randomBytes(16);
  const iterations = opts.iterations ?? 4096;
  const salted = pbkdf2Sync(Buffer.from(password, "utf8"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString("base64")}$${storedKey.toString("base64")}:${serverKey.toString("base64")}`;
}

/** The `PASSWORD '...'` clause for CREATE/ALTER ROLE: a SCRAM verifier when possible. */
export function passwordClause(password: string): string {
  if (password.length === 0) throw new Error("role password must not be empty");
  const value = PRINTABLE_ASCII.test(password) ? scramSha256Verifier(password) : password;
  return `PASSWORD ${quoteLiteral(value)}`;
}

/** CREATE ROLE for a tenant: LOGIN, nothing else, member of the tenants' group role. */
export function createTenantRoleSql(role: string, password: string, group: string): string {
  return (
    `CREATE ROLE ${quoteIdent(role)} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS ` +
    `${passwordClause(password)} IN ROLE ${quoteIdent(group)}`
  );
}

/** ALTER ROLE that brings an adopted role back to the tenant shape (and sets its password). */
export function alterTenantRoleSql(role: string, password: string, login: boolean): string {
  return (
    `ALTER ROLE ${quoteIdent(role)} ${login ? "LOGIN" : "NOLOGIN"} NOSUPERUSER NOCREATEDB NOCREATEROLE ` +
    `NOREPLICATION NOBYPASSRLS ${passwordClause(password)}`
  );
}

/**
 * CREATE DATABASE from a template, owned by the connected (platform) role, never by the tenant
 * (lib/tenant/provision.ts ensureOwnership). STRATEGY WAL_LOG (PostgreSQL 15's default, written out so it
 * stays so): the copy is WAL-logged block by block, so a selective point-in-time restore of this
 * tenant replays its contents from WAL instead of copying the (possibly excluded) template's
 * files at replay time as FILE_COPY would.
 */
export function createDatabaseFromTemplateSql(database: string, template: string): string {
  return `CREATE DATABASE ${quoteIdent(database)} WITH TEMPLATE ${quoteIdent(template)} STRATEGY WAL_LOG`;
}

/**
 * A DO block, run inside the tenant database, that gives `role` every relation, routine and
 * type in schema `public` (Odoo expects to own its tables: it runs ALTER TABLE on upgrades).
 * Objects that belong to an extension are left alone. Re-running it is a no-op.
 */
export function reassignPublicObjectsSql(role: string): string {
  return `DO $loomworks$
DECLARE
    rname text := ${quoteLiteral(role)};
    target oid := (SELECT oid FROM pg_roles WHERE rolname = ${quoteLiteral(role)});
    obj record;
BEGIN
    IF target IS NULL THEN
        RAISE EXCEPTION 'role % does not exist', rname;
    END IF;
    -- Relations. Sequences owned by a column (serial, identity) depend on their table and move
    -- with it; objects of extensions stay as they are.
    FOR obj IN
        SELECT c.relkind, format('%I.%I', n.nspname, c.relname) AS ident
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public'
          AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND c.relowner <> target
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I',
            CASE obj.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                             WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
            obj.ident, rname);
    END LOOP;
    FOR obj IN
        SELECT p.oid::regprocedure::text AS ident, p.prokind
        FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.proowner <> target
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER %s %s OWNER TO %I',
            CASE obj.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, obj.ident, rname);
    END LOOP;
    -- Stand-alone types (enums, domains, ranges, composite types not backing a table).
    FOR obj IN
        SELECT format('%I.%I', n.nspname, t.typname) AS ident
        FROM pg_type t
        JOIN pg_namespace n ON n.oid = t.typnamespace
        LEFT JOIN pg_class c ON c.oid = t.typrelid
        WHERE n.nspname = 'public' AND t.typowner <> target
          AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
          AND NOT EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO %I', obj.ident, rname);
    END LOOP;
END
$loomworks$`;
}

/** Parameterized statement terminating every other session on a database (waits up to 5 s each). */
export const TERMINATE_DATABASE_SESSIONS_SQL =
  "SELECT count(pg_terminate_backend(pid, 5000)) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()";

/** Parameterized statement terminating every session of a role. */
export const TERMINATE_ROLE_SESSIONS_SQL =
  "SELECT count(pg_terminate_backend(pid, 5000)) AS n FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()";

/** The comment that marks a tenant database whose first-boot initialization has completed. */
export function tenantInitializedComment(subdomain: string): string {
  return `loomworks tenant ${subdomain}: initialized`;
}

/** The comment recorded on a template database: its source's content hash. */
export function templateComment(name: string, hash: string): string {
  return `loomworks template ${name}: sha256=${hash}`;
}

/** The hash in a template comment, if it is one. */
export function parseTemplateComment(comment: string | null | undefined): string | undefined {
  const m = /sha256=([0-9a-f]{64})\b/.exec(comment ?? "");
  return m ? m[1] : undefined;
}
