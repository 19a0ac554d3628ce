/**
 * The registry database `loomworks_mgmt`: a mirror of tenants, their limits, snapshots and the
 * journal of provisioning steps, readable by the ERP's management views.
 *
 * Access (row-level security ENABLED and FORCED on every table):
 *  - `loomworks_hosting_admin` (NOLOGIN; granted to the operator role of the admin DSN) reads and
 *    writes every row;
 *  - `loomworks_tenant` (NOLOGIN group; every tenant role is a member) may CONNECT and SELECT
 *    `tenants` and `snapshots`, and sees only rows of the tenant whose `role_name` is
 *    `current_user`. The journal `tenant_steps` is not visible to tenants.
 * Grants go to the two group roles once, in `ensureRegistry`, not per tenant: concurrent GRANTs on
 * one table from parallel provisioning would fail with "tuple concurrently updated".
 */
import type { Client } from "pg";
import { quoteIdent, startupOptions, withClient } from "../pg/client";
import { dsnWithDatabase } from "../pg/dsn";
import type { TenantState } from "./tenantState";

export const REGISTRY_DATABASE = "loomworks_mgmt";
export const HOSTING_ADMIN_ROLE = "loomworks_hosting_admin";
export const TENANT_GROUP_ROLE = "loomworks_tenant";
/** Bump when the registry DDL below changes; recorded as the registry database's comment. */
export const REGISTRY_VERSION = 2;
const REGISTRY_COMMENT = `loomworks registry v${REGISTRY_VERSION}`;
/** Advisory lock key (in the admin DSN's database) serializing cluster-level registry setup. */
const REGISTRY_LOCK_KEY = 7_314_205_001;

export type TenantRowState = "provisioning" | TenantState;

export interface TenantRow {
  subdomain: string;
  databaseName: string;
  roleName: string;
  tier: string;
  state: TenantRowState;
  adminEmail: string;
  limits: Record<string, number>;
  template: string | null;
  provisioningStep: string | null;
  createdAt: Date;
  updatedAt: Date;
  suspendedAt: Date | null;
  archivedAt: Date | null;
  retentionUntil: Date | null;
}

