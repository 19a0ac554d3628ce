/**
 * Tenant provisioning: one PostgreSQL database and one LOGIN role per tenant, created from a
 * template database, plus the ERP admin user, the database identity, the filestore directory and
 * the registry row. Plain functions, called by the TenantDatabase dynamic provider and by tests.
 *
 * Every step is journaled in the registry (`tenant_steps`) before it runs and is safe to rerun
 * after a crash at any point: existing objects are adopted and half-made ones finished.
 *
 * First-boot initialization of a tenant database (admin login/password, new database.uuid and
 * database.secret) runs only while the database lacks the "initialized" marker (its COMMENT), so
 * repairing drift never resets a live tenant's admin password or identity; a database recreated
 * from the template gets a fresh initialization.
 *
 * Suspension: `ALLOW_CONNECTIONS false`, the role set NOLOGIN, and its sessions terminated. The
 * database belongs to the platform, not to the tenant (ensureOwnership): the tenant can neither
 * re-allow connections nor change the database's settings.
 */
import { crashPoint } from "../process/crashPoint";
import { randomBytes, randomUUID } from "node:crypto";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import type { Client } from "pg";
import { adminDsn as buildDsn, quoteIdent, quoteLiteral, withClient } from "../pg/client";
import { describeRelog, relogSequences } from "../pg/sequences";
import { terminateSessions } from "../pg/sessions";
import { isRestoreLeftoverOf } from "../restore/names";
import { installSnapshotApi } from "../snapshot/runtime";
import { revokeTenantFromErp } from "./erpRole";
import { revokeForeignMemberships } from "./memberships";
import { templateFilestore } from "./templateBuilder";
import { copyTemplate } from "./templateCopy";
import { claimSpare, claimedComment, findSpare } from "./spares";
import { linkTree } from "../fs/linkTree";
import { removeRetired } from "../filestore/retired";
import { hashPbkdf2Sha512 } from "./passlib";
import {
  REGISTRY_DATABASE,
  SPARE_STEP_PREFIX,
  TENANT_GROUP_ROLE,
  beginStep,
  deleteTenantRows,
  ensureRegistry,
  finishStep,
  forgetStep,
  getTenantRow,
  registryDsn,
  setProvisioningStep,
  setTenantState,
  stepEverFinished,
  updateTenantRowAttributes,
  upsertTenantRow,
  type TenantRow,
  type TenantRowState,
} from "../registry/registry";
import {
  alterTenantRoleSql,
  createTenantRoleSql,
  reassignPublicObjectsSql,
  tenantInitializedComment,
} from "./sql";
import { checkDatabaseName, checkRoleName, filestorePath } from "../pg/names";
import { databaseCatalog, withDatabase } from "../pg/database";
import { forwardTo } from "../pulumi/forward";
import type * as TenantProvider from "./provider";
import { TENANT_STATES, type TenantState } from "../registry/tenantState";

export interface TenantSpec {
  subdomain: string;
  /** Database name (the router's dbfilter expects it to equal the subdomain). */
  database: string;
  roleName: string;
  rolePassword: string;
  /** Name of the template database to copy. */
  template: string;
  tier: string;
  state: TenantState;
  adminEmail: string;
  /** The ERP admin's initial password (written once, at first initialization). */
  adminPassword: string;
  limits: Record<string, number>;
  /** Directory holding one filestore directory per tenant database. */
  filestoreRoot: string;
  /** Days an archived tenant is kept before it may be destroyed. */
  retentionDays: number;
  /** The ERP's own role (lib/tenant/erpRole.ts): a membership in this tenant's role is taken back. */
  erpRole?: string;
}

export interface TenantInfo {
  subdomain: string;
  database: string;
  roleName: string;
  state: TenantState;
  tier: string;
  /** ISO time the registry row was created. */
  createdAt: string;
  /** ISO time until which an archived tenant is retained. */
  retentionUntil?: string;
  filestore: string;
}

export interface TenantStatus {
  databaseExists: boolean;
  roleExists: boolean;
  roleCanLogin: boolean;
  /** `datallowconn` (false when the database is missing). */
  allowConnections: boolean;
  databaseOwner?: string;
  /** The database carries the "initialized" marker. */
  initialized: boolean;
  isTemplate: boolean;
  filestoreExists: boolean;
  registryState?: TenantRowState;
  registry?: TenantRow;
  /** The lifecycle state the live objects show: what `state` would have to be to need no change. */
  observedState?: TenantState;
}

