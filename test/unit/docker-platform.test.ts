/**
 * The Docker target (components/docker) under Pulumi mocks: every resource DockerPlatform declares,
 * its key inputs (images, commands, environment, uploaded configuration files, volumes, ports,
 * health checks, restart and wait settings), the start order (dependsOn, recorded through a
 * resource transformation), and which values travel as secrets; production and development
 * variants. No Docker engine runs here; the uploaded files are the renderers' output, checked too.
 */
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DYNAMIC, isSecretInput, plain, promiseOf, registered, resourceTree } from "../helpers/pulumi-mocks";

interface Registration {
  type: string;
  name: string;
  custom: boolean;
  provider?: string;
  inputs: Record<string, unknown>;
}
interface Options {
  dependsOn: string[];
  retainOnDelete: boolean;
  provider?: string;
}

const registrations: Registration[] = [];
const options = new Map<string, Options>();

// Mocks of this file: the docker provider's computed outputs (an image's id, a container's id) are
// made up from the resource's name, so that the wiring between resources can be checked.
void pulumi.runtime.setMocks(
  {
    newResource(args) {
      const { __provider: _p, ...inputs } = args.inputs as Record<string, unknown>;
      registrations.push({
        type: args.type,
        name: args.name,
        custom: args.custom === true,
        provider: args.provider,
        inputs,
      });
      if (args.custom !== true) return { id: undefined, state: {} };
      const state = plain(inputs) as Record<string, unknown>;
      const extra: Record<string, unknown> =
        args.type === "docker:index/remoteImage:RemoteImage"
          ? { imageId: `sha256:${args.name}`, repoDigest: `${String(state.name)}@sha256:${args.name}` }
          : args.type === `${DYNAMIC}RandomSecret`
            ? { result: `pw-${args.name}` }
            : {};
      return { id: `${args.name}-id`, state: { ...state, ...extra } };
    },
    call(args) {
      return args.inputs as Record<string, unknown>;
    },
  },
  "loomworks-hosting",
  "unit",
);

import {
  DockerPlatform,
  directoryDigest,
  type DockerPlatformArgs,
} from "../../components/docker/DockerPlatform";
import {
  redisSessionCommand,
  renderDockerNginxConf,
  renderDockerOdooConf,
  renderDockerPgBackRestConf,
  renderDockerPostgresqlConf,
} from "../../components/docker/config";
import { dockerConfigSchema } from "../../infra/config/docker";
import { odooConfigSchema } from "../../infra/config/odoo";
import { parseOdooConfig, secretReferences } from "../../lib/odoo/config";
import { renderTenantMap } from "../../lib/odoo/tenantMap";
import { repoRoot } from "../../testkit/repo";

const CONTAINER = "docker:index/container:Container";
const IMAGE = "docker:index/remoteImage:RemoteImage";
const VOLUME = "docker:index/volume:Volume";
const NETWORK = "docker:index/network:Network";

const recordOptions: pulumi.ResourceTransformation = (args) => {
  const deps = args.opts.dependsOn;
  const list = (Array.isArray(deps) ? deps : deps ? [deps] : []) as pulumi.Resource[];
  const providerName = (args.opts.provider as unknown as { __name?: string } | undefined)?.__name;
  options.set(`${args.type}::${args.name}`, {
    dependsOn: list.map((r) => (r as unknown as { __name: string }).__name),
    retainOnDelete: args.opts.retainOnDelete === true,
    ...(providerName ? { provider: providerName } : {}),
  });
  return undefined;
};

async function build(name: string, args: DockerPlatformArgs): Promise<[DockerPlatform, Registration[]]> {
  const first = registrations.length;
  const platform = new DockerPlatform(name, args, { transformations: [recordOptions] });
  await registered(platform);
  return [platform, registrations.slice(first)];
}

function only(regs: Registration[], type: string, name: string): Registration {
  const found = regs.filter((r) => r.type === type && r.name === name);
  expect(found, `${type}::${name}`).toHaveLength(1);
  return found[0];
}

const opts = (type: string, name: string): Options => {
  const o = options.get(`${type}::${name}`);
  expect(o, `options of ${type}::${name}`).toBeDefined();
  return o as Options;
};

type Upload = { file: unknown; content: unknown; permissions: unknown };
/** The container's uploads (the whole property travels as one value: secret if any file in it is). */
const uploads = (r: Registration) => plain(r.inputs.uploads) as Upload[];
const upload = (r: Registration, file: string): Upload => {
  const u = uploads(r).find((x) => plain(x.file) === file);
  expect(u, `upload ${file}`).toBeDefined();
  return u as Upload;
};

