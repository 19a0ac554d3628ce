import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { RouterTenant } from "../lib/router/config";

/**
 * The local target's router (lib/router does the work): nginx under `<stateDir>/router`,
 * configured from the declared tenants. create and update render the configuration, check it
 * with `nginx -t` and start nginx or reload it (a reload also moves it to another port); a
 * rejected configuration fails the update and the previous one keeps serving. `refresh` reports
 * `running: false` when nginx is gone and a changed `configHash` when the configuration was
 * edited by hand (or the running nginx runs another one), so the next `up` re-applies it.
 * delete stops nginx and removes its directory. A tenant's maintenance switch during a restore
 * (setRouterMaintenance in lib/router) needs no update of this resource.
 */
export interface LocalRouterArgs {
  /** Absolute state directory of the platform. Changing it replaces the router. */
  stateDir: pulumi.Input<string>;
  port: pulumi.Input<number>;
  domain: pulumi.Input<string>;
  /** `host:port` of the ERP's HTTP port. */
  odooHttp: pulumi.Input<string>;
  /** `host:port` of the ERP's WebSocket (gevent) port. */
  odooWebsocket: pulumi.Input<string>;
  tenants: pulumi.Input<pulumi.Input<RouterTenant>[]>;
  /** Preview hosts `<sub>--preview.<domain>` for every tenant that does not say (default false). */
  previews?: pulumi.Input<boolean>;
  /** Listen address (default 127.0.0.1; `*` for every interface). */
  listenAddress?: pulumi.Input<string>;
  /** The port clients reach the router at, when it differs from `port` (a port mapping). */
  publicPort?: pulumi.Input<number>;
}

export interface LocalRouterInputs {
  stateDir: string;
  port: number;
  domain: string;
  odooHttp: string;
  odooWebsocket: string;
  tenants: RouterTenant[];
  previews?: boolean;
  listenAddress?: string;
  publicPort?: number;
}

export interface LocalRouterOutputs extends LocalRouterInputs {
  /** `http://<domain>:<port>/`: tenants are at `http://<sub>.<domain>:<port>/`. */
  url: string;
  /** Path of the nginx configuration that runs. */
  nginxConfig: string;
  running: boolean;
  /** The nginx master's pid (0 when not running). */
  pid: number;
  tenantCount: number;
  /** routerConfigHash of the configuration and pages on disk ("" when missing). */
  configHash: string;
  /** Generation of the configuration the running workers hold ("" when unknown or stopped). */
  runningGeneration: string;
}

/** Compiled program: bin/dynamic-providers -> bin/lib/router. Only this string is captured. */
const ROUTER_MODULE = path.join(__dirname, "..", "lib", "router");

type RouterModule = typeof import("../lib/router");

function routerOptions(inputs: LocalRouterInputs): import("../lib/router").RouterOptions {
  return {
    stateDir: inputs.stateDir,
    domain: inputs.domain,
    port: inputs.port,
    odooHttp: inputs.odooHttp,
    odooWebsocket: inputs.odooWebsocket,
    tenants: inputs.tenants ?? [],
    ...(inputs.previews !== undefined ? { previews: inputs.previews } : {}),
    ...(inputs.listenAddress !== undefined ? { listenAddress: inputs.listenAddress } : {}),
    ...(inputs.publicPort !== undefined ? { publicPort: inputs.publicPort } : {}),
  };
}

/** The inputs as given, without outputs a refresh may have merged in. */
function inputsOf(props: LocalRouterInputs): LocalRouterInputs {
  return {
    stateDir: props.stateDir,
    port: props.port,
    domain: props.domain,
    odooHttp: props.odooHttp,
    odooWebsocket: props.odooWebsocket,
    tenants: props.tenants,
    ...(props.previews !== undefined ? { previews: props.previews } : {}),
    ...(props.listenAddress !== undefined ? { listenAddress: props.listenAddress } : {}),
    ...(props.publicPort !== undefined ? { publicPort: props.publicPort } : {}),
  };
}

async function apply(inputs: LocalRouterInputs): Promise<LocalRouterOutputs> {
  const router: RouterModule = require(ROUTER_MODULE);
  const options = router.withDefaultUser(routerOptions(inputs));
  const rendered = router.renderRouterConfig(options);
  const result = await router.applyConfig(inputs.stateDir, rendered);
  const log: typeof import("@pulumi/pulumi").log = require("@pulumi/pulumi").log;
  void log.info(
    `router: ${result.action} (${rendered.tenantCount} tenants, ${rendered.hostCount} hosts; ` +
      `nginx -t ${result.checkMs.toFixed(0)} ms, ${result.action === "started" ? "start" : "reload"} ` +
      `${result.reloadMs.toFixed(0)} ms)`,
  );
  return {
    ...inputsOf(inputs),
    url: router.routerUrl(inputs.domain, inputs.publicPort ?? inputs.port),
    nginxConfig: result.configFile,
    running: true,
    pid: result.pid,
    tenantCount: rendered.tenantCount,
    configHash: rendered.hash,
    runningGeneration: router.configGeneration(rendered.text),
  };
}

