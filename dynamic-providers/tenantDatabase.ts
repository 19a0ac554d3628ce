import * as pulumi from "@pulumi/pulumi";
import type * as Unreachable from "../lib/pg/unreachable";
import { libModule, pulumiLog, providerStub } from "../lib/pulumi/lazyModule";
import type * as Provision from "../lib/tenant/provision";
import type * as TenantProvider from "../lib/tenant/provider";
import type { TenantState } from "../lib/registry/tenantState";

/**
 * A tenant's database, login role, ERP admin user, filestore directory and registry row
 * (lib/tenant/provision.ts does the work; this provider is a thin lifecycle over it).
 *
 *  - create: createTenant (idempotent: adopts and finishes whatever a crashed run left).
 *  - diff: subdomain, database, roleName or filestoreRoot → replace (old tenant deleted first);
 *    state, tier, limits, adminEmail, rolePassword, forceDestroy, retentionDays, host, port,
 *    adminDsn → update in place. `template` and `adminPassword` only matter at creation: changing
 *    them later does nothing (re-creating a tenant from another template would destroy its data).
 *  - read (refresh): a database or role dropped by hand, a missing registry row or a state changed
 *    behind Pulumi's back shows as drift, and the next `up` updates (recreating what is missing);
 *    when nothing of the tenant is left, the resource is gone from the state.
 *  - delete: deleteTenant; refused for an archived tenant within its retention period unless
 *    `forceDestroy` was set (in a previous `up`) before the entry is removed.
 */
export interface TenantDatabaseArgs {
  /** Superuser connection URL (secret). */
  adminDsn: pulumi.Input<string>;
  /** Host and port tenants connect to (for the `dsn` output). */
  host: pulumi.Input<string>;
  port: pulumi.Input<number>;
  subdomain: pulumi.Input<string>;
  database: pulumi.Input<string>;
  roleName: pulumi.Input<string>;
  rolePassword: pulumi.Input<string>;
  adminEmail: pulumi.Input<string>;
  /** The ERP admin's initial password (secret); written once, at creation. */
  adminPassword: pulumi.Input<string>;
  /** Template database name. */
  template: pulumi.Input<string>;
  tier: pulumi.Input<string>;
  state: pulumi.Input<TenantState>;
  limits: pulumi.Input<Record<string, number>>;
  /** Absolute directory holding one filestore directory per tenant database. */
  filestoreRoot: pulumi.Input<string>;
  retentionDays: pulumi.Input<number>;
  forceDestroy: pulumi.Input<boolean>;
  /** The ERP's own role: made a member of the tenant's role. */
  erpRole?: pulumi.Input<string>;
}

export interface TenantDatabaseInputs {
  adminDsn: string;
  host: string;
  port: number;
  subdomain: string;
  database: string;
  roleName: string;
  rolePassword: string;
  adminEmail: string;
  adminPassword: string;
  template: string;
  tier: string;
  state: TenantState;
  limits: Record<string, number>;
  filestoreRoot: string;
  retentionDays: number;
  forceDestroy: boolean;
  erpRole?: string;
}

export interface TenantDatabaseOutputs extends TenantDatabaseInputs {
  /** The tenant role's own connection URL (secret). */
  dsn: string;
  createdAt: string;
  retentionUntil?: string;
  filestore: string;
  /** Drift markers set by `read`; false makes the next diff propose an update that repairs. */
  databaseExists: boolean;
  roleExists: boolean;
  initialized: boolean;
  registryExists: boolean;
}

const provision = libModule<typeof Provision>("tenant/provision");
const support = libModule<typeof TenantProvider>("tenant/provider");
const unreachable = libModule<typeof Unreachable>("pg/unreachable");

export const tenantDatabaseProvider: pulumi.dynamic.ResourceProvider<
  TenantDatabaseInputs,
  TenantDatabaseOutputs
