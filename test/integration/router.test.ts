/**
 * The local router in a real nginx, in front of STAND-INS for the ERP (testkit/
 * standin-upstreams.ts: an HTTP server for Odoo's port 8069, an RFC 6455 WebSocket server for its
 * gevent port 8072) that record every request they receive. Requests are sent byte for byte over
 * net.Socket where Node's http client would not send them (absolute request lines, duplicate
 * Host headers).
 */
import { promises as fs, readFileSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  applyConfig,
  applyRouter,
  checkConfig,
  nginxVersion,
  renderRouterConfig,
  routerMaintenance,
  routerPaths,
  routerStatus,
  setRouterMaintenance,
  stopRouter,
  withDefaultUser,
  type RouterOptions,
  type RouterTenant,
} from "../../lib/router";
import { STRIPPED_CLIENT_HEADERS } from "../../lib/router/forwarding";
import { freePort } from "../../testkit/ports";
import { startRouterBed, type RouterBed } from "../helpers/router-bed";
import {
  getWithHost,
  headerValues,
  rawRequest,
  websocketExchange,
  type RecordedRequest,
  type Standin,
} from "../../testkit/standin-upstreams";

const DOMAIN = "localhost";
const TENANTS: RouterTenant[] = [
  { subdomain: "acme", state: "active", preview: true },
  { subdomain: "umbrella", state: "active" },
  { subdomain: "globex", state: "suspended" },
  { subdomain: "initech", state: "archived" },
];

let stateDir: string;
let port: number;
let erpHttp: Standin;
let erpWs: Standin;
let bed: RouterBed;

function options(overrides: Partial<RouterOptions> = {}): RouterOptions {
  return {
    stateDir,
    domain: DOMAIN,
    port,
    odooHttp: `127.0.0.1:${erpHttp.port}`,
    odooWebsocket: `127.0.0.1:${erpWs.port}`,
    tenants: TENANTS,
    workerProcesses: 2,
    ...overrides,
  };
}

const host = (sub: string): string => `${sub}.${DOMAIN}:${port}`;
const upstreamRequests = (): RecordedRequest[] => [...erpHttp.requests, ...erpWs.requests];
const onlyValue = (req: RecordedRequest, name: string): string | undefined => {
  const values = headerValues(req, name);
  expect(values.length, `header ${name} sent ${values.length} times`).toBeLessThanOrEqual(1);
  return values[0];
};

/** The headers the router must set on every proxied request for database `db` reached at `reqHost`. */
function expectRouterHeaders(req: RecordedRequest, db: string, reqHost = `${db}.${DOMAIN}`): void {
  expect(onlyValue(req, "host")).toBe(`${reqHost}:${port}`);
  expect(onlyValue(req, "x-forwarded-host")).toBe(`${reqHost}:${port}`);
  expect(onlyValue(req, "x-forwarded-for")).toBe("127.0.0.1");
  expect(onlyValue(req, "x-forwarded-proto")).toBe("http");
  expect(onlyValue(req, "x-forwarded-port")).toBe(String(port));
  expect(onlyValue(req, "x-real-ip")).toBe("127.0.0.1");
  expect(onlyValue(req, "x-odoo-dbfilter")).toBe(`^${db}$`);
  expect(headerValues(req, "forwarded")).toEqual([]);
  expect(headerValues(req, "x-forwarded-prefix")).toEqual([]);
}

async function newStateDir(): Promise<string> {
  return bed.newStateDir("loomworks-router-it-");
}

beforeAll(async () => {
  expect(await nginxVersion()).toMatch(/nginx\/\d+\.\d+/);
  bed = await startRouterBed();
  ({ erpHttp, erpWs } = bed);
  stateDir = await newStateDir();
  port = await freePort();
  const result = await applyRouter(options());
  expect(result.action).toBe("started");
});

afterAll(async () => {
  await bed?.close();
});

beforeEach(() => {
  bed.reset();
});

