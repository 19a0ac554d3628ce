import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

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

/** Compiled program: bin/dynamic-providers -> bin/lib/guards/tenant.js. Only this string is captured. */
const UNREACHABLE_MODULE = path.join(__dirname, "..", "lib", "pg", "unreachable");
const GUARDS_MODULE = path.join(__dirname, "..", "lib", "guards", "tenant");
type GuardsModule = typeof import("../lib/guards/tenant");

function specOf(p: TenantGuardsInputs): import("../lib/guards/tenant").TenantGuardsSpec {
  return {
    subdomain: p.subdomain,
    database: p.database,
    tier: p.tier,
    limits: p.limits as import("../lib/guards/tenant").TenantGuardsSpec["limits"],
    excludeTables: p.excludeTables ?? [],
  };
}

async function converge(inputs: TenantGuardsInputs): Promise<TenantGuardsOutputs> {
  const m: GuardsModule = require(GUARDS_MODULE);
  const log: typeof import("@pulumi/pulumi").log = require("@pulumi/pulumi").log;
  const st = await m.ensureTenantGuards(
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
    const m: GuardsModule = require(GUARDS_MODULE);
    const d = m.diffGuards({ ...olds }, { ...news });
    // A rotated superuser password: an update that only records the new DSN (read and delete use it).
    const changes = d.changes || olds.adminDsn !== news.adminDsn;
    return { changes, replaces: d.replaces, deleteBeforeReplace: true };
  },

  async create(inputs) {
    return { id: `loomworks-guards:${inputs.database}`, outs: await converge(inputs) };
  },

  async update(_id, olds, news) {
    const m: GuardsModule = require(GUARDS_MODULE);
    if (!m.diffGuards({ ...olds }, { ...news }).changes)
      return { outs: { ...olds, adminDsn: news.adminDsn } };
    return { outs: await converge(news) };
  },

  async read(id, props) {
    if (!props) return { id, props };
    const m: GuardsModule = require(GUARDS_MODULE);
    let st: Awaited<ReturnType<GuardsModule["readTenantGuards"]>>;
    try {
      st = await m.readTenantGuards(props.adminDsn, props.database);
    } catch (err) {
      const code = (require(UNREACHABLE_MODULE) as typeof import("../lib/pg/unreachable")).unreachableCode(
        err,
      );
      if (!code) throw err;
      const log: typeof import("@pulumi/pulumi").log = require("@pulumi/pulumi").log;
      void log.warn(`TenantGuards ${props.subdomain}: cluster unreachable (${code}); state left unchanged`);
      return { id, props };
    }
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
    const m: GuardsModule = require(GUARDS_MODULE);
    const log: typeof import("@pulumi/pulumi").log = require("@pulumi/pulumi").log;
    await m.removeTenantGuards(
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
      tenantGuardsProvider,
      name,
      { ...args, capturedTables: undefined, uncapturedTables: undefined, userLimitTrigger: undefined },
      { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "adminDsn"] },
      "loomworks",
      "TenantGuards",
    );
  }
}
