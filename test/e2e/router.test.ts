/**
 * Issue 5's "done when" on a local stack: the router nginx the stack runs sends a tenant's host to
 * the configured ERP upstream with the right headers, answers an unknown subdomain with 404 by
 * itself, a suspended tenant with 503, and upgrades `/websocket` through to the WebSocket upstream.
 * The ERP upstreams are stand-ins started by the test (testkit/standin-upstreams.ts), since the
 * ERP cannot run on this machine; the stack's odoo.conf is rendered for a real one.
 */
import * as fs from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  getWithHost,
  headerValues,
  startStandinHttp,
  startStandinWebsocket,
  websocketExchange,
  type Standin,
} from "../../testkit/standin-upstreams";
import { freePort } from "../../testkit/ports";
import { LocalTestStack } from "../../testkit/local-stack";

describe("the local stack's router", () => {
  let s: LocalTestStack;
  let http: Standin;
  let ws: Standin;
  let routerPort: number;
  let router: { url: string; nginxConfig: string; odooConfig: string };

  beforeAll(async () => {
    http = await startStandinHttp();
    ws = await startStandinWebsocket();
    routerPort = await freePort();
    s = await LocalTestStack.create("router");
    await s.configure(
      {
        north: { tier: "basic", adminEmail: "it@north.example" },
        south: { tier: "basic", adminEmail: "it@south.example", state: "suspended" },
      },
      {
        routerPort,
        odooHttp: `127.0.0.1:${http.port}`,
        odooWebsocket: `127.0.0.1:${ws.port}`,
        odoo: { cpu: 1, memoryMb: 2048 },
      },
    );
    const result = await s.up();
    expect(result.summary.result).toBe("succeeded");
    router = (await s.outputs()).router as typeof router;
  });

  afterAll(async () => {
    await s?.dispose();
    await http?.close();
    await ws?.close();
  });

  it("exports the router's URL and the rendered nginx and ERP configuration", () => {
    expect(router.url).toBe(`http://localhost:${routerPort}/`);
    expect(fs.readFileSync(router.nginxConfig, "utf8")).toContain("north.localhost");
    const odooConf = fs.readFileSync(router.odooConfig, "utf8");
    expect(odooConf).toMatch(/^dbfilter = \^%d\$$/m);
    expect(odooConf).toMatch(/^proxy_mode = True$/m);
    expect(odooConf).toMatch(/^list_db = False$/m);
    expect(odooConf).toMatch(/^db_user = loomworks_erp$/m);
    expect(odooConf).toMatch(/^workers = 3$/m); // 2 x 1 CPU + 1
    // The ERP listens where the router sends (odooHttp / odooWebsocket).
    expect(odooConf).toMatch(new RegExp(`^http_port = ${http.port}$`, "m"));
    expect(odooConf).toMatch(new RegExp(`^gevent_port = ${ws.port}$`, "m"));
    expect(odooConf).toMatch(/^server_wide_modules = base,web,loomworks_tenants$/m);
    const addons = /^addons_path = (.*)$/m.exec(odooConf)?.[1].split(",") ?? [];
    expect(addons.length).toBeGreaterThan(0);
    for (const dir of addons) expect(fs.existsSync(dir), dir).toBe(true);
    expect(fs.statSync(router.odooConfig).mode & 0o777).toBe(0o600);
  });

  it("sends an active tenant's host to the ERP upstream with the forwarding headers", async () => {
    http.reset();
    const r = await getWithHost(routerPort, `north.localhost:${routerPort}`, "/web/login", [
      "X-Forwarded-Host: evil.example",
    ]);
    expect(r.status).toBe(200);
    expect(http.requests).toHaveLength(1);
    const req = http.requests[0];
    expect(req.url).toBe("/web/login");
    expect(headerValues(req, "x-forwarded-host")).toEqual([`north.localhost:${routerPort}`]);
    expect(headerValues(req, "x-forwarded-proto")).toEqual(["http"]);
    expect(headerValues(req, "x-real-ip")).toEqual(["127.0.0.1"]);
    expect(headerValues(req, "x-forwarded-for")).toEqual(["127.0.0.1"]);
    expect(headerValues(req, "x-odoo-dbfilter")).toEqual(["^north$"]);
  });

  it("answers an unknown subdomain with 404 itself and a suspended tenant with 503", async () => {
    http.reset();
    expect((await getWithHost(routerPort, "nobody.localhost")).status).toBe(404);
    expect((await getWithHost(routerPort, "north.elsewhere.example")).status).toBe(404);
    expect((await getWithHost(routerPort, "south.localhost")).status).toBe(503);
    expect(http.requests).toEqual([]);
  });

  it("upgrades /websocket through to the WebSocket upstream", async () => {
    ws.reset();
    const x = await websocketExchange(routerPort, `north.localhost:${routerPort}`, "/websocket", "ping");
    expect(x.status).toBe(101);
    expect(x.acceptValid).toBe(true);
    expect(x.reply).toContain("ping");
    expect(ws.requests).toHaveLength(1);
    expect(headerValues(ws.requests[0], "x-odoo-dbfilter")).toEqual(["^north$"]);
  });

  it("follows the stack file: resuming the suspended tenant routes it to the ERP", async () => {
    await s.configure(
      {
        north: { tier: "basic", adminEmail: "it@north.example" },
        south: { tier: "basic", adminEmail: "it@south.example" },
      },
      {
        routerPort,
        odooHttp: `127.0.0.1:${http.port}`,
        odooWebsocket: `127.0.0.1:${ws.port}`,
        odoo: { cpu: 1, memoryMb: 2048 },
      },
    );
    await s.up();
    http.reset();
    expect((await getWithHost(routerPort, "south.localhost")).status).toBe(200);
    expect(headerValues(http.requests[0], "x-odoo-dbfilter")).toEqual(["^south$"]);
  });
});
