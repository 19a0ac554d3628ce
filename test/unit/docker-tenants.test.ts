/**
 * The whole platform on the docker target under Pulumi mocks (no Docker engine here): the tenants,
 * templates and guards declared through the shared declarations with the docker platform's admin
 * DSN (the published port), the ERP container's tenant files (registered only once the tenants'
 * databases are), the stack's tenant outputs, the ops container (the Kubernetes CronJobs' jobs in
 * the scheduler daemon, on PostgreSQL's volumes and socket), a declared restore as a one-shot
 * container, routerTls on the nginx container, and mustRun on every long-running container.
 * The jobs' schedule and the restore's arguments are the renderers' own output, checked too.
 */
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DYNAMIC,
  installMocks,
  isSecretInput,
  plain,
  promiseOf,
  registered,
  type Registration,
} from "../helpers/pulumi-mocks";

const registrations = installMocks();

import { DockerHostPlatform } from "../../components/platform/DockerHostPlatform";
import {
  dockerRestoreContainerName,
  renderDockerJobScript,
  renderDockerOpsSchedule,
  OPS_CONTAINER,
} from "../../components/docker/config";
import { ConfigError, parseStackConfig } from "../../infra/config/load";
import type { StackConfig } from "../../infra/config/schema";
import { validateScheduleFile } from "../../lib/backup/schedule-defaults";
import { makeTestCertificates, type TestCertificates } from "../helpers/test-certificates";

const CONTAINER = "docker:index/container:Container";
const WEBHOOK = "https://hooks.example/loomworks?token=s3cr3t-docker";
const projectDir = path.resolve(__dirname, "../..");

let dir: string;
let certs: TestCertificates;
let regs: Registration[];
let platform: DockerHostPlatform;

function stackConfig(tls: TestCertificates): StackConfig {
  return parseStackConfig({
    platform: {
      target: "docker",
      domain: "erp.example",
      postgresPort: 15432,
      routerTls: { certFile: tls.certFile, keyFile: tls.keyFile, port: 8443, hstsMaxAgeSeconds: 600 },
      templates: { default: { fromDump: "test/fixtures/odoo-shaped/template.sql" } },
      backups: { schedule: { diff: "15 2 * * 1-6" } },
      quotas: { checkSchedule: "*/5 * * * *" },
      undo: { retentionDays: 14 },
      notify: { webhookUrl: WEBHOOK, attempts: 4 },
      docker: { namePrefix: "lw", httpPort: 8080 },
    },
    tenants: {
      acme: { tier: "pro", adminEmail: "boss@acme.example", restore: { time: "2026-12-01T10:00:00Z" } },
      globex: { tier: "basic", adminEmail: "it@globex.example", state: "suspended" },
    },
  });
}

const regIndex = (type: string, name: string): number => {
  const i = regs.findIndex((r) => r.type === type && r.name === name);
  expect(i, `${type}::${name}`).toBeGreaterThanOrEqual(0);
  return i;
};
const reg = (type: string, name: string): Registration => regs[regIndex(type, name)];
const container = (name: string): Record<string, unknown> =>
  plain(reg(CONTAINER, name).inputs) as Record<string, unknown>;
type Upload = { file: string; content: string; permissions: string };
const uploadOf = (name: string, file: string): Upload => {
  const u = (container(name).uploads as Upload[]).find((x) => x.file === file);
  expect(u, `${name}: upload ${file}`).toBeDefined();
  return u as Upload;
};

beforeAll(async () => {
  dir = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-docker-tenants-"));
  certs = await makeTestCertificates(dir, ["*.erp.example", "erp.example"]);
  const first = registrations.length;
  platform = new DockerHostPlatform("loomworks", { config: stackConfig(certs), projectDir });
  await registered(platform);
  regs = registrations.slice(first);
});

afterAll(async () => {
  await fsp.rm(dir, { recursive: true, force: true });
});