const tenants = [
  { subdomain: "acme", state: "active" as const },
  { subdomain: "globex", state: "suspended" as const },
  { subdomain: "initech", state: "active" as const },
];

const postgres = { hostPort: 15432, archiveTimeoutSeconds: 60, retentionFull: 2 };
const AI_KEYS = {
  OPENAI_API_KEY: "sk-openai-docker-0123456789",
  ANTHROPIC_API_KEY: "sk-ant-docker-0123456789",
};

describe("DockerPlatform (production variant)", () => {
  let platform: DockerPlatform;
  let regs: Registration[];
  const odoo = odooConfigSchema.parse({
    image: "registry.example.com/loomworks/erp:18.0-1",
    cpu: 2,
    memoryMb: 4096,
  });
  const dockerCfg = dockerConfigSchema.parse({ httpPort: 8080 });

  beforeAll(async () => {
    [platform, regs] = await build("docker", {
      docker: dockerCfg,
      odoo,
      domain: "loom.example",
      tenants,
      postgres,
      projectDir: repoRoot,
      ops: { undoRetentionDays: 30 },
    });
  });

  it("declares exactly the network, five volumes, five images, five containers, the secrets and the ERP role", () => {
    expect(regs.map((r) => `${r.type}::${r.name}`).sort()).toEqual(
      [
        "loomworks:docker:DockerPlatform::docker",
        `${DYNAMIC}RandomSecret::postgres-superuser-password`,
        `${DYNAMIC}RandomSecret::erp-db-password`,
        `${DYNAMIC}RandomSecret::odoo-admin-passwd`,
        `${DYNAMIC}ErpRole::erp-role`,
        `${NETWORK}::network`,
        `${VOLUME}::odoo-data`,
        `${VOLUME}::postgres-data`,
        `${VOLUME}::wal-archive`,
        `${VOLUME}::backups`,
        `${VOLUME}::postgres-socket`,
        `${IMAGE}::postgres-image`,
        `${IMAGE}::erp-image`,
        `${IMAGE}::redis-image`,
        `${IMAGE}::nginx-image`,
        `${IMAGE}::ops-image`,
        `${CONTAINER}::postgres`,
        `${CONTAINER}::redis`,
        `${CONTAINER}::erp`,
        `${CONTAINER}::nginx`,
        `${CONTAINER}::ops`,
      ].sort(),
    );
    expect(Object.keys(resourceTree(platform))).toHaveLength(20);
    // No `host` configured: the default docker provider, no explicit one.
    expect(regs.some((r) => r.type === "pulumi:providers:docker")).toBe(false);
  });

  it("one bridge network and the named volumes, kept when the stack is destroyed", () => {
    expect(only(regs, NETWORK, "network").inputs).toEqual({
      name: "loomworks",
      driver: "bridge",
      attachable: false,
    });
    for (const [logical, volume] of [
      ["odoo-data", "odoo_data"],
      ["postgres-data", "postgres_data"],
      ["wal-archive", "wal_archive"],
      ["backups", "backups"],
      ["postgres-socket", "postgres_socket"],
    ]) {
      expect(only(regs, VOLUME, logical).inputs).toEqual({
        name: `loomworks_${volume}`,
        labels: [{ label: "loomworks.volume", value: volume }],
      });
      expect(opts(VOLUME, logical).retainOnDelete).toBe(true);
    }
    expect(opts(CONTAINER, "postgres").retainOnDelete).toBe(false);
  });

  it("builds PostgreSQL + pgBackRest from docker/postgres, pulls the ERP, Redis and nginx images", () => {
    expect(plain(only(regs, IMAGE, "postgres-image").inputs)).toEqual({
      name: "loomworks/postgres:15-pgbackrest",
      keepLocally: true,
      build: {
        context: path.join(repoRoot, "docker", "postgres"),
        dockerfile: "Dockerfile",
        builder: "default",
      },
      triggers: { context: directoryDigest(path.join(repoRoot, "docker", "postgres")) },
    });
    expect(only(regs, IMAGE, "erp-image").inputs).toEqual({
      name: "registry.example.com/loomworks/erp:18.0-1",
      keepLocally: true,
    });
    expect(only(regs, IMAGE, "redis-image").inputs).toEqual({
      name: "redis:7.2-bookworm",
      keepLocally: true,
    });
    expect(only(regs, IMAGE, "nginx-image").inputs).toEqual({
      name: "nginx:1.26-bookworm",
      keepLocally: true,
    });
  });

  it("PostgreSQL: the shared postgresql.conf and pgbackrest.conf mounted, WAL and backups on their volumes, health-checked", () => {
    const pg = only(regs, CONTAINER, "postgres");
    const i = plain(pg.inputs) as Record<string, unknown>;
    expect(i).toMatchObject({
      name: "loomworks-postgres",
      image: "sha256:postgres-image",
      hostname: "postgres",
      networksAdvanced: [{ name: "loomworks", aliases: ["postgres"] }],
      command: ["postgres", "-c", "config_file=/etc/postgresql/postgresql.conf"],
      envs: [
        "POSTGRES_PASSWORD_FILE=/run/secrets/postgres-password",
        "PGDATA=/var/lib/postgresql/data/pgdata",
        "LOOMWORKS_STANZA=loomworks",
      ],
      volumes: [
        { volumeName: "loomworks_postgres_data", containerPath: "/var/lib/postgresql/data" },
        { volumeName: "loomworks_backups", containerPath: "/var/lib/pgbackrest" },
        { volumeName: "loomworks_wal_archive", containerPath: "/var/lib/pgbackrest/archive" },
        { volumeName: "loomworks_postgres_socket", containerPath: "/var/run/postgresql" },
      ],
      ports: [{ internal: 5432, external: 15432, ip: "127.0.0.1" }],
      healthcheck: {
        tests: ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres"],
        interval: "10s",
        timeout: "5s",
        startPeriod: "60s",
        retries: 5,
      },
      restart: "unless-stopped",
      wait: true,
      waitTimeout: 300,
      stopTimeout: 60,
    });
    const conf = upload(pg, "/etc/postgresql/postgresql.conf").content as string;
    expect(conf).toBe(renderDockerPostgresqlConf({ archiveTimeoutSeconds: 60, stanza: "loomworks" }));
    expect(conf).toContain("listen_addresses = '*'");
    expect(conf).toContain(
      "archive_command = '/usr/bin/pgbackrest --config=/etc/pgbackrest/pgbackrest.conf --stanza=loomworks archive-push %p'",
    );
    expect(conf).toContain("archive_mode = on");
    const backrest = upload(pg, "/etc/pgbackrest/pgbackrest.conf").content as string;
    expect(backrest).toBe(renderDockerPgBackRestConf({ stanza: "loomworks", retentionFull: 2 }));
    expect(backrest).toContain("repo1-path=/var/lib/pgbackrest");
    expect(backrest).toContain("pg1-path=/var/lib/postgresql/data/pgdata");
    expect(backrest).not.toContain("repo1-cipher");
    // The superuser password file makes the uploads a secret (in the state too).
    expect(upload(pg, "/run/secrets/postgres-password")).toEqual({
      file: "/run/secrets/postgres-password",
      content: "pw-postgres-superuser-password",
      permissions: "0444",
    });
    expect(isSecretInput(pg.inputs.uploads)).toBe(true);
    expect(isSecretInput(pg.inputs.envs)).toBe(false);
    expect(opts(CONTAINER, "postgres").dependsOn).toEqual([]);
  });

  it("creates the ERP's role through the published port once PostgreSQL is healthy", () => {
    const role = only(regs, `${DYNAMIC}ErpRole`, "erp-role");
    expect(plain(role.inputs)).toEqual({
      adminDsn: "postgres://postgres:pw-postgres-superuser-password@127.0.0.1:15432/postgres",
      roleName: "loomworks_erp",
      password: "pw-erp-db-password",
    });
    expect(isSecretInput(role.inputs.adminDsn)).toBe(true);
    expect(isSecretInput(role.inputs.password)).toBe(true);
    expect(opts(`${DYNAMIC}ErpRole`, "erp-role").dependsOn).toEqual(["postgres"]);
  });

  it("Redis for sessions: no persistence, bounded memory, health-checked, after PostgreSQL", () => {
    const redis = only(regs, CONTAINER, "redis");
    const inputs = plain(redis.inputs) as { command: string[]; healthcheck: { tests: string[] } };
    expect(inputs).toMatchObject({
      name: "loomworks-redis",
      image: "sha256:redis-image",
      networksAdvanced: [{ name: "loomworks", aliases: ["redis"] }],
      command: redisSessionCommand(),
      restart: "unless-stopped",
      wait: true,
    });
    const option = (name: string) => {
      const at = inputs.command.indexOf(name);
      expect(at, name).toBeGreaterThan(0);
      return inputs.command[at + 1];
    };
    expect(inputs.command[0]).toBe("redis-server");
    expect([option("--save"), option("--appendonly")]).toEqual(["", "no"]);
    expect(option("--maxmemory")).toBe("256mb");
    expect(option("--maxmemory-policy")).toBe("volatile-lru");
    expect(inputs.healthcheck.tests).toEqual(["CMD", "redis-cli", "ping"]);
    expect(opts(CONTAINER, "redis").dependsOn).toEqual(["postgres"]);
  });

  it("the ERP: the image, odoo.conf without secrets, the secrets as files, the active tenants' databases, limits, health check", () => {
    const erp = only(regs, CONTAINER, "erp");
    const i = plain(erp.inputs) as Record<string, unknown>;
    expect(i).toMatchObject({
      name: "loomworks-erp",
      image: "sha256:erp-image",
      hostname: "erp",
      networksAdvanced: [{ name: "loomworks", aliases: ["erp"] }],
      command: ["odoo"],
      envs: [
        "LOOMWORKS_ADMIN_PASSWD_FILE=/run/secrets/odoo-admin-passwd",
        "LOOMWORKS_DB_PASSWORD_FILE=/run/secrets/odoo-db-password",
        "LOOMWORKS_DATABASES=acme,initech",
        "LOOMWORKS_UPDATE_MODULES=",
        "LOOMWORKS_LOG_FORMAT=json",
      ],
      volumes: [{ volumeName: "loomworks_odoo_data", containerPath: "/var/lib/odoo" }],
      ports: [],
      memory: 4096,
      cpus: "2",
      healthcheck: {
        tests: ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8069/web/health"],
        interval: "30s",
        timeout: "5s",
        startPeriod: "600s",
        retries: 3,
      },
      restart: "unless-stopped",
      wait: true,
      waitTimeout: 1800,
      stopSignal: "SIGTERM",
      stopTimeout: 60,
    });
    const conf = upload(erp, "/etc/odoo/odoo.conf").content as string;
    expect(conf).toBe(platform.odooConfig);
    expect(conf).toBe(
      renderDockerOdooConf({
        dbUser: "loomworks_erp",
        cpu: 2,
        memoryMb: 4096,
        development: false,
        serverWideModules: ["base", "web"],
        logLevel: "info",
      }),
    );
    expect(parseOdooConfig(conf)).toMatchObject({
      dbfilter: "^%d$",
      proxy_mode: "True",
      list_db: "False",
      db_host: "postgres",
      db_port: "5432",
      db_user: "loomworks_erp",
      data_dir: "/var/lib/odoo",
      addons_path:
        "/opt/loomworks/addons,/opt/loomworks/platform-addons,/usr/lib/python3/dist-packages/odoo/addons",
      workers: "5",
      gevent_port: "8072",
      session_store: "redis",
      session_redis_url: "redis://redis:6379/0",
    });
    expect(secretReferences(conf)).toEqual({
      admin_passwd: "LOOMWORKS_ADMIN_PASSWD",
      db_password: "LOOMWORKS_DB_PASSWORD",
    });
    for (const [file, value] of [
      ["/run/secrets/odoo-admin-passwd", "pw-odoo-admin-passwd"],
      ["/run/secrets/odoo-db-password", "pw-erp-db-password"],
    ]) {
      expect(upload(erp, file)).toEqual({ file, content: value, permissions: "0444" });
    }
    // The password files make the uploads secret; the environment names files, never a password.
    expect(isSecretInput(erp.inputs.uploads)).toBe(true);
    expect(isSecretInput(erp.inputs.envs)).toBe(false);
    expect(JSON.stringify(plain(erp.inputs.envs))).not.toContain("pw-");
    expect(opts(CONTAINER, "erp").dependsOn).toEqual(["postgres", "redis", "erp-role"]);
  });

  it("the ERP reads the tenant map and credentials the other targets render: none served, no tenant database here yet", () => {
    const erp = only(regs, CONTAINER, "erp");
    const options = parseOdooConfig(upload(erp, "/etc/odoo/odoo.conf").content as string);
    expect(options).toMatchObject({
      loomworks_tenant_map: "/etc/loomworks-tenants/tenants.json",
      loomworks_tenant_credentials: "/etc/loomworks-tenants/tenant-credentials.json",
    });
    expect(options.server_wide_modules.split(",")).toEqual([
      "base",
      "web",
      "loomworks_json_logging",
      "loomworks_tenants",
    ]);
    const map = upload(erp, options.loomworks_tenant_map);
    expect(map).toEqual({
      file: options.loomworks_tenant_map,
      content: renderTenantMap([]),
      permissions: "0444",
    });
    expect(JSON.parse(map.content as string)).toEqual({ version: 1, tenants: [] });
    const credentials = upload(erp, options.loomworks_tenant_credentials);
    expect(JSON.parse(credentials.content as string)).toEqual({ version: 1, databases: {} });
    expect(credentials.permissions).toBe("0444");
    // Declared tenants are routed by nginx but not served: their databases do not exist on this target.
    expect(platform.nginxConfig).toContain("acme");
  });

  it("nginx: lib/router's configuration in the foreground, tenants mapped, published on httpPort, after the ERP", () => {
    const nginx = only(regs, CONTAINER, "nginx");
    const i = plain(nginx.inputs) as Record<string, unknown>;
    const expected = renderDockerNginxConf({
      domain: "loom.example",
      publicPort: 8080,
      tenants,
      development: false,
    });
    expect(i).toMatchObject({
      name: "loomworks-nginx",
      image: "sha256:nginx-image",
      networksAdvanced: [{ name: "loomworks", aliases: ["nginx"] }],
      command: [
        "/bin/sh",
        "-c",
        `mkdir -p ${expected.paths.dirs.join(" ")} && exec nginx -c /var/lib/loomworks/router/nginx.conf`,
      ],
      envs: ["LOOMWORKS_ERP_CONTAINER=erp-id"],
      ports: [{ internal: 80, external: 8080, ip: "0.0.0.0" }],
      restart: "unless-stopped",
      wait: true,
    });
    const conf = upload(nginx, "/var/lib/loomworks/router/nginx.conf").content as string;
    expect(conf).toBe(expected.text);
    expect(conf).toBe(platform.nginxConfig);
    expect(conf).toMatch(/^daemon off;/m);
    expect(conf).not.toMatch(/^daemon on;/m);
    expect(conf).toContain("server erp:8069;");
    expect(conf).toContain("server erp:8072;");
    expect(conf).toMatch(/acme\.loom\.example active;/);
    expect(conf).toMatch(/globex\.loom\.example suspended;/);
    expect(conf).toContain("proxy_set_header X-Forwarded-Host $host:8080;");
    expect(upload(nginx, "/var/lib/loomworks/router/html/503.html").content).toBe(expected.pages["503.html"]);
    expect(upload(nginx, "/var/lib/loomworks/router/html/404.html").content).toBe(expected.pages["404.html"]);
    expect((i.healthcheck as { tests: string[] }).tests.slice(0, 3)).toEqual(["CMD", "bash", "-c"]);
    expect(isSecretInput(nginx.inputs.uploads)).toBe(false);
    expect(opts(CONTAINER, "nginx").dependsOn).toEqual(["erp"]);
  });

  it("every long-running container: restarted unless stopped, health-gated, stopped gracefully", () => {
    const stopSeconds = { postgres: 60, redis: 10, erp: 60, nginx: 30, ops: 60 };
    for (const [role, seconds] of Object.entries(stopSeconds)) {
      const i = plain(only(regs, CONTAINER, role).inputs) as Record<string, unknown>;
      expect(i, role).toMatchObject({
        restart: "unless-stopped",
        mustRun: true,
        wait: true,
        stopTimeout: seconds,
      });
      expect((i.healthcheck as { tests: string[] }).tests.length, role).toBeGreaterThan(1);
      // Where data or a running job is at stake, `pulumi destroy` stops the container gracefully too.
      if (["postgres", "erp", "ops"].includes(role)) expect(i.destroyGraceSeconds, role).toBe(seconds);
    }
  });

  it("outputs: the published cluster (adminDsn secret), the ERP's secrets, the URL", async () => {
    expect(platform.url).toBe("http://loom.example:8080/");
    expect(await promiseOf(platform.postgres.host)).toBe("127.0.0.1");
    expect(await promiseOf(platform.postgres.port)).toBe(15432);
    expect(await promiseOf(platform.postgres.adminDsn)).toBe(
      "postgres://postgres:pw-postgres-superuser-password@127.0.0.1:15432/postgres",
    );
    expect(await pulumi.isSecret(platform.postgres.adminDsn)).toBe(true);
    expect(await pulumi.isSecret(platform.postgres.port)).toBe(false);
    expect(await promiseOf(platform.adminPasswd)).toBe("pw-odoo-admin-passwd");
    expect(await pulumi.isSecret(platform.adminPasswd)).toBe(true);
    expect(platform.erpRole.name).toBe("loomworks_erp");
    expect(await pulumi.isSecret(platform.erpRole.password)).toBe(true);
  });
});

