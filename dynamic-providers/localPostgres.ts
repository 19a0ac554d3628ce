import * as pulumi from "@pulumi/pulumi";
import type * as BackupsLib from "../lib/backup/backups";
import type * as ClusterLib from "../lib/pg/cluster";
import type { LocalClusterSpec } from "../lib/pg/cluster";
import type { OffsiteRepo } from "../lib/pg/offsite";
import type * as PgProvider from "../lib/pg/provider";
import { libModule, pulumiLog, providerStub } from "../lib/pulumi/lazyModule";

/**
 * The local target's PostgreSQL 15 cluster with its pgBackRest repository (lib/pg/cluster.ts does
 * the work; the repository's backups are then recorded in the registry, lib/backup/backups.ts).
 * A missing data directory with backups in the repository is restored from it, not re-created
 * (lib/pg/disaster.ts). Changing `stateDir` replaces the cluster (the old one is deleted first, data and
 * backups included); every other input, `port` too (a restart), is updated in place. `refresh`
 * notices a stopped server (`running: false`, started again by the next `up`) and a removed data
 * directory (the resource disappears from the state).
 */
export interface LocalPostgresArgs {
  /** Prefer an absolute path: a relative one resolves against the provider's working directory. */
  stateDir: pulumi.Input<string>;
  port: pulumi.Input<number>;
  archiveTimeoutSeconds: pulumi.Input<number>;
  superuserPassword: pulumi.Input<string>;
  stanza: pulumi.Input<string>;
  retentionFull: pulumi.Input<number>;
  encryptionPassphrase?: pulumi.Input<string | undefined>;
  /** The offsite repository (repo2; secret: it may hold keys). Absent: one repository. */
  offsite?: pulumi.Input<OffsiteRepo>;
  /** Digest of the project's configuration templates: a change re-renders them (update in place). */
  configHash?: pulumi.Input<string>;
}

export type LocalPostgresInputs = LocalClusterSpec & { configHash?: string };

export interface LocalPostgresOutputs extends LocalPostgresInputs {
  host: string;
  adminDsn: string;
  running: boolean;
  dataDir: string;
  repoPath: string;
}

const clusters = libModule<typeof ClusterLib>("pg/cluster");
/** ensureCluster + recording the repository's backups in the registry. */
const backups = libModule<typeof BackupsLib>("backup/backups");
const support = libModule<typeof PgProvider>("pg/provider");

export const localPostgresProvider: pulumi.dynamic.ResourceProvider<
  LocalPostgresInputs,
  LocalPostgresOutputs
> = {
  async create(inputs) {
    const cluster = clusters();
    const log = pulumiLog();
    const spec = cluster.localClusterSpec(inputs);
    await backups().ensureClusterWithBackups(spec, (msg) => void log.info(`LocalPostgres: ${msg}`));
    const { paths } = cluster.localClusterLayout(spec);
    return {
      id: `local-postgres:${paths.stateDir}`,
      outs: cluster.runningClusterOutputs(spec, inputs.configHash),
    };
  },

  async read(id, props) {
    const cluster = clusters();
    if (!props) return { id, props };
    const spec = cluster.localClusterSpec(props);
    const status = await cluster.clusterStatus(spec);
    if (!status.initialized) return { id: "", props: {} as LocalPostgresOutputs };
    const port = status.running && status.port ? status.port : spec.port;
    return {
      id,
      props: { ...props, port, running: status.running, adminDsn: cluster.localAdminDsn({ ...spec, port }) },
    };
  },

  async diff(_id, olds, news) {
    return support().diffLocalPostgres({ ...olds }, { ...news });
  },

  async update(_id, _olds, news) {
    const cluster = clusters();
    const log = pulumiLog();
    const spec = cluster.localClusterSpec(news);
    await backups().ensureClusterWithBackups(spec, (msg) => void log.info(`LocalPostgres: ${msg}`));
    return { outs: cluster.runningClusterOutputs(spec, news.configHash) };
  },

  async delete(_id, props) {
    const cluster = clusters();
    const spec = cluster.localClusterSpec(props);
    void pulumiLog().info(`LocalPostgres: destroying the cluster in ${spec.stateDir}`);
    await cluster.destroyCluster(spec);
  },
};

export class LocalPostgres extends pulumi.dynamic.Resource {
  declare readonly stateDir: pulumi.Output<string>;
  declare readonly port: pulumi.Output<number>;
  declare readonly archiveTimeoutSeconds: pulumi.Output<number>;
  declare readonly superuserPassword: pulumi.Output<string>;
  declare readonly stanza: pulumi.Output<string>;
  declare readonly retentionFull: pulumi.Output<number>;
  declare readonly encryptionPassphrase: pulumi.Output<string | undefined>;
  /** Always `127.0.0.1`. */
  declare readonly host: pulumi.Output<string>;
  /** Superuser DSN (secret): `postgres://postgres:<password>@127.0.0.1:<port>/postgres`. */
  declare readonly adminDsn: pulumi.Output<string>;
  declare readonly running: pulumi.Output<boolean>;
  declare readonly dataDir: pulumi.Output<string>;
  declare readonly repoPath: pulumi.Output<string>;

  constructor(name: string, args: LocalPostgresArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      providerStub(localPostgresProvider, __filename, "localPostgresProvider"),
      name,
      {
        ...args,
        host: undefined,
        adminDsn: undefined,
        running: undefined,
        dataDir: undefined,
        repoPath: undefined,
      },
      {
        ...opts,
        additionalSecretOutputs: [
          ...(opts?.additionalSecretOutputs ?? []),
          "adminDsn",
          "superuserPassword",
          "encryptionPassphrase",
          "offsite",
        ],
      },
      "loomworks",
      "LocalPostgres",
    );
  }
}