export type Log = (message: string) => void;
const noLog: Log = () => undefined;

/** The ERP user provisioning writes the admin login and password to (Odoo's `base.user_admin`). */
const ADMIN_USER_ID = 2;

/** Validates names and values; throws an error naming the tenant and the problem. */
export function checkTenantSpec(spec: TenantSpec): void {
  const where = `tenant "${spec.subdomain}"`;
  try {
    checkDatabaseName(spec.database);
    checkDatabaseName(spec.template, "template database");
    checkRoleName(spec.roleName);
  } catch (err) {
    throw new Error(`${where}: ${(err as Error).message}`);
  }
  if (!spec.subdomain) throw new Error("tenant subdomain must not be empty");
  if (spec.database === spec.template) throw new Error(`${where}: database and template must differ`);
  if (!TENANT_STATES.includes(spec.state)) {
    throw new Error(
      `${where}: state must be one of ${TENANT_STATES.join(", ")}, got "${String(spec.state)}"`,
    );
  }
  if (!Number.isInteger(spec.retentionDays) || spec.retentionDays < 0) {
    throw new Error(`${where}: retentionDays must be a non-negative integer`);
  }
  if (!spec.rolePassword) throw new Error(`${where}: rolePassword must not be empty`);
  if (!spec.adminEmail) throw new Error(`${where}: adminEmail must not be empty`);
  if (spec.filestoreRoot !== EXTERNAL_FILESTORE && !path.isAbsolute(spec.filestoreRoot))
    throw new Error(
      `${where}: filestoreRoot must be an absolute path (or "" for a filestore the ERP keeps elsewhere)`,
    );
}

/**
 * `filestoreRoot` of a target whose filestore is not on the machine running `pulumi up` (Kubernetes:
 * a ReadWriteMany volume the ERP creates each database's directory on by itself): no filestore step.
 */
export const EXTERNAL_FILESTORE = "";

/** The tenant role's own connection URL. */
export function tenantDsn(
  host: string,
  port: number,
  roleName: string,
  password: string,
  database: string,
): string {
  return buildDsn({ host, port, user: roleName, password, database });
}

// ---------------------------------------------------------------------------------------------
// Catalog helpers (admin connection)
// ---------------------------------------------------------------------------------------------

async function roleCatalog(admin: Client, role: string): Promise<{ canLogin: boolean } | undefined> {
  const r = await admin.query<{ rolcanlogin: boolean }>(
    "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
    [role],
  );
  return r.rows[0] ? { canLogin: r.rows[0].rolcanlogin } : undefined;
}

async function tableExists(db: Client, table: string): Promise<boolean> {
  const r = await db.query<{ t: string | null }>("SELECT pg_catalog.to_regclass($1)::text AS t", [
    `public.${table}`,
  ]);
  return r.rows[0].t !== null;
}

async function columnExists(db: Client, table: string, column: string): Promise<boolean> {
  const r = await db.query(
    "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = $2",
    [table, column],
  );
  return (r.rowCount ?? 0) > 0;
}

// ---------------------------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------------------------

async function ensureRole(admin: Client, spec: TenantSpec, login: boolean): Promise<void> {
  const role = await roleCatalog(admin, spec.roleName);
  if (!role) {
    try {
      await admin.query(createTenantRoleSql(spec.roleName, spec.rolePassword, TENANT_GROUP_ROLE));
      if (!login) await admin.query(`ALTER ROLE ${quoteIdent(spec.roleName)} NOLOGIN`);
      return;
    } catch (err) {
      // A concurrent run created it first: adopt it below.
      if ((err as { code?: string }).code !== "42710") throw err;
    }
  }
  await admin.query(alterTenantRoleSql(spec.roleName, spec.rolePassword, login));
  const member = await admin.query<{ m: boolean }>("SELECT pg_has_role($1, $2, 'MEMBER') AS m", [
    spec.roleName,
    TENANT_GROUP_ROLE,
  ]);
  if (!member.rows[0].m)
    await admin.query(`GRANT ${quoteIdent(TENANT_GROUP_ROLE)} TO ${quoteIdent(spec.roleName)}`);
  await revokeForeignMemberships(admin, spec.roleName);
}

