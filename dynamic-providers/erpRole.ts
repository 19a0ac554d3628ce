import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

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

/** Compiled program: bin/dynamic-providers -> bin/lib/tenant/erpRole.js. Only these strings are captured. */
const ERP_MODULE = path.join(__dirname, "..", "lib", "tenant", "erpRole");
const UNREACHABLE_MODULE = path.join(__dirname, "..", "lib", "pg", "unreachable");
type ErpModule = typeof import("../lib/tenant/erpRole");

async function converge(inputs: ErpRoleInputs): Promise<ErpRoleOutputs> {
  const m: ErpModule = require(ERP_MODULE);
  const st = await m.ensureErpRole(inputs.adminDsn, inputs.roleName, inputs.password);
  return { ...inputs, tenantMemberships: st.tenantMemberships, superuser: st.superuser };
}

export const erpRoleProvider: pulumi.dynamic.ResourceProvider<ErpRoleInputs, ErpRoleOutputs> = {
  async diff(_id, olds, news) {
    const replaces = olds.roleName !== news.roleName ? ["roleName"] : [];
    const drift = (olds.tenantMemberships ?? []).length > 0 || olds.superuser === true;
    const changes =
      replaces.length > 0 || drift || olds.password !== news.password || olds.adminDsn !== news.adminDsn;
    return { changes, replaces, deleteBeforeReplace: false };
  },
  async create(inputs) {
    return { id: `loomworks-erp-role:${inputs.roleName}`, outs: await converge(inputs) };
  },
  async update(_id, _olds, news) {
    return { outs: await converge(news) };
  },
  async read(id, props) {
    if (!props) return { id, props };
    const m: ErpModule = require(ERP_MODULE);
    let st: Awaited<ReturnType<ErpModule["readErpRole"]>>;
    try {
      st = await m.readErpRole(props.adminDsn, props.roleName);
    } catch (err) {
      const code = (require(UNREACHABLE_MODULE) as typeof import("../lib/pg/unreachable")).unreachableCode(
        err,
      );
      if (!code) throw err;
      return { id, props };
    }
    if (!st.exists) return { id: "" };
    return { id, props: { ...props, tenantMemberships: st.tenantMemberships, superuser: st.superuser } };
  },
  async delete(_id, props) {
    const m: ErpModule = require(ERP_MODULE);
    await m.dropErpRole(props.adminDsn, props.roleName);
  },
};

export class ErpRole extends pulumi.dynamic.Resource {
  declare readonly roleName: pulumi.Output<string>;
  declare readonly password: pulumi.Output<string>;

  constructor(name: string, args: ErpRoleArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      erpRoleProvider,
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