const REGISTRY_DDL = `
CREATE TABLE IF NOT EXISTS public.tenants (
    subdomain text PRIMARY KEY,
    database_name text NOT NULL UNIQUE,
    role_name text NOT NULL UNIQUE,
    tier text NOT NULL,
    state text NOT NULL CHECK (state IN ('provisioning', 'active', 'suspended', 'archived')),
    admin_email text NOT NULL,
    limits jsonb NOT NULL DEFAULT '{}'::jsonb,
    template text,
    provisioning_step text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    suspended_at timestamptz,
    archived_at timestamptz,
    retention_until timestamptz
);

CREATE TABLE IF NOT EXISTS public.snapshots (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subdomain text NOT NULL REFERENCES tenants (subdomain) ON DELETE CASCADE,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('manual', 'auto', 'pre_ai')),
    lsn pg_lsn,
    wal_file text,
    created_at timestamptz NOT NULL DEFAULT now(),
    size_bytes bigint,
    backup_label text,
    state text NOT NULL DEFAULT 'pending'
);
CREATE INDEX IF NOT EXISTS snapshots_subdomain_created_at_idx ON snapshots (subdomain, created_at);

-- Journal: a step is recorded before it runs; finished_at stays NULL if it did not complete.
CREATE TABLE IF NOT EXISTS public.tenant_steps (
    id bigserial PRIMARY KEY,
    subdomain text NOT NULL,
    step text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS tenant_steps_subdomain_started_at_idx ON tenant_steps (subdomain, started_at);

-- v2: snapshots and restores.
-- A tenant under maintenance (a restore swapping its database) is routed to a 503 page.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS maintenance text CHECK (maintenance IN ('restoring'));
ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS database_name text;
ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS restore_point text;
ALTER TABLE snapshots ADD COLUMN IF NOT EXISTS filestore_path text;
CREATE UNIQUE INDEX IF NOT EXISTS snapshots_manual_name_idx ON snapshots (subdomain, name) WHERE kind = 'manual';

-- Backups the platform took (pgBackRest labels with their WAL range), newest last.
CREATE TABLE IF NOT EXISTS public.backups (
    label text PRIMARY KEY,
    type text NOT NULL CHECK (type IN ('full', 'diff', 'incr')),
    start_time timestamptz NOT NULL,
    stop_time timestamptz NOT NULL,
    start_lsn pg_lsn NOT NULL,
    stop_lsn pg_lsn NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- One row per point-in-time restore of a tenant; its steps are journaled in tenant_steps as
-- 'restore:<id>:<step>'.
CREATE TABLE IF NOT EXISTS public.restores (
    id text PRIMARY KEY,
    subdomain text NOT NULL,
    target jsonb NOT NULL,
    target_lsn pg_lsn,
    backup_label text,
    state text NOT NULL CHECK (state IN ('running', 'done', 'rolled_back', 'failed')),
    step text,
    scratch_dir text,
    scratch_port integer,
    restore_database text,
    pre_restore_database text,
    timings jsonb NOT NULL DEFAULT '{}'::jsonb,
    error text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX IF NOT EXISTS restores_subdomain_started_at_idx ON restores (subdomain, started_at);

REVOKE ALL ON tenants, snapshots, tenant_steps, backups, restores FROM PUBLIC;
REVOKE ALL ON SEQUENCE tenant_steps_id_seq FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON tenants, snapshots, tenant_steps, backups, restores TO ${HOSTING_ADMIN_ROLE};
GRANT USAGE, SELECT ON SEQUENCE tenant_steps_id_seq TO ${HOSTING_ADMIN_ROLE};
GRANT SELECT ON tenants, snapshots, restores TO ${TENANT_GROUP_ROLE};

ALTER TABLE backups ENABLE ROW LEVEL SECURITY;
ALTER TABLE backups FORCE ROW LEVEL SECURITY;
ALTER TABLE restores ENABLE ROW LEVEL SECURITY;
ALTER TABLE restores FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS hosting_admin_all ON backups;
CREATE POLICY hosting_admin_all ON backups TO ${HOSTING_ADMIN_ROLE} USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS hosting_admin_all ON restores;
CREATE POLICY hosting_admin_all ON restores TO ${HOSTING_ADMIN_ROLE} USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS tenant_own_rows ON restores;
CREATE POLICY tenant_own_rows ON restores FOR SELECT TO ${TENANT_GROUP_ROLE}
    USING (EXISTS (SELECT 1 FROM tenants t WHERE t.subdomain = restores.subdomain AND t.role_name = current_user::text));

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
ALTER TABLE snapshots ENABLE ROW LEVEL SECURITY;
ALTER TABLE snapshots FORCE ROW LEVEL SECURITY;
ALTER TABLE tenant_steps ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_steps FORCE ROW LEVEL SECURITY;

DROP POLICY IF EXISTS hosting_admin_all ON tenants;
CREATE POLICY hosting_admin_all ON tenants TO ${HOSTING_ADMIN_ROLE} USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS tenant_own_row ON tenants;
CREATE POLICY tenant_own_row ON tenants FOR SELECT TO ${TENANT_GROUP_ROLE} USING (role_name = current_user::text);

DROP POLICY IF EXISTS hosting_admin_all ON snapshots;
CREATE POLICY hosting_admin_all ON snapshots TO ${HOSTING_ADMIN_ROLE} USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS tenant_own_rows ON snapshots;
CREATE POLICY tenant_own_rows ON snapshots FOR SELECT TO ${TENANT_GROUP_ROLE}
    USING (EXISTS (SELECT 1 FROM tenants t WHERE t.subdomain = snapshots.subdomain AND t.role_name = current_user::text));

DROP POLICY IF EXISTS hosting_admin_all ON tenant_steps;
CREATE POLICY hosting_admin_all ON tenant_steps TO ${HOSTING_ADMIN_ROLE} USING (true) WITH CHECK (true);
`;

/**
 * The registry's sessions resolve its tables unqualified: the registry is the platform's own
 * database, nobody else may create in its public schema (or a temp schema), and pg_catalog still
 * comes first.
 */
export const REGISTRY_SEARCH_PATH = "pg_catalog, public, pg_temp";

/** Connection URL of the registry database, derived from the admin DSN (its search_path included). */
export function registryDsn(adminDsn: string): string {
  const url = new URL(dsnWithDatabase(adminDsn, REGISTRY_DATABASE));
  url.searchParams.set("options", startupOptions({ search_path: REGISTRY_SEARCH_PATH }));
  return url.toString();
}

const readyFor = new Set<string>();

/**
 * Creates (or completes) the registry database, its roles, tables, grants and policies.
 * Idempotent and safe to call concurrently: cluster-level work runs under an advisory lock and the
 * DDL in one transaction; a finished registry is recognised by its comment and skipped.
 * Also revokes CONNECT on `postgres` and `template1` from PUBLIC, so that tenant roles can reach
 * no database but their own and the registry.
 */