describe("active tenants", () => {
  it("proxies / to the ERP's HTTP port with the router's headers", async () => {
    const res = await getWithHost(port, host("acme"), "/web/login?db=x");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ standin: "erp-http" });
    expect(erpWs.requests).toHaveLength(0);
    expect(erpHttp.requests).toHaveLength(1);
    const req = erpHttp.requests[0];
    expect(req.method).toBe("GET");
    expect(req.url).toBe("/web/login?db=x");
    expectRouterHeaders(req, "acme");
    expect(headerValues(req, "connection")).toEqual([]); // keep-alive to the upstream
  });

  it("proxies /websocket (plain HTTP) to the ERP's WebSocket port with the same headers", async () => {
    const res = await getWithHost(port, host("umbrella"), "/websocket/peek_notifications");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ standin: "erp-websocket-port" });
    expect(erpHttp.requests).toHaveLength(0);
    expect(erpWs.requests).toHaveLength(1);
    expectRouterHeaders(erpWs.requests[0], "umbrella");
  });

  it("upgrades /websocket through to the WebSocket port and exchanges a frame", async () => {
    const ex = await websocketExchange(port, host("acme"), "/websocket?version=18.0", "hello tenant");
    expect(ex.status).toBe(101);
    expect(ex.acceptValid).toBe(true);
    expect(ex.reply).toBe("echo:hello tenant");
    expect(erpHttp.requests).toHaveLength(0);
    expect(erpWs.requests).toHaveLength(1);
    const req = erpWs.requests[0];
    expect(req.upgrade).toBe(true);
    expect(req.url).toBe("/websocket?version=18.0");
    expect(onlyValue(req, "upgrade")).toBe("websocket");
    expect(onlyValue(req, "connection")).toBe("upgrade");
    expectRouterHeaders(req, "acme");
  });

  it("matches hosts case-insensitively, without a trailing dot and whatever the port", async () => {
    for (const h of [
      `ACME.LocalHost:${port}`,
      `acme.localhost.:${port}`,
      "acme.localhost",
      "Acme.Localhost.:1",
    ]) {
      const res = await getWithHost(port, h);
      expect(res.status, h).toBe(200);
    }
    expect(erpHttp.requests).toHaveLength(4);
    for (const req of erpHttp.requests) expectRouterHeaders(req, "acme");
  });

  it("routes the preview host of a tenant with a preview to the ERP, for the preview database", async () => {
    const res = await getWithHost(port, host("acme--preview"));
    expect(res.status).toBe(200);
    expect(erpHttp.requests).toHaveLength(1);
    // X-Odoo-dbfilter and Odoo's own `dbfilter = ^%d$` (%d = acme--preview) agree.
    expectRouterHeaders(erpHttp.requests[0], "acme--preview");
    const ex = await websocketExchange(port, host("acme--preview"), "/websocket", "p");
    expect(ex.reply).toBe("echo:p");
  });

  it("runs the workers as an unprivileged user when started as root", async () => {
    const status = await routerStatus(stateDir);
    expect(status.running).toBe(true);
    expect(status.workers.length).toBeGreaterThan(0);
    const uidOf = (pid: number): number =>
      Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
    if (process.getuid?.() === 0) {
      expect(uidOf(status.pid!)).toBe(0);
      for (const w of status.workers) expect(uidOf(w)).not.toBe(0);
    } else {
      for (const w of status.workers) expect(uidOf(w)).toBe(process.getuid?.());
    }
  });
});