/** Creates the database from the template unless it exists; true when created now. */
async function ensureDatabase(admin: Client, spec: TenantSpec, log: Log): Promise<boolean> {
  const existing = await databaseCatalog(admin, spec.database);
  if (existing) {
    if (existing.isTemplate) {
      throw new Error(
        `tenant "${spec.subdomain}": database "${spec.database}" is a template database; refusing to adopt it`,
      );
    }
    return false;
  }
  const tmpl = await databaseCatalog(admin, spec.template);
  if (!tmpl) {
    throw new Error(
      `tenant "${spec.subdomain}": template database "${spec.template}" does not exist (is its TenantTemplate created?)`,
    );
  }
  const created = await copyTemplate(admin, spec.database, spec.template, log);
  if (created) log(`created database ${spec.database} from template ${spec.template}`);
  return created;
}

/**
 * The database belongs to the platform (the admin DSN's role), not to the tenant: its owner may
 * ALTER DATABASE, and database settings reach every session, the platform's included. The tenant
 * owns schema public and everything in it (the ERP creates and alters its tables) and gets CONNECT
 * and TEMPORARY, nothing else (ensureConnectGrants). Converts a tenant that owned its database:
 * privileges it granted on it meanwhile are revoked. Idempotent.
 */
async function ensureOwnership(admin: Client, adminDsn: string, spec: TenantSpec): Promise<void> {
  const db = quoteIdent(spec.database);
  // One transaction: the tenant's own CONNECT is never missing in between.
  await admin.query("BEGIN");
  try {
    await admin.query(`ALTER DATABASE ${db} OWNER TO CURRENT_USER`);
    const grantees = await admin.query<{ grantee: string | null }>(
      `SELECT DISTINCT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END AS grantee
       FROM pg_catalog.pg_database d, pg_catalog.aclexplode(d.datacl) a
       WHERE d.datname = $1 AND a.grantee <> d.datdba`,
      [spec.database],
    );
    for (const { grantee } of grantees.rows) {
      const who = grantee === null ? "PUBLIC" : quoteIdent(grantee);
      await admin.query(`REVOKE ALL ON DATABASE ${db} FROM ${who} CASCADE`);
    }
    await ensureConnectGrants(admin, spec);
    await admin.query("COMMIT");
  } catch (err) {
    await admin.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
  // A claimed spare: its role (now the tenant's) was given public and its objects when it was made.
  if ((await databaseCatalog(admin, spec.database))?.comment === claimedComment(spec.subdomain)) return;
  await withDatabase(admin, adminDsn, spec.database, async (tenantDb) => {
    await tenantDb.query(`ALTER SCHEMA public OWNER TO ${quoteIdent(spec.roleName)}`);
    await tenantDb.query(reassignPublicObjectsSql(spec.roleName));
  });
}

/** The step names of {@link relogTenantSequences}: createTenant's, and updateTenant's repair. */
const SEQUENCES_STEPS = ["sequences", "update:sequences"];

/**
 * Every sequence of the copy re-logged in its own WAL history (lib/pg/sequences.ts explains why
 * a template copy needs it). Run once for tenants created before this step existed.
 */
async function relogTenantSequences(
  admin: Client,
  adminDsn: string,
  spec: TenantSpec,
  log: Log,
): Promise<void> {
  if ((await databaseCatalog(admin, spec.database))?.comment === claimedComment(spec.subdomain)) {
    log(`${spec.subdomain}: sequences re-logged when its spare database was made`);
    return;
  }
  const summary = await withDatabase(admin, adminDsn, spec.database, (db) => relogSequences(db));
  log(`${spec.subdomain}: ${describeRelog(summary)}`);
}

async function ensureConnectGrants(admin: Client, spec: TenantSpec): Promise<void> {
  // The owner keeps its implicit privileges; nobody else may connect or create temp tables.
  await admin.query(`REVOKE ALL ON DATABASE ${quoteIdent(spec.database)} FROM PUBLIC`);
  await admin.query(
    `GRANT CONNECT, TEMPORARY ON DATABASE ${quoteIdent(spec.database)} TO ${quoteIdent(spec.roleName)}`,
  );
}

/** Admin login and password in res_users (only when the table and user 2 exist). */
async function initAdminUser(
  db: Client,
  spec: TenantSpec,
  log: Log,
  hashing: Promise<string>,
): Promise<void> {
  if (!(await tableExists(db, "res_users"))) {
    log("no res_users table in the template: skipping the ERP admin user");
    return;
  }
  const hash = await hashing;
  const r = await db.query<{ partner_id: number | null }>(
    "UPDATE public.res_users SET login = $1, password = $2 WHERE id = $3 RETURNING partner_id",
    [spec.adminEmail, hash, ADMIN_USER_ID],
  );
  if (r.rowCount === 0) {
    log(`res_users has no user ${ADMIN_USER_ID}: skipping the ERP admin user`);
    return;
  }
  const partnerId = r.rows[0].partner_id;
  if (
    partnerId !== null &&
    (await tableExists(db, "res_partner")) &&
    (await columnExists(db, "res_partner", "email"))
  ) {
    await db.query("UPDATE public.res_partner SET email = $1 WHERE id = $2", [spec.adminEmail, partnerId]);
  }
}

/** A fresh database.uuid / database.secret / database.create_date (only when the table exists). */
async function initIdentity(db: Client, log: Log): Promise<void> {
  if (!(await tableExists(db, "ir_config_parameter"))) {
    log("no ir_config_parameter table in the template: skipping the database identity");
    return;
  }
  const now = new Date()
    .toISOString()
    .replace("T", " ")
    .replace(/\.\d+Z$/, "");
  const values: Array<[string, string]> = [
    ["database.uuid", randomUUID()],
    ["database.secret", randomBytes(32).toString("hex")],
    ["database.create_date", now],
  ];
  for (const [key, value] of values) {
    const u = await db.query("UPDATE public.ir_config_parameter SET value = $2 WHERE key = $1", [key, value]);
    if (u.rowCount === 0)
      await db.query("INSERT INTO public.ir_config_parameter (key, value) VALUES ($1, $2)", [key, value]);
  }
}

async function ensureFilestore(spec: TenantSpec): Promise<string> {
  if (spec.filestoreRoot === EXTERNAL_FILESTORE) return "";
  const dir = filestorePath(spec.filestoreRoot, spec.database);
  await fs.mkdir(dir, { recursive: true, mode: 0o750 });
  await fs.chmod(dir, 0o750);
  return dir;
}

/**
 * The files the template's build wrote (`<filestoreRoot>/<template>`, templateBuilder.ts), linked
 * into the new tenant's filestore: the template's attachments (company logo, images) name them.
 * Once, when the tenant is initialized (a file the ERP later deletes is not brought back).
 */
async function copyTemplateFilestore(spec: TenantSpec): Promise<void> {
  if (spec.filestoreRoot === EXTERNAL_FILESTORE) return;
  const src = templateFilestore(spec.filestoreRoot, spec.template);
  const exists = await fs.stat(src).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!exists) return;
  const dst = await ensureFilestore(spec);
  await linkTree(src, dst, true);
}

