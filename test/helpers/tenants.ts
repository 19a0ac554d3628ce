/**
 * Set-up shared by the integration files: random tenant specs, a throw-away fixture template with
 * the tenants made from it, and the DSNs and sessions a test opens on them.
 */
import { randomBytes } from "node:crypto";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Client } from "pg";
import { afterAll, afterEach, beforeAll, inject } from "vitest";
import type { GuardsOptions } from "../../lib/guards/install";
import type { LocalClusterSpec } from "../../lib/pg/cluster";
import { withPlainClient } from "../../lib/pg/client";
import { clusterPaths } from "../../lib/pg/paths";
import type { RestoreTarget, RestoreTenantOptions } from "../../lib/restore";
import { createTenant, deleteTenant, tenantDsn, type TenantSpec } from "../../lib/tenant/provision";
import { dsnWithDatabase } from "../../lib/pg/dsn";
import { dropTemplate, ensureTemplate } from "../../lib/tenant/template";
import { FIXTURE_TEMPLATE_DUMP } from "../../testkit/odoo-shaped-fixture";
import type { ProvidedPg } from "./pg-context";

/** A fresh tenant spec with a random `<prefix>-<hex>` subdomain (also its database and role name). */
export function randomTenantSpec(
  prefix: string,
  template: string,
  filestoreRoot: string,
  overrides: Partial<TenantSpec> = {},
): TenantSpec {
  const sub = `${prefix}-${randomBytes(4).toString("hex")}`;
  return {
    subdomain: sub,
    database: sub,
    roleName: sub,
    rolePassword: randomBytes(18).toString("base64url"),
    template,
    tier: "basic",
    state: "active",
    adminEmail: `boss@${sub}.example`,
    adminPassword: randomBytes(12).toString("base64url"),
    limits: {},
    filestoreRoot,
    retentionDays: 0,
    ...overrides,
  };
}

/** Connects and reports the error code instead of throwing ("ok" on success). */
export async function tryConnect(dsn: string): Promise<string> {
  try {
    await withPlainClient(dsn, (c) => c.query("SELECT 1"));
    return "ok";
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  }
}

/** restoreTenant's options for a tenant of the shared integration cluster. */
export function restoreOptionsFor(
  pg: ProvidedPg,
  t: TenantSpec,
  target: RestoreTarget,
  extra: Partial<RestoreTenantOptions> = {},
): RestoreTenantOptions {
  return {
    adminDsn: pg.adminDsn,
    stateDir: pg.stateDir,
    stanza: pg.stanza,
    subdomain: t.subdomain,
    database: t.database,
    roleName: t.roleName,
    tenantState: t.state,
    target,
    filestoreRoot: clusterPaths(pg.stateDir).filestoreDir,
    ...extra,
  };
}

/**
 * The Odoo-shaped FIXTURE template (test/fixtures/odoo-shaped; not Odoo) as a throw-away template
 * database for one test file: `create` in beforeAll, `destroy` in afterAll (the tenants made from it
 * first, then the template and its work directory).
 */
export function fixtureTemplate(adminDsn: string, name: string, opts: { guards?: GuardsOptions } = {}) {
  const database = `loomworks_template_${name}_${randomBytes(3).toString("hex")}`;
  let workDir = "";
  return {
    database,
    async create(): Promise<void> {
      workDir = await fsp.mkdtemp(path.join(os.tmpdir(), `loomworks-${name}-it-`));
      await ensureTemplate(adminDsn, {
        name,
        database,
        fromDump: FIXTURE_TEMPLATE_DUMP,
        stateDir: workDir,
        ...(opts.guards ? { guards: opts.guards } : {}),
      });
    },
    async destroy(tenants: readonly TenantSpec[], afterTenants?: () => Promise<unknown>): Promise<void> {
      for (const s of tenants)
        await deleteTenant(adminDsn, { ...s, forceDestroy: true }).catch(() => undefined);
      await afterTenants?.();
      await dropTemplate(adminDsn, database).catch(() => undefined);
      if (workDir) await fsp.rm(workDir, { recursive: true, force: true });
    },
  };
}