export async function ensureRegistry(adminDsn: string): Promise<void> {
  if (readyFor.has(adminDsn)) return;
  await withClient(adminDsn, async (admin) => {
    const done = await admin.query<{ comment: string | null }>(
      "SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1",
      [REGISTRY_DATABASE],
    );
    if (done.rows[0]?.comment === REGISTRY_COMMENT) return;
    await admin.query("SELECT pg_advisory_lock($1)", [REGISTRY_LOCK_KEY]);
    try {
      // Another session may have finished it while we waited for the lock.
      const again = await admin.query<{ comment: string | null }>(
        "SELECT shobj_description(oid, 'pg_database') AS comment FROM pg_database WHERE datname = $1",
        [REGISTRY_DATABASE],
      );
      if (again.rows[0]?.comment === REGISTRY_COMMENT) return;
      for (const role of [HOSTING_ADMIN_ROLE, TENANT_GROUP_ROLE]) {
        const exists = await admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]);
        if (exists.rowCount === 0) await admin.query(`CREATE ROLE ${quoteIdent(role)} NOLOGIN`);
      }
      // The operator (the admin DSN's user) acts as the hosting admin in the registry.
      const me = await admin.query<{ member: boolean; name: string }>(
        "SELECT current_user::text AS name, pg_has_role(current_user, $1, 'MEMBER') AS member",
        [HOSTING_ADMIN_ROLE],
      );
      if (!me.rows[0].member) {
        await admin.query(`GRANT ${quoteIdent(HOSTING_ADMIN_ROLE)} TO ${quoteIdent(me.rows[0].name)}`);
      }
      const db = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [REGISTRY_DATABASE]);
      if (db.rowCount === 0) {
        await admin.query(
          `CREATE DATABASE ${quoteIdent(REGISTRY_DATABASE)} TEMPLATE template0 ENCODING 'UTF8'`,
        );
      }
      await admin.query(`REVOKE CONNECT, TEMPORARY ON DATABASE postgres, template1 FROM PUBLIC`);
      await admin.query(`REVOKE ALL ON DATABASE ${quoteIdent(REGISTRY_DATABASE)} FROM PUBLIC`);
      await admin.query(
        `GRANT CONNECT ON DATABASE ${quoteIdent(REGISTRY_DATABASE)} TO ${quoteIdent(HOSTING_ADMIN_ROLE)}, ${quoteIdent(TENANT_GROUP_ROLE)}`,
      );
      await withClient(registryDsn(adminDsn), async (reg) => {
        await reg.query("BEGIN");
        try {
          await reg.query("SET LOCAL client_min_messages = warning");
          await reg.query(REGISTRY_DDL);
          await reg.query("COMMIT");
        } catch (err) {
          await reg.query("ROLLBACK").catch(() => undefined);
          throw err;
        }
      });
      await admin.query(`COMMENT ON DATABASE ${quoteIdent(REGISTRY_DATABASE)} IS '${REGISTRY_COMMENT}'`);
    } finally {
      await admin.query("SELECT pg_advisory_unlock($1)", [REGISTRY_LOCK_KEY]).catch(() => undefined);
    }
  });
  readyFor.add(adminDsn);
}

/** Forgets that the registry was seen complete (tests that drop it; a new cluster on the same DSN). */
export function forgetRegistryCache(): void {
  readyFor.clear();
}

/** Runs `fn` on a connection to the registry database (after ensureRegistry). */
export async function withRegistry<T>(adminDsn: string, fn: (reg: Client) => Promise<T>): Promise<T> {
  await ensureRegistry(adminDsn);
  return withClient(registryDsn(adminDsn), fn);
}

interface TenantDbRow {
  subdomain: string;
  database_name: string;
  role_name: string;
  tier: string;
  state: TenantRowState;
  admin_email: string;
  limits: Record<string, number>;
  template: string | null;
  provisioning_step: string | null;
  created_at: Date;
  updated_at: Date;
  suspended_at: Date | null;
  archived_at: Date | null;
  retention_until: Date | null;
}

function toTenantRow(r: TenantDbRow): TenantRow {
  return {
    subdomain: r.subdomain,
    databaseName: r.database_name,
    roleName: r.role_name,
    tier: r.tier,
    state: r.state,
    adminEmail: r.admin_email,
    limits: r.limits,
    template: r.template,
    provisioningStep: r.provisioning_step,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    suspendedAt: r.suspended_at,
    archivedAt: r.archived_at,
    retentionUntil: r.retention_until,
  };
}