/** ALLOW_CONNECTIONS, role LOGIN and sessions for a lifecycle state. */
async function applyLiveState(admin: Client, spec: TenantSpec, state: TenantState, log: Log): Promise<void> {
  const db = quoteIdent(spec.database);
  const role = quoteIdent(spec.roleName);
  if (state === "active") {
    await admin.query(`ALTER ROLE ${role} LOGIN`);
    await admin.query(`ALTER DATABASE ${db} ALLOW_CONNECTIONS true`);
    return;
  }
  await admin.query(`ALTER DATABASE ${db} ALLOW_CONNECTIONS false`);
  await admin.query(`ALTER ROLE ${role} NOLOGIN`);
  const total =
    (await terminateSessions(admin, { database: spec.database, waitMs: 5000 })) +
    (await terminateSessions(admin, { role: spec.roleName, waitMs: 5000 }));
  if (total > 0) log(`${state}: terminated ${total} session(s) of ${spec.subdomain}`);
}

function info(spec: TenantSpec, row: TenantRow): TenantInfo {
  return {
    subdomain: spec.subdomain,
    database: spec.database,
    roleName: spec.roleName,
    state: row.state === "provisioning" ? spec.state : row.state,
    tier: row.tier,
    createdAt: row.createdAt.toISOString(),
    ...(row.retentionUntil ? { retentionUntil: row.retentionUntil.toISOString() } : {}),
    filestore:
      spec.filestoreRoot === EXTERNAL_FILESTORE ? "" : filestorePath(spec.filestoreRoot, spec.database),
  };
}

