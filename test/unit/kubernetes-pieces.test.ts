/**
 * The pieces inside the Kubernetes objects, run for real where this machine can: the routing
 * table, the error-pages nginx configuration (served by the real nginx on loopback ports), the
 * Redis start script (run by `sh` with a STAND-IN `redis-server` that records what it was given)
 * and the sizes derived from config.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  NOT_FOUND_PORT,
  UNAVAILABLE_PORT,
  ERROR_PAGES_HEALTH_PORT,
} from "../../components/kubernetes/common";
import { ERROR_PAGES_ROOT, errorPagesFiles } from "../../components/kubernetes/errorPages";
import { redisMemoryMiB, redisStartScript } from "../../components/kubernetes/erpRedis";
import { previewHost, routingTable, tenantHost } from "../../components/kubernetes/routes";
import { builderSecretName, kubectlRunArgs, templatePodOverrides } from "../../lib/tenant/templatePod";
import { k8sSchemaErrors } from "../helpers/k8s-validate";
import { freePort } from "../../testkit/ports";
import { requireTool } from "../helpers/tools";

describe("routingTable", () => {
  it("sends active tenants to the ERP and every other state to the 503 page, previews alike", () => {
    expect(
      routingTable("loom.example", [
        { subdomain: "zeta", state: "active" },
        { subdomain: "acme", state: "suspended", preview: true },
        { subdomain: "beta", state: "archived" },
        { subdomain: "gamma", state: "restoring" },
        { subdomain: "delta", state: "active", preview: true },
      ]).map((r) => [r.host, r.backend, r.kind, r.database, r.routeName]),
    ).toEqual([
      ["acme--preview.loom.example", "unavailable", "preview", "acme--preview", "tenant-acme-preview"],
      ["acme.loom.example", "unavailable", "tenant", "acme", "tenant-acme"],
      ["beta.loom.example", "unavailable", "tenant", "beta", "tenant-beta"],
      ["delta--preview.loom.example", "erp", "preview", "delta--preview", "tenant-delta-preview"],
      ["delta.loom.example", "erp", "tenant", "delta", "tenant-delta"],
      ["gamma.loom.example", "unavailable", "tenant", "gamma", "tenant-gamma"],
      ["zeta.loom.example", "erp", "tenant", "zeta", "tenant-zeta"],
    ]);
    expect([tenantHost("acme", "x.example"), previewHost("acme", "x.example")]).toEqual([
      "acme.x.example",
      "acme--preview.x.example",
    ]);
  });

  it("refuses hosts no rule can carry", () => {
    const long = "a".repeat(60);
    expect(() => routingTable("loom.example", [{ subdomain: long, state: "active", preview: true }])).toThrow(
      `tenant "${long}": preview host label "${long}--preview" is longer than 63 characters`,
    );
    expect(() =>
      routingTable(`${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(63)}.example`, [
        { subdomain: "a".repeat(63), state: "active" },
      ]),
    ).toThrow(/is longer than 253 characters/);
    expect(() => routingTable("loom.example", [{ subdomain: "-acme", state: "active" }])).toThrow(
      /not a routable subdomain/,
    );
    expect(routingTable("loom.example", [])).toEqual([]);
  });
});

describe("a template build's pod", () => {
  const runner = {
    namespace: "loomworks",
    image: "registry.example.com/erp:18.0",
    host: "postgres.loomworks.svc",
    port: 5432,
    passwordSecret: { name: builderSecretName("pro_eu"), key: "password" },
    labels: { "app.kubernetes.io/component": "module-update" },
    user: { uid: 101, gid: 101 },
  };
  const run = {
    database: "loomworks_template_pro_eu__building",
    role: "loomworks_template_pro_eu_builder",
    command: "odoo -d loomworks_template_pro_eu__building -i base --stop-after-init",
  };

  it("names each template's builder Secret validly and distinctly", () => {
    const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
    expect(builderSecretName("default")).toBe("loomworks-template-builder-default");
    const names = ["pro_eu", "pro-eu", "a".repeat(63), "x_", "x-"].map(builderSecretName);
    for (const n of names) expect(n.length <= 253 && dns1123.test(n), n).toBe(true);
    expect(new Set(names).size).toBe(names.length);
  });

  it("logs in as the builder, its password only by secretKeyRef, in a restricted pod", () => {
    const spec = templatePodOverrides(runner, run).spec;
    const env = spec.containers[0].env;
    expect(env.find((e) => e.name === "PGUSER")).toEqual({ name: "PGUSER", value: run.role });
    expect(env.find((e) => e.name === "PGDATABASE")).toEqual({ name: "PGDATABASE", value: run.database });
    expect(env.find((e) => e.name === "PGPASSWORD")).toEqual({
      name: "PGPASSWORD",
      valueFrom: { secretKeyRef: runner.passwordSecret },
    });
    expect(env.some((e) => e.name !== "PGUSER" && "value" in e && e.value === "postgres")).toBe(false);
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 101 });
    const args = kubectlRunArgs(runner, run);
    const pod = {
      ...JSON.parse(args.find((a) => a.startsWith("--overrides="))!.slice("--overrides=".length)),
      kind: "Pod",
      metadata: { name: args[1], namespace: "loomworks" },
    };
    expect(k8sSchemaErrors(pod)).toEqual([]);
    expect(args).toContain("--labels=app.kubernetes.io/component=module-update");
  });
});

describe("Redis start script", () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lw-redis-"));
    // STAND-IN for redis-server: records its arguments and its stdin, then exits.
    fs.writeFileSync(
      path.join(dir, "redis-server"),
      `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/args"\ncat > "${dir}/stdin"\n`,
      { mode: 0o755 },
    );
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("hands the password to redis-server on stdin only", () => {
    const password = "s3cret$with`odd\\chars";
    const r = spawnSync("sh", ["-c", redisStartScript("512mb")], {
      env: { PATH: `${dir}:/usr/bin:/bin`, REDIS_PASSWORD: password },
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const args = fs.readFileSync(path.join(dir, "args"), "utf8").split("\n").slice(0, -1);
    expect(args).toEqual([
      "-",
      "--save",
      "",
      "--appendonly",
      "no",
      "--maxmemory",
      "512mb",
      "--maxmemory-policy",
      "allkeys-lru",
    ]);
    expect(fs.readFileSync(path.join(dir, "stdin"), "utf8")).toBe(`requirepass ${password}\n`);
  });

  it("refuses to start without a password", () => {
    const r = spawnSync("sh", ["-c", redisStartScript("256mb")], {
      env: { PATH: `${dir}:/usr/bin:/bin` },
      encoding: "utf8",
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/REDIS_PASSWORD/);
  });

  it("sizes Redis memory in its own units", () => {
    expect([redisMemoryMiB("256mb"), redisMemoryMiB("1gb"), redisMemoryMiB("1536kb")]).toEqual([
      256, 1024, 2,
    ]);
    expect(() => redisStartScript("256MB")).toThrow("not a Redis memory size: 256MB");
  });
});

function get(port: number, urlPath: string, host = "unknown.loom.example") {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>(
    (resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port, path: urlPath, headers: { host } }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on("error", reject);
      req.setTimeout(5000, () => req.destroy(new Error("timeout")));
    },
  );
}

async function waitForPort(port: number, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.on("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} did not open`);
}

describe("error pages, served by nginx", () => {
  let dir: string;
  let nginx: ChildProcess | undefined;
  let stderr = "";
  const ports = { notFound: 0, unavailable: 0, health: 0 };

  beforeAll(async () => {
    requireTool("nginx");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "lw-error-pages-"));
    fs.chmodSync(dir, 0o755);
    ports.notFound = await freePort();
    ports.unavailable = await freePort();
    ports.health = await freePort();
    const files = errorPagesFiles();
    // The ConfigMap's files as the pod mounts them; only the listen ports and the root differ here.
    const conf = files["default.conf"]
      .replaceAll(`listen ${NOT_FOUND_PORT} `, `listen 127.0.0.1:${ports.notFound} `)
      .replaceAll(`listen ${UNAVAILABLE_PORT} `, `listen 127.0.0.1:${ports.unavailable} `)
      .replaceAll(`listen ${ERROR_PAGES_HEALTH_PORT} `, `listen 127.0.0.1:${ports.health} `)
      .replaceAll(ERROR_PAGES_ROOT, path.join(dir, "pages"));
    expect(conf).not.toBe(files["default.conf"]);
    fs.mkdirSync(path.join(dir, "pages"), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "pages", "404.html"), files["404.html"], { mode: 0o644 });
    fs.writeFileSync(path.join(dir, "pages", "503.html"), files["503.html"], { mode: 0o644 });
    fs.writeFileSync(path.join(dir, "default.conf"), conf);
    fs.writeFileSync(
      path.join(dir, "nginx.conf"),
      [
        "daemon off;",
        "worker_processes 1;",
        `pid ${dir}/nginx.pid;`,
        "error_log stderr warn;",
        "events { worker_connections 64; }",
        "http {",
        "  access_log off;",
        `  client_body_temp_path ${dir}/body;`,
        `  proxy_temp_path ${dir}/proxy;`,
        `  include ${dir}/default.conf;`,
        "}",
        "",
      ].join("\n"),
    );
    const check = spawnSync("nginx", ["-t", "-p", dir, "-c", path.join(dir, "nginx.conf")], {
      encoding: "utf8",
    });
    expect(check.status, check.stderr).toBe(0);
    nginx = spawn("nginx", ["-p", dir, "-c", path.join(dir, "nginx.conf")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    nginx.stderr?.on("data", (c: Buffer) => (stderr += c.toString()));
    const deadline = Date.now() + 10_000;
    await Promise.all([ports.notFound, ports.unavailable, ports.health].map((p) => waitForPort(p, deadline)));
  });

  afterAll(async () => {
    if (nginx && nginx.exitCode === null) {
      const exited = new Promise((r) => nginx?.once("exit", r));
      nginx.kill("SIGTERM");
      await exited;
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("answers 404 with the page for any host and path on the not-found port", async () => {
    for (const p of ["/", "/web/login", "/websocket"]) {
      const r = await get(ports.notFound, p);
      expect(r.status, `${p}: ${stderr}`).toBe(404);
      expect(r.body).toContain("There is no Loomworks workspace at this address.");
      expect(r.headers["content-type"]).toMatch(/^text\/html/);
      expect(r.headers["cache-control"]).toBe("no-store");
    }
    expect((await get(ports.notFound, "/404.html")).status).toBe(404);
  });

  it("answers 503 with the page and Retry-After on the unavailable port", async () => {
    const r = await get(ports.unavailable, "/web?db=acme", "acme.loom.example");
    expect(r.status).toBe(503);
    expect(r.body).toContain("This Loomworks workspace is not available at the moment.");
    expect(r.headers["retry-after"]).toBe("300");
    expect(r.headers["cache-control"]).toBe("no-store");
    expect(r.headers.server).toBe("nginx");
  });

  it("answers the probes on the health port only", async () => {
    expect(await get(ports.health, "/healthz")).toMatchObject({ status: 200, body: "ok\n" });
    expect((await get(ports.health, "/")).status).toBe(404);
    expect((await get(ports.notFound, "/healthz")).status).toBe(404);
  });
});