describe("docker target: tenants through the shared declarations", () => {
  it("declares the template, each tenant's database and guards with the published port's admin DSN (secret)", () => {
    const template = reg(`${DYNAMIC}TenantTemplate`, "template-default").inputs;
    for (const sub of ["acme", "globex"]) {
      const db = reg(`${DYNAMIC}TenantDatabase`, sub).inputs;
      expect(isSecretInput(db.adminDsn)).toBe(true);
      expect(plain(db.adminDsn)).toBe(
        "postgres://postgres:pw-postgres-superuser-password@127.0.0.1:15432/postgres",
      );
      expect(plain(db)).toMatchObject({ host: "127.0.0.1", port: 15432, erpRole: "loomworks_erp" });
      // The filestore is the ERP's volume, not a directory of this machine.
      expect(plain(db.filestoreRoot)).not.toContain(projectDir);
      const guards = reg(`${DYNAMIC}TenantGuards`, `${sub}-guards`).inputs;
      expect(plain(guards.adminDsn)).toBe(plain(db.adminDsn));
    }
    expect(plain(template.adminDsn)).toBe(plain(reg(`${DYNAMIC}TenantDatabase`, "acme").inputs.adminDsn));
    // The tenants are granted to the ERP's role: it exists before them.
    expect(regIndex(`${DYNAMIC}ErpRole`, "erp-role")).toBeLessThan(
      regIndex(`${DYNAMIC}TenantDatabase`, "acme"),
    );
  });

  it("gives the ERP container the real tenant files, only once the databases exist", () => {
    const erpAt = regIndex(CONTAINER, "erp");
    expect(erpAt).toBeGreaterThan(regIndex(`${DYNAMIC}TenantDatabase`, "acme"));
    expect(erpAt).toBeGreaterThan(regIndex(`${DYNAMIC}TenantDatabase`, "globex"));
    const map = JSON.parse(uploadOf("erp", "/etc/loomworks-tenants/tenants.json").content) as unknown;
    expect(map).toMatchObject({
      tenants: [
        { subdomain: "acme", database: "acme", state: "active" },
        { subdomain: "globex", database: "globex", state: "suspended" },
      ],
    });
    const credentials = uploadOf("erp", "/etc/loomworks-tenants/tenant-credentials.json").content;
    expect(JSON.parse(credentials)).toMatchObject({
      databases: {
        acme: { user: "acme", password: "pw-acme-role-password" },
        globex: { user: "globex", password: "pw-globex-role-password" },
      },
    });
    // The uploads travel as one value: secret, since the credentials are.
    expect(isSecretInput(reg(CONTAINER, "erp").inputs.uploads)).toBe(true);
  });

  it("outputs the tenants like the other targets, their URLs on the HTTPS port", async () => {
    expect(Object.keys(platform.tenants).sort()).toEqual(["acme", "globex"]);
    expect(platform.tenants.acme.url).toBe("https://acme.erp.example:8443/");
    expect(await promiseOf(platform.tenants.acme.dsn)).toBe(
      "postgres://acme:pw-acme-role-password@127.0.0.1:15432/acme",
    );
    expect(Object.keys(platform.adminPasswords).sort()).toEqual(["acme", "globex"]);
    expect(await promiseOf(platform.router.url)).toBe("https://erp.example:8443/");
  });
});