describe("DockerPlatform (development variant, remote host, image built from the addons)", () => {
  let regs: Registration[];
  let addons: string;

  beforeAll(async () => {
    addons = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-addons-"));
    await fsp.mkdir(path.join(addons, "loomworks_core"));
    await fsp.writeFile(
      path.join(addons, "loomworks_core", "__manifest__.py"),
      "{'name': 'Loomworks Core'}\n",
    );
    [, regs] = await build("dev", {
      docker: dockerConfigSchema.parse({
        host: "ssh://deploy@docker-1.example",
        namePrefix: "lwdev",
        networkName: "lwdev",
        bindAddress: "127.0.0.1",
        postgresImage: "registry.example.com/loomworks/postgres:15",
        development: { enabled: true, addonsPath: "/home/dev/loomworks-addons", debugpyPort: 15678 },
      }),
      odoo: odooConfigSchema.parse({ addonsBuildContext: addons, updateModules: ["loomworks_ai"] }),
      domain: "localhost",
      tenants: [{ subdomain: "acme", state: "active" }],
      databases: ["acme", "loomworks_template_default"],
      postgres: { ...postgres, encryptionPassphrase: pulumi.secret("correct horse battery") },
      projectDir: repoRoot,
      ops: { undoRetentionDays: 30 },
      aiKeys: {
        OPENAI_API_KEY: pulumi.secret(AI_KEYS.OPENAI_API_KEY),
        ANTHROPIC_API_KEY: pulumi.secret(AI_KEYS.ANTHROPIC_API_KEY),
      },
    });
  });

  afterAll(async () => {
    await fsp.rm(addons, { recursive: true, force: true });
  });

  it("uses an explicit docker provider for the configured host on every docker resource", () => {
    expect(plain(only(regs, "pulumi:providers:docker", "docker").inputs)).toMatchObject({
      host: "ssh://deploy@docker-1.example",
    });
    const dockerResources = regs.filter((r) => r.type.startsWith("docker:"));
    expect(dockerResources).toHaveLength(16);
    for (const r of dockerResources) {
      expect(r.provider, `${r.type}::${r.name}`).toMatch(/pulumi:providers:docker::docker::/);
    }
    // The dynamic resources are not docker's.
    expect(only(regs, `${DYNAMIC}ErpRole`, "erp-role").provider ?? "").not.toMatch(/providers:docker/);
  });

  it("builds the ERP image's development target with the addons as the `addons` build context", () => {
    expect(plain(only(regs, IMAGE, "erp-image").inputs)).toEqual({
      name: "loomworks/erp:18.0",
      keepLocally: true,
      build: {
        context: repoRoot,
        dockerfile: "docker/Dockerfile",
        target: "development",
        builder: "default",
        additionalContexts: [`addons=${addons}`],
      },
      triggers: {
        dockerfile: directoryDigest(path.join(repoRoot, "docker")),
        addons: directoryDigest(addons),
      },
    });
    expect(only(regs, IMAGE, "postgres-image").inputs).toEqual({
      name: "registry.example.com/loomworks/postgres:15",
      keepLocally: true,
    });
  });

  it("the ERP: live addons (read-only), --dev=all under debugpy on 127.0.0.1, threaded, no limits", () => {
    const erp = only(regs, CONTAINER, "erp");
    const i = plain(erp.inputs) as Record<string, unknown>;
    expect(i).toMatchObject({
      name: "lwdev-erp",
      command: ["odoo", "--dev=all"],
      envs: [
        "LOOMWORKS_ADMIN_PASSWD_FILE=/run/secrets/odoo-admin-passwd",
        "LOOMWORKS_DB_PASSWORD_FILE=/run/secrets/odoo-db-password",
        "LOOMWORKS_DATABASES=acme,loomworks_template_default",
        "LOOMWORKS_UPDATE_MODULES=loomworks_ai",
        "LOOMWORKS_LOG_FORMAT=json",
        "LOOMWORKS_DEBUGPY=1",
        "LOOMWORKS_DEBUGPY_PORT=5678",
        `ANTHROPIC_API_KEY=${AI_KEYS.ANTHROPIC_API_KEY}`,
        `OPENAI_API_KEY=${AI_KEYS.OPENAI_API_KEY}`,
      ],
      volumes: [
        { volumeName: "lwdev_odoo_data", containerPath: "/var/lib/odoo" },
        { hostPath: "/home/dev/loomworks-addons", containerPath: "/opt/loomworks/addons", readOnly: true },
      ],
      ports: [{ internal: 5678, external: 15678, ip: "127.0.0.1" }],
    });
    expect(i).not.toHaveProperty("memory");
    expect(i).not.toHaveProperty("cpus");
    expect(parseOdooConfig(upload(erp, "/etc/odoo/odoo.conf").content as string)).toMatchObject({
      workers: "0",
    });
  });

  it("AI keys: in the ERP's environment, the list sent as a secret, in no other container or file", () => {
    const erp = only(regs, CONTAINER, "erp");
    expect(isSecretInput(erp.inputs.envs)).toBe(true);
    const elsewhere = JSON.stringify(
      regs.map((r) => (r.type === CONTAINER && r.name === "erp" ? { ...r.inputs, envs: [] } : r.inputs)),
    );
    for (const [name, value] of Object.entries(AI_KEYS)) expect(elsewhere, name).not.toContain(value);
  });

  it("nginx sends WebSockets to the threaded ERP's HTTP port and publishes on the bind address", () => {
    const nginx = only(regs, CONTAINER, "nginx");
    const conf = upload(nginx, "/var/lib/loomworks/router/nginx.conf").content as string;
    expect(conf).not.toContain("server erp:8072;");
    expect(conf.match(/server erp:8069;/g)).toHaveLength(2);
    expect(plain(nginx.inputs.ports)).toEqual([{ internal: 80, external: 80, ip: "127.0.0.1" }]);
  });

  it("an encrypted repository: pgbackrest.conf carries the passphrase and is sent as a secret", () => {
    const pg = only(regs, CONTAINER, "postgres");
    const file = upload(pg, "/etc/pgbackrest/pgbackrest.conf");
    expect(file.content).toBe(
      renderDockerPgBackRestConf({
        stanza: "loomworks",
        retentionFull: 2,
        encryptionPassphrase: "correct horse battery",
      }),
    );
    expect(file.content).toContain("repo1-cipher-pass=correct horse battery");
    expect(isSecretInput(pg.inputs.uploads)).toBe(true);
    expect(plain(pg.inputs.image)).toBe("sha256:postgres-image");
  });
});

