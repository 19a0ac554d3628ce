/**
 * The LocalRouter dynamic provider's lifecycle against a real nginx: the compiled provider
 * (bin/dynamic-providers/localRouter.js, built by the integration global setup, as Pulumi runs
 * it) called method by method, in front of a STAND-IN for the ERP's HTTP port.
 */
import { promises as fs } from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalRouterInputs, LocalRouterOutputs } from "../../dynamic-providers/localRouter";
import { routerPaths, routerStatus, stopRouter } from "../../lib/router";
import { makeStateDir } from "../../testkit/cluster";
import { freePort } from "../../testkit/ports";
import { repoRoot } from "../../testkit/repo";
import { getWithHost, startStandinHttp, type Standin } from "../../testkit/standin-upstreams";

const compiled = createRequire(__filename)(
  path.join(repoRoot, "bin", "dynamic-providers", "localRouter.js"),
) as {
  localRouterProvider: Required<
    import("@pulumi/pulumi").dynamic.ResourceProvider<LocalRouterInputs, LocalRouterOutputs>
  >;
};
const provider = compiled.localRouterProvider;

let stateDir: string;
let erp: Standin;
let inputs: LocalRouterInputs;
const otherDirs: string[] = [];

beforeAll(async () => {
  erp = await startStandinHttp();
  stateDir = await makeStateDir("loomworks-router-provider-");
  inputs = {
    stateDir,
    port: await freePort(),
    domain: "localhost",
    odooHttp: `127.0.0.1:${erp.port}`,
    odooWebsocket: `127.0.0.1:${erp.port}`,
    tenants: [
      { subdomain: "acme", state: "active" },
      { subdomain: "globex", state: "suspended" },
    ],
  };
});

afterAll(async () => {
  for (const dir of [stateDir, ...otherDirs]) {
    await stopRouter(dir).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  }
  await erp?.close();
});

const status = (p: number, sub: string): Promise<number> =>
  getWithHost(p, `${sub}.localhost:${p}`).then((r) => r.status);