type StepRunner = <T>(name: string, fn: () => Promise<T>) => Promise<T>;

function stepRunner(reg: Client, subdomain: string, log: Log, prefix = ""): StepRunner {
  return async (name, fn) => {
    const step = prefix + name;
    const id = await beginStep(reg, subdomain, step);
    await setProvisioningStep(reg, subdomain, step);
    log(`${subdomain}: ${step}`);
    crashPoint(`tenant:${step}`);
    const result = await fn();
    await finishStep(reg, id);
    return result;
  };
}

// ---------------------------------------------------------------------------------------------
// Lifecycle
// ---------------------------------------------------------------------------------------------

/**
 * Creates the tenant, or finishes/repairs it: every step adopts what exists. Safe to call again
 * after a crash at any point, and on a tenant whose database or role was removed by hand.
 */
export async function createTenant(
  adminDsn: string,
  spec: TenantSpec,
  log: Log = noLog,
): Promise<TenantInfo> {
  checkTenantSpec(spec);
  // PBKDF2's 600,000 rounds run in libuv's thread pool while the database is copied (or claimed);
  // the erp-admin step waits for what is left. A run that fails earlier drops it.
  const hashing = hashPbkdf2Sha512(spec.adminPassword);
  hashing.catch(() => undefined);
  await ensureRegistry(adminDsn);
  return withClient(adminDsn, async (admin) => {
    return withClient(registryDsn(adminDsn), async (reg) => {
      const step = stepRunner(reg, spec.subdomain, log);
      await step("registry-row", () =>
        upsertTenantRow(
          reg,
          {
            subdomain: spec.subdomain,
            databaseName: spec.database,
            roleName: spec.roleName,
            tier: spec.tier,
            adminEmail: spec.adminEmail,
            limits: spec.limits,
            template: spec.template,
          },
          "registry-row",
        ),
      );
      await claimSpareIfAny(admin, reg, spec, log);
      await step("role", () => ensureRole(admin, spec, spec.state === "active"));
      await step("database", () => ensureDatabase(admin, spec, log));
      await step("ownership", () => ensureOwnership(admin, adminDsn, spec));
      await step("sequences", () => relogTenantSequences(admin, adminDsn, spec, log));
      await step("connect-grants", () => ensureConnectGrants(admin, spec));
      if (spec.erpRole) {
        const erpRole = spec.erpRole;
        await step("erp-access", () => revokeTenantFromErp(admin, spec.roleName, erpRole));
      }
      const cat = await databaseCatalog(admin, spec.database);
      const marker = tenantInitializedComment(spec.subdomain);
      if (cat?.comment !== marker) {
        await step("template-filestore", () => copyTemplateFilestore(spec));
        await withDatabase(admin, adminDsn, spec.database, async (db) => {
          await step("erp-admin", () => initAdminUser(db, spec, log, hashing));
          await step("database-identity", () => initIdentity(db, log));
          await step("snapshot-api", () => installSnapshotApi(db));
        });
        await step("mark-initialized", () =>
          admin.query(`COMMENT ON DATABASE ${quoteIdent(spec.database)} IS ${quoteLiteral(marker)}`),
        );
      }
      await step("filestore", () => ensureFilestore(spec));
      await step("state", () => applyLiveState(admin, spec, spec.state, log));
      const row = await step("registry-final", () =>
        setTenantState(reg, spec.subdomain, spec.state, spec.retentionDays),
      );
      return info(spec, row);
    });
  });
}

/**
 * Step `spare:<name>`: a new tenant (neither its database nor its role exists yet) takes a ready
 * spare of its template (lib/tenant/spares.ts) instead of copying the template. Journaled before
 * the claim; the journal row is removed when the claim does not happen, so it names exactly the
 * databases that became this tenant's (a restore includes them under their former names).
 */
