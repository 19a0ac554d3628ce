import * as pulumi from "@pulumi/pulumi";
import type * as LocalConfig from "../lib/odoo/localConfig";
import type { LocalOdooConfigInputs, LocalOdooConfigOutputs } from "../lib/odoo/localConfig";
import type * as OdooProvider from "../lib/odoo/provider";
import { libModule, providerStub } from "../lib/pulumi/lazyModule";

/**
 * The local target's odoo.conf at `<stateDir>/odoo/odoo.conf` (mode 0600, its directory 0700),
 * rendered from templates/odoo.conf.tmpl through lib/odoo/config.ts with the secrets written in.
 * A thin lifecycle over lib/odoo/localConfig.ts: every input is updated in place (the file is
 * rewritten); a new `stateDir` replaces it (new file first, then the old one removed). `refresh`
 * notices a file edited by hand or given other permissions (the next `up` rewrites it) and a removed
 * file (the resource leaves the state; the next `up` writes it again). Delete removes the file.
 */
export interface LocalOdooConfigArgs {
  /** Prefer an absolute path: a relative one resolves against the provider's working directory. */
  stateDir: pulumi.Input<string>;
  /** Odoo's master password (secret), at least 16 characters. */
  adminPasswd: pulumi.Input<string>;
  dbHost: pulumi.Input<string>;
  dbPort: pulumi.Input<number>;
  /** The ERP's own role (not a superuser). */
  dbUser: pulumi.Input<string>;
  /** Secret. */
  dbPassword: pulumi.Input<string>;
  dataDir: pulumi.Input<string>;
  addonsPath: pulumi.Input<string>;
  cpu: pulumi.Input<number>;
  memoryMb: pulumi.Input<number>;
  /** Sessions in Redis (secret when it holds a password); without it, sessions stay in the data dir. */
  redisUrl?: pulumi.Input<string | undefined>;
  /** Default 127.0.0.1: on this machine only the router reaches the ERP. */
  httpInterface?: pulumi.Input<string | undefined>;
  /** platform.odooHttp's and odooWebsocket's ports (defaults 8069, 8072). */
  httpPort?: pulumi.Input<number | undefined>;
  geventPort?: pulumi.Input<number | undefined>;
  /** The tenant map and credentials the loomworks_tenants addon reads. */
  tenantMapPath?: pulumi.Input<string | undefined>;
  tenantCredentialsPath?: pulumi.Input<string | undefined>;
}

export type { LocalOdooConfigInputs, LocalOdooConfigOutputs };

const configs = libModule<typeof LocalConfig>("odoo/localConfig");
const support = libModule<typeof OdooProvider>("odoo/provider");

export const localOdooConfigProvider: pulumi.dynamic.ResourceProvider<
  LocalOdooConfigInputs,
  LocalOdooConfigOutputs
> = {
  async check(_olds, news) {
    return { inputs: news, failures: support().checkLocalOdooConfig(news) };
  },
  async create(inputs) {
    return configs().createLocalOdooConfig(inputs);
  },
  async read(id, props) {
    if (!props) return { id, props };
    const current = await configs().readLocalOdooConfig(props);
    return current ? { id, props: current } : { id: "", props: {} as LocalOdooConfigOutputs };
  },
  async diff(_id, olds, news) {
    return support().diffLocalOdooConfig(olds, news);
  },
  async update(_id, _olds, news) {
    return { outs: await configs().updateLocalOdooConfig(news) };
  },
  async delete(_id, props) {
    await configs().deleteLocalOdooConfig(props);
  },
};

export class LocalOdooConfig extends pulumi.dynamic.Resource {
  /** `<stateDir>/odoo/odoo.conf`, absolute. */
  declare readonly path: pulumi.Output<string>;
  /** workers of odoo.conf (2 × CPU + 1 within the memory). */
  declare readonly workers: pulumi.Output<number>;
  /** limit_memory_hard of odoo.conf, bytes per worker. */
  declare readonly limitMemoryHard: pulumi.Output<number>;
  /** sha256 of the file as written (refresh compares the file on disk with it). */
  declare readonly sha256: pulumi.Output<string>;
  /** "0600". */
  declare readonly mode: pulumi.Output<string>;

  constructor(name: string, args: LocalOdooConfigArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerStub(localOdooConfigProvider, __filename, "localOdooConfigProvider"),
      name,
      {
        ...args,
        path: undefined,
        workers: undefined,
        limitMemoryHard: undefined,
        sha256: undefined,
        mode: undefined,
      },
      {
        ...opts,
        additionalSecretOutputs: [
          ...(opts?.additionalSecretOutputs ?? []),
          "adminPasswd",
          "dbPassword",
          "redisUrl",
        ],
      },
      "loomworks",
      "LocalOdooConfig",
    );
  }
}