describe("hosts that are not an active tenant", () => {
  it("answers unknown hosts and foreign domains 404 from nginx, never contacting the ERP", async () => {
    const hosts = [
      host("nobody"),
      host("umbrella--preview"), // umbrella has no previews
      host("acme--preview--preview"),
      `localhost:${port}`,
      `www.localhost:${port}`,
      "example.com",
      "acme.example.com",
      "acme.localhost.example.com",
      `127.0.0.1:${port}`,
      "[::1]",
    ];
    for (const h of hosts) {
      for (const p of ["/", "/websocket", "/web/database/manager"]) {
        const res = await getWithHost(port, h, p);
        expect(res.status, `${h}${p}`).toBe(404);
        expect(res.body, `${h}${p}`).toContain("loomworks-router: 404");
      }
    }
    const ws = await websocketExchange(port, host("nobody"), "/websocket", "x");
    expect(ws.status).toBe(404);
    const noHost = await rawRequest(port, "GET / HTTP/1.0\r\n\r\n");
    expect(noHost.status).toBe(404);
    expect(upstreamRequests()).toEqual([]);
  });

  it("answers suspended and archived tenants 503, never contacting the ERP", async () => {
    for (const sub of ["globex", "initech"]) {
      for (const p of ["/", "/web", "/websocket"]) {
        const res = await getWithHost(port, host(sub), p);
        expect(res.status, `${sub}${p}`).toBe(503);
        expect(res.body).toContain("loomworks-router: 503");
        expect(res.headers["retry-after"]).toBe("120");
      }
      const ws = await websocketExchange(port, host(sub), "/websocket", "x");
      expect(ws.status).toBe(503);
    }
    expect(upstreamRequests()).toEqual([]);
  });

  it("switches a tenant's database to 503 for maintenance and back without a reload", async () => {
    const before = await routerStatus(stateDir);
    const configBefore = await fs.stat(routerPaths(stateDir).config);
    expect((await getWithHost(port, host("acme"))).status).toBe(200);
    erpHttp.reset();

    await setRouterMaintenance(stateDir, "acme", true);
    expect(await routerMaintenance(stateDir)).toEqual(["acme"]);
    expect((await getWithHost(port, host("acme"))).status).toBe(503);
    expect((await getWithHost(port, host("acme"), "/websocket")).status).toBe(503);
    expect((await websocketExchange(port, host("acme"), "/websocket", "x")).status).toBe(503);
    expect(upstreamRequests()).toEqual([]);
    // Neighbours, and the tenant's preview host (another database), are unaffected.
    expect((await getWithHost(port, host("umbrella"))).status).toBe(200);
    expect((await getWithHost(port, host("acme--preview"))).status).toBe(200);
    await setRouterMaintenance(stateDir, "acme--preview", true);
    expect((await getWithHost(port, host("acme--preview"))).status).toBe(503);
    await setRouterMaintenance(stateDir, "acme--preview", false);

    await setRouterMaintenance(stateDir, "acme", false);
    await setRouterMaintenance(stateDir, "acme", false); // idempotent
    expect(await routerMaintenance(stateDir)).toEqual([]);
    expect((await getWithHost(port, host("acme"))).status).toBe(200);

    const after = await routerStatus(stateDir);
    expect(after.pid).toBe(before.pid);
    expect(after.workers).toEqual(before.workers); // same workers: no reload happened
    expect((await fs.stat(routerPaths(stateDir).config)).mtimeMs).toBe(configBefore.mtimeMs);
  });

  it("refuses a maintenance flag for a name that is not a tenant's database", async () => {
    await expect(setRouterMaintenance(stateDir, "../nginx.conf", true)).rejects.toThrow(/DNS label/);
    await expect(setRouterMaintenance(stateDir, "a--b", true)).rejects.toThrow(/--/);
  });
});