async function claimSpareIfAny(admin: Client, reg: Client, spec: TenantSpec, log: Log): Promise<void> {
  if ((await databaseCatalog(admin, spec.database)) || (await roleCatalog(admin, spec.roleName))) return;
  const spare = await findSpare(admin, spec.template);
  if (!spare) return;
  const id = await beginStep(reg, spec.subdomain, `${SPARE_STEP_PREFIX}${spare}`);
  await setProvisioningStep(reg, spec.subdomain, "spare");
  log(`${spec.subdomain}: spare ${spare}`);
  crashPoint("tenant:spare");
  const target = { subdomain: spec.subdomain, database: spec.database, role: spec.roleName };
  if (await claimSpare(admin, spare, target)) {
    log(`claimed spare database ${spare} of template ${spec.template}`);
    await finishStep(reg, id);
    return;
  }
  log(`spare ${spare} could not be claimed (taken concurrently?): copying the template`);
  await forgetStep(reg, id);
}

/** The TenantDatabase resource's outputs for a tenant that createTenant/updateTenant just converged. */
export function provisionedOutputs(
  inputs: { host: string; port: number; roleName: string; rolePassword: string; database: string },
  info: TenantInfo,
) {
  return {
    dsn: tenantDsn(inputs.host, inputs.port, inputs.roleName, inputs.rolePassword, inputs.database),
    createdAt: info.createdAt,
    ...(info.retentionUntil ? { retentionUntil: info.retentionUntil } : {}),
    filestore: info.filestore,
    databaseExists: true,
    roleExists: true,
    initialized: true,
    registryExists: true,
    tenantOwnsDatabase: false,
  };
}

/** What exists of a tenant, for drift detection (never changes anything). */
export async function readTenant(
  adminDsn: string,
  subdomain: string,
  database: string,
  roleName: string,
  filestoreRoot?: string,
): Promise<TenantStatus> {
  return withClient(adminDsn, async (admin) => {
    const cat = await databaseCatalog(admin, database);
    const role = await roleCatalog(admin, roleName);
    let registry: TenantRow | undefined;
    const reg = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [REGISTRY_DATABASE]);
    if (reg.rowCount) {
      registry = await withClient(registryDsn(adminDsn), async (r) => {
        const t = await r.query("SELECT to_regclass('public.tenants')::text AS t");
        return t.rows[0].t ? getTenantRow(r, subdomain) : undefined;
      });
    }
    let filestoreExists = false;
    if (filestoreRoot) {
      filestoreExists = await fs
        .stat(filestorePath(filestoreRoot, database))
        .then((s) => s.isDirectory())
        .catch(() => false);
    }
    const status: TenantStatus = {
      databaseExists: cat !== undefined,
      roleExists: role !== undefined,
      roleCanLogin: role?.canLogin ?? false,
      allowConnections: cat?.allowConnections ?? false,
      ...(cat ? { databaseOwner: cat.owner } : {}),
      initialized: cat?.comment === tenantInitializedComment(subdomain),
      isTemplate: cat?.isTemplate ?? false,
      filestoreExists,
      ...(registry ? { registry, registryState: registry.state } : {}),
    };
    if (cat && role) {
      status.observedState =
        cat.allowConnections && role.canLogin
          ? "active"
          : registry?.state === "archived"
            ? "archived"
            : "suspended";
    }
    return status;
  });
}

/**
 * Applies changes to an existing tenant: lifecycle state, tier, limits, admin email (also the ERP
 * admin's login), role password. A tenant found incomplete (database or role missing, never
 * initialized) is repaired by {@link createTenant} with the new spec.
 */
