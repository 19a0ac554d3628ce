/**
 * Unit tests of the program's wiring under Pulumi mocks (test/helpers/pulumi-mocks.ts): which
 * resources each target's platform component (components/platform) declares, with which inputs,
 * under which parents, and which outputs are secret. The providers themselves are exercised by the integration and e2e suites.
 */
import { templatesHash } from "../../lib/templates/render";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import {
  DYNAMIC,
  installMocks,
  isSecretInput,
  plain,
  promiseOf,
  registered,
  resourceTree,
  type Registration,
} from "../helpers/pulumi-mocks";

// The mocks must be in place before any resource is constructed (the imports below declare none).
const registrations = installMocks();

import { templateDatabaseName } from "../../components/platform/templates";
import type { PlatformComponent } from "../../components/platform/platform";
import { declarePlatform } from "../../infra/platform";
import { Tenant, tenantNames } from "../../components/Tenant";
import { parseStackConfig } from "../../infra/config/load";
import { LocalPostgresCluster } from "../../components/local/PostgresCluster";
import { sparesOption } from "../../lib/backup/schedule-defaults";
import { GUARDS_VERSION } from "../../lib/guards/install";
import type { StackConfig } from "../../infra/config/schema";

const projectDir = path.resolve(__dirname, "../..");
const dumpPath = path.join(projectDir, "test/fixtures/odoo-shaped/template.sql");
const stateDir = path.join(projectDir, "var/lw-state");

const config = parseStackConfig({
  platform: {
    domain: "loom.test",
    stateDir: "var/lw-state",
    postgresPort: 25432,
    routerPort: 9090,
    archiveTimeoutSeconds: 30,
    backups: { retentionFull: 3, encryptionPassphrase: "correct horse battery" },
    templates: { default: { fromDump: "test/fixtures/odoo-shaped/template.sql" } },
    undo: { excludeTables: ["x_audit_*", "staging.*"] },
  },
  tiers: { basic: { maxSnapshots: 7 } },
  tenants: {
    globex: { tier: "basic", adminEmail: "it@globex.example", state: "suspended", retentionDays: 45 },
    acme: { tier: "pro", adminEmail: "boss@acme.example", limits: { maxUsers: 25 }, forceDestroy: true },
  },
});

const ACME_LIMITS = { maxUsers: 25, maxStorageGb: 50, maxAiOperationsDaily: 1000, maxSnapshots: 100 };
const GLOBEX_LIMITS = { maxUsers: 10, maxStorageGb: 5, maxAiOperationsDaily: 100, maxSnapshots: 7 };

/** Constructs a platform and waits until every resource it declares is registered. */
async function build(name: string, stackConfig: StackConfig): Promise<[PlatformComponent, Registration[]]> {
  const first = registrations.length;
  const platform = declarePlatform(name, { config: stackConfig, projectDir });
  await registered(platform);
  return [platform, registrations.slice(first)];
}

function only(regs: Registration[], type: string, name: string): Registration {
  const found = regs.filter((r) => r.type === type && r.name === name);
  expect(found, `${type}::${name}`).toHaveLength(1);
  return found[0];
}

