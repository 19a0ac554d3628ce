import * as pulumi from "@pulumi/pulumi";
import { libModule, pulumiLog, providerStub } from "../lib/pulumi/lazyModule";
import type * as RestoreLib from "../lib/restore/index";
import type * as NotifyEvents from "../lib/notify/events";
import type * as NotifySettings from "../lib/notify/settings";
import type * as RestoreProvider from "../lib/restore/provider";
import type { TenantState } from "../lib/registry/tenantState";

/**
 * A tenant's `restore: { snapshot | time | lsn }` entry: point-in-time restore of that ONE tenant
 * in the shared cluster (lib/restore does the work; this provider is a thin lifecycle over it).
 *
 *  - check: validateRestoreTarget (read-only) when the target is new or changed, so a target outside
 *    the recovery window, in the future or naming no snapshot fails `pulumi preview` before
 *    anything changes. An unchanged target is not re-validated (a restore done long ago may have
 *    left the window since).
 *  - create: restoreTenant — finishes or rolls back an interrupted restore of the tenant first, then
 *    the six steps of
 * docs/architecture.md#snapshots-and-restore, reported through pulumi.log per step with elapsed times;
 *    its outcome goes to the webhook of `<stateDir>/scheduler/notify.json` when there is one.
 *  - diff: `target` or `snapshotLsn` changed → replace (a new restore); any other input → an
 *    update that changes nothing.
 *  - read (refresh): the registry's `restores` row (its state).
 *  - delete: forgets the resource. NO data changes: removing `restore` from the configuration keeps
 *    the restored tenant as it is (and the pre-restore database, until the tenant is destroyed).
 */
export interface PitrRestoreTargetInput {
  snapshot?: string;
  time?: string;
  lsn?: string;
}

export interface PitrRestoreArgs {
  /** Superuser connection URL (secret). */
  adminDsn: pulumi.Input<string>;
  /** The local target's state directory (pgBackRest configuration; scratch under `restore/`). */
  stateDir: pulumi.Input<string>;
  stanza: pulumi.Input<string>;
  subdomain: pulumi.Input<string>;
  database: pulumi.Input<string>;
  roleName: pulumi.Input<string>;
  tenantState: pulumi.Input<TenantState>;
  target: pulumi.Input<PitrRestoreTargetInput>;
  /** The Snapshot resource's `lsn` output (snapshot targets). */
  snapshotLsn?: pulumi.Input<string>;
  /** The Snapshot resource's `filestorePath` output (snapshot targets). */
  snapshotFilestore?: pulumi.Input<string>;
  /** Absolute directory holding one filestore directory per tenant database. */
  filestoreRoot: pulumi.Input<string>;
}

export interface PitrRestoreInputs {
  adminDsn: string;
  stateDir: string;
  stanza: string;
  subdomain: string;
  database: string;
  roleName: string;
  tenantState: TenantState;
  target: PitrRestoreTargetInput;
  snapshotLsn?: string;
  snapshotFilestore?: string;
  filestoreRoot: string;
}

export interface PitrRestoreOutputs extends PitrRestoreInputs {
  /** The restore id (also the resource id). */
  restoreId: string;
  targetLsn: string | null;
  /** The pgBackRest backup set restored from. */
  backup: string | null;
  state: string;
  preRestoreDatabase: string;
  timings: Record<string, unknown>;
}

const restores = libModule<typeof RestoreLib>("restore/index");
const support = libModule<typeof RestoreProvider>("restore/provider");
const notifyEvents = libModule<typeof NotifyEvents>("notify/events");
const notifySettings = libModule<typeof NotifySettings>("notify/settings");

export const pitrRestoreProvider: pulumi.dynamic.ResourceProvider<PitrRestoreInputs, PitrRestoreOutputs> = {
  async check(olds, news) {
    const r = await support().checkPitrRestore(olds ? { ...olds } : undefined, { ...news });
    if (r.warning) void pulumiLog().warn(`PitrRestore ${news.subdomain}: ${r.warning}`);
    return { inputs: news, failures: r.failures };
  },

  async diff(_id, olds, news) {
    return support().diffPitrRestore({ ...olds }, { ...news });
  },

  async create(inputs) {
    const log = pulumiLog();
    const notifier = await notifySettings().notifierFrom(
      { stateDir: inputs.stateDir },
      {
        info: (msg) => void log.info(`PitrRestore: ${msg}`),
        warn: (msg) => void log.warn(`PitrRestore: ${msg}`),
      },
    );
    const r = await notifyEvents().notifyRestore(notifier, inputs, () =>
      restores().restoreTenant({ ...inputs, log: (msg) => void log.info(`PitrRestore: ${msg}`) }),
    );
    return { id: r.id, outs: support().pitrRestoreOutputs(inputs, r) };
  },

  async read(id, props) {
    if (!props) return { id, props };
    try {
      const rec = await restores().readRestore(props.adminDsn, id);
      if (!rec) return { id, props };
      return { id, props: { ...props, state: rec.state, timings: rec.timings as Record<string, unknown> } };
    } catch (err) {
      void pulumiLog().warn(
        `PitrRestore ${props.subdomain}: registry unreachable (${(err as Error).message}); state left unchanged`,
      );
      return { id, props };
    }
  },

  async update(_id, olds, news) {
    // Only inputs without effect changed (a target change replaces).
    return { outs: { ...olds, ...news } };
  },

  async delete() {
    // Forget: a restore is a fact about the past; removing it from the configuration changes no data.
  },
};

export class PitrRestore extends pulumi.dynamic.Resource {
  declare readonly subdomain: pulumi.Output<string>;
  declare readonly target: pulumi.Output<PitrRestoreTargetInput>;
  declare readonly restoreId: pulumi.Output<string>;
  declare readonly targetLsn: pulumi.Output<string | null>;
  declare readonly backup: pulumi.Output<string | null>;
  declare readonly state: pulumi.Output<string>;
  declare readonly preRestoreDatabase: pulumi.Output<string>;
  declare readonly timings: pulumi.Output<Record<string, unknown>>;

  constructor(name: string, args: PitrRestoreArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerStub(pitrRestoreProvider, __filename, "pitrRestoreProvider"),
      name,
      {
        ...args,
        restoreId: undefined,
        targetLsn: undefined,
        backup: undefined,
        state: undefined,
        preRestoreDatabase: undefined,
        timings: undefined,
      },
      {
        ...opts,
        additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "adminDsn"],
      },
      "loomworks",
      "PitrRestore",
    );
  }
}