/** The registry row of a tenant, if any (as visible to the connected role). */
export async function getTenantRow(reg: Client, subdomain: string): Promise<TenantRow | undefined> {
  const r = await reg.query<TenantDbRow>("SELECT * FROM tenants WHERE subdomain = $1", [subdomain]);
  return r.rows[0] ? toTenantRow(r.rows[0]) : undefined;
}

/** Every registry row visible to the connected role, by subdomain. */
export async function listTenantRows(reg: Client): Promise<TenantRow[]> {
  const r = await reg.query<TenantDbRow>("SELECT * FROM tenants ORDER BY subdomain");
  return r.rows.map(toTenantRow);
}

/** A tenant the scheduled jobs work on: active and not under maintenance (no restore swapping it). */
export interface ServedTenant {
  subdomain: string;
  database_name: string;
}

/**
 * The tenants the scheduled jobs work on, in subdomain order: active, not under maintenance, and
 * among `subdomains` when given. Ensures the registry first.
 */
export async function servedTenants(
  adminDsn: string,
  subdomains?: readonly string[],
): Promise<ServedTenant[]> {
  await ensureRegistry(adminDsn);
  return withClient(registryDsn(adminDsn), async (reg) => {
    const r = await reg.query<ServedTenant>(
      `SELECT subdomain, database_name FROM tenants
       WHERE state = 'active' AND maintenance IS NULL AND ($1::text[] IS NULL OR subdomain = ANY($1::text[]))
       ORDER BY subdomain`,
      [subdomains ? [...subdomains] : null],
    );
    return r.rows;
  });
}

export interface TenantRowInput {
  subdomain: string;
  databaseName: string;
  roleName: string;
  tier: string;
  adminEmail: string;
  limits: Record<string, number>;
  template: string;
}

/**
 * Inserts the row in state `provisioning`, or refreshes an existing row's descriptive columns and
 * marks the step in progress. An existing row keeps its state and lifecycle timestamps: they
 * change only through {@link setTenantState}.
 */
export async function upsertTenantRow(
  reg: Client,
  row: TenantRowInput,
  step: string | null,
): Promise<TenantRow> {
  const r = await reg.query<TenantDbRow>(
    `INSERT INTO tenants AS t (subdomain, database_name, role_name, tier, state, admin_email, limits, template, provisioning_step)
     VALUES ($1, $2, $3, $4, 'provisioning', $5, $6::jsonb, $7, $8)
     ON CONFLICT (subdomain) DO UPDATE SET
         database_name = EXCLUDED.database_name,
         role_name = EXCLUDED.role_name,
         tier = EXCLUDED.tier,
         admin_email = EXCLUDED.admin_email,
         limits = EXCLUDED.limits,
         template = COALESCE(t.template, EXCLUDED.template),
         provisioning_step = EXCLUDED.provisioning_step,
         updated_at = now()
     RETURNING *`,
    [
      row.subdomain,
      row.databaseName,
      row.roleName,
      row.tier,
      row.adminEmail,
      JSON.stringify(row.limits),
      row.template,
      step,
    ],
  );
  return toTenantRow(r.rows[0]);
}

/** Updates tier, limits and admin email of an existing row. */
export async function updateTenantRowAttributes(
  reg: Client,
  subdomain: string,
  attrs: { tier: string; limits: Record<string, number>; adminEmail: string },
): Promise<void> {
  await reg.query(
    `UPDATE tenants SET tier = $2, limits = $3::jsonb, admin_email = $4, updated_at = now() WHERE subdomain = $1`,
    [subdomain, attrs.tier, JSON.stringify(attrs.limits), attrs.adminEmail],
  );
}

/**
 * Moves a row to a lifecycle state and keeps the timestamps consistent:
 *  - active: clears suspended_at, archived_at and retention_until;
 *  - suspended: suspended_at kept if already suspended/archived, else now; no retention;
 *  - archived: archived_at kept if already archived, else now; retention_until = archived_at + days.
 * Clears provisioning_step (the tenant is complete).
 */