describe("LocalPlatform (two tenants)", () => {
  let platform: PlatformComponent;
  let regs: Registration[];
  beforeAll(async () => {
    [platform, regs] = await build("loomworks", config);
  });

  it("registers exactly the expected resources", () => {
    expect(regs.map((r) => `${r.type}::${r.name}`).sort()).toEqual(
      [
        "loomworks:platform:LoomworksPlatform::loomworks",
        "loomworks:local:PostgresCluster::postgres",
        `${DYNAMIC}RandomSecret::postgres-superuser-password`,
        `${DYNAMIC}LocalPostgres::postgres-server`,
        `${DYNAMIC}LocalScheduler::postgres-scheduler`,
        `${DYNAMIC}TenantTemplate::template-default`,
        "loomworks:local:Erp::erp",
        `${DYNAMIC}RandomSecret::erp-role-password`,
        `${DYNAMIC}RandomSecret::erp-admin-passwd`,
        `${DYNAMIC}ErpRole::erp-role`,
        `${DYNAMIC}LocalOdooConfig::erp-odoo-config`,
        `${DYNAMIC}LocalErpTenants::erp-tenants`,
        `${DYNAMIC}LocalRouter::router`,
        "loomworks:tenant:Tenant::acme",
        `${DYNAMIC}RandomSecret::acme-role-password`,
        `${DYNAMIC}RandomSecret::acme-admin-password`,
        `${DYNAMIC}TenantDatabase::acme`,
        `${DYNAMIC}TenantGuards::acme-guards`,
        "loomworks:tenant:Tenant::globex",
        `${DYNAMIC}RandomSecret::globex-role-password`,
        `${DYNAMIC}RandomSecret::globex-admin-password`,
        `${DYNAMIC}TenantDatabase::globex`,
        `${DYNAMIC}TenantGuards::globex-guards`,
      ].sort(),
    );
    expect(regs.filter((r) => r.custom).map((r) => r.type)).not.toContain("loomworks:tenant:Tenant");
  });

  it("nests every resource under its component", () => {
    const tenant = (sub: string) => ({
      [`${DYNAMIC}RandomSecret::${sub}-role-password`]: {},
      [`${DYNAMIC}RandomSecret::${sub}-admin-password`]: {},
      [`${DYNAMIC}TenantDatabase::${sub}`]: {},
      [`${DYNAMIC}TenantGuards::${sub}-guards`]: {},
    });
    expect(resourceTree(platform)).toEqual({
      "loomworks:local:PostgresCluster::postgres": {
        [`${DYNAMIC}RandomSecret::postgres-superuser-password`]: {},
        [`${DYNAMIC}LocalPostgres::postgres-server`]: {},
        [`${DYNAMIC}LocalScheduler::postgres-scheduler`]: {},
      },
      [`${DYNAMIC}TenantTemplate::template-default`]: {},
      "loomworks:local:Erp::erp": {
        [`${DYNAMIC}RandomSecret::erp-role-password`]: {},
        [`${DYNAMIC}RandomSecret::erp-admin-passwd`]: {},
        [`${DYNAMIC}ErpRole::erp-role`]: {},
        [`${DYNAMIC}LocalOdooConfig::erp-odoo-config`]: {},
        [`${DYNAMIC}LocalErpTenants::erp-tenants`]: {},
        [`${DYNAMIC}LocalRouter::router`]: {},
      },
      "loomworks:tenant:Tenant::acme": tenant("acme"),
      "loomworks:tenant:Tenant::globex": tenant("globex"),
    });
  });

  it("sizes the random secrets", () => {
    const length = (name: string) => only(regs, `${DYNAMIC}RandomSecret`, name).inputs;
    expect(length("postgres-superuser-password")).toEqual({ length: 32, keepers: {} });
    expect(length("acme-role-password")).toEqual({ length: 32, keepers: {} });
    expect(length("acme-admin-password")).toEqual({ length: 20, keepers: {} });
  });

  it("gives LocalPostgres the resolved state directory and backup settings, the passphrase as a secret", () => {
    const { inputs } = only(regs, `${DYNAMIC}LocalPostgres`, "postgres-server");
    expect(plain(inputs)).toEqual({
      stateDir,
      port: 25432,
      archiveTimeoutSeconds: 30,
      retentionFull: 3,
      stanza: "loomworks",
      superuserPassword: "pw-postgres-superuser-password",
      encryptionPassphrase: "correct horse battery",
      configHash: templatesHash(),
    });
    expect(templatesHash()).toMatch(/^[0-9a-f]{16}$/);
    expect(isSecretInput(inputs.encryptionPassphrase)).toBe(true);
  });

  it("gives the ERP its own role (not a superuser) and an odoo.conf sized from the odoo settings", () => {
    const role = plain(only(regs, `${DYNAMIC}ErpRole`, "erp-role").inputs);
    expect(role).toEqual({
      adminDsn: "postgres://postgres:pw-postgres-superuser-password@127.0.0.1:25432/postgres",
      roleName: "loomworks_erp",
      password: "pw-erp-role-password",
    });
    const conf = only(regs, `${DYNAMIC}LocalOdooConfig`, "erp-odoo-config").inputs;
    expect(plain(conf)).toMatchObject({
      stateDir,
      dataDir: stateDir,
      dbUser: "loomworks_erp",
      dbPassword: "pw-erp-role-password",
      adminPasswd: "pw-erp-admin-passwd",
      cpu: 2,
      memoryMb: 4096,
      httpPort: 8069,
      geventPort: 8072,
      tenantMapPath: path.join(stateDir, "odoo", "tenants.json"),
      tenantCredentialsPath: path.join(stateDir, "odoo", "tenant-credentials.json"),
    });
    // The project's addons first (loomworks_tenants among them), then the installed Odoo's, if any.
    const addons = String((plain(conf) as { addonsPath: string }).addonsPath).split(",");
    expect(fs.existsSync(path.join(addons[0], "loomworks_tenants", "__manifest__.py"))).toBe(true);
    for (const dir of addons) expect(fs.existsSync(dir), dir).toBe(true);
  });

  it("gives the ERP each tenant's own credentials and state (a secret), after the tenants", () => {
    const r = only(regs, `${DYNAMIC}LocalErpTenants`, "erp-tenants");
    expect(isSecretInput(r.inputs.tenants)).toBe(true);
    expect(plain(r.inputs)).toEqual({
      stateDir,
      tenants: [
        {
          subdomain: "acme",
          database: "acme",
          roleName: "acme",
          password: "pw-acme-role-password",
          state: "active",
        },
        {
          subdomain: "globex",
          database: "globex",
          roleName: "globex",
          password: "pw-globex-role-password",
          state: "suspended",
        },
      ],
    });
  });

  it("routes the declared tenants through the local router, with their states", () => {
    const { inputs } = only(regs, `${DYNAMIC}LocalRouter`, "router");
    expect(plain(inputs)).toMatchObject({
      stateDir,
      port: 9090,
      domain: "loom.test",
      odooHttp: "127.0.0.1:8069",
      odooWebsocket: "127.0.0.1:8072",
      tenants: [
        { subdomain: "acme", state: "active", preview: false },
        { subdomain: "globex", state: "suspended", preview: false },
      ],
    });
    expect(plain(inputs)).not.toHaveProperty("tls");
  });

  it("schedules the quota check with the undo log retention", () => {
    const { inputs } = only(regs, `${DYNAMIC}LocalScheduler`, "postgres-scheduler");
    expect(inputs).toMatchObject({ quotaCheck: "*/10 * * * *", undoRetentionDays: 30 });
  });

  it("gives the scheduler no spares input without platform.provisioning (no diff for existing stacks)", () => {
    expect(config.platform.provisioning).toEqual({ spares: 0 });
    const { inputs } = only(regs, `${DYNAMIC}LocalScheduler`, "postgres-scheduler");
    expect(Object.keys(plain(inputs) as object)).not.toContain("spares");
  });

  it("passes platform.provisioning.spares to the scheduler when above 0", async () => {
    const first = registrations.length;
    const cluster = new LocalPostgresCluster("pg-spares", {
      stateDir,
      port: 25433,
      archiveTimeoutSeconds: 30,
      retentionFull: 2,
      ...sparesOption({ spares: 2, sparesSchedule: "*/3 * * * *" }),
    });
    await registered(cluster);
    const { inputs } = only(registrations.slice(first), `${DYNAMIC}LocalScheduler`, "pg-spares-scheduler");
    expect(plain(inputs)).toMatchObject({ spares: { count: 2, schedule: "*/3 * * * *" } });
  });

  it("builds the template from the resolved dump, keyed by the dump's sha256", () => {
    const { inputs } = only(regs, `${DYNAMIC}TenantTemplate`, "template-default");
    const sha256 = crypto.createHash("sha256").update(fs.readFileSync(dumpPath)).digest("hex");
    expect(plain(inputs)).toEqual({
      adminDsn: "postgres://postgres:pw-postgres-superuser-password@127.0.0.1:25432/postgres",
      name: "default",
      database: "loomworks_template_default",
      fromDump: dumpPath,
      stateDir,
      filestoreRoot: path.join(stateDir, "filestore"),
      dumpHash: sha256,
      excludeTables: ["x_audit_*", "staging.*"],
      guardsVersion: GUARDS_VERSION,
    });
    expect(isSecretInput(inputs.adminDsn)).toBe(true);
  });

  it.each([
    ["acme", "pro", "active", ACME_LIMITS, 30, true],
    ["globex", "basic", "suspended", GLOBEX_LIMITS, 45, false],
  ])(
    "declares TenantDatabase %s from the tenant's config",
    (sub, tier, state, limits, retentionDays, forceDestroy) => {
      const { inputs } = only(regs, `${DYNAMIC}TenantDatabase`, sub);
      expect(plain(inputs)).toEqual({
        adminDsn: "postgres://postgres:pw-postgres-superuser-password@127.0.0.1:25432/postgres",
        host: "127.0.0.1",
        port: 25432,
        subdomain: sub,
        database: sub,
        roleName: sub,
        rolePassword: `pw-${sub}-role-password`,
        adminEmail: sub === "acme" ? "boss@acme.example" : "it@globex.example",
        adminPassword: `pw-${sub}-admin-password`,
        template: "loomworks_template_default",
        tier,
        state,
        limits,
        filestoreRoot: path.join(stateDir, "filestore"),
        retentionDays,
        forceDestroy,
        erpRole: "loomworks_erp",
      });
      expect(isSecretInput(inputs.adminDsn)).toBe(true);
    },
  );

  it.each([
    ["acme", "pro", ACME_LIMITS],
    ["globex", "basic", GLOBEX_LIMITS],
  ])(
    "declares TenantGuards for %s with its tier's limits and the stack's exclusions",
    (sub, tier, limits) => {
      const { inputs } = only(regs, `${DYNAMIC}TenantGuards`, `${sub}-guards`);
      expect(plain(inputs)).toEqual({
        adminDsn: "postgres://postgres:pw-postgres-superuser-password@127.0.0.1:25432/postgres",
        subdomain: sub,
        database: sub,
        tier,
        limits,
        excludeTables: ["x_audit_*", "staging.*"],
        version: GUARDS_VERSION,
      });
      expect(isSecretInput(inputs.adminDsn)).toBe(true);
      expect(GUARDS_VERSION).toMatch(/^snapshot v\d+, quota v\d+, undo v\d+$/);
    },
  );

  it("summarises each tenant; only the dsn is secret", async () => {
    expect(Object.keys(platform.tenants).sort()).toEqual(["acme", "globex"]);
    const acme = platform.tenants.acme;
    expect({ ...acme, state: undefined, dsn: undefined }).toEqual({
      database: "acme",
      state: undefined,
      tier: "pro",
      url: "http://acme.loom.test:9090/",
      roleName: "acme",
      dsn: undefined,
      limits: ACME_LIMITS,
    });
    expect(await promiseOf(acme.state)).toBe("active");
    expect(await pulumi.isSecret(acme.state)).toBe(false);
    expect(await promiseOf(acme.dsn)).toBe("postgres://acme:pw-acme-role-password@127.0.0.1:25432/acme");
    expect(await pulumi.isSecret(acme.dsn)).toBe(true);

    const globex = platform.tenants.globex;
    expect([globex.url, globex.tier, globex.roleName, globex.limits]).toEqual([
      "http://globex.loom.test:9090/",
      "basic",
      "globex",
      GLOBEX_LIMITS,
    ]);
    expect(await promiseOf(globex.state)).toBe("suspended");
    expect(await pulumi.isSecret(globex.dsn)).toBe(true);
  });

  it("exports the ERP admins' passwords as secrets", async () => {
    expect(Object.keys(platform.adminPasswords).sort()).toEqual(["acme", "globex"]);
    for (const sub of ["acme", "globex"]) {
      expect(await promiseOf(platform.adminPasswords[sub])).toBe(`pw-${sub}-admin-password`);
      expect(await pulumi.isSecret(platform.adminPasswords[sub])).toBe(true);
    }
  });

  it("exports the cluster's endpoint; only adminDsn is secret", async () => {
    const { host, port, adminDsn } = platform.postgres;
    if (!adminDsn) throw new Error("the local target exports no adminDsn");
    expect(await promiseOf(host)).toBe("127.0.0.1");
    expect(await promiseOf(port)).toBe(25432);
    expect(await promiseOf(adminDsn)).toBe(
      "postgres://postgres:pw-postgres-superuser-password@127.0.0.1:25432/postgres",
    );
    expect([
      await pulumi.isSecret(host),
      await pulumi.isSecret(port),
      await pulumi.isSecret(adminDsn),
    ]).toEqual([false, false, true]);
  });
});