describe("DockerPlatform: refusals", () => {
  it("refuses a tenant the router cannot route, naming it", () => {
    expect(
      () =>
        new DockerPlatform("bad", {
          docker: dockerConfigSchema.parse({}),
          odoo: odooConfigSchema.parse({}),
          domain: "loom.example",
          tenants: [{ subdomain: "Bad_Name", state: "active" }],
          postgres,
          projectDir: repoRoot,
          ops: { undoRetentionDays: 30 },
        }),
    ).toThrow(/tenants\[0\]\.subdomain: "Bad_Name" must be a DNS label/);
  });
});

describe("directoryDigest", () => {
  it("changes with a file's content or name and ignores .git and bytecode", async () => {
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-digest-"));
    try {
      await fsp.writeFile(path.join(dir, "a.py"), "x = 1\n");
      const d1 = directoryDigest(dir);
      await fsp.mkdir(path.join(dir, ".git"));
      await fsp.writeFile(path.join(dir, ".git", "HEAD"), "ref\n");
      await fsp.writeFile(path.join(dir, "a.pyc"), "bytecode");
      expect(directoryDigest(dir)).toBe(d1);
      await fsp.writeFile(path.join(dir, "a.py"), "x = 2\n");
      const d2 = directoryDigest(dir);
      expect(d2).not.toBe(d1);
      await fsp.rename(path.join(dir, "a.py"), path.join(dir, "b.py"));
      expect(directoryDigest(dir)).not.toBe(d2);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
