/**
 * The names the platform gives databases and roles (PostgreSQL's identifier limit, the names the
 * platform keeps for itself) and the filestore directory a database name stands for. Unit-tested
 * in test/unit/tenant-sql.test.ts.
 */
import * as path from "node:path";

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

/** `<filestoreRoot>/<database>`, refusing anything that would escape the root. */
export function filestorePath(filestoreRoot: string, database: string): string {
  checkDatabaseName(database);
  const root = path.resolve(filestoreRoot);
  const dir = path.resolve(root, database);
  if (path.dirname(dir) !== root) throw new Error(`filestore path ${dir} is not directly under ${root}`);
  return dir;
}
