import * as pulumi from "@pulumi/pulumi";
import type * as GuardsProvider from "../lib/guards/provider";
import type * as GuardsLib from "../lib/guards/tenant";
import type * as Unreachable from "../lib/pg/unreachable";
import { libModule, pulumiLog, providerStub } from "../lib/pulumi/lazyModule";

/**
 * The guards inside one tenant database
 * (docs/architecture.md#guards): undo capture and API, quota limits, the
 * user-limit trigger and the AI-operation counter (lib/guards/tenant.ts does the work).
 *
 *  - create/update: install or upgrade the APIs to `version`, set the exclusion list, attach capture
 *    to every user table, write the tier's limits in place (no restart, no reconnect).
 *  - diff: subdomain/database → replace; version (a new program), tier, limits, excludeTables and
 *    `generation` (the tenant's restore id: a restored database may carry older guards) → update;
 *    a table found without capture, or the user-limit trigger missing → drift → update; adminDsn
 *    alone (a rotated superuser password) → an update that only records it.
 *  - read (refresh): the installed versions, exclusions and limits as found in the database.
 *  - delete: removes the undo and quota APIs (their logs and counters) from the database; nothing
 *    when the database is already gone.
 */
export interface TenantGuardsArgs {
  adminDsn: pulumi.Input<string>;
  subdomain: pulumi.Input<string>;
  database: pulumi.Input<string>;
  tier: pulumi.Input<string>;
  limits: pulumi.Input<Record<string, number>>;
  excludeTables: pulumi.Input<pulumi.Input<string>[]>;
  /** The guards version this program installs (lib/guards/install.ts GUARDS_VERSION). */
  version: pulumi.Input<string>;
  /** Changes when the tenant's database is swapped by a restore. */
  generation?: pulumi.Input<string>;
}

export interface TenantGuardsInputs {
  adminDsn: string;
  subdomain: string;
  database: string;
  tier: string;
  limits: Record<string, number>;
  excludeTables: string[];
  version: string;
  generation?: string;
}

export interface TenantGuardsOutputs extends TenantGuardsInputs {
  capturedTables: number;
  uncapturedTables: number;
  userLimitTrigger: boolean | null;
}

const guards = libModule<typeof GuardsLib>("guards/tenant");
const support = libModule<typeof GuardsProvider>("guards/provider");
const unreachable = libModule<typeof Unreachable>("pg/unreachable");

function specOf(p: TenantGuardsInputs): GuardsLib.TenantGuardsSpec {
  return {
    subdomain: p.subdomain,
    database: p.database,
    tier: p.tier,
    limits: p.limits as GuardsLib.TenantGuardsSpec["limits"],
    excludeTables: p.excludeTables ?? [],
  };
}

async function converge(inputs: TenantGuardsInputs): Promise<TenantGuardsOutputs> {
  const log = pulumiLog();
  const st = await guards().ensureTenantGuards(
    inputs.adminDsn,
    specOf(inputs),
    (msg) => void log.info(`TenantGuards: ${msg}`),
  );
  return {
    ...inputs,
    capturedTables: st.capturedTables,
    uncapturedTables: st.uncapturedTables,
    userLimitTrigger: st.userLimitTrigger,
  };
}

const tenantGuardsProvider: pulumi.dynamic.ResourceProvider<TenantGuardsInputs, TenantGuardsOutputs> = {
  async diff(_id, olds, news) {
    return support().diffTenantGuards({ ...olds }, { ...news });
  },

  async create(inputs) {
    return { id: `loomworks-guards:${inputs.database}`, outs: await converge(inputs) };
  },

  async update(_id, olds, news) {
    // Only a rotated superuser password: record the new DSN (read and delete use it).
    if (!support().diffGuards({ ...olds }, { ...news }).changes)
      return { outs: { ...olds, adminDsn: news.adminDsn } };
    return { outs: await converge(news) };
  },

  async read(id, props) {
    if (!props) return { id, props };
    const r = await unreachable().readReachable(() =>
      guards().readTenantGuards(props.adminDsn, props.database),
    );
    if ("unreachable" in r) {
      void pulumiLog().warn(
        `TenantGuards ${props.subdomain}: cluster unreachable (${r.unreachable}); state left unchanged`,
      );
      return { id, props };
    }
    const st = r.found;
    if (!st.databaseExists) return { id: "" };
    return {
      id,
      props: {
        ...props,
        version: st.version,
        excludeTables: st.excludeTables,
        limits: { ...props.limits, ...(st.limits ?? {}) },
        capturedTables: st.capturedTables,
        uncapturedTables: st.uncapturedTables,
        userLimitTrigger: st.userLimitTrigger,
      },
    };
  },

  async delete(_id, props) {
    const log = pulumiLog();
    await guards().removeTenantGuards(
      props.adminDsn,
      props.database,
      (msg) => void log.info(`TenantGuards: ${msg}`),
    );
  },
};

/** Exported for tests that call the provider's methods directly. */
export { tenantGuardsProvider };

export class TenantGuards extends pulumi.dynamic.Resource {
  declare readonly version: pulumi.Output<string>;
  declare readonly capturedTables: pulumi.Output<number>;
  declare readonly uncapturedTables: pulumi.Output<number>;

  constructor(name: string, args: TenantGuardsArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerStub(tenantGuardsProvider, __filename, "tenantGuardsProvider"),
      name,
      { ...args, capturedTables: undefined, uncapturedTables: undefined, userLimitTrigger: undefined },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "adminDsn"] },
      "loomworks",
      "TenantGuards",
    );
  }
}
