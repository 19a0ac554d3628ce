import * as pulumi from "@pulumi/pulumi";
import type * as TenantFiles from "../lib/odoo/localTenantFiles";
import type { LocalErpTenantsInputs, LocalErpTenantsOutputs } from "../lib/odoo/localTenantFiles";
import type * as OdooProvider from "../lib/odoo/provider";
import type { ErpTenant } from "../lib/odoo/tenantMap";
import { libModule, providerStub } from "../lib/pulumi/lazyModule";

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

const load = libModule<typeof TenantFiles>("odoo/localTenantFiles");
const support = libModule<typeof OdooProvider>("odoo/provider");

export const localErpTenantsProvider: pulumi.dynamic.ResourceProvider<
  LocalErpTenantsInputs,
  LocalErpTenantsOutputs
> = {
  async check(_olds, news) {
    return { inputs: news, failures: support().checkLocalErpTenants(news) };
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
    return support().diffLocalErpTenants(olds, news);
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
      providerStub(localErpTenantsProvider, __filename, "localErpTenantsProvider"),
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