describe("the platform of each target: other configurations", () => {
  it("keeps an absolute stateDir, omits an unset passphrase, hashes a fromCommand template", async () => {
    const command = "odoo -d {db} -i base --stop-after-init";
    const [platform, regs] = await build(
      "plain",
      parseStackConfig({
        platform: { stateDir: "/srv/lw-state", templates: { "pro-eu": { fromCommand: command } } },
      }),
    );
    const server = only(regs, `${DYNAMIC}LocalPostgres`, "postgres-server").inputs;
    expect(server.stateDir).toBe("/srv/lw-state");
    expect(server.port).toBe(15432);
    expect("encryptionPassphrase" in server).toBe(false);
    const template = plain(only(regs, `${DYNAMIC}TenantTemplate`, "template-pro-eu").inputs);
    expect(template).toMatchObject({
      database: "loomworks_template_pro_eu",
      fromCommand: command,
      dumpHash: crypto.createHash("sha256").update(command).digest("hex"),
    });
    expect(template).not.toHaveProperty("fromDump");
    // On this machine the builder gets a new password per build: none in the program.
    expect(template).not.toHaveProperty("builderPassword");
    expect(template).not.toHaveProperty("commandRunner");
    expect(regs.some((r) => r.name.includes("builder"))).toBe(false);
    expect(regs.filter((r) => r.type === `${DYNAMIC}TenantDatabase`)).toEqual([]);
    expect(platform.tenants).toEqual({});
  });

  it("gives the local router routerTls with absolute files, and the tenants https URLs", async () => {
    const [platform, regs] = await build(
      "tls",
      parseStackConfig({
        platform: {
          domain: "loom.test",
          routerTls: { certFile: "var/tls/router.crt", keyFile: "/etc/tls/router.key", port: 9443 },
          templates: { default: { fromDump: "test/fixtures/odoo-shaped/template.sql" } },
        },
        tenants: { acme: { tier: "pro", adminEmail: "boss@acme.example" } },
      }),
    );
    expect(plain(only(regs, `${DYNAMIC}LocalRouter`, "router").inputs)).toMatchObject({
      port: 8080,
      tls: {
        certFile: path.join(projectDir, "var/tls/router.crt"),
        keyFile: "/etc/tls/router.key",
        port: 9443,
        hstsMaxAgeSeconds: 31_536_000,
      },
    });
    expect(platform.tenants.acme.url).toBe("https://acme.loom.test:9443/");
  });

  it("builds the kubernetes target: the ERP workload and its routing, no local cluster", async () => {
    const [platform, regs] = await build(
      "k8s",
      parseStackConfig({
        platform: {
          target: "kubernetes",
          domain: "loomworks.app",
          templates: { default: { fromCommand: "odoo -d {db} -i base --stop-after-init" } },
          kubernetes: {
            image: "registry.loomworks.app/loomworks/erp:18.0",
            gatewayClassName: "eg",
            proxy: { namespace: "envoy-gateway-system" },
            tls: {
              acmeEmail: "ops@loomworks.app",
              dns01: { provider: "cloudflare", apiTokenSecretRef: { name: "cf", key: "token" } },
            },
            filestore: { storageClass: "efs-sc" },
            postgres: { adminEndpoint: "127.0.0.1:15432" },
          },
        },
        tenants: {
          acme: { tier: "pro", adminEmail: "boss@acme.example" },
          globex: { tier: "basic", adminEmail: "it@globex.example", state: "suspended" },
        },
      }),
    );
    const types = new Set(regs.map((r) => r.type));
    expect(types).toContain("loomworks:kubernetes:OdooDeployment");
    expect(types).toContain("loomworks:kubernetes:Router");
    expect(types).toContain("kubernetes:gateway.networking.k8s.io/v1:HTTPRoute");
    expect(types).toContain("kubernetes:cert-manager.io/v1:Certificate");
    expect([...types].filter((t) => t.includes("LocalPostgres") || t.includes("LocalRouter"))).toEqual([]);
    const routes = regs.filter((r) => r.type === "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute");
    const hosts = routes.flatMap((r) => (r.inputs.spec as { hostnames?: string[] })?.hostnames ?? []);
    expect(hosts).toContain("acme.loomworks.app");
    expect(await promiseOf(platform.router.url)).toBe("https://loomworks.app/");
    // The fromCommand template's builder: its password (a secret) in its own Secret.
    const builderSecret = regs.find(
      (r) => r.type === "kubernetes:core/v1:Secret" && r.name === "template-default-builder",
    );
    expect((builderSecret?.inputs.metadata as { name?: string })?.name).toBe(
      "loomworks-template-builder-default",
    );
    const template = only(regs, `${DYNAMIC}TenantTemplate`, "template-default").inputs;
    expect(isSecretInput(template.builderPassword)).toBe(true);
  });

  it("builds the docker target: containers on one host, no local cluster", async () => {
    const [platform, regs] = await build(
      "dock",
      parseStackConfig({
        platform: {
          target: "docker",
          domain: "erp.example",
          templates: { default: { fromCommand: "odoo -d {db} -i base --stop-after-init" } },
        },
        tenants: { acme: { tier: "pro", adminEmail: "boss@acme.example" } },
      }),
    );
    const containers = regs.filter((r) => r.type === "docker:index/container:Container").map((r) => r.name);
    expect(containers.length).toBeGreaterThanOrEqual(4);
    expect(regs.some((r) => r.type.includes("LocalPostgres"))).toBe(false);
    expect(await promiseOf(platform.router.url)).toContain("erp.example");
  });

  it("refuses tenants on the kubernetes target until pulumi up can reach its PostgreSQL, naming the tenant", () => {
    expect(() =>
      parseStackConfig({
        platform: {
          target: "kubernetes",
          templates: { default: { fromCommand: "odoo -d {db} -i base --stop-after-init" } },
          kubernetes: {
            image: "registry.loomworks.app/loomworks/erp:18.0",
            gatewayClassName: "eg",
            proxy: { namespace: "envoy-gateway-system" },
            tls: { acmeEmail: "ops@loomworks.app", createIssuer: false, issuerName: "le" },
            filestore: { storageClass: "efs-sc" },
          },
        },
        tenants: { acme: { tier: "pro", adminEmail: "boss@acme.example" } },
      }),
    ).toThrow(/tenant "acme": needs platform\.kubernetes\.postgres\.adminEndpoint/);
  });

  it("refuses the kubernetes target without its settings, naming the key", () => {
    expect(() => parseStackConfig({ platform: { target: "kubernetes" } })).toThrow(
      /platform: key "kubernetes": is required when target is kubernetes/,
    );
  });

  it("refuses a tenant naming an undeclared template (programmatic callers)", () => {
    const broken: StackConfig = { ...config, tenants: [{ ...config.tenants[0], template: "missing" }] };
    expect(() => declarePlatform("broken", { config: broken, projectDir })).toThrow(
      /tenant "acme": key "template": names no declared template \("missing"\)/,
    );
  });
});