export async function updateTenant(
  adminDsn: string,
  old: TenantSpec,
  spec: TenantSpec,
  log: Log = noLog,
): Promise<TenantInfo> {
  checkTenantSpec(spec);
  for (const key of ["subdomain", "database", "filestoreRoot"] as const) {
    if (old[key] !== spec[key]) {
      throw new Error(
        `tenant "${spec.subdomain}": ${key} cannot change in place (the tenant must be replaced)`,
      );
    }
  }
  const status = await readTenant(adminDsn, spec.subdomain, spec.database, spec.roleName);
  if (!status.databaseExists || !status.roleExists || !status.initialized || !status.registry) {
    log(
      `${spec.subdomain}: incomplete (database ${status.databaseExists}, role ${status.roleExists}); repairing`,
    );
    return createTenant(adminDsn, spec, log);
  }
  await ensureRegistry(adminDsn);
  return withClient(adminDsn, (admin) =>
    withClient(registryDsn(adminDsn), async (reg) => {
      const step = stepRunner(reg, spec.subdomain, log, "update:");
      if (old.roleName !== spec.roleName) {
        throw new Error(
          `tenant "${spec.subdomain}": roleName cannot change in place (the tenant must be replaced)`,
        );
      }
      // Converges a password changed behind our back too; the verifier is salted, so this is cheap.
      await step("role", () => ensureRole(admin, spec, spec.state === "active"));
      // Tenants provisioned as their database's owner are converted here.
      await step("ownership", () => ensureOwnership(admin, adminDsn, spec));
      if (!(await stepEverFinished(reg, spec.subdomain, SEQUENCES_STEPS)))
        await step("sequences", () => relogTenantSequences(admin, adminDsn, spec, log));
      if (spec.erpRole) {
        const erpRole = spec.erpRole;
        await step("erp-access", () => revokeTenantFromErp(admin, spec.roleName, erpRole));
      }
      if (old.adminEmail !== spec.adminEmail) {
        await step("erp-admin-login", () =>
          withDatabase(admin, adminDsn, spec.database, async (db) => {
            if (!(await tableExists(db, "res_users"))) return;
            await db.query("UPDATE public.res_users SET login = $1 WHERE id = $2", [
              spec.adminEmail,
              ADMIN_USER_ID,
            ]);
          }),
        );
      }
      await step("attributes", () =>
        updateTenantRowAttributes(reg, spec.subdomain, {
          tier: spec.tier,
          limits: spec.limits,
          adminEmail: spec.adminEmail,
        }),
      );
      await step("filestore", () => ensureFilestore(spec));
      await step("state", () => applyLiveState(admin, spec, spec.state, log));
      const row = await step("registry-final", () =>
        setTenantState(reg, spec.subdomain, spec.state, spec.retentionDays),
      );
      return info(spec, row);
    }),
  );
}

export interface DeleteTenantSpec extends TenantSpec {
  forceDestroy: boolean;
  /** Retention end known to the caller (Pulumi state), used when the registry row is gone. */
  retentionUntil?: string;
}

/** Throws when an archived tenant is still within its retention period and not force-destroyed. */
export function checkDeletionAllowed(
  subdomain: string,
  state: string | undefined,
  retentionUntil: Date | undefined,
  forceDestroy: boolean,
  now: Date = new Date(),
): void {
  if (forceDestroy || state !== "archived" || !retentionUntil) return;
  if (retentionUntil.getTime() > now.getTime()) {
    throw new Error(
      `tenant "${subdomain}" is archived and retained until ${retentionUntil.toISOString()}; refusing to delete it ` +
        `before then. Set forceDestroy: true on the tenant (and run pulumi up) to delete it anyway.`,
    );
  }
}

/**
 * Destroys a tenant: sessions, database (and its restore leftovers `<db>__pre_*`/`<db>__restore_*`
 * owned by the role), role, filestore directory and registry rows. Idempotent. Refused for an
 * archived tenant within its retention period unless `forceDestroy`.
 */
