/**
 * The local router with TLS in a real nginx, asked by curl: a throw-away CA signs a wildcard
 * certificate for *.loomworks.test (curl --cacert verifies it; --resolve sends the names to
 * 127.0.0.1), the ERP is the recording stand-in of testkit/standin-upstreams.ts. Also the
 * dev stack's self-signed certificate (lib/router/devCertificate.ts) served and verified the same way.
 */
import { promises as fs, statSync } from "node:fs";
import * as path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { applyRouter, setRouterMaintenance, type RouterOptions, type RouterTenant } from "../../lib/router";
import { ensureDevCertificate } from "../../lib/router/devCertificate";
import { applyLocalRouter, diffLocalRouter, type LocalRouterInputs } from "../../lib/router/provider";
import { freePort } from "../../testkit/ports";
import { startRouterBed, type RouterBed } from "../helpers/router-bed";
import { headerValues, websocketExchange, type Standin } from "../../testkit/standin-upstreams";
import { curl } from "../helpers/curl";
import { makeTestCertificates, type TestCertificates } from "../helpers/test-certificates";

const DOMAIN = "loomworks.test";
const HSTS_MAX_AGE = 600;
const TENANTS: RouterTenant[] = [
  { subdomain: "t1", state: "active" },
  { subdomain: "t2", state: "active" },
  { subdomain: "paused", state: "suspended" },
];

let stateDir: string;
let httpPort: number;
let httpsPort: number;
let certs: TestCertificates;
let bed: RouterBed;
let erpHttp: Standin;
let erpWs: Standin;

const httpsUrl = (sub: string, pathname = "/"): string => `https://${sub}.${DOMAIN}:${httpsPort}${pathname}`;
const httpUrl = (sub: string, pathname = "/"): string => `http://${sub}.${DOMAIN}:${httpPort}${pathname}`;

function options(overrides: Partial<RouterOptions> = {}): RouterOptions {
  return {
    stateDir,
    domain: DOMAIN,
    port: httpPort,
    odooHttp: `127.0.0.1:${erpHttp.port}`,
    odooWebsocket: `127.0.0.1:${erpWs.port}`,
    tenants: TENANTS,
    workerProcesses: 1,
    tls: {
      certFile: certs.certFile,
      keyFile: certs.keyFile,
      port: httpsPort,
      hstsMaxAgeSeconds: HSTS_MAX_AGE,
    },
    ...overrides,
  };
}

beforeAll(async () => {
  bed = await startRouterBed();
  ({ erpHttp, erpWs } = bed);
  stateDir = await bed.newStateDir("loomworks-router-tls-it-");
  certs = await makeTestCertificates(path.join(stateDir, "certs"), [`*.${DOMAIN}`]);
  httpPort = await freePort();
  httpsPort = await freePort();
  expect((await applyRouter(options())).action).toBe("started");
});

afterAll(async () => {
  await bed?.close();
});

beforeEach(() => {
  bed.reset();
});

describe("HTTPS with the wildcard certificate", () => {
  it("serves a tenant over HTTPS with a certificate curl verifies against the CA, and HSTS", async () => {
    const res = await curl(httpsUrl("t1", "/web/login?db=x"), { cacert: certs.caFile });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ standin: "erp-http" });
    expect(res.headers["strict-transport-security"]).toBe(`max-age=${HSTS_MAX_AGE}; includeSubDomains`);
  });

  it("is refused by curl without the CA (the certificate really is checked)", async () => {
    const res = await curl(httpsUrl("t1"));
    expect(res.code).toBe(60); // CURLE_PEER_FAILED_VERIFICATION
    expect(erpHttp.requests).toHaveLength(0);
  });

  it("tells the ERP the request came over https on the HTTPS port", async () => {
    const res = await curl(httpsUrl("t2", "/odoo"), { cacert: certs.caFile });
    expect(res.status).toBe(200);
    expect(erpHttp.requests).toHaveLength(1);
    const req = erpHttp.requests[0];
    expect(headerValues(req, "x-forwarded-proto")).toEqual(["https"]);
    expect(headerValues(req, "x-forwarded-port")).toEqual([String(httpsPort)]);
    expect(headerValues(req, "x-forwarded-host")).toEqual([`t2.${DOMAIN}:${httpsPort}`]);
    expect(headerValues(req, "host")).toEqual([`t2.${DOMAIN}:${httpsPort}`]);
    expect(headerValues(req, "x-odoo-dbfilter")).toEqual(["^t2$"]);
  });

  it("upgrades /websocket over TLS to the ERP's WebSocket port, forwarded proto https", async () => {
    const ex = await websocketExchange(
      httpsPort,
      `t1.${DOMAIN}:${httpsPort}`,
      "/websocket?version=18.0",
      "over tls",
      [],
      10_000,
      { ca: await fs.readFile(certs.caFile, "utf8"), servername: `t1.${DOMAIN}` },
    );
    expect(ex.status).toBe(101);
    expect(ex.acceptValid).toBe(true);
    expect(ex.reply).toBe("echo:over tls");
    expect(erpWs.requests).toHaveLength(1);
    expect(headerValues(erpWs.requests[0], "x-forwarded-proto")).toEqual(["https"]);
  });

  it("answers a suspended tenant and a tenant under maintenance 503 over HTTPS, with HSTS", async () => {
    const suspended = await curl(httpsUrl("paused"), { cacert: certs.caFile });
    expect(suspended.status).toBe(503);
    expect(suspended.headers["strict-transport-security"]).toBe(`max-age=${HSTS_MAX_AGE}; includeSubDomains`);
    await setRouterMaintenance(stateDir, "t1", true);
    try {
      const res = await curl(httpsUrl("t1"), { cacert: certs.caFile });
      expect(res.status).toBe(503);
      expect(res.body).toContain("loomworks-router: 503 tenant unavailable");
      expect(res.headers["strict-transport-security"]).toBe(`max-age=${HSTS_MAX_AGE}; includeSubDomains`);
      expect(res.headers["retry-after"]).toBe("120");
    } finally {
      await setRouterMaintenance(stateDir, "t1", false);
    }
    expect(erpHttp.requests).toHaveLength(0);
  });

  it("answers an unknown host 404 over HTTPS without proxying", async () => {
    const res = await curl(httpsUrl("nobody"), { cacert: certs.caFile });
    expect(res.status).toBe(404);
    expect(res.body).toContain("loomworks-router: 404 unknown host");
    expect(erpHttp.requests).toHaveLength(0);
  });
});

