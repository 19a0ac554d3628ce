/**
 * The Docker target's configuration: the `loomworks:platform.docker` schema (infra/config/docker.ts)
 * and the files the containers are given (components/docker/config.ts) — the nginx one checked by
 * the real `nginx -t` with the container-only names (the `erp` host, the nginx user, the paths)
 * mapped to this machine.
 */
import { spawnSync } from "node:child_process";
import { promises as fsp } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import {
  DOCKER_VOLUMES,
  NGINX_STATE_DIR,
  containerName,
  renderDockerNginxConf,
  renderDockerOdooConf,
  renderDockerPostgresqlConf,
  volumeName,
} from "../../components/docker/config";
import { DOCKER_RULES, dockerConfigSchema } from "../../infra/config/docker";
import { parseOdooConfig } from "../../lib/odoo/config";

function issues(raw: unknown): string[] {
  const r = dockerConfigSchema.safeParse(raw);
  expect(r.success).toBe(false);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
}

describe("dockerConfigSchema", () => {
  const defaults = {
    namePrefix: "loomworks",
    networkName: "loomworks",
    bindAddress: "0.0.0.0",
    httpPort: 80,
    redisImage: "redis:7.2-bookworm",
    nginxImage: "nginx:1.26-bookworm",
    builder: "default",
    development: { enabled: false, debugpy: true, debugpyPort: 5678 },
  };

  it("applies the defaults to an empty or null section", () => {
    expect(dockerConfigSchema.parse({})).toEqual(defaults);
    expect(dockerConfigSchema.parse(null)).toEqual(defaults);
    expect(dockerConfigSchema.parse({ development: null, httpPort: null })).toEqual(defaults);
  });

  it("accepts a full section; numbers and booleans may be strings", () => {
    expect(
      dockerConfigSchema.parse({
        host: "ssh://deploy@docker-1.example",
        namePrefix: "lw-prod",
        networkName: "lw_prod",
        bindAddress: "127.0.0.1",
        httpPort: "8080",
        postgresImage: "registry.example.com/loomworks/postgres:15",
        redisImage: "redis:7.2",
        nginxImage: "nginx:1.26",
        builder: "loomworks",
        development: {
          enabled: "true",
          addonsPath: "/home/dev/addons",
          debugpy: "false",
          debugpyPort: "15678",
          image: "loomworks/erp:dev",
        },
      }),
    ).toEqual({
      host: "ssh://deploy@docker-1.example",
      namePrefix: "lw-prod",
      networkName: "lw_prod",
      bindAddress: "127.0.0.1",
      httpPort: 8080,
      postgresImage: "registry.example.com/loomworks/postgres:15",
      redisImage: "redis:7.2",
      nginxImage: "nginx:1.26",
      builder: "loomworks",
      development: {
        enabled: true,
        addonsPath: "/home/dev/addons",
        debugpy: false,
        debugpyPort: 15678,
        image: "loomworks/erp:dev",
      },
    });
    for (const host of ["unix:///var/run/docker.sock", "tcp://10.0.0.5:2376"]) {
      expect(dockerConfigSchema.parse({ host }).host).toBe(host);
    }
  });

  it("requires addonsPath when development is enabled, and a debugpy port other than httpPort", () => {
    expect(issues({ development: { enabled: true } })).toEqual([
      `development.addonsPath: ${DOCKER_RULES.addonsPathRequired}`,
    ]);
    expect(issues({ httpPort: 5678, development: { enabled: true, addonsPath: "/src" } })).toEqual([
      "development.debugpyPort: must differ from httpPort (both are 5678)",
    ]);
    // Disabled: neither rule applies.
    expect(dockerConfigSchema.parse({ httpPort: 5678, development: {} }).development.enabled).toBe(false);
  });

  it("states the rule of every bad key and refuses unknown keys with a hint", () => {
    expect(
      issues({
        host: "docker-1:2375",
        namePrefix: "-bad",
        bindAddress: "localhost",
        httpPort: 0,
        redisImage: "Redis Latest",
        networkNmae: "x",
        development: { enabled: "yes", addonsPath: "relative/addons", debugpyPort: 70000, Debugpy: true },
      }),
    ).toEqual([
      'networkNmae: is not a known key (did you mean "networkName"?)',
      `host: ${DOCKER_RULES.host}`,
      `namePrefix: ${DOCKER_RULES.name}`,
      `bindAddress: ${DOCKER_RULES.bindAddress}`,
      `httpPort: ${DOCKER_RULES.port}`,
      "redisImage: must be a container image reference like registry.example.com/loomworks/erp:18.0 (a tag or a digest)",
      'development.Debugpy: is not a known key (did you mean "debugpy"?)',
      "development.enabled: must be true or false",
      `development.addonsPath: ${DOCKER_RULES.absolutePath}`,
      `development.debugpyPort: ${DOCKER_RULES.port}`,
    ]);
  });
});

