/**
 * Credential rotation against the real integration cluster: the superuser's, the ERP role's and a
 * tenant role's passwords changed by the library calls their resources run on `pulumi up`
 * (ensureCluster, ensureErpRole, updateTenant). A session opened before keeps working (even one
 * inside a transaction), the new password connects, the old one is refused, the server is never
 * restarted and the stored verifier is SCRAM. Then every compiled dynamic provider that takes the
 * superuser's adminDsn: a password-only DSN change is an update, never a replacement.
 */
import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import * as path from "node:path";
import type * as pulumi from "@pulumi/pulumi";
import { Client } from "pg";
import { describe, expect, it } from "vitest";
import { ensureCluster } from "../../lib/pg/ensureCluster";
import { localAdminDsn } from "../../lib/pg/cluster";
// The test's own sessions are plain ones (a tenant's, or ad-hoc admin SQL): the platform's pinned
// search_path (lib/pg/client.ts withClient) is for the code under test.
import { quoteIdent, withPlainClient as withClient } from "../../lib/pg/client";
import { dropErpRole, ensureErpRole } from "../../lib/tenant/erpRole";
import { tenantDsn, updateTenant } from "../../lib/tenant/provision";
import { repoRoot } from "../../testkit/repo";
import { clusterSpecOf, useFixtureTenants } from "../helpers/tenants";

