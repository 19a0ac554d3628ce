/**
 * The SQL text builders of tenant provisioning that do not need a connection (roles, databases,
 * ownership, markers). Unit-tested in test/unit/tenant-sql.test.ts.
 */
import { quoteIdent, quoteLiteral } from "../pg/client";
import { passwordClause } from "../pg/scram";

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
