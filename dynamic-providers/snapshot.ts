import * as pulumi from "@pulumi/pulumi";
import type * as Unreachable from "../lib/pg/unreachable";
import { libModule, pulumiLog, providerStub } from "../lib/pulumi/lazyModule";
import type * as SnapshotLib from "../lib/snapshot/snapshot";
import type * as SnapshotProvider from "../lib/snapshot/provider";

/**
 * One manual snapshot of a tenant: an entry under `loomworks:tenants.<subdomain>.snapshots`
 * (lib/snapshot/snapshot.ts does the work; this provider is a thin lifecycle over it).
 *
 *  - create: createSnapshot (kind `manual`): restore point, LSN, WAL file, time, size, backup set,
 *    hard-link copy of the filestore, registry row. Idempotent: a ready snapshot of the same
 *    (subdomain, name) is adopted as is.
 *  - diff: subdomain or name changed → replace (a new snapshot is taken, then the old one is
 *    forgotten); any other input (adminDsn, database, paths, pgBackRest settings) → an update that
 *    changes nothing: a snapshot is a fact about the past.
 *  - read (refresh): the registry row gone → the resource is gone.
 *  - delete: forgetSnapshot: the registry row and the filestore copy. No tenant data changes; the
 *    restore point stays in the WAL until pgBackRest's retention expires it.
 *
 * The resource's id is the snapshot's id (a uuid).
 */
export interface SnapshotArgs {
  /** Superuser connection URL (secret). */
  adminDsn: pulumi.Input<string>;
  subdomain: pulumi.Input<string>;
  database: pulumi.Input<string>;
  /** The key under the tenant's `snapshots`. */
  name: pulumi.Input<string>;
  /** Absolute directory holding one filestore directory per tenant database. */
  filestoreRoot: pulumi.Input<string>;
  /** Absolute directory for the snapshots' filestore copies (same filesystem as filestoreRoot). */
  snapshotRoot: pulumi.Input<string>;
  /** pgBackRest configuration and stanza: fallback for the backup set when the registry has none. */
  pgbackrestConfig?: pulumi.Input<string>;
  pgbackrestStanza?: pulumi.Input<string>;
}

export interface SnapshotInputs {
  adminDsn: string;
  subdomain: string;
  database: string;
  name: string;
  filestoreRoot: string;
  snapshotRoot: string;
  pgbackrestConfig?: string;
  pgbackrestStanza?: string;
}

export interface SnapshotOutputs extends SnapshotInputs {
  /** The snapshot id (also the resource id). */
  snapshotId: string;
  kind: string;
  lsn: string;
  walFile: string;
  restorePoint: string;
  createdAt: string;
  sizeBytes: number;
  /** pgBackRest backup label a restore starts from; null when none is known. */
  backup: string | null;
  filestorePath: string;
  state: string;
}

const snapshots = libModule<typeof SnapshotLib>("snapshot/snapshot");
const support = libModule<typeof SnapshotProvider>("snapshot/provider");
const unreachable = libModule<typeof Unreachable>("pg/unreachable");

function outputsOf(inputs: SnapshotInputs, s: SnapshotLib.SnapshotInfo): SnapshotOutputs {
  return {
    ...inputs,
    snapshotId: s.id,
    kind: s.kind,
    lsn: s.lsn,
    walFile: s.walFile,
    restorePoint: s.restorePoint,
    createdAt: s.createdAt,
    sizeBytes: s.sizeBytes,
    backup: s.backup,
    filestorePath: s.filestorePath,
    state: s.state,
  };
}