describe("what a client cannot forge", () => {
  it("ignores client X-Forwarded-*, X-Real-IP, Forwarded, X-Odoo-dbfilter and underscore variants", async () => {
    const forged = [
      "X-Forwarded-Host: globex.localhost",
      "X-Forwarded-For: 203.0.113.9",
      "X-Forwarded-Proto: https",
      "X-Forwarded-Port: 443",
      "X-Forwarded-Prefix: /evil",
      "X-Real-IP: 203.0.113.9",
      "X-Odoo-dbfilter: ^globex$",
      "Forwarded: for=203.0.113.9;host=globex.localhost;proto=https",
      "X_Forwarded_Host: globex.localhost",
      "X_Odoo_dbfilter: .*",
    ];
    const res = await getWithHost(port, host("acme"), "/", forged);
    expect(res.status).toBe(200);
    const ws = await websocketExchange(port, host("acme"), "/websocket", "x", forged);
    expect(ws.reply).toBe("echo:x");
    const received = upstreamRequests();
    expect(received).toHaveLength(2);
    for (const req of received) {
      expectRouterHeaders(req, "acme");
      const names = req.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      expect(names.filter((n) => n.includes("_"))).toEqual([]);
      expect(req.rawHeaders.join("\n")).not.toMatch(/globex|203\.0\.113\.9|https|evil|\.\*/);
    }
  });

  it("passes none of the client's own forwarding family (X-Host, X-Original-URL, X-Forwarded-Ssl, ...)", async () => {
    const forged = STRIPPED_CLIENT_HEADERS.map((name, i) => `${name}: forged-${i}.globex.localhost`);
    const res = await getWithHost(port, host("acme"), "/", forged);
    expect(res.status).toBe(200);
    const ws = await websocketExchange(port, host("acme"), "/websocket", "x", forged);
    expect(ws.reply).toBe("echo:x");
    const received = upstreamRequests();
    expect(received).toHaveLength(2);
    for (const req of received) {
      expectRouterHeaders(req, "acme");
      for (const name of STRIPPED_CLIENT_HEADERS) expect(headerValues(req, name), name).toEqual([]);
      expect(req.rawHeaders.join("\n")).not.toMatch(/forged|globex/);
    }
  });

  it("refuses an absolute request line whose host differs from the Host header", async () => {
    const cases = [
      `GET http://umbrella.localhost:${port}/ HTTP/1.1\r\nHost: ${host("acme")}\r\nConnection: close\r\n\r\n`,
      `GET http://acme.localhost/ HTTP/1.1\r\nHost: ${host("umbrella")}\r\nConnection: close\r\n\r\n`,
      `GET http://globex.localhost/ HTTP/1.1\r\nHost: ${host("acme")}\r\nConnection: close\r\n\r\n`,
      `GET http://acme.localhost/websocket HTTP/1.1\r\nHost: ${host("umbrella")}\r\nConnection: close\r\n\r\n`,
    ];
    for (const request of cases) {
      const res = await rawRequest(port, request);
      expect(res.status, request.split("\r\n").slice(0, 2).join(" | ")).toBe(400);
    }
    expect(upstreamRequests()).toEqual([]);
  });

  it("sends an unknown absolute host to the 404 page whatever the Host header says", async () => {
    const res = await rawRequest(
      port,
      `GET http://nobody.localhost/ HTTP/1.1\r\nHost: ${host("acme")}\r\nConnection: close\r\n\r\n`,
    );
    expect(res.status).toBe(404);
    expect(upstreamRequests()).toEqual([]);
  });

  it("forwards an absolute request line as a path, with every header naming nginx's $host", async () => {
    // Same host spelled differently in the line and the header: accepted, one tenant throughout.
    const agree = await rawRequest(
      port,
      `GET http://ACME.localhost./web?x=1 HTTP/1.1\r\nHost: acme.localhost:${port}\r\nConnection: close\r\n\r\n`,
    );
    expect(agree.status).toBe(200);
    // HTTP/1.0 without a Host header: the request line decides.
    const noHeader = await rawRequest(port, `GET http://umbrella.localhost:${port}/ HTTP/1.0\r\n\r\n`);
    expect(noHeader.status).toBe(200);
    expect(erpHttp.requests.map((r) => r.url)).toEqual(["/web?x=1", "/"]);
    expectRouterHeaders(erpHttp.requests[0], "acme");
    expectRouterHeaders(erpHttp.requests[1], "umbrella");
  });

  it("refuses duplicate Host headers and user-info tricks", async () => {
    const cases = [
      `GET / HTTP/1.1\r\nHost: ${host("acme")}\r\nHost: ${host("umbrella")}\r\nConnection: close\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: ${host("nobody")}\r\nHost: ${host("acme")}\r\nConnection: close\r\n\r\n`,
      `GET / HTTP/1.1\r\nHost: ${host("acme")}\r\nHost: ${host("acme")}\r\nConnection: close\r\n\r\n`,
      `GET http://acme.localhost@umbrella.localhost/ HTTP/1.1\r\nHost: ${host("umbrella")}\r\nConnection: close\r\n\r\n`,
    ];
    for (const request of cases) {
      const res = await rawRequest(port, request);
      expect(res.status, request.split("\r\n").slice(0, 3).join(" | ")).toBe(400);
    }
    // nginx takes this Host header as one (unknown) host name: the 404 page.
    const userInfo = await getWithHost(port, "acme.localhost@umbrella.localhost");
    expect(userInfo.status).toBe(404);
    expect(upstreamRequests()).toEqual([]);
  });
});

