/**
 * The docker target's nginx.conf with `platform.routerTls` (components/docker/config.ts, the shared
 * renderer of lib/router), as DockerPlatform uploads it and as `npm run compose` writes it
 * (components/docker/compose.ts), each served by the real nginx binary and asked by curl against a
 * throw-away CA. What only exists inside the container is mapped to this machine, as the docker-config unit
 * test does for `nginx -t`: the state directory, the container's ports 80 and 443, the ERP's host
 * name on the Docker network (here the recording stand-ins of testkit/standin-upstreams.ts) and the
 * nginx image's user. The certificate and key sit where the container's uploads put them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fs } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { renderCompose } from "../../components/docker/compose";
import { NGINX_STATE_DIR, NGINX_TLS, renderDockerNginxConf } from "../../components/docker/config";
import { parseStackConfig } from "../../infra/config/load";
import { routerTlsFilesHash } from "../../lib/router/tlsFiles";
import { freePort } from "../../testkit/ports";
import { headerValues } from "../../testkit/standin-upstreams";
import { curl } from "../helpers/curl";
import { startRouterBed, type RouterBed } from "../helpers/router-bed";
import { makeTestCertificates, type TestCertificates } from "../helpers/test-certificates";

const DOMAIN = "loom.test";
const HSTS_MAX_AGE = 900;

let bed: RouterBed;
let dir: string;
let certs: TestCertificates;
let httpPort: number;
let httpsPort: number;
let nginx: ChildProcess | undefined;
let nginxLog = "";

const onHost = (containerPath: string): string => containerPath.split(NGINX_STATE_DIR).join(dir);

async function waitForNginx(): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const res = await curl(`http://health.invalid:${httpPort}/`);
    if (res.status === 404) return;
    if (nginx?.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nginx did not start: ${nginxLog}`);
}

/** What nginx is given: nginx.conf and the error pages, at their paths in the container. */
interface Rendered {
  text: string;
  pages: Record<string, string>;
  paths: { config: string; htmlDir: string; dirs: string[] };
}

const TENANTS = [
  { subdomain: "acme", state: "active" as const },
  { subdomain: "globex", state: "suspended" as const },
];

function platformRendering(): Rendered {
  return renderDockerNginxConf({
    domain: DOMAIN,
    publicPort: httpPort,
    development: false,
    tenants: TENANTS,
    tls: {
      publicPort: httpsPort,
      hstsMaxAgeSeconds: HSTS_MAX_AGE,
      filesHash: routerTlsFilesHash(certs) as string,
    },
  });
}

/** The Compose project's files for a docker stack with the same tenants and routerTls. */
function composeRendering(): Rendered {
  const config = parseStackConfig({
    platform: {
      target: "docker",
      domain: DOMAIN,
      templates: { default: { fromCommand: "odoo -d {db} -i base --stop-after-init" } },
      docker: { httpPort },
      routerTls: {
        certFile: certs.certFile,
        keyFile: certs.keyFile,
        port: httpsPort,
        hstsMaxAgeSeconds: HSTS_MAX_AGE,
      },
    },
    tenants: Object.fromEntries(
      TENANTS.map((t) => [t.subdomain, { tier: "basic", adminEmail: "a@x.example", state: t.state }]),
    ),
  });
  const { files } = renderCompose({
    stack: "tls-it",
    project: "loomworks-hosting",
    config,
    checkoutDir: "../..",
  });
  const file = (p: string): string => {
    const f = files.find((x) => x.path === p);
    expect(f, p).toBeDefined();
    return (f as { content: string }).content;
  };
  // Where the Compose file mounts them is where DockerPlatform uploads them.
  const paths = platformRendering().paths;
  return {
    text: file("nginx/nginx.conf"),
    pages: { "404.html": file("nginx/html/404.html"), "503.html": file("nginx/html/503.html") },
    paths,
  };
}

