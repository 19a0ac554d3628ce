import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  FIXTURE_SCHEMA_SQL,
  FIXTURE_TEMPLATE_DUMP,
  TEMPLATE_DEFAULTS,
  fixtureSql,
  paddingTableName,
  parseArgs,
} from "../../testkit/odoo-shaped-fixture";
import { UNKNOWN as UNKNOWN_INPUT } from "../../lib/pulumi/unknown";
import { checkTenantInputs, diffTemplate, diffTenant, tenantRead } from "../../lib/tenant/provider";
import {
  checkDeletionAllowed,
  checkTenantSpec,
  EXTERNAL_FILESTORE,
  tenantDsn,
  tenantSpecFrom,
  type TenantSpec,
  type TenantStatus,
} from "../../lib/tenant/provision";
import { checkDatabaseName, checkRoleName, filestorePath } from "../../lib/pg/names";
import {
  createDatabaseFromTemplateSql,
  createTenantRoleSql,
  parseTemplateComment,
  reassignPublicObjectsSql,
  templateComment,
  tenantInitializedComment,
} from "../../lib/tenant/sql";
import { dsnDatabase, dsnToPgEnv, dsnWithDatabase, redactDsn } from "../../lib/pg/dsn";
import { passwordClause } from "../../lib/pg/scram";
import { templateSourceHash } from "../../lib/tenant/template";

const spec: TenantSpec = {
  subdomain: "acme",
  database: "acme",
  roleName: "acme",
  rolePassword: "s3cret",
  template: "loomworks_template_default",
  tier: "basic",
  state: "active",
  adminEmail: "boss@acme.example",
  adminPassword: "pw",
  limits: { maxUsers: 10 },
  filestoreRoot: "/srv/loomworks/filestore",
  retentionDays: 30,
};

describe("names", () => {
  it("accepts tenant-style names and refuses unsafe, reserved or too long ones", () => {
    for (const ok of ["acme", "acme-corp", "a1", "loomworks_template_default", "t-0a1b2c3d"]) {
      expect(() => checkDatabaseName(ok)).not.toThrow();
    }
    for (const bad of [
      "",
      "Acme",
      "-acme",
      "acme;drop",
      'a"b',
      "a b",
      "postgres",
      "template1",
      "loomworks_mgmt",
      "pg_x",
    ]) {
      expect(() => checkDatabaseName(bad)).toThrow();
    }
    expect(() => checkDatabaseName("a".repeat(53))).not.toThrow();
    expect(() => checkDatabaseName("a".repeat(54))).toThrow(/too long/); // room for "__building"
    expect(() => checkRoleName("acme")).not.toThrow();
    expect(() => checkRoleName("1acme")).toThrow();
    expect(() => checkRoleName("loomworks_tenant")).toThrow(/reserved/);
    expect(() => checkRoleName("loomworks_hosting_admin")).toThrow(/reserved/);
  });

  it("keeps filestore directories directly under the root", () => {
    expect(filestorePath("/srv/fs", "acme")).toBe("/srv/fs/acme");
    expect(() => filestorePath("/srv/fs", "../etc")).toThrow();
    expect(() => filestorePath("/srv/fs", "")).toThrow();
  });

  it("validates a whole spec with the tenant named in the message", () => {
    expect(() => checkTenantSpec(spec)).not.toThrow();
    expect(() => checkTenantSpec({ ...spec, database: "Bad" })).toThrow(/tenant "acme": database name "Bad"/);
    expect(() => checkTenantSpec({ ...spec, state: "gone" as never })).toThrow(/state must be one of/);
    expect(() => checkTenantSpec({ ...spec, filestoreRoot: "relative" })).toThrow(/absolute/);
    expect(() => checkTenantSpec({ ...spec, template: "acme" })).toThrow(/differ/);
  });
});