describe("docker target: the ops container", () => {
  it("runs the scheduler daemon over the CronJobs' jobs, with the stack's schedules", () => {
    const ops = container("ops");
    expect(ops).toMatchObject({ name: "lw-ops", user: "0:0", restart: "unless-stopped", mustRun: true });
    expect(ops.command).toEqual([
      "/usr/local/bin/loomworks-job",
      "scheduler",
      "--state-dir",
      "/var/lib/loomworks-ops",
    ]);
    const script = uploadOf("ops", OPS_CONTAINER.jobCommand);
    expect(script).toMatchObject({ content: renderDockerJobScript(), permissions: "0755" });
    expect(script.content).toMatch(/^exec node \/opt\/loomworks\/bin\/infra\/ops\/jobs\.js "\$@"$/m);
    const schedule = uploadOf("ops", `${OPS_CONTAINER.stateDir}/scheduler/schedule.json`).content;
    expect(schedule).toBe(
      renderDockerOpsSchedule({
        schedule: { diff: "15 2 * * 1-6" },
        quotaCheckSchedule: "*/5 * * * *",
        undoRetentionDays: 14,
      }),
    );
    const jobs = validateScheduleFile(JSON.parse(schedule)).jobs;
    expect(jobs.map((j) => [j.name, j.cron])).toEqual([
      ["backup-full", "0 1 * * 0"],
      ["backup-diff", "15 2 * * 1-6"],
      ["verify", "0 3 * * 0"],
      ["snapshot-auto", "0 */6 * * *"],
      ["quota-check", "*/5 * * * *"],
      ["sync", "30 * * * *"],
    ]);
    expect(jobs.find((j) => j.name === "quota-check")?.command).toEqual([
      "node",
      "/opt/loomworks/bin/infra/ops/jobs.js",
      "quota-check",
      "--undo-retention-days",
      "14",
    ]);
  });

  it("reaches PostgreSQL by its alias and pgBackRest's repository, data directory and socket on the same volumes", () => {
    const ops = container("ops");
    expect(ops.envs).toEqual(
      expect.arrayContaining([
        "LOOMWORKS_ADMIN_DSN=postgres://postgres@postgres:5432/postgres",
        "LOOMWORKS_STANZA=loomworks",
        "LOOMWORKS_PGBACKREST_CONFIG=/etc/pgbackrest/pgbackrest.conf",
        "LOOMWORKS_FILESTORE_ROOT=/var/lib/odoo/filestore",
        "LOOMWORKS_SNAPSHOT_ROOT=/var/lib/odoo/snapshots",
        "LOOMWORKS_NOTIFY_ATTEMPTS=4",
        "LOOMWORKS_NOTIFY_STACK=unit",
      ]),
    );
    // No password, no webhook URL in the container's configuration: files only.
    expect(JSON.stringify(ops.envs)).not.toMatch(/pw-postgres|s3cr3t/);
    expect((ops.envs as string[]).some((e) => e.startsWith("LOOMWORKS_PGBACKREST="))).toBe(false);
    expect(uploadOf("ops", OPS_CONTAINER.notifyUrlFile).content).toBe(WEBHOOK);
    expect(uploadOf("ops", OPS_CONTAINER.passwordFile).content).toBe("pw-postgres-superuser-password");
    expect(uploadOf("ops", "/etc/pgbackrest/pgbackrest.conf").content).toBe(
      uploadOf("postgres", "/etc/pgbackrest/pgbackrest.conf").content,
    );
    expect(isSecretInput(reg(CONTAINER, "ops").inputs.uploads)).toBe(true);
    expect(ops.volumes).toEqual([
      { volumeName: "lw_postgres_data", containerPath: "/var/lib/postgresql/data", readOnly: true },
      { volumeName: "lw_backups", containerPath: "/var/lib/pgbackrest" },
      { volumeName: "lw_wal_archive", containerPath: "/var/lib/pgbackrest/archive" },
      { volumeName: "lw_postgres_socket", containerPath: "/var/run/postgresql" },
      { volumeName: "lw_odoo_data", containerPath: "/var/lib/odoo" },
    ]);
    const pgVolumes = container("postgres").volumes as { volumeName: string; containerPath: string }[];
    for (const v of (ops.volumes as typeof pgVolumes).filter((x) => x.volumeName !== "lw_odoo_data")) {
      expect(pgVolumes).toContainEqual({ volumeName: v.volumeName, containerPath: v.containerPath });
    }
  });
});

describe("docker target: refresh sees a stopped container", () => {
  it("declares mustRun on every long-running container, and not on the one-shot restore", () => {
    for (const name of ["postgres", "redis", "erp", "nginx", "ops"]) {
      expect(container(name), name).toMatchObject({ mustRun: true, restart: "unless-stopped" });
    }
    const restores = regs.filter((r) => r.type === CONTAINER && r.name.startsWith("lw-restore-"));
    expect(restores).toHaveLength(1);
    expect(plain(restores[0].inputs)).toMatchObject({ mustRun: false, attach: true, restart: "no" });
  });
});