async function startNginx(rendered: Rendered): Promise<void> {
  dir = await bed.newStateDir("loomworks-docker-router-tls-it-");
  await fs.chmod(dir, 0o755); // the workers (nobody) read the error pages
  // The certificate and key where the nginx container's uploads (or the Compose mounts) put them.
  await fs.mkdir(path.dirname(onHost(NGINX_TLS.certFile)), { recursive: true });
  await fs.copyFile(certs.certFile, onHost(NGINX_TLS.certFile));
  await fs.copyFile(certs.keyFile, onHost(NGINX_TLS.keyFile));
  const local = onHost(rendered.text)
    .replace(/\*:80\b/g, `127.0.0.1:${httpPort}`)
    .replace(/\*:443\b/g, `127.0.0.1:${httpsPort}`)
    .replace(/server erp:8069;/, `server 127.0.0.1:${bed.erpHttp.port};`)
    .replace(/server erp:8072;/, `server 127.0.0.1:${bed.erpWs.port};`)
    .replace(/^user nginx;$/m, "");
  // Every container-only value was mapped (a forgotten one would make this test pass by accident).
  expect(local).not.toMatch(/\*:(80|443)\b|server erp:|\/var\/lib\/loomworks\b|^user /m);
  for (const d of rendered.paths.dirs) await fs.mkdir(onHost(d), { recursive: true });
  await fs.writeFile(onHost(rendered.paths.config), local);
  for (const [name, page] of Object.entries(rendered.pages))
    await fs.writeFile(path.join(onHost(rendered.paths.htmlDir), name), page);
  // In the foreground (`daemon off`, as in the container): this test's child, stopped after its tests.
  nginxLog = "";
  nginx = spawn("nginx", ["-p", onHost(`${NGINX_STATE_DIR}/router`), "-c", onHost(rendered.paths.config)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  nginx.stderr?.on("data", (d: Buffer) => (nginxLog += d.toString()));
  await waitForNginx();
}

async function stopNginx(): Promise<void> {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((r) => nginx?.on("exit", r));
    nginx.kill("SIGQUIT");
    await exited;
  }
  nginx = undefined;
}

beforeAll(async () => {
  const version = await new Promise<number | null>((resolve) =>
    spawn("nginx", ["-v"])
      .on("error", () => resolve(null))
      .on("close", resolve),
  );
  expect(version, "nginx is not installed (scripts/setup.sh installs nginx-light)").toBe(0);
  bed = await startRouterBed();
  httpPort = await freePort();
  httpsPort = await freePort();
  const certDir = await bed.newStateDir("loomworks-docker-router-tls-certs-");
  certs = await makeTestCertificates(certDir, [`*.${DOMAIN}`]);
});

afterAll(async () => {
  await stopNginx();
  await bed?.close();
});

beforeEach(() => bed.reset());

describe.each([
  ["uploaded by DockerPlatform", platformRendering],
  ["written by npm run compose", composeRendering],
])("the docker router with routerTls, its nginx.conf as %s, in a real nginx", (_source, render) => {
  beforeAll(() => startNginx(render()));
  afterAll(stopNginx);

  it("serves an active tenant over HTTPS with a certificate curl verifies, HSTS, forwarded as https on the published port", async () => {
    const res = await curl(`https://acme.${DOMAIN}:${httpsPort}/web/login`, { cacert: certs.caFile });
    expect(res.stderr).toBe("");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ standin: "erp-http" });
    expect(res.headers["strict-transport-security"]).toBe(`max-age=${HSTS_MAX_AGE}; includeSubDomains`);
    const req = bed.erpHttp.requests[0];
    expect(headerValues(req, "x-forwarded-proto")).toEqual(["https"]);
    expect(headerValues(req, "x-forwarded-host")).toEqual([`acme.${DOMAIN}:${httpsPort}`]);
  });

  it("is refused by curl without the CA: the certificate really is checked", async () => {
    const res = await curl(`https://acme.${DOMAIN}:${httpsPort}/`);
    expect(res.code).toBe(60);
    expect(bed.erpHttp.requests).toHaveLength(0);
  });

  it("redirects a tenant's plain HTTP to HTTPS on the published port (308), without HSTS", async () => {
    const res = await curl(`http://acme.${DOMAIN}:${httpPort}/web/login?x=1`);
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe(`https://acme.${DOMAIN}:${httpsPort}/web/login?x=1`);
    expect(res.headers["strict-transport-security"]).toBeUndefined();
    expect(bed.erpHttp.requests).toHaveLength(0);
  });

  it("answers a suspended tenant 503 over HTTPS, and an unknown host 404 on both ports (the container's health check)", async () => {
    const suspended = await curl(`https://globex.${DOMAIN}:${httpsPort}/`, { cacert: certs.caFile });
    expect(suspended.status).toBe(503);
    expect(suspended.headers["strict-transport-security"]).toBe(`max-age=${HSTS_MAX_AGE}; includeSubDomains`);
    expect((await curl(`http://health.invalid:${httpPort}/`)).status).toBe(404);
    const unknownTls = await curl(`https://nobody.${DOMAIN}:${httpsPort}/`, { cacert: certs.caFile });
    expect(unknownTls.status).toBe(404);
    expect(bed.erpHttp.requests).toHaveLength(0);
  });
});