export async function setTenantState(
  reg: Client,
  subdomain: string,
  state: TenantState,
  retentionDays: number,
): Promise<TenantRow> {
  const r = await reg.query<TenantDbRow>(
    `UPDATE tenants SET
         suspended_at = CASE WHEN $2 = 'active' THEN NULL
                             ELSE COALESCE(CASE WHEN state IN ('suspended', 'archived') THEN suspended_at END, now()) END,
         archived_at = CASE WHEN $2 = 'archived'
                            THEN COALESCE(CASE WHEN state = 'archived' THEN archived_at END, now()) END,
         retention_until = CASE WHEN $2 = 'archived'
                                THEN COALESCE(CASE WHEN state = 'archived' THEN archived_at END, now())
                                     + make_interval(days => $3::int) END,
         state = $2,
         provisioning_step = NULL,
         updated_at = now()
     WHERE subdomain = $1
     RETURNING *`,
    [subdomain, state, retentionDays],
  );
  if (!r.rows[0]) throw new Error(`registry has no row for tenant "${subdomain}"`);
  return toTenantRow(r.rows[0]);
}

/** Marks the step in progress on the tenant's row (no-op without a row). */
export async function setProvisioningStep(
  reg: Client,
  subdomain: string,
  step: string | null,
): Promise<void> {
  await reg.query("UPDATE tenants SET provisioning_step = $2, updated_at = now() WHERE subdomain = $1", [
    subdomain,
    step,
  ]);
}

/** Journals a step before it runs; returns the journal id for {@link finishStep}. */
export async function beginStep(reg: Client, subdomain: string, step: string): Promise<string> {
  const r = await reg.query<{ id: string }>(
    "INSERT INTO tenant_steps (subdomain, step) VALUES ($1, $2) RETURNING id::text",
    [subdomain, step],
  );
  return r.rows[0].id;
}

/** Records that a journaled step completed. */
export async function finishStep(reg: Client, id: string): Promise<void> {
  await reg.query("UPDATE tenant_steps SET finished_at = clock_timestamp() WHERE id = $1::bigint", [id]);
}

/** True when one of `steps` of the tenant was ever journaled as finished. */
/** Removes a journal row whose step did not happen after all (a spare claim that lost a race). */
export async function forgetStep(reg: Client, id: string): Promise<void> {
  await reg.query("DELETE FROM tenant_steps WHERE id = $1", [id]);
}

/**
 * Journal step of a tenant created from a spare database (lib/tenant/spares.ts):
 * `spare:<the spare's database name>`, journaled before the claim renames it.
 */
export const SPARE_STEP_PREFIX = "spare:";

/**
 * The names the tenant's database had before it became the tenant's (spares it was claimed from),
 * oldest first: a backup taken before the claim lists the database under that name.
 */
export async function formerDatabaseNames(reg: Client, subdomain: string): Promise<string[]> {
  const r = await reg.query<{ name: string }>(
    `SELECT substr(step, $2::int + 1) AS name FROM tenant_steps
     WHERE subdomain = $1 AND starts_with(step, $3) ORDER BY id`,
    [subdomain, SPARE_STEP_PREFIX.length, SPARE_STEP_PREFIX],
  );
  return r.rows.map((row) => row.name);
}

export async function stepEverFinished(reg: Client, subdomain: string, steps: string[]): Promise<boolean> {
  const r = await reg.query(
    "SELECT 1 FROM tenant_steps WHERE subdomain = $1 AND step = ANY($2::text[]) AND finished_at IS NOT NULL LIMIT 1",
    [subdomain, steps],
  );
  return (r.rowCount ?? 0) > 0;
}

export interface JournalEntry {
  step: string;
  startedAt: Date;
  finishedAt: Date | null;
}

/** The journal of a tenant, oldest first. */
export async function tenantJournal(reg: Client, subdomain: string): Promise<JournalEntry[]> {
  const r = await reg.query<{ step: string; started_at: Date; finished_at: Date | null }>(
    "SELECT step, started_at, finished_at FROM tenant_steps WHERE subdomain = $1 ORDER BY id",
    [subdomain],
  );
  return r.rows.map((x) => ({ step: x.step, startedAt: x.started_at, finishedAt: x.finished_at }));
}

/** Deletes a tenant's rows: snapshots, journal, tenant (in one transaction). */
export async function deleteTenantRows(reg: Client, subdomain: string): Promise<void> {
  await reg.query("BEGIN");
  try {
    await reg.query("DELETE FROM snapshots WHERE subdomain = $1", [subdomain]);
    await reg.query("DELETE FROM tenant_steps WHERE subdomain = $1", [subdomain]);
    await reg.query("DELETE FROM tenants WHERE subdomain = $1", [subdomain]);
    await reg.query("COMMIT");
  } catch (err) {
    await reg.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}