/** Pulumi's placeholder for a value not computed yet (preview): such inputs are not checked. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const known = (v: unknown): boolean => v !== undefined && v !== UNKNOWN;

export const localRouterProvider: pulumi.dynamic.ResourceProvider<LocalRouterInputs, LocalRouterOutputs> = {
  async check(_olds, news) {
    const router: RouterModule = require(ROUTER_MODULE);
    const allKnown =
      [news.stateDir, news.port, news.domain, news.odooHttp, news.odooWebsocket].every(known) &&
      Array.isArray(news.tenants) &&
      news.tenants.every((t) => known(t?.subdomain) && known(t?.state));
    if (!allKnown) return { inputs: news, failures: [] };
    const failures = router
      .routerOptionsProblems(routerOptions(news))
      .map((p) => ({ property: p.property.replace(/\[\d+\].*$/, ""), reason: `${p.property}: ${p.reason}` }));
    return { inputs: news, failures };
  },

  async create(inputs) {
    const outs = await apply(inputs);
    const nodePath: typeof import("node:path") = require("node:path");
    return { id: `local-router:${nodePath.join(nodePath.resolve(inputs.stateDir), "router")}`, outs };
  },

  async read(id, props) {
    if (!props) return { id, props };
    const router: RouterModule = require(ROUTER_MODULE);
    const status = await router.routerStatus(props.stateDir);
    const configHash = (await router.liveConfigHash(props.stateDir)) ?? "";
    return {
      id,
      props: {
        ...props,
        running: status.running,
        pid: status.pid ?? 0,
        configHash,
        runningGeneration: status.generation ?? "",
      },
    };
  },

  async diff(_id, olds, news) {
    const router: RouterModule = require(ROUTER_MODULE);
    const nodePath: typeof import("node:path") = require("node:path");
    const replaces = nodePath.resolve(olds.stateDir) !== nodePath.resolve(news.stateDir) ? ["stateDir"] : [];
    const changed = (
      Object.keys({ ...inputsOf(olds), ...inputsOf(news) }) as (keyof LocalRouterInputs)[]
    ).filter((k) => JSON.stringify(inputsOf(olds)[k]) !== JSON.stringify(inputsOf(news)[k]));
    // Drift: what the new inputs render against what is on disk and running (as last read).
    let drift = false;
    try {
      const rendered = router.renderRouterConfig(router.withDefaultUser(routerOptions(news)));
      drift =
        olds.configHash !== rendered.hash ||
        (olds.running &&
          olds.runningGeneration !== "" &&
          olds.runningGeneration !== router.configGeneration(rendered.text));
    } catch {
      drift = true; // invalid inputs: let update report them
    }
    return {
      changes: changed.length > 0 || drift || olds.running === false,
      replaces,
      deleteBeforeReplace: true,
    };
  },

  async update(_id, _olds, news) {
    return { outs: await apply(news) };
  },

  async delete(_id, props) {
    const router: RouterModule = require(ROUTER_MODULE);
    await router.removeRouter(props.stateDir);
  },
};

/**
 * nginx in front of the ERP for every declared tenant (the local target;
 * docs/architecture.md#erp-and-routing).
 */
export class LocalRouter extends pulumi.dynamic.Resource {
  declare readonly url: pulumi.Output<string>;
  declare readonly nginxConfig: pulumi.Output<string>;
  /** False after `refresh` when nginx is gone (the next `up` starts it). */
  declare readonly running: pulumi.Output<boolean>;
  declare readonly pid: pulumi.Output<number>;
  declare readonly tenantCount: pulumi.Output<number>;
  declare readonly configHash: pulumi.Output<string>;

  constructor(name: string, args: LocalRouterArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      localRouterProvider,
      name,
      {
        ...args,
        url: undefined,
        nginxConfig: undefined,
        running: undefined,
        pid: undefined,
        tenantCount: undefined,
        configHash: undefined,
        runningGeneration: undefined,
      },
      opts,
      "loomworks",
      "LocalRouter",
    );
  }
}