describe("configuration changes", () => {
  it("serves a tenant added by applyRouter from the first request after it returns (a reload)", async () => {
    const before = await routerStatus(stateDir);
    const added: RouterTenant[] = [];
    for (let i = 0; i < 5; i++) {
      const sub = `hooli${i}`;
      expect((await getWithHost(port, host(sub))).status).toBe(404);
      added.push({ subdomain: sub, state: "active" });
      const result = await applyRouter(options({ tenants: [...TENANTS, ...added] }));
      expect(result.action).toBe("reloaded");
      expect(result.tenantCount).toBe(TENANTS.length + added.length);
      const res = await getWithHost(port, host(sub));
      expect(res.status, `${sub} right after applyRouter returned`).toBe(200);
    }
    expect((await routerStatus(stateDir)).pid).toBe(before.pid);
    const again = await applyRouter(options({ tenants: [...TENANTS, ...added] }));
    expect(again.action).toBe("unchanged");
    await applyRouter(options());
    expect((await getWithHost(port, host("hooli0"))).status).toBe(404);
  });

  it("keeps the old configuration serving when nginx -t rejects a new one, and throws nginx's message", async () => {
    const paths = routerPaths(stateDir);
    const liveBefore = await fs.readFile(paths.config, "utf8");
    const statusBefore = await routerStatus(stateDir);

    await expect(applyRouter(options({ odooHttp: "no-such-host.invalid:8069" }))).rejects.toThrow(
      /nginx -t rejected[\s\S]*host not found in upstream "no-such-host\.invalid:8069"/,
    );
    await expect(applyConfig(stateDir, "events {}\nhttp {\n    garbage on;\n}\n")).rejects.toThrow(
      /unknown directive "garbage" in .*nginx\.conf\.rejected:3/,
    );
    await expect(applyConfig(stateDir, "events {}\nworker_processes banana;\n")).rejects.toThrow(
      /"worker_processes" directive invalid value in .*nginx\.conf\.rejected:2/,
    );

    expect(await fs.readFile(paths.config, "utf8")).toBe(liveBefore);
    expect(await fs.readFile(`${paths.config}.rejected`, "utf8")).toMatch(
      /^events \{\}\nworker_processes banana;\n/,
    );
    const statusAfter = await routerStatus(stateDir);
    expect(statusAfter.pid).toBe(statusBefore.pid);
    expect(statusAfter.workers).toEqual(statusBefore.workers); // not even reloaded
    expect((await getWithHost(port, host("acme"))).status).toBe(200);
    expect(erpHttp.requests).toHaveLength(1);
  });

  it("restores the old configuration when the master refuses a reload nginx -t accepted (port taken)", async () => {
    const paths = routerPaths(stateDir);
    const liveBefore = await fs.readFile(paths.config, "utf8");
    const blocker = net.createServer();
    const taken = await new Promise<number>((resolve) =>
      blocker.listen(0, "127.0.0.1", () => resolve((blocker.address() as net.AddressInfo).port)),
    );
    try {
      await expect(applyRouter(options({ port: taken }))).rejects.toThrow(
        /refused to reload[\s\S]*bind\(\) to 127\.0\.0\.1:\d+ failed \(98: Address already in use\)/,
      );
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
    expect(await fs.readFile(paths.config, "utf8")).toBe(liveBefore);
    expect((await getWithHost(port, host("acme"))).status).toBe(200);
  });

  it("moves to another port with a reload, not a restart", async () => {
    const before = await routerStatus(stateDir);
    const newPort = await freePort();
    const result = await applyRouter(options({ port: newPort }));
    expect(result.action).toBe("reloaded");
    expect((await getWithHost(newPort, `acme.localhost:${newPort}`)).status).toBe(200);
    await expect(getWithHost(port, host("acme"))).rejects.toThrow(/ECONNREFUSED/);
    expect((await routerStatus(stateDir)).pid).toBe(before.pid);
    const back = await applyRouter(options());
    expect(back.action).toBe("reloaded");
    expect((await getWithHost(port, host("acme"))).status).toBe(200);
  });
});

describe("nginx -t on every rendered variant", () => {
  const many = (n: number, state: RouterTenant["state"] = "active"): RouterTenant[] =>
    Array.from({ length: n }, (_, i) => ({ subdomain: `tenant${String(i).padStart(5, "0")}`, state }));
  const variants: Record<string, Partial<RouterOptions>> = {
    "no tenants": { tenants: [] },
    "one tenant": { tenants: [{ subdomain: "acme", state: "active" }] },
    "one tenant with a preview host": { tenants: [{ subdomain: "acme", state: "active", preview: true }] },
    "the test tenants": {},
    "every tenant suspended or archived": {
      tenants: [...many(50, "suspended"), { subdomain: "zeta", state: "archived" }],
    },
    "previews for everyone": { previews: true },
    "10,000 tenants with previews": { tenants: many(10_000), previews: true },
    "all interfaces, public port 80, one worker": { listenAddress: "*", publicPort: 80, workerProcesses: 1 },
    "63-character subdomain, 240-character host name": {
      domain: `${"d".repeat(63)}.${"e".repeat(63)}.${"f".repeat(40)}.example`,
      tenants: [{ subdomain: "a".repeat(63), state: "active" }],
    },
  };
  for (const [name, overrides] of Object.entries(variants)) {
    it(`passes without warnings: ${name}`, async () => {
      const dir = await newStateDir();
      const paths = routerPaths(dir);
      for (const d of [paths.logDir, paths.runDir, paths.tempDir]) await fs.mkdir(d, { recursive: true });
      const rendered = renderRouterConfig(withDefaultUser(options({ stateDir: dir, ...overrides })));
      const file = path.join(paths.dir, "variant.conf");
      await fs.writeFile(file, rendered.text);
      const check = await checkConfig(file, paths.dir);
      expect(check.error).toBeUndefined();
      expect(check.ok).toBe(true);
      expect(check.warnings).toEqual([]);
    });
  }

  it("reports nginx's warning when the host tables are sized too small (what the sizing avoids)", async () => {
    const dir = await newStateDir();
    const paths = routerPaths(dir);
    for (const d of [paths.logDir, paths.runDir, paths.tempDir]) await fs.mkdir(d, { recursive: true });
    const rendered = renderRouterConfig(withDefaultUser(options({ stateDir: dir, tenants: many(2_000) })));
    const undersized = rendered.text
      .replace(/map_hash_max_size \d+;/, "map_hash_max_size 64;")
      .replace(/map_hash_bucket_size \d+;/, "map_hash_bucket_size 64;");
    expect(undersized).not.toBe(rendered.text);
    const file = path.join(paths.dir, "undersized.conf");
    await fs.writeFile(file, undersized);
    const check = await checkConfig(file, paths.dir);
    expect(check.ok).toBe(true);
    expect(check.warnings.join("\n")).toMatch(/could not build optimal map_hash/);
  });

  it("a router with no tenants answers every host 404", async () => {
    const dir = await newStateDir();
    const emptyPort = await freePort();
    const result = await applyRouter(options({ stateDir: dir, port: emptyPort, tenants: [] }));
    expect(result.action).toBe("started");
    for (const h of ["acme.localhost", "example.com"]) {
      expect((await getWithHost(emptyPort, h)).status).toBe(404);
    }
    expect(upstreamRequests()).toEqual([]);
    await stopRouter(dir);
  });
});

describe("process lifecycle", () => {
  it("starts again after its processes were killed, and stops idempotently", async () => {
    const dir = await newStateDir();
    const p = await freePort();
    const opts = options({ stateDir: dir, port: p });
    const first = await applyRouter(opts);
    expect(first.action).toBe("started");
    const status = await routerStatus(dir);
    for (const pid of [status.pid!, ...status.workers]) process.kill(pid, "SIGKILL");
    for (let i = 0; i < 100 && (await routerStatus(dir)).running; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect((await routerStatus(dir)).running).toBe(false);

    const again = await applyRouter(opts);
    expect(again.action).toBe("started");
    expect(again.pid).not.toBe(first.pid);
    expect((await getWithHost(p, `acme.localhost:${p}`)).status).toBe(200);

    await stopRouter(dir);
    expect(await routerStatus(dir)).toEqual({ running: false, workers: [] });
    await expect(getWithHost(p, `acme.localhost:${p}`)).rejects.toThrow(/ECONNREFUSED/);
    await stopRouter(dir);
  });
});
