import * as pulumi from "@pulumi/pulumi";
import { libModule, pulumiLog, providerStub } from "../lib/pulumi/lazyModule";
import type { RouterTenant, RouterTls } from "../lib/router/config";
import type * as RouterLib from "../lib/router";
import type * as RouterProvider from "../lib/router/provider";
import type { LocalRouterInputs, LocalRouterOutputs } from "../lib/router/provider";

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
  /** HTTPS on `tls.port` with this certificate; the HTTP port then redirects tenants there. */
  tls?: pulumi.Input<RouterTls>;
}

export type { LocalRouterInputs, LocalRouterOutputs };

const router = libModule<typeof RouterLib>("router");
const support = libModule<typeof RouterProvider>("router/provider");
const apply = (inputs: LocalRouterInputs): Promise<LocalRouterOutputs> =>
  support().applyLocalRouter(inputs, (msg) => void pulumiLog().info(msg));

export const localRouterProvider: pulumi.dynamic.ResourceProvider<LocalRouterInputs, LocalRouterOutputs> = {
  async check(_olds, news) {
    return { inputs: news, failures: support().checkLocalRouter(news) };
  },

  async create(inputs) {
    return { id: support().localRouterId(inputs), outs: await apply(inputs) };
  },

  async read(id, props) {
    if (!props) return { id, props };
    return { id, props: await support().readLocalRouter(props) };
  },

  async diff(_id, olds, news) {
    return support().diffLocalRouter(olds, news);
  },

  async update(_id, _olds, news) {
    return { outs: await apply(news) };
  },

  async delete(_id, props) {
    await router().removeRouter(props.stateDir);
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
      providerStub(localRouterProvider, __filename, "localRouterProvider"),
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
