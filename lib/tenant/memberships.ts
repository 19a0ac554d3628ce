/**
 * On PostgreSQL 15 a role may grant membership in itself to any other role (it is treated as having
 * ADMIN OPTION on itself; PostgreSQL 16 removed that). A hostile tenant can therefore make another
 * tenant's role — or a spare's role that a future tenant will take over — a member of its own, and
 * that role then reaches two tenants. The platform takes every such membership back.
 */
import type { Client } from "pg";
import { quoteIdent } from "../pg/client";
import { TENANT_GROUP_ROLE } from "../registry/registry";

/** Revokes every role `role` is a member of except the tenant group; returns the roles revoked. */
export async function revokeForeignMemberships(admin: Client, role: string): Promise<string[]> {
  const r = await admin.query<{ granted: string }>(
    `SELECT g.rolname::text AS granted
       FROM pg_catalog.pg_auth_members m
       JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
       JOIN pg_catalog.pg_roles u ON u.oid = m.member
      WHERE u.rolname = $1 AND g.rolname <> $2
      ORDER BY 1`,
    [role, TENANT_GROUP_ROLE],
  );
  for (const { granted } of r.rows)
    await admin.query(`REVOKE ${quoteIdent(granted)} FROM ${quoteIdent(role)}`);
  return r.rows.map((x) => x.granted);
}