describe("LocalRouter provider", () => {
  let outs: LocalRouterOutputs;

  it("check refuses bad inputs naming the tenant, and skips values not known yet", async () => {
    const bad = await provider.check(inputs, {
      ...inputs,
      tenants: [...inputs.tenants, { subdomain: "Bad;Name", state: "active" }],
      odooHttp: "127.0.0.1:80; return 200",
    });
    expect(bad.failures?.map((f) => f.property).sort()).toEqual(["odooHttp", "tenants"]);
    expect(bad.failures?.find((f) => f.property === "tenants")?.reason).toMatch(
      /tenants\[2\]\.subdomain: "Bad;Name"/,
    );
    const unknown = await provider.check(inputs, {
      ...inputs,
      port: "04da6b54-80e4-46f7-96ec-b56ff0331ba9" as never,
    });
    expect(unknown.failures).toEqual([]);
    expect((await provider.check(inputs, inputs)).failures).toEqual([]);
  });

  it("create starts nginx and reports its outputs", async () => {
    const created = await provider.create(inputs);
    outs = created.outs as LocalRouterOutputs;
    expect(created.id).toBe(`local-router:${routerPaths(stateDir).dir}`);
    expect(outs).toMatchObject({
      url: `http://localhost:${inputs.port}/`,
      nginxConfig: routerPaths(stateDir).config,
      running: true,
      tenantCount: 2,
    });
    expect(outs.pid).toBeGreaterThan(0);
    expect(await status(inputs.port, "acme")).toBe(200);
    expect(await status(inputs.port, "globex")).toBe(503);
    const again = await provider.diff("id", outs, inputs);
    expect(again.changes).toBe(false);
  });

  it("diff: tenants, upstreams and port update in place; stateDir replaces", async () => {
    const cases: Partial<LocalRouterInputs>[] = [
      { tenants: [...inputs.tenants, { subdomain: "initech", state: "active" }] },
      { tenants: [{ subdomain: "acme", state: "suspended" }, inputs.tenants[1]] },
      { odooHttp: "127.0.0.1:1" },
      { port: inputs.port + 1 },
      { previews: true },
    ];
    for (const change of cases) {
      const d = await provider.diff("id", outs, { ...inputs, ...change });
      expect(d.changes, JSON.stringify(change)).toBe(true);
      expect(d.replaces, JSON.stringify(change)).toEqual([]);
    }
    const moved = await provider.diff("id", outs, { ...inputs, stateDir: `${stateDir}-elsewhere` });
    expect(moved.replaces).toEqual(["stateDir"]);
    expect(moved.deleteBeforeReplace).toBe(true);
  });

  it("update adds a tenant and moves the port with a reload (same master)", async () => {
    const newPort = await freePort();
    const next = {
      ...inputs,
      port: newPort,
      tenants: [...inputs.tenants, { subdomain: "initech", state: "active" as const }],
    };
    const updated = (await provider.update("id", outs, next)).outs as LocalRouterOutputs;
    expect(updated.pid).toBe(outs.pid);
    expect(updated.url).toBe(`http://localhost:${newPort}/`);
    expect(updated.tenantCount).toBe(3);
    expect(await status(newPort, "initech")).toBe(200);
    outs = (await provider.update("id", updated, inputs)).outs as LocalRouterOutputs;
    expect(await status(inputs.port, "acme")).toBe(200);
    expect(await status(inputs.port, "initech")).toBe(404);
  });

  it("read reports a hand-edited configuration as drift, and update puts it back", async () => {
    const file = routerPaths(stateDir).config;
    const original = await fs.readFile(file, "utf8");
    await fs.writeFile(file, original.replace("client_max_body_size 128m;", "client_max_body_size 1m;"));
    const read = await provider.read("id", outs);
    const props = read.props as LocalRouterOutputs;
    expect(props.configHash).not.toBe(outs.configHash);
    expect((await provider.diff("id", props, inputs)).changes).toBe(true);
    outs = (await provider.update("id", props, inputs)).outs as LocalRouterOutputs;
    expect(await fs.readFile(file, "utf8")).toBe(original);
    const reread = (await provider.read("id", outs)).props as LocalRouterOutputs;
    expect(reread.configHash).toBe(outs.configHash);
    expect(reread.runningGeneration).toBe(outs.runningGeneration);
    expect((await provider.diff("id", reread, inputs)).changes).toBe(false);
  });

  it("read reports a stopped nginx, and update starts it again", async () => {
    await stopRouter(stateDir);
    const props = (await provider.read("id", outs)).props as LocalRouterOutputs;
    expect(props.running).toBe(false);
    expect(props.pid).toBe(0);
    expect((await provider.diff("id", props, inputs)).changes).toBe(true);
    outs = (await provider.update("id", props, inputs)).outs as LocalRouterOutputs;
    expect(outs.running).toBe(true);
    expect(await status(inputs.port, "acme")).toBe(200);
  });

  it("update fails with nginx's message on a configuration nginx rejects; the old one keeps serving", async () => {
    await expect(
      provider.update("id", outs, { ...inputs, odooHttp: "no-such-host.invalid:8069" }),
    ).rejects.toThrow(/host not found in upstream "no-such-host\.invalid:8069"/);
    expect(await status(inputs.port, "acme")).toBe(200);
    expect((await provider.read("id", outs)).props).toMatchObject({
      configHash: outs.configHash,
      running: true,
    });
  });

  it("delete stops nginx and removes its directory; twice is fine", async () => {
    await provider.delete("id", outs);
    expect((await routerStatus(stateDir)).running).toBe(false);
    await expect(fs.stat(routerPaths(stateDir).dir)).rejects.toThrow(/ENOENT/);
    await expect(getWithHost(inputs.port, "acme.localhost")).rejects.toThrow(/ECONNREFUSED/);
    await provider.delete("id", outs);
  });
});