describe("Tenant", () => {
  it("refuses declared snapshots where the target takes none (programmatic callers)", () => {
    const acme = { ...config.tenants[0], snapshots: { nightly: {} } };
    expect(acme.subdomain).toBe("acme");
    expect(
      () =>
        new Tenant("acme-on-kubernetes", {
          config: acme,
          adminDsn: "postgres://postgres:pw@127.0.0.1:15432/postgres",
          host: "postgres.loomworks.svc",
          port: 5432,
          templateDatabase: templateDatabaseName("default"),
          url: "https://acme.loom.test/",
          undoExcludeTables: [],
          site: {
            kind: "kubernetes",
            restoreJob: () => {
              throw new Error("no restore is declared");
            },
          },
        }),
    ).toThrow(/tenant "acme": key "snapshots": declared snapshots are taken on the local target only/);
  });
});

describe("naming helpers", () => {
  it("templateDatabaseName prefixes and sanitises the template name", () => {
    expect(templateDatabaseName("default")).toBe("loomworks_template_default");
    expect(templateDatabaseName("Pro-EU.v2")).toBe("loomworks_template_pro_eu_v2");
  });

  it("tenantNames uses the subdomain for both the database and the role", () => {
    expect(tenantNames("acme")).toEqual({ database: "acme", roleName: "acme" });
    expect(tenantNames("shop-42")).toEqual({ database: "shop-42", roleName: "shop-42" });
  });
});