const run = randomBytes(3).toString("hex");
const ERP_ROLE = `loomworks_erp_rot_${run}`;
const ERP_DB = `lw_rot_erp_${run}`;
const tenants = useFixtureTenants("rot", {
  setUpTimeoutMs: 180_000,
  afterTenants: async () => {
    await withClient(ADMIN, (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(ERP_DB)}`)).catch(
      () => undefined,
    );
    await dropErpRole(ADMIN, ERP_ROLE).catch(() => undefined);
  },
});
const pg = tenants.pg;
const ADMIN = pg.adminDsn;
const clusterSpec = clusterSpecOf(pg);
const newPassword = (): string => randomBytes(24).toString("base64url");

/** "ok", or the SQLSTATE (28P01: password authentication failed) of a fresh connection's query. */
async function connectCode(dsn: string): Promise<string> {
  return withClient(dsn, (c) => c.query("SELECT 1")).then(
    () => "ok",
    (e: { code?: string; message: string }) => e.code ?? e.message,
  );
}

async function open(dsn: string): Promise<Client> {
  const c = new Client({ connectionString: dsn });
  await c.connect();
  return c;
}

async function storedVerifier(admin: string, role: string): Promise<string> {
  const r = await withClient(admin, (c) =>
    c.query<{ p: string }>("SELECT rolpassword AS p FROM pg_authid WHERE rolname = $1", [role]),
  );
  return r.rows[0].p;
}

async function postmasterStart(dsn: string): Promise<string> {
  const r = await withClient(dsn, (c) =>
    c.query<{ t: string }>("SELECT pg_postmaster_start_time()::text AS t"),
  );
  return r.rows[0].t;
}

/**
 * Rotates with `rotate`, around a session opened before it (in an open transaction throughout),
 * and checks what a rotation must guarantee.
 */
async function expectSeamlessRotation(
  oldDsn: string,
  newDsn: string,
  role: string,
  rotate: () => Promise<unknown>,
  /** The superuser's DSN after the rotation. */
  adminAfter = ADMIN,
): Promise<void> {
  const session = await open(oldDsn);
  try {
    await session.query("BEGIN");
    const before = (await session.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    const startedAt = await postmasterStart(ADMIN);
    await rotate();
    const after = (await session.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0].pid;
    await session.query("COMMIT");
    expect(after).toBe(before);
    expect((await session.query("SELECT 1 AS one")).rows).toEqual([{ one: 1 }]);
    expect(await connectCode(newDsn)).toBe("ok");
    expect(await connectCode(oldDsn)).toBe("28P01");
    expect(await storedVerifier(adminAfter, role)).toMatch(/^SCRAM-SHA-256\$4096:/);
    expect(await postmasterStart(adminAfter)).toBe(startedAt);
  } finally {
    await session.end().catch(() => undefined);
  }
}

describe("password rotation at the library level", () => {
  it("the cluster hashes passwords as SCRAM-SHA-256", async () => {
    const r = await withClient(ADMIN, (c) =>
      c.query<{ password_encryption: string }>("SHOW password_encryption"),
    );
    expect(r.rows[0].password_encryption).toBe("scram-sha-256");
  });

  it("superuser: ensureCluster with a new password alters it in place, no restart", async () => {
    const rotated = { ...clusterSpec, superuserPassword: newPassword() };
    try {
      const rotatedDsn = localAdminDsn(rotated);
      await expectSeamlessRotation(ADMIN, rotatedDsn, "postgres", () => ensureCluster(rotated), rotatedDsn);
    } finally {
      // The other test files of this run use the cluster's original password.
      await ensureCluster(clusterSpec);
    }
    expect(await connectCode(ADMIN)).toBe("ok");
  }, 180_000);

  it("ERP role: ensureErpRole with a new password", async () => {
    const first = newPassword();
    const second = newPassword();
    await ensureErpRole(ADMIN, ERP_ROLE, first);
    // A database of its own: the registry revokes CONNECT on `postgres` from PUBLIC once it exists.
    await withClient(ADMIN, async (c) => {
      await c.query(`CREATE DATABASE ${quoteIdent(ERP_DB)}`);
      await c.query(`GRANT CONNECT ON DATABASE ${quoteIdent(ERP_DB)} TO ${quoteIdent(ERP_ROLE)}`);
    });
    const dsn = (pw: string): string => tenantDsn(pg.host, pg.port, ERP_ROLE, pw, ERP_DB);
    await expectSeamlessRotation(dsn(first), dsn(second), ERP_ROLE, () =>
      ensureErpRole(ADMIN, ERP_ROLE, second),
    );
  });

  it("tenant role: updateTenant with a new role password", async () => {
    const t = await tenants.create("rot");
    const rotated = { ...t, rolePassword: newPassword() };
    await expectSeamlessRotation(tenants.tenantUrl(t), tenants.tenantUrl(rotated), t.roleName, () =>
      updateTenant(ADMIN, t, rotated),
    );
    // Deleted in afterAll with the password it has now.
    t.rolePassword = rotated.rolePassword;
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------

type Provider = Required<Pick<pulumi.dynamic.ResourceProvider, "diff" | "update">>;

function compiledProvider(file: string, exported: string): Provider {
  const mod = createRequire(__filename)(path.join(repoRoot, "bin", "dynamic-providers", file)) as Record<
    string,
    Provider
  >;
  return mod[exported];
}

/** The value Pulumi passes for an input not known yet in a preview. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
/** Nothing listens there: an update that tried to connect would fail. */
const OLD_DSN = "postgres://postgres:old-secret@127.0.0.1:9/postgres";
const NEW_DSN = "postgres://postgres:new-secret@127.0.0.1:9/postgres";

/** Recorded outputs of each adminDsn-taking provider, as a stack holds them. */
const recorded: Record<string, { file: string; exported: string; olds: Record<string, unknown> }> = {
  TenantTemplate: {
    file: "tenantTemplate.js",
    exported: "tenantTemplateProvider",
    olds: {
      adminDsn: OLD_DSN,
      name: "default",
      database: "loomworks_template_default",
      fromDump: "/srv/template.sql",
      stateDir: "/srv/state",
      dumpHash: "ab".repeat(32),
      excludeTables: [],
      guardsVersion: "3",
      builtAt: "2026-11-26T00:00:00.000Z",
    },
  },
  TenantGuards: {
    file: "tenantGuards.js",
    exported: "tenantGuardsProvider",
    olds: {
      adminDsn: OLD_DSN,
      subdomain: "acme",
      database: "acme",
      tier: "pro",
      limits: { maxUsers: 25 },
      excludeTables: [],
      version: "3",
      capturedTables: 12,
      uncapturedTables: 0,
      userLimitTrigger: true,
    },
  },
  Snapshot: {
    file: "snapshot.js",
    exported: "snapshotProvider",
    olds: {
      adminDsn: OLD_DSN,
      subdomain: "acme",
      database: "acme",
      name: "before-upgrade",
      filestoreRoot: "/srv/state/filestore",
      snapshotRoot: "/srv/state/snapshots",
      snapshotId: "0b6c3a52-5f8e-4c1e-9d0f-1b2c3d4e5f60",
      lsn: "0/5A3B2C10",
      state: "ready",
    },
  },
  PitrRestore: {
    file: "pitrRestore.js",
    exported: "pitrRestoreProvider",
    olds: {
      adminDsn: OLD_DSN,
      stateDir: "/srv/state",
      stanza: "loomworks",
      subdomain: "acme",
      database: "acme",
      roleName: "acme",
      tenantState: "active",
      target: { snapshot: "before-upgrade" },
      snapshotLsn: "0/5A3B2C10",
      filestoreRoot: "/srv/state/filestore",
      restoreId: "r-1",
      state: "done",
    },
  },
  ErpRole: {
    file: "erpRole.js",
    exported: "erpRoleProvider",
    olds: {
      adminDsn: OLD_DSN,
      roleName: "loomworks_erp",
      password: "p1",
      tenantMemberships: [],
      superuser: false,
    },
  },
  TenantDatabase: {
    file: "tenantDatabase.js",
    exported: "tenantDatabaseProvider",
    olds: {
      adminDsn: OLD_DSN,
      host: "127.0.0.1",
      port: 9,
      subdomain: "acme",
      database: "acme",
      roleName: "acme",
      rolePassword: "r1",
      adminEmail: "boss@acme.example",
      adminPassword: "a1",
      template: "loomworks_template_default",
      tier: "pro",
      state: "active",
      limits: { maxUsers: 25 },
      filestoreRoot: "/srv/state/filestore",
      retentionDays: 30,
      forceDestroy: false,
      erpRole: "loomworks_erp",
      databaseExists: true,
      roleExists: true,
      initialized: true,
      registryExists: true,
    },
  },
};

/** What else a rotation changes besides the DSN, per provider (the role passwords). */
const alsoRotated: Record<string, Record<string, unknown>> = {
  ErpRole: { password: "p2" },
  TenantDatabase: { rolePassword: "r2" },
};

describe("adminDsn-taking providers on a rotation", () => {
  for (const [type, { file, exported, olds }] of Object.entries(recorded)) {
    it(`${type}: a password-only adminDsn change (known, or unknown in a preview) is an update, not a replace`, async () => {
      const provider = compiledProvider(file, exported);
      for (const adminDsn of [NEW_DSN, UNKNOWN]) {
        const news = { ...olds, ...alsoRotated[type], adminDsn };
        const d = await provider.diff(`id-${type}`, olds, news);
        expect(d.replaces ?? []).toEqual([]);
        expect(d.changes).toBe(true); // so the new DSN is recorded for read and delete
      }
      const unchanged = await provider.diff(`id-${type}`, olds, { ...olds });
      expect(unchanged.changes).toBe(false);
    });
  }

  for (const type of ["TenantTemplate", "TenantGuards", "Snapshot", "PitrRestore"]) {
    it(`${type}: that update records the new DSN without touching the cluster`, async () => {
      const { file, exported, olds } = recorded[type];
      const provider = compiledProvider(file, exported);
      // Both DSNs point where nothing listens: any connection attempt would throw.
      const r = await provider.update(`id-${type}`, olds, { ...olds, adminDsn: NEW_DSN });
      expect(r.outs).toEqual({ ...olds, adminDsn: NEW_DSN });
    });
  }

  it("LocalPostgres: a new superuser password is an in-place update of the running cluster", async () => {
    const provider = compiledProvider("localPostgres.js", "localPostgresProvider");
    const olds = {
      ...clusterSpec,
      configHash: "h",
      host: "127.0.0.1",
      adminDsn: ADMIN,
      running: true,
    };
    for (const superuserPassword of ["rotated", UNKNOWN]) {
      const d = await provider.diff("id", olds, { ...clusterSpec, configHash: "h", superuserPassword });
      expect(d).toMatchObject({ changes: true, replaces: [] });
    }
  });
});