export const snapshotProvider: pulumi.dynamic.ResourceProvider<SnapshotInputs, SnapshotOutputs> = {
  async check(_olds, news) {
    return { inputs: news, failures: support().checkSnapshotInputs({ ...news }) };
  },

  async diff(_id, olds, news) {
    return support().diffSnapshot({ ...olds }, { ...news });
  },

  async create(inputs) {
    const m = snapshots();
    const log = pulumiLog();
    const s = await m.createSnapshot(
      inputs.adminDsn,
      {
        subdomain: inputs.subdomain,
        database: inputs.database,
        name: inputs.name,
        kind: "manual",
        filestoreRoot: inputs.filestoreRoot,
        snapshotRoot: inputs.snapshotRoot,
        ...(inputs.pgbackrestConfig && inputs.pgbackrestStanza
          ? { pgbackrest: { config: inputs.pgbackrestConfig, stanza: inputs.pgbackrestStanza } }
          : {}),
      },
      (msg) => void log.info(`Snapshot: ${msg}`),
    );
    if (!s.created) void log.info(`Snapshot ${inputs.subdomain}/${inputs.name}: adopted existing ${s.id}`);
    return { id: s.id, outs: outputsOf(inputs, s) };
  },

  async read(id, props) {
    const m = snapshots();
    const log = pulumiLog();
    if (!props) return { id, props };
    const r = await unreachable().readReachable(() => m.snapshotStatus(props.adminDsn, id));
    if ("unreachable" in r) {
      void log.warn(
        `Snapshot ${props.subdomain}/${props.name}: cluster unreachable (${r.unreachable}); state left unchanged`,
      );
      return { id, props };
    }
    const st = r.found;
    if (!st) return { id: "" };
    // Only snapshots taken before issue 16 have a filestore copy (filestorePath "" for the others).
    if (st.filestorePath && !st.filestorePresent) {
      void log.warn(
        `Snapshot ${props.subdomain}/${props.name}: filestore copy ${st.filestorePath} is missing; ` +
          `a restore to it would bring back the database without its files`,
      );
    }
    return { id, props: outputsOf(props, st) };
  },

  async update(_id, olds, news) {
    // Nothing to do: the snapshot is unchanged; only the recorded inputs follow the program.
    return { outs: { ...olds, ...news } };
  },

  async delete(id, props) {
    const m = snapshots();
    const log = pulumiLog();
    const existed = await m.forgetSnapshot(props.adminDsn, id);
    void log.info(
      `Snapshot ${props.subdomain}/${props.name}: ${existed ? "forgotten" : "already gone from the registry"}`,
    );
  },
};

/** An entry of the `snapshots` stack output (docs/configuration.md#stack-outputs). */
export interface SnapshotSummary {
  id: string;
  lsn: string;
  walFile: string;
  createdAt: string;
  sizeBytes: number;
  backup: string | null;
  state: string;
}

export class Snapshot extends pulumi.dynamic.Resource {
  declare readonly subdomain: pulumi.Output<string>;
  declare readonly name: pulumi.Output<string>;
  declare readonly snapshotId: pulumi.Output<string>;
  declare readonly kind: pulumi.Output<string>;
  declare readonly lsn: pulumi.Output<string>;
  declare readonly walFile: pulumi.Output<string>;
  declare readonly restorePoint: pulumi.Output<string>;
  declare readonly createdAt: pulumi.Output<string>;
  declare readonly sizeBytes: pulumi.Output<number>;
  declare readonly backup: pulumi.Output<string | null>;
  declare readonly filestorePath: pulumi.Output<string>;
  declare readonly state: pulumi.Output<string>;

  constructor(name: string, args: SnapshotArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerStub(snapshotProvider, __filename, "snapshotProvider"),
      name,
      {
        ...args,
        snapshotId: undefined,
        kind: undefined,
        lsn: undefined,
        walFile: undefined,
        restorePoint: undefined,
        createdAt: undefined,
        sizeBytes: undefined,
        backup: undefined,
        filestorePath: undefined,
        state: undefined,
      },
      {
        ...opts,
        additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), "adminDsn"],
      },
      "loomworks",
      "Snapshot",
    );
  }

  /** The `snapshots` output entry (docs/configuration.md#stack-outputs). */
  summary(): pulumi.Output<SnapshotSummary> {
    return pulumi
      .all([this.id, this.lsn, this.walFile, this.createdAt, this.sizeBytes, this.backup, this.state])
      .apply(([id, lsn, walFile, createdAt, sizeBytes, backup, state]) => ({
        id,
        lsn,
        walFile,
        createdAt,
        sizeBytes,
        backup,
        state,
      }));
  }
}
