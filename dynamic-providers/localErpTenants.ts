import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import type { ErpTenant } from "../lib/odoo/tenantMap";
import type { LocalErpTenantsInputs, LocalErpTenantsOutputs } from "../lib/odoo/localTenantFiles";

/**
 * The local target's tenant map and tenant credentials for the ERP (`<stateDir>/odoo/tenants.json`
 * and `tenant-credentials.json`, mode 0600): a thin lifecycle over lib/odoo/localTenantFiles.ts.
 * The ERP's loomworks_tenants addon re-reads them when they change: no ERP restart.
 */
export interface LocalErpTenantsArgs {
  stateDir: pulumi.Input<string>;
  /** Each tenant's database, role, password (secret) and state. */
  tenants: pulumi.Input<pulumi.Input<ErpTenant>[]>;
}

/** Compiled program: bin/dynamic-providers -> bin/lib/odoo/localTenantFiles.js. Only this string is captured. */
const FILES_MODULE = path.join(__dirname, "..", "lib", "odoo", "localTenantFiles");
type FilesModule = typeof import("../lib/odoo/localTenantFiles");
const load = (): FilesModule => require(FILES_MODULE) as FilesModule;

const provider: pulumi.dynamic.ResourceProvider<LocalErpTenantsInputs, LocalErpTenantsOutputs> = {
  async check(_olds, news) {
    const problem = load().checkLocalErpTenants(news);
    return problem === undefined
      ? { inputs: news }
      : { inputs: news, failures: [{ property: "tenants", reason: problem }] };
  },
  async create(inputs) {
    return load().createLocalErpTenants(inputs);
  },
  async read(id, props) {
    if (!props) return { id, props };
    const current = await load().readLocalErpTenants(props);
    return current ? { id, props: current } : { id: "", props: {} as LocalErpTenantsOutputs };
  },
  async diff(_id, olds, news) {
    return load().diffLocalErpTenants(olds, news);
  },
  async update(_id, _olds, news) {
    return { outs: await load().writeLocalErpTenants(news) };
  },
  async delete(_id, props) {
    await load().deleteLocalErpTenants(props);
  },
};

export class LocalErpTenants extends pulumi.dynamic.Resource {
  declare readonly mapPath: pulumi.Output<string>;
  declare readonly credentialsPath: pulumi.Output<string>;

  constructor(name: string, args: LocalErpTenantsArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        ...args,
        mapPath: undefined,
        credentialsPath: undefined,
        mapSha256: undefined,
        credentialsSha256: undefined,
        mapMode: undefined,
        credentialsMode: undefined,
      },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "tenants"] },
      "loomworks",
      "LocalErpTenants",
    );
  }
}
