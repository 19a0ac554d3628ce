import * as pulumi from "@pulumi/pulumi";
import { LocalPostgres } from "../../dynamic-providers/localPostgres";
import { RandomSecret, rotationKeepers } from "../../dynamic-providers/randomSecret";
import { LocalScheduler } from "../../dynamic-providers/localScheduler";
import {
  DEFAULT_QUOTA_CHECK_SCHEDULE,
  effectiveSchedule,
  type BackupSchedule,
  type SparesJob,
} from "../../lib/backup/schedule-defaults";
import type { NotifySettings } from "../../lib/notify/settings";
import { offsiteUnsupportedReason, pgbackrestVersionOf, type OffsiteRepo } from "../../lib/pg/offsite";
import { clusterPaths } from "../../lib/pg/paths";
import { pgbackrestBin } from "../../lib/pg/pgbackrest";
import { templatesHash } from "../../lib/templates/render";

export interface LocalPostgresClusterArgs {
  stateDir: string;
  port: number;
  archiveTimeoutSeconds: number;
  retentionFull: number;
  encryptionPassphrase?: pulumi.Input<string>;
  /** Overrides of the scheduled jobs' cron expressions (UTC). */
  schedule?: Partial<BackupSchedule>;
  /** Cron (UTC) of the storage quota check. */
  quotaCheck?: string;
  /** Days the undo log of ended AI operations is kept. */
  undoRetentionDays?: number;
  /** `platform.provisioning`: the scheduler's `spares` job (absent: none). */
  spares?: SparesJob;
  /** platform.credentialRotation: a new value rotates the superuser's password (in place). */
  credentialRotation?: string;
  /** The webhook of operator notifications (secret), for the scheduled jobs and restores. */
  notify?: pulumi.Input<NotifySettings>;
  /** The offsite repository (plain: it becomes a secret input here). */
  offsite?: OffsiteRepo;
}

/**
 * Refuses, at preview, an offsite repository the pgbackrest of this machine cannot use (native
 * SFTP needs 2.46): the local target runs pgBackRest where the program runs.
 */
export function checkLocalOffsite(offsite: OffsiteRepo | undefined, version?: string): void {
  if (offsite?.type !== "sftp") return;
  const reason = offsiteUnsupportedReason(offsite, version ?? pgbackrestVersionOf(pgbackrestBin()));
  if (reason) throw new Error(reason);
}

/** The local target's PostgreSQL 15 cluster with its pgBackRest repository, under the state directory. */
export class LocalPostgresCluster extends pulumi.ComponentResource {
  readonly host: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  readonly adminDsn: pulumi.Output<string>;
  readonly stateDir: string;
  readonly pgbackrestConfig: string;
  readonly stanza = "loomworks";

  constructor(name: string, args: LocalPostgresClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("loomworks:local:PostgresCluster", name, {}, opts);
    checkLocalOffsite(args.offsite);
    const superuserPassword = new RandomSecret(
      `${name}-superuser-password`,
      { length: 32, keepers: rotationKeepers({ platform: args.credentialRotation }) },
      { parent: this },
    );
    const server = new LocalPostgres(
      `${name}-server`,
      {
        stateDir: args.stateDir,
        port: args.port,
        archiveTimeoutSeconds: args.archiveTimeoutSeconds,
        superuserPassword: superuserPassword.result,
        stanza: this.stanza,
        retentionFull: args.retentionFull,
        encryptionPassphrase: args.encryptionPassphrase,
        ...(args.offsite ? { offsite: pulumi.secret(args.offsite) } : {}),
        configHash: templatesHash(),
      },
      { parent: this, customTimeouts: { create: "20m", update: "20m", delete: "10m" } },
    );
    // Backups, expiry, verification and auto snapshots on a schedule (a daemon under the state dir).
    new LocalScheduler(
      `${name}-scheduler`,
      {
        stateDir: args.stateDir,
        port: server.port,
        stanza: this.stanza,
        archiveTimeoutSeconds: args.archiveTimeoutSeconds,
        retentionFull: args.retentionFull,
        schedule: effectiveSchedule(args.schedule),
        quotaCheck: args.quotaCheck ?? DEFAULT_QUOTA_CHECK_SCHEDULE,
        ...(args.undoRetentionDays !== undefined ? { undoRetentionDays: args.undoRetentionDays } : {}),
        ...(args.spares ? { spares: args.spares } : {}),
        ...(args.notify !== undefined ? { notify: args.notify } : {}),
      },
      { parent: this, dependsOn: [server] },
    );
    this.stateDir = args.stateDir;
    this.pgbackrestConfig = clusterPaths(args.stateDir).pgbackrestConf;
    this.host = server.host;
    this.port = server.port;
    this.adminDsn = pulumi.secret(server.adminDsn);
    this.registerOutputs({ host: this.host, port: this.port });
  }
}