describe("the containers' configuration files", () => {
  it("names containers and volumes after the prefix", () => {
    expect(containerName("lw", "erp")).toBe("lw-erp");
    expect(DOCKER_VOLUMES.map((v) => volumeName("lw", v))).toEqual([
      "lw_odoo_data",
      "lw_postgres_data",
      "lw_wal_archive",
      "lw_backups",
      "lw_postgres_socket",
    ]);
  });

  it("postgresql.conf: the shared template, refusing unsafe values", () => {
    const conf = renderDockerPostgresqlConf({ archiveTimeoutSeconds: 30, stanza: "lw", maxConnections: 300 });
    expect(conf).toContain("archive_timeout = 30");
    expect(conf).toContain("max_connections = 300");
    expect(conf).toContain("unix_socket_directories = '/var/run/postgresql'");
    expect(() => renderDockerPostgresqlConf({ archiveTimeoutSeconds: 30, stanza: "it's" })).toThrow(
      /unsafe character/,
    );
  });

  it("odoo.conf: prefork sized from the limits, or threaded for development; Redis as given", () => {
    const prod = parseOdooConfig(
      renderDockerOdooConf({ dbUser: "erp", cpu: 4, memoryMb: 8192, development: false }),
    );
    expect(prod).toMatchObject({ workers: "9", db_user: "erp", db_sslmode: "disable" });
    const dev = parseOdooConfig(
      renderDockerOdooConf({
        dbUser: "erp",
        cpu: 4,
        memoryMb: 8192,
        development: true,
        redisUrl: "redis://cache.internal:6380/3",
      }),
    );
    expect(dev).toMatchObject({ workers: "0", session_redis_url: "redis://cache.internal:6380/3" });
  });

  it.each([false, true])("nginx.conf (development %s) passes nginx -t", async (development) => {
    const nginx = spawnSync("nginx", ["-v"], { encoding: "utf8" });
    expect(nginx.error, "nginx not found (scripts/setup.sh installs nginx-light)").toBeUndefined();
    const rendered = renderDockerNginxConf({
      domain: "loom.example",
      publicPort: 8080,
      development,
      tenants: [
        { subdomain: "acme", state: "active" },
        { subdomain: "globex", state: "archived" },
      ],
    });
    const dir = await fsp.mkdtemp(path.join(os.tmpdir(), "lw-docker-nginx-"));
    try {
      // What only exists inside the container, mapped to this machine: the paths, the ERP's host
      // name on the Docker network, the nginx image's user.
      const local = rendered.text
        .split(NGINX_STATE_DIR)
        .join(dir)
        .replace(/server erp:/g, "server 127.0.0.1:")
        .replace(/^user nginx;$/m, "");
      expect(local).not.toBe(rendered.text);
      for (const d of rendered.paths.dirs)
        await fsp.mkdir(d.split(NGINX_STATE_DIR).join(dir), { recursive: true });
      const conf = path.join(dir, "router", "nginx.conf");
      await fsp.writeFile(conf, local);
      const r = spawnSync("nginx", ["-t", "-p", path.join(dir, "router"), "-c", conf], { encoding: "utf8" });
      expect(r.stderr).toMatch(/syntax is ok/);
      expect(r.status).toBe(0);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
