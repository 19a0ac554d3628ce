import * as pulumi from "@pulumi/pulumi";
import type * as Unreachable from "../lib/pg/unreachable";
import { libModule, providerStub } from "../lib/pulumi/lazyModule";
import type * as ErpRoleLib from "../lib/tenant/erpRole";
import type * as TenantProvider from "../lib/tenant/provider";

/**
 * The ERP's own database role (lib/tenant/erpRole.ts): LOGIN, not a superuser, a member of no
 * tenant role. create/update converge the role and its password and take back tenant memberships;
 * read reports drift (role gone, made superuser, a tenant membership granted); delete drops it.
 */
export interface ErpRoleArgs {
  adminDsn: pulumi.Input<string>;
  roleName: pulumi.Input<string>;
  password: pulumi.Input<string>;
}

export interface ErpRoleInputs {
  adminDsn: string;
  roleName: string;
  password: string;
}

export interface ErpRoleOutputs extends ErpRoleInputs {
  tenantMemberships: string[];
  superuser: boolean;
}

const erpRoles = libModule<typeof ErpRoleLib>("tenant/erpRole");
const support = libModule<typeof TenantProvider>("tenant/provider");
const unreachable = libModule<typeof Unreachable>("pg/unreachable");

async function converge(inputs: ErpRoleInputs): Promise<ErpRoleOutputs> {
  const st = await erpRoles().ensureErpRole(inputs.adminDsn, inputs.roleName, inputs.password);
  return { ...inputs, tenantMemberships: st.tenantMemberships, superuser: st.superuser };
}

export const erpRoleProvider: pulumi.dynamic.ResourceProvider<ErpRoleInputs, ErpRoleOutputs> = {
  async diff(_id, olds, news) {
    return support().diffErpRole({ ...olds }, { ...news });
  },
  async create(inputs) {
    return { id: `loomworks-erp-role:${inputs.roleName}`, outs: await converge(inputs) };
  },
  async update(_id, _olds, news) {
    return { outs: await converge(news) };
  },
  async read(id, props) {
    if (!props) return { id, props };
    const r = await unreachable().readReachable(() => erpRoles().readErpRole(props.adminDsn, props.roleName));
    if ("unreachable" in r) return { id, props };
    const st = r.found;
    if (!st.exists) return { id: "" };
    return { id, props: { ...props, tenantMemberships: st.tenantMemberships, superuser: st.superuser } };
  },
  async delete(_id, props) {
    await erpRoles().dropErpRole(props.adminDsn, props.roleName);
  },
};

export class ErpRole extends pulumi.dynamic.Resource {
  declare readonly roleName: pulumi.Output<string>;
  declare readonly password: pulumi.Output<string>;

  constructor(name: string, args: ErpRoleArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerStub(erpRoleProvider, __filename, "erpRoleProvider"),
      name,
      { ...args, tenantMemberships: undefined, superuser: undefined },
      {
        ...opts,
        additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "adminDsn", "password"],
      },
      "loomworks",
      "ErpRole",
    );
  }
}