describe("plain HTTP when TLS is on", () => {
  it("redirects a tenant's host to the same host and URI over HTTPS (308), without HSTS", async () => {
    const res = await curl(httpUrl("t1", "/web/login?redirect=%2Fodoo&x=1"));
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe(`https://t1.${DOMAIN}:${httpsPort}/web/login?redirect=%2Fodoo&x=1`);
    expect(res.headers["strict-transport-security"]).toBeUndefined();
    expect(erpHttp.requests).toHaveLength(0);
  });

  it("still answers an unknown host 404, never a redirect", async () => {
    const res = await curl(httpUrl("nobody", "/x"));
    expect(res.status).toBe(404);
    expect(res.headers.location).toBeUndefined();
    expect(res.body).toContain("loomworks-router: 404 unknown host");
  });

  it("leaves the port out of the redirect when the public HTTPS port is 443", async () => {
    const dir = await bed.newStateDir("loomworks-router-tls-443-");
    const port = await freePort();
    const tls = { ...options().tls!, port: await freePort(), publicPort: 443 };
    await applyRouter(options({ stateDir: dir, port, tls }));
    const res = await curl(`http://t2.${DOMAIN}:${port}/a?b=c`);
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe(`https://t2.${DOMAIN}/a?b=c`);
  });
});

describe("a renewed certificate", () => {
  it("changes the provider's diff, and the update reloads nginx with it", async () => {
    const dir = await bed.newStateDir("loomworks-router-renew-");
    const first = await makeTestCertificates(path.join(dir, "first"), [`*.${DOMAIN}`]);
    const renewed = await makeTestCertificates(path.join(dir, "renewed"), [`*.${DOMAIN}`]);
    const tls = {
      certFile: path.join(dir, "live.crt"),
      keyFile: path.join(dir, "live.key"),
      port: await freePort(),
    };
    await fs.copyFile(first.certFile, tls.certFile);
    await fs.copyFile(first.keyFile, tls.keyFile);
    const inputs: LocalRouterInputs = {
      stateDir: dir,
      port: await freePort(),
      domain: DOMAIN,
      odooHttp: `127.0.0.1:${erpHttp.port}`,
      odooWebsocket: `127.0.0.1:${erpWs.port}`,
      tenants: TENANTS,
      tls,
    };
    const outs = await applyLocalRouter(inputs, () => undefined);
    expect(outs.url).toBe(`https://${DOMAIN}:${tls.port}/`);
    expect(diffLocalRouter(outs, inputs).changes).toBe(false);
    const url = `https://t1.${DOMAIN}:${tls.port}/`;
    expect((await curl(url, { cacert: first.caFile })).status).toBe(200);

    await fs.copyFile(renewed.certFile, tls.certFile);
    await fs.copyFile(renewed.keyFile, tls.keyFile);
    expect(diffLocalRouter(outs, inputs).changes).toBe(true);
    await applyLocalRouter(inputs, () => undefined);
    expect((await curl(url, { cacert: renewed.caFile })).status).toBe(200);
    expect((await curl(url, { cacert: first.caFile })).code).toBe(60);
  });
});

describe("the dev stack's self-signed certificate", () => {
  it("is made once (key 0600), reused, served by nginx and verified by curl against itself", async () => {
    const dir = await bed.newStateDir("loomworks-router-devcert-");
    const certFile = path.join(dir, "tls", "router.crt");
    const keyFile = path.join(dir, "tls", "router.key");
    const hosts = [`t1.${DOMAIN}`, `t2.${DOMAIN}`];
    const first = await ensureDevCertificate({ certFile, keyFile, domain: DOMAIN, hosts });
    expect(first.action).toBe("created");
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const pem = await fs.readFile(certFile, "utf8");
    expect((await ensureDevCertificate({ certFile, keyFile, domain: DOMAIN, hosts })).action).toBe("reused");
    expect(await fs.readFile(certFile, "utf8")).toBe(pem);

    const port = await freePort();
    const tls = { certFile, keyFile, port: await freePort() };
    await applyRouter(options({ stateDir: dir, port, tls }));
    const res = await curl(`https://t1.${DOMAIN}:${tls.port}/`, { cacert: certFile });
    expect(res.stderr).toBe("");
    expect(res.status).toBe(200);
    expect(res.headers["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
  });

  it("is made again when a host it does not name is asked for", async () => {
    const dir = await bed.newStateDir("loomworks-router-devcert2-");
    const certFile = path.join(dir, "router.crt");
    const keyFile = path.join(dir, "router.key");
    await ensureDevCertificate({ certFile, keyFile, domain: "localhost", hosts: ["acme.localhost"] });
    const again = await ensureDevCertificate({
      certFile,
      keyFile,
      domain: "localhost",
      hosts: ["acme.localhost", "globex.localhost"],
    });
    expect(again.action).toBe("created");
    expect(again.reason).toContain("globex.localhost");
  });
});