describe("DSNs", () => {
  const dsn = "postgres://postgres:p%40ss%2Fw@127.0.0.1:25432/postgres";

  it("switches the database and keeps credentials", () => {
    const other = dsnWithDatabase(dsn, "loomworks_mgmt");
    expect(dsnDatabase(other)).toBe("loomworks_mgmt");
    expect(dsnToPgEnv(other)).toEqual({
      PGHOST: "127.0.0.1",
      PGPORT: "25432",
      PGUSER: "postgres",
      PGPASSWORD: "p@ss/w",
      PGDATABASE: "loomworks_mgmt",
    });
    expect(dsnDatabase(dsnWithDatabase(dsn, "t-1"))).toBe("t-1");
  });

  it("handles socket directories and IPv6 hosts, and redacts passwords", () => {
    expect(dsnToPgEnv("postgres://u:p@localhost:5433/db?host=%2Ftmp%2Frun").PGHOST).toBe("/tmp/run");
    expect(dsnToPgEnv("postgres://u:p@[::1]:5433/db").PGHOST).toBe("::1");
    expect(redactDsn(dsn)).toBe("postgres://postgres:***@127.0.0.1:25432/postgres");
    expect(() => dsnWithDatabase("host=x dbname=y", "z")).toThrow(/postgres:\/\//);
  });

  it("builds tenant DSNs with encoded credentials", () => {
    expect(tenantDsn("127.0.0.1", 15432, "acme", "a/b@c", "acme")).toBe(
      "postgres://acme:a%2Fb%40c@127.0.0.1:15432/acme",
    );
  });
});

describe("SQL builders", () => {
  it("never puts an ASCII password in clear text into role DDL", () => {
    const sql = createTenantRoleSql("acme", "hunter2-secret", "loomworks_tenant");
    expect(sql).not.toContain("hunter2-secret");
    expect(sql).toMatch(
      /^CREATE ROLE "acme" LOGIN NOSUPERUSER .* PASSWORD 'SCRAM-SHA-256\$4096:.*' IN ROLE "loomworks_tenant"$/,
    );
    expect(passwordClause("pässwort")).toBe("PASSWORD 'pässwort'"); // non-ASCII: hashed by the server
    expect(() => passwordClause("")).toThrow();
  });

  it("quotes identifiers in CREATE DATABASE and the ownership block", () => {
    expect(createDatabaseFromTemplateSql("t-1", "tmpl")).toBe(
      'CREATE DATABASE "t-1" WITH TEMPLATE "tmpl" STRATEGY WAL_LOG',
    );
    const block = reassignPublicObjectsSql("t-1");
    expect(block).toContain("rname text := 't-1'");
    expect(block).toMatch(/^DO \$loomworks\$/);
    expect(block).toContain("deptype IN ('e', 'a', 'i')");
  });

  it("round-trips template hashes through the database comment", () => {
    const hash = "a".repeat(64);
    expect(parseTemplateComment(templateComment("default", hash))).toBe(hash);
    expect(parseTemplateComment(null)).toBeUndefined();
    expect(parseTemplateComment("something else")).toBeUndefined();
    expect(tenantInitializedComment("acme")).toContain("acme");
  });
});

describe("lifecycle rules", () => {
  it("refuses deleting an archived tenant before its retention date unless forced", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const later = new Date("2026-01-31T00:00:00Z");
    expect(() => checkDeletionAllowed("acme", "archived", later, false, now)).toThrow(
      'tenant "acme" is archived and retained until 2026-01-31T00:00:00.000Z',
    );
    expect(() => checkDeletionAllowed("acme", "archived", later, true, now)).not.toThrow();
    expect(() =>
      checkDeletionAllowed("acme", "archived", new Date("2025-12-31T00:00:00Z"), false, now),
    ).not.toThrow();
    expect(() => checkDeletionAllowed("acme", "active", later, false, now)).not.toThrow();
    expect(() => checkDeletionAllowed("acme", "suspended", undefined, false, now)).not.toThrow();
  });
});