/** The spec of the shared integration cluster (for the lib calls that take one). */
export function clusterSpecOf(pg: ProvidedPg): LocalClusterSpec {
  return {
    stateDir: pg.stateDir,
    port: pg.port,
    archiveTimeoutSeconds: pg.archiveTimeoutSeconds,
    superuserPassword: pg.superuserPassword,
    stanza: pg.stanza,
    retentionFull: pg.retentionFull,
  };
}

/**
 * A test file's fixture template on the shared cluster (made in beforeAll, dropped in afterAll with
 * every tenant made from it) and its tenants: `create` makes one, `spec` only declares one.
 */
export function useFixtureTenants(
  name: string,
  opts: {
    guards?: GuardsOptions;
    /** Delete each test's tenants after it (the cluster stays small), not only in afterAll. */
    deleteAfterEach?: boolean;
    /** Clean-up between the tenants' deletion and the template's (say, of a role they used). */
    afterTenants?: () => Promise<unknown>;
    setUpTimeoutMs?: number;
    tearDownTimeoutMs?: number;
  } = {},
) {
  const pg = inject("pg");
  const template = fixtureTemplate(pg.adminDsn, name, opts);
  const created: TenantSpec[] = [];
  const filestoreRoot = clusterPaths(pg.stateDir).filestoreDir;
  beforeAll(() => template.create(), opts.setUpTimeoutMs ?? 300_000);
  afterAll(() => template.destroy(created, opts.afterTenants), opts.tearDownTimeoutMs ?? 120_000);
  /** Deletes the tenants made so far. */
  const deleteCreated = async (): Promise<void> => {
    for (const s of created.splice(0))
      await deleteTenant(pg.adminDsn, { ...s, forceDestroy: true }).catch(() => undefined);
  };
  if (opts.deleteAfterEach) afterEach(deleteCreated, opts.tearDownTimeoutMs ?? 120_000);

  const tenantUrl = (s: TenantSpec, database = s.database): string =>
    tenantDsn(pg.host, pg.port, s.roleName, s.rolePassword, database);
  const adminUrl = (s: TenantSpec): string => dsnWithDatabase(pg.adminDsn, s.database);
  return {
    pg,
    template: template.database,
    filestoreRoot,
    deleteCreated,
    /** A tenant spec on this template, deleted in afterAll if it was created. */
    spec(prefix: string, overrides: Partial<TenantSpec> = {}): TenantSpec {
      const spec = randomTenantSpec(prefix, template.database, filestoreRoot, overrides);
      created.push(spec);
      return spec;
    },
    /** A new tenant (createTenant), deleted in afterAll. */
    async create(prefix: string, overrides: Partial<TenantSpec> = {}): Promise<TenantSpec> {
      const spec = this.spec(prefix, overrides);
      await createTenant(pg.adminDsn, spec);
      return spec;
    },
    /** The tenant's own DSN (to its database, or another one). */
    tenantUrl,
    /** The superuser's DSN to the tenant's database. */
    adminUrl,
    /** A plain session as the tenant (the platform's pinned settings are for the code under test). */
    asTenant: <T>(s: TenantSpec, fn: (c: Client) => Promise<T>): Promise<T> =>
      withPlainClient(tenantUrl(s), fn),
    /** A plain superuser session in the tenant's database. */
    asAdmin: <T>(s: TenantSpec, fn: (c: Client) => Promise<T>): Promise<T> =>
      withPlainClient(adminUrl(s), fn),
  };
}

/** "ok", or the SQLSTATE (else the message) a fresh session running `sql` as `dsn` fails with. */
export async function sqlStateOf(dsn: string, sql: string): Promise<string> {
  return withPlainClient(dsn, (c) => c.query(sql)).then(
    () => "ok",
    (e: { code?: string; message: string }) => e.code ?? e.message,
  );
}

/** A connection left open (closed by the caller); its errors after a termination are expected. */
export async function openSession(dsn: string, applicationName: string): Promise<Client> {
  const c = new Client({ connectionString: dsn, application_name: applicationName });
  c.on("error", () => undefined);
  await c.connect();
  return c;
}

/** Waits until the session `pid` waits for a lock. */
export async function waitUntilBlocked(adminDsn: string, pid: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await withPlainClient(adminDsn, (c) =>
      c.query<{ w: string | null }>("SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1", [
        pid,
      ]),
    );
    if (r.rows[0]?.w === "Lock") return;
    if (Date.now() > deadline) throw new Error(`session ${pid} never waited for a lock`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