describe("docker target: a declared restore", () => {
  const name = dockerRestoreContainerName("lw", "acme", { time: "2026-12-01T10:00:00Z" });

  it("is a one-shot container of the ops image running jobs.js restore, after the tenant's database", () => {
    expect(name).toMatch(/^lw-restore-acme-[0-9a-f]{10}$/);
    expect(regIndex(CONTAINER, name)).toBeGreaterThan(regIndex(`${DYNAMIC}TenantDatabase`, "acme"));
    // The guards are reinstalled after it.
    expect(regIndex(`${DYNAMIC}TenantGuards`, "acme-guards")).toBeGreaterThan(regIndex(CONTAINER, name));
    const c = container(name);
    expect(c).toMatchObject({ name, user: "101:101", groupAdds: ["999"] });
    expect(c.command).toEqual([
      "/usr/local/bin/loomworks-job",
      "restore",
      ...["--tenant", "acme", "--database", "acme", "--role", "acme", "--time", "2026-12-01T10:00:00Z"],
      ...[
        "--pgbackrest-config",
        "/etc/pgbackrest/pgbackrest.conf",
        "--scratch-dir",
        "/tmp/loomworks-restore",
      ],
      ...["--filestore-root", "/var/lib/odoo/filestore", "--tenant-state", "active"],
    ]);
    // The same job script, password and configuration files as the ops container.
    expect(uploadOf(name, OPS_CONTAINER.jobCommand).content).toBe(renderDockerJobScript());
    expect(uploadOf(name, OPS_CONTAINER.passwordFile).content).toBe("pw-postgres-superuser-password");
    expect(c.volumes).toEqual([
      { volumeName: "lw_backups", containerPath: "/var/lib/pgbackrest", readOnly: true },
      { volumeName: "lw_wal_archive", containerPath: "/var/lib/pgbackrest/archive", readOnly: true },
      { volumeName: "lw_odoo_data", containerPath: "/var/lib/odoo" },
    ]);
  });

  it("names a new container for a new target and keeps it for the same one", () => {
    expect(dockerRestoreContainerName("lw", "acme", { time: "2026-12-01T10:00:00Z" })).toBe(name);
    expect(dockerRestoreContainerName("lw", "acme", { lsn: "0/5A3B2C10" })).not.toBe(name);
    expect(dockerRestoreContainerName("lw", "x".repeat(63), { lsn: "0/1" }).length).toBeLessThanOrEqual(63);
  });

  it("outputs the restore like the kubernetes Job's entry", async () => {
    expect(await promiseOf(platform.restores.acme)).toEqual({
      id: name,
      target: { time: "2026-12-01T10:00:00Z" },
      state: "container",
      preRestoreDatabase: "",
      timings: {},
    });
  });
});

describe("docker target: declared snapshots are refused at preview", () => {
  it("names the tenant, the key, why and what instead", () => {
    let problems: readonly string[] = [];
    try {
      parseStackConfig({
        platform: { target: "docker", templates: { default: { fromDump: "t.sql" } } },
        tenants: {
          acme: {
            tier: "pro",
            adminEmail: "a@acme.example",
            snapshots: { nightly: {} },
            restore: { snapshot: "nightly" },
          },
        },
      });
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      problems = (e as ConfigError).problems;
    }
    const text = problems.join("\n");
    expect(text).toMatch(/tenant "acme": key "snapshots": cannot be declared on the docker target/);
    expect(text).toContain("the ERP's odoo_data volume");
    expect(text).toContain("docker exec loomworks-ops loomworks-job snapshot-auto");
    expect(text).toMatch(
      /tenant "acme": key "restore\.snapshot": cannot name a snapshot on the docker target/,
    );
  });
});

describe("docker target: routerTls on the nginx container", () => {
  it("uploads the certificate and the key (secret), publishes 443 and renders HTTPS with HSTS and the redirect", async () => {
    const nginx = container("nginx");
    expect(nginx.ports).toEqual([
      { internal: 80, external: 8080, ip: "0.0.0.0" },
      { internal: 443, external: 8443, ip: "0.0.0.0" },
    ]);
    expect(uploadOf("nginx", "/var/lib/loomworks/tls/router.crt").content).toBe(
      await fsp.readFile(certs.certFile, "utf8"),
    );
    const key = uploadOf("nginx", "/var/lib/loomworks/tls/router.key");
    expect(key).toMatchObject({ content: await fsp.readFile(certs.keyFile, "utf8"), permissions: "0400" });
    expect(isSecretInput(reg(CONTAINER, "nginx").inputs.uploads)).toBe(true);
    const conf = uploadOf("nginx", "/var/lib/loomworks/router/nginx.conf").content;
    expect(conf).toContain('ssl_certificate "/var/lib/loomworks/tls/router.crt";');
    expect(conf).toContain('ssl_certificate_key "/var/lib/loomworks/tls/router.key";');
    expect(conf).toContain('add_header Strict-Transport-Security "max-age=600; includeSubDomains" always;');
    expect(conf).toMatch(/listen \*:443 ssl;/);
    expect(conf).toContain("return 308 https://$host:8443$request_uri;");
  });

  it("refuses a certificate that does not name the tenants' hosts, at preview", async () => {
    const other = await makeTestCertificates(path.join(dir, "other"), ["*.elsewhere.example"]);
    expect(() => new DockerHostPlatform("bad", { config: stackConfig(other), projectDir })).toThrow(
      /platform\.routerTls: tls\.certFile: .*acme\.erp\.example/,
    );
  });
});
