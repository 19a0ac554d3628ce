/**
 * The short-lived login role a restore loads the tenant's rows with (docs/operations/security.md):
 * COPY into a tenant table evaluates its CHECK and domain constraints and stored generated columns,
 * any of which may call a function the tenant wrote, so the data section of pg_restore must not run
 * with the platform's rights. The role is a member of the tenant's role (INHERIT) and nothing else:
 * no superuser, no role or database creation, no replication, no RLS bypass, CONNECT on the copy
 * only; its password is random and lives in this process alone. It is named after the restore, so
 * a resume or rollback finds and drops it.
 */
import { randomBytes } from "node:crypto";
import type { Client } from "pg";
import { quoteIdent, quoteLiteral, withClient } from "../pg/client";
import { terminateSessions } from "../pg/sessions";
import { dsnWithDatabase } from "../pg/dsn";
import { scramSha256Verifier } from "../pg/scram";

export interface LoadRole {
  name: string;
  password: string;
}

export const loadRoleName = (restoreId: string): string => `loomworks_restore_${restoreId}`;

/** (Re)creates the restore's load role, allowed to connect to `restoreDb` only. */
export async function createLoadRole(
  admin: Client,
  adminDsn: string,
  restoreId: string,
  tenantRole: string,
  restoreDb: string,
): Promise<LoadRole> {
  const name = loadRoleName(restoreId);
  await dropLoadRole(admin, adminDsn, restoreId);
  const password = randomBytes(24).toString("hex");
  const role = quoteIdent(name);
  await admin.query(
    `CREATE ROLE ${role} LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS ` +
      `PASSWORD ${quoteLiteral(scramSha256Verifier(password))} ` +
      `VALID UNTIL ${quoteLiteral(new Date(Date.now() + 24 * 3600_000).toISOString())} ` +
      `IN ROLE ${quoteIdent(tenantRole)}`,
  );
  await admin.query(`GRANT CONNECT ON DATABASE ${quoteIdent(restoreDb)} TO ${role}`);
  return { name, password };
}

/**
 * Drops the restore's load role if it exists: its sessions ended, whatever it came to own or be
 * granted in any database dropped or revoked (found through pg_shdepend). Idempotent.
 */
export async function dropLoadRole(admin: Client, adminDsn: string, restoreId: string): Promise<void> {
  const name = loadRoleName(restoreId);
  const exists = await admin.query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", [name]);
  if (!exists.rowCount) return;
  await terminateSessions(admin, { role: name, waitMs: 5000 });
  const deps = await admin.query<{ datname: string | null }>(
    `SELECT DISTINCT d.datname::text AS datname
     FROM pg_catalog.pg_shdepend s LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
     WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
       AND s.refobjid = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $1)`,
    [name],
  );
  // Privileges on shared objects (the copy's CONNECT) are revoked by DROP OWNED in any database.
  const databases = new Set(deps.rows.map((r) => r.datname));
  for (const db of databases) {
    const dsn = db === null ? adminDsn : dsnWithDatabase(adminDsn, db);
    await withClient(dsn, (c) => c.query(`DROP OWNED BY ${quoteIdent(name)}`));
  }
  await admin.query(`DROP ROLE ${quoteIdent(name)}`);
}