describe("TenantDatabase read", () => {
  const props = { subdomain: "acme", database: "acme", roleName: "acme", state: "active", tier: "basic" };
  const row = {
    subdomain: "acme",
    databaseName: "acme",
    roleName: "acme",
    tier: "pro",
    state: "suspended",
    adminEmail: "boss@acme.example",
    limits: { maxUsers: 9 },
    template: null,
    provisioningStep: null,
    createdAt: new Date(0),
    updatedAt: new Date(0),
    suspendedAt: null,
    archivedAt: null,
    retentionUntil: null,
  } as const;
  const live: TenantStatus = {
    databaseExists: true,
    roleExists: true,
    roleCanLogin: false,
    allowConnections: false,
    databaseOwner: "loomworks_owner",
    initialized: true,
    isTemplate: false,
    filestoreExists: true,
    registry: { ...row },
    observedState: "suspended",
  };

  it.each<[string, Partial<TenantStatus>, Record<string, unknown> | undefined, string[]]>([
    [
      "a complete tenant: the registry's values and the observed state",
      {},
      {
        state: "suspended",
        tier: "pro",
        limits: { maxUsers: 9 },
        databaseExists: true,
        registryExists: true,
      },
      [],
    ],
    [
      "a database dropped by hand",
      { databaseExists: false, initialized: false },
      { databaseExists: false, initialized: false },
      ["drift, missing database acme; the next up repairs it"],
    ],
    [
      "a registry row still provisioning, not initialized",
      { initialized: false, registry: { ...row, state: "provisioning" } },
      { registryExists: false, initialized: false },
      ["drift, missing initialization, registry row; the next up repairs it"],
    ],
    [
      "a database the tenant role owns",
      { databaseOwner: "acme" },
      { tenantOwnsDatabase: true },
      ["the tenant role owns its database; the next up gives it to the platform"],
    ],
    ["nothing left", { databaseExists: false, roleExists: false, registry: undefined }, undefined, []],
  ])("%s", (_name, change, expectedProps, warnings) => {
    const found = tenantRead(props, { ...live, ...change });
    if (expectedProps === undefined) {
      expect(found).toBeUndefined();
      return;
    }
    expect(found?.props).toMatchObject(expectedProps);
    expect(found?.warnings).toEqual(warnings);
  });
});

describe("TenantDatabase diff", () => {
  const inputs = {
    ...spec,
    adminDsn: "postgres://a:b@h:1/postgres",
    host: "h",
    port: 1,
    forceDestroy: false,
  };
  const state = {
    ...inputs,
    dsn: "x",
    createdAt: "t",
    databaseExists: true,
    roleExists: true,
    initialized: true,
    registryExists: true,
  };

  it("is empty for identical inputs and ignores key order in limits", () => {
    expect(diffTenant(state, { ...inputs, limits: { maxUsers: 10 } })).toMatchObject({
      changes: false,
      replaces: [],
    });
    const a = diffTenant({ ...state, limits: { a: 1, b: 2 } }, { ...inputs, limits: { b: 2, a: 1 } });
    expect(a.changes).toBe(false);
  });

  it("replaces on identity changes and updates in place otherwise", () => {
    for (const key of ["subdomain", "database", "roleName", "filestoreRoot"] as const) {
      expect(diffTenant(state, { ...inputs, [key]: "other" }).replaces).toEqual([key]);
    }
    const inPlace: Array<[string, unknown]> = [
      ["state", "suspended"],
      ["tier", "pro"],
      ["limits", { maxUsers: 11 }],
      ["adminEmail", "x@y.example"],
      ["rolePassword", "new"],
      ["forceDestroy", true],
      ["retentionDays", 60],
    ];
    for (const [key, value] of inPlace) {
      const d = diffTenant(state, { ...inputs, [key]: value });
      expect(d, key).toMatchObject({ changes: true, replaces: [], changed: [key] });
    }
  });

  it("never replaces (destroys) a tenant because its template or initial admin password changed", () => {
    expect(diffTenant(state, { ...inputs, template: "loomworks_template_pro" })).toMatchObject({
      changes: false,
    });
    expect(diffTenant(state, { ...inputs, adminPassword: "other" })).toMatchObject({ changes: false });
  });

  it("turns drift found by read into an update", () => {
    for (const marker of ["databaseExists", "roleExists", "initialized", "registryExists"]) {
      expect(diffTenant({ ...state, [marker]: false }, inputs)).toMatchObject({
        changes: true,
        drift: true,
        replaces: [],
      });
    }
    // A tenant that still owns its database (provisioned before the platform took ownership).
    expect(diffTenant({ ...state, tenantOwnsDatabase: true }, inputs)).toMatchObject({ drift: true });
    expect(diffTenant({ ...state, tenantOwnsDatabase: false }, inputs)).toMatchObject({ changes: false });
  });

  it("checks inputs cheaply and tolerates unknown values during preview", () => {
    expect(checkTenantInputs({ ...inputs })).toEqual([]);
    expect(checkTenantInputs({ ...inputs, template: UNKNOWN_INPUT, rolePassword: UNKNOWN_INPUT })).toEqual(
      [],
    );
    const f = checkTenantInputs({ ...inputs, database: "Bad Name", state: "paused", retentionDays: -1 });
    expect(f.map((x) => x.property).sort()).toEqual(["database", "retentionDays", "state"]);
    expect(tenantSpecFrom({ ...state })).toEqual(spec);
  });

  it("accepts the external filestore (empty root) of the kubernetes and docker targets, not a missing one", () => {
    // The engine runs check on every real `up`: an empty root refused here failed every kubernetes tenant.
    expect(checkTenantInputs({ ...inputs, filestoreRoot: EXTERNAL_FILESTORE })).toEqual([]);
    const { filestoreRoot: _omitted, ...withoutRoot } = inputs;
    expect(checkTenantInputs(withoutRoot).map((x) => x.property)).toEqual(["filestoreRoot"]);
  });
});