export async function deleteTenant(
  adminDsn: string,
  spec: DeleteTenantSpec,
  log: Log = noLog,
): Promise<void> {
  checkDatabaseName(spec.database);
  checkRoleName(spec.roleName);
  await ensureRegistry(adminDsn);
  await withClient(adminDsn, (admin) =>
    withClient(registryDsn(adminDsn), async (reg) => {
      const row = await getTenantRow(reg, spec.subdomain);
      const state = row && row.state !== "provisioning" ? row.state : spec.state;
      const retention =
        row?.retentionUntil ?? (spec.retentionUntil ? new Date(spec.retentionUntil) : undefined);
      checkDeletionAllowed(spec.subdomain, state, retention, spec.forceDestroy);
      const step = stepRunner(reg, spec.subdomain, log, "delete:");

      await step("database", async () => {
        const cat = await databaseCatalog(admin, spec.database);
        if (cat?.isTemplate) {
          throw new Error(
            `tenant "${spec.subdomain}": database "${spec.database}" is a template; refusing to drop it`,
          );
        }
        // Leftovers by name (the platform owns them, as the tenant's database); databases the
        // role owns (a tenant provisioned before the platform took ownership) are checked too.
        const dbs = await admin.query<{ datname: string; tenant_owned: boolean }>(
          `SELECT datname, datdba = (SELECT oid FROM pg_roles WHERE rolname = $1) AS tenant_owned
           FROM pg_database ORDER BY datname`,
          [spec.roleName],
        );
        const others = await reg.query<{ database_name: string }>(
          "SELECT database_name FROM tenants WHERE subdomain <> $1",
          [spec.subdomain],
        );
        const otherTenants = new Set(others.rows.map((r) => r.database_name));
        const leftovers = dbs.rows
          .map((r) => r.datname)
          .filter((d) => isRestoreLeftoverOf(spec.database, d) && !otherTenants.has(d));
        const foreign = dbs.rows
          .filter((r) => r.tenant_owned && r.datname !== spec.database && !leftovers.includes(r.datname))
          .map((r) => r.datname);
        if (foreign.length > 0) {
          throw new Error(
            `tenant "${spec.subdomain}": role "${spec.roleName}" also owns database(s) ${foreign.join(", ")}; ` +
              `refusing to delete the tenant until they are dropped or reassigned`,
          );
        }
        for (const d of cat ? [spec.database, ...leftovers] : leftovers) {
          // No new sessions while the old ones are being terminated by DROP ... WITH (FORCE).
          await admin.query(`ALTER DATABASE ${quoteIdent(d)} ALLOW_CONNECTIONS false`);
          await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(d)} WITH (FORCE)`);
          log(`dropped database ${d}`);
        }
      });

      await step("role", async () => {
        const role = await roleCatalog(admin, spec.roleName);
        if (!role) return;
        await admin.query(`ALTER ROLE ${quoteIdent(spec.roleName)} NOLOGIN`);
        await terminateSessions(admin, { role: spec.roleName, waitMs: 5000 });
        // Privileges and objects the role holds in other databases (the registry, at least).
        const dbs = await admin.query<{ datname: string; datallowconn: boolean }>(
          `SELECT DISTINCT d.datname, d.datallowconn
           FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
           WHERE s.refclassid = 'pg_authid'::regclass
             AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)`,
          [spec.roleName],
        );
        for (const d of dbs.rows) {
          await withDatabase(admin, adminDsn, d.datname, (db) =>
            db.query(`DROP OWNED BY ${quoteIdent(spec.roleName)}`).then(() => undefined),
          );
        }
        await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(spec.roleName)}`);
      });

      await step("filestore", async () => {
        if (spec.filestoreRoot === EXTERNAL_FILESTORE) return;
        await fs.rm(filestorePath(spec.filestoreRoot, spec.database), { recursive: true, force: true });
        // ...and the filestores of its kept pre-restore databases and unfinished restore copies.
        const entries = await fs.readdir(path.resolve(spec.filestoreRoot)).catch(() => [] as string[]);
        for (const name of entries.filter((e) => isRestoreLeftoverOf(spec.database, e))) {
          await fs.rm(path.join(path.resolve(spec.filestoreRoot), name), { recursive: true, force: true });
        }
        // ...and the files the ERP retired (kept for its snapshots, which go with it).
        await removeRetired(spec.filestoreRoot, spec.database);
      });

      await deleteTenantRows(reg, spec.subdomain);
      log(`${spec.subdomain}: deleted`);
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// The TenantDatabase provider's inputs (its check and diff: lib/tenant/provider.ts)
// ---------------------------------------------------------------------------------------------

/**
 * The TenantSpec inside a TenantDatabase's inputs or outputs. Stays here: providers serialized into
 * existing stack states call it from this module in their delete.
 */
export function tenantSpecFrom(p: Record<string, unknown>): TenantSpec {
  return {
    subdomain: String(p.subdomain),
    database: String(p.database),
    roleName: String(p.roleName),
    rolePassword: String(p.rolePassword),
    template: String(p.template),
    tier: String(p.tier),
    state: String(p.state) as TenantState,
    adminEmail: String(p.adminEmail),
    adminPassword: String(p.adminPassword),
    limits: (p.limits ?? {}) as Record<string, number>,
    filestoreRoot: String(p.filestoreRoot),
    retentionDays: Number(p.retentionDays ?? 30),
    ...(typeof p.erpRole === "string" && p.erpRole ? { erpRole: p.erpRole } : {}),
  };
}

// ---- Kept for the providers in existing stacks' state (lib/pulumi/forward.ts); the code is in ./provider.
const tenantProvider = (): typeof TenantProvider => require("./provider") as typeof TenantProvider;
export const diffTenant = forwardTo(tenantProvider, "diffTenant");
export const checkTenantInputs = forwardTo(tenantProvider, "checkTenantInputs");