> = {
  async check(_olds, news) {
    return { inputs: news, failures: support().checkTenantInputs({ ...news }) };
  },

  async diff(_id, olds, news) {
    return support().diffTenant({ ...olds }, { ...news });
  },

  async create(inputs) {
    const m = provision();
    const log = pulumiLog();
    const info = await m.createTenant(inputs.adminDsn, m.tenantSpecFrom({ ...inputs }), (msg) => {
      void log.info(`TenantDatabase: ${msg}`);
    });
    return {
      id: `loomworks-tenant:${inputs.subdomain}`,
      outs: { ...inputs, ...m.provisionedOutputs(inputs, info) },
    };
  },

  async read(id, props) {
    const m = provision();
    const log = pulumiLog();
    if (!props) return { id, props };
    const r = await unreachable().readReachable(() =>
      m.readTenant(props.adminDsn, props.subdomain, props.database, props.roleName, props.filestoreRoot),
    );
    if ("unreachable" in r) {
      void log.warn(
        `TenantDatabase ${props.subdomain}: cluster unreachable (${r.unreachable}); state left unchanged`,
      );
      return { id, props };
    }
    const found = support().tenantRead(props, r.found);
    if (!found) return { id: "" };
    for (const warning of found.warnings) void log.warn(`TenantDatabase ${props.subdomain}: ${warning}`);
    return { id, props: found.props };
  },

  async update(_id, olds, news) {
    const m = provision();
    const log = pulumiLog();
    const say = (msg: string): void => void log.info(`TenantDatabase: ${msg}`);
    const spec = m.tenantSpecFrom({ ...news });
    const info = support().diffTenant({ ...olds }, { ...news }).drift
      ? await m.createTenant(news.adminDsn, spec, say)
      : await m.updateTenant(news.adminDsn, m.tenantSpecFrom({ ...olds }), spec, say);
    const { retentionUntil: _previous, ...rest } = olds;
    return { outs: { ...rest, ...news, ...m.provisionedOutputs(news, info) } };
  },

  async delete(_id, props) {
    const m = provision();
    const log = pulumiLog();
    await m.deleteTenant(
      props.adminDsn,
      {
        ...m.tenantSpecFrom({ ...props }),
        forceDestroy: props.forceDestroy === true,
        ...(props.retentionUntil ? { retentionUntil: props.retentionUntil } : {}),
      },
      (msg) => void log.info(`TenantDatabase: ${msg}`),
    );
  },
};

export class TenantDatabase extends pulumi.dynamic.Resource {
  declare readonly subdomain: pulumi.Output<string>;
  declare readonly database: pulumi.Output<string>;
  declare readonly roleName: pulumi.Output<string>;
  declare readonly template: pulumi.Output<string>;
  declare readonly tier: pulumi.Output<string>;
  declare readonly state: pulumi.Output<TenantState>;
  declare readonly adminEmail: pulumi.Output<string>;
  declare readonly limits: pulumi.Output<Record<string, number>>;
  declare readonly retentionDays: pulumi.Output<number>;
  declare readonly forceDestroy: pulumi.Output<boolean>;
  /** The tenant role's connection URL (secret). */
  declare readonly dsn: pulumi.Output<string>;
  declare readonly createdAt: pulumi.Output<string>;
  /** Set while archived: the tenant may not be destroyed before this time without forceDestroy. */
  declare readonly retentionUntil: pulumi.Output<string | undefined>;
  declare readonly filestore: pulumi.Output<string>;

  constructor(name: string, args: TenantDatabaseArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerStub(tenantDatabaseProvider, __filename, "tenantDatabaseProvider"),
      name,
      {
        ...args,
        dsn: undefined,
        createdAt: undefined,
        retentionUntil: undefined,
        filestore: undefined,
        databaseExists: undefined,
        roleExists: undefined,
        initialized: undefined,
        registryExists: undefined,
        tenantOwnsDatabase: undefined,
      },
      {
        ...opts,
        additionalSecretOutputs: [
          ...(opts?.additionalSecretOutputs ?? []),
          "dsn",
          "rolePassword",
          "adminPassword",
          "adminDsn",
        ],
      },
      "loomworks",
      "TenantDatabase",
    );
  }
}