describe("TenantTemplate diff and source hash", () => {
  it("replaces on a new database or dump hash, updates in place otherwise", () => {
    const o = {
      name: "default",
      database: "tmpl",
      fromDump: "/a.sql",
      dumpHash: "h1",
      adminDsn: "d",
      stateDir: "/s",
    };
    expect(diffTemplate(o, { ...o })).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    expect(diffTemplate(o, { ...o, dumpHash: "h2" })).toEqual({
      changes: true,
      replaces: ["dumpHash"],
      deleteBeforeReplace: false,
    });
    expect(diffTemplate(o, { ...o, database: "t2" })).toEqual({
      changes: true,
      replaces: ["database"],
      deleteBeforeReplace: false,
    });
    expect(diffTemplate(o, { ...o, fromDump: "/b.sql" })).toEqual({
      changes: true,
      replaces: [],
      deleteBeforeReplace: false,
    });
    // A rotated builder password (kubernetes) rebuilds nothing: the next build sets it on the role.
    const pod = { ...o, builderPassword: "old" };
    expect(diffTemplate(pod, { ...pod, builderPassword: "new" })).toEqual({
      changes: false,
      replaces: [],
      deleteBeforeReplace: false,
    });
  });

  it("hashes like the program does (sha256 of the file, or of the command text)", () => {
    const dump = FIXTURE_SCHEMA_SQL;
    expect(templateSourceHash({ fromDump: dump })).toBe(
      createHash("sha256").update(readFileSync(dump)).digest("hex"),
    );
    expect(templateSourceHash({ fromCommand: "odoo -d {db}" })).toBe(
      createHash("sha256").update("odoo -d {db}").digest("hex"),
    );
    expect(() => templateSourceHash({})).toThrow(/exactly one/);
  });
});

describe("Odoo-shaped fixture generator (a test fixture, not Odoo)", () => {
  it("is deterministic and appends the requested padding tables and rows", () => {
    const sql = fixtureSql({ extraTables: 3, rowsPerTable: 7, payloadBytes: 100 });
    expect(sql).toBe(fixtureSql({ extraTables: 3, rowsPerTable: 7, payloadBytes: 100 }));
    expect(sql).toMatch(/^-- FIXTURE \(Odoo-shaped test schema, NOT Odoo\)/);
    for (const i of [1, 2, 3]) expect(sql).toContain(`CREATE TABLE ${paddingTableName(i)} (`);
    expect(sql).not.toContain(paddingTableName(4));
    expect(sql).toContain("generate_series(1, 7)");
    expect(sql).toContain("left(repeat(md5(g::text || 'x_fixture_module_001'), 4), 100)");
    expect(sql).toContain("CREATE INDEX x_fixture_module_002__partner_id_index");
    expect(sql).toContain("REFERENCES res_partner (id) ON DELETE CASCADE"); // every third table
    expect(() => fixtureSql({ extraTables: -1, rowsPerTable: 0, payloadBytes: 0 })).toThrow();
  });

  it("parses the CLI flags", () => {
    expect(
      parseArgs(["--extra-tables", "10", "--rows", "2", "--payload", "0", "--out", "/tmp/x.sql"]),
    ).toEqual({
      extraTables: 10,
      rowsPerTable: 2,
      payloadBytes: 0,
      out: "/tmp/x.sql",
    });
    expect(() => parseArgs(["--tables", "1"])).toThrow(/unknown option/);
    expect(() => parseArgs(["--rows", "x"])).toThrow(/non-negative integer/);
  });

  it("matches the committed template.sql (regenerate it after changing schema.sql or generate.ts)", () => {
    const committed = readFileSync(FIXTURE_TEMPLATE_DUMP, "utf8");
    expect(committed === fixtureSql(TEMPLATE_DEFAULTS)).toBe(true);
    expect(Buffer.byteLength(committed)).toBeLessThan(2 * 1024 * 1024);
  });
});
