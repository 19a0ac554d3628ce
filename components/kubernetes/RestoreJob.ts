/**
 * A tenant's declared restore target (`loomworks:tenants.<sub>.restore`) on the Kubernetes target:
 * one batch/v1 Job running `node bin/infra/ops/jobs.js restore ...` (lib/restore's restoreTenant)
 * in the ops image. Unlike the scheduled jobs, the restore runs pgBackRest in its own pod: it
 * restores into a scratch cluster (an emptyDir), so it reads the repository directly: the backups
 * and WAL-archive volumes mounted read-only at the paths the PostgreSQL image uses.
 *
 * The Job's name carries a hash of the target: the same target keeps the same Job (nothing
 * reruns), a new target makes a new Job (Pulumi replaces it). Pulumi waits for the Job to finish;
 * a failed restore (backoffLimit 0) is replaced, hence resumed, by the next `pulumi up`
 * (`pulumi.com/replaceUnready`; restoreTenant resumes or rolls back an interrupted restore).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TenantState } from "../../lib/registry/tenantState";
import { targetKind, type RestoreTarget } from "../../lib/restore/target";
import { POSTGRES_CONTAINER } from "../docker/config";
import {
  LABEL_OPS_JOB,
  LABEL_TENANT,
  NAMES,
  OPS_LABELS,
  POSTGRES_LABELS,
  contentHash,
  objectLabels,
} from "./common";
import { ERP_DATA_DIR } from "./erpPod";
import {
  OPS_FILESTORE_ROOT,
  OPS_IMAGE,
  opsContainer,
  opsNotifyEnv,
  opsPodSecurityContext,
  opsPushgatewayEnv,
  opsSecretEnv,
  opsSettings,
  type FilestoreOwner,
  type OpsNotifySettings,
  type OpsPods,
  type OpsPostgres,
} from "./OpsJobs";

/** The scratch cluster's directory in the restore pod (an emptyDir). */
export const RESTORE_SCRATCH_DIR = "/var/lib/loomworks-restore";
const MAX_NAME = 63;

export interface RestoreJobArgs extends OpsPods {
  /** `podLabels` (default POSTGRES_LABELS) select the pod the Job must share a node with. */
  postgres: OpsPostgres;
  /** The Secret key holding the PostgreSQL pod's pgbackrest.conf (it may hold the passphrase). */
  pgbackrestConfigSecret: { name: string; key: string; extraKeys?: readonly string[] };
  /** The tenant restored: its names and the state it is left in. */
  tenant: { subdomain: string; database: string; roleName: string; state?: TenantState };
  /** `loomworks:tenants.<sub>.restore`: a snapshot, a time or an LSN. */
  target: RestoreTarget;
  /** The Snapshot resource's `lsn` output (snapshot targets); looked up in the registry when absent. */
  snapshotLsn?: pulumi.Input<string>;
  /** The ERP's user and group: the restored filestore is theirs. */
  filestoreOwner: FilestoreOwner;
  /** Size limit of the scratch cluster's emptyDir (holds the tenant's database, restored). */
  scratchSizeLimit: string;
  /** Of the restore's container. */
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  /** Default 12 hours. */
  activeDeadlineSeconds?: number;
  /** Operator notifications (the URL from the Secret NAMES.opsNotify): the restore's outcome. */
  notify?: OpsNotifySettings;
  /** `monitoring.pushgatewayUrl`: the restore's outcome is pushed there (OpsJobs' egress policy allows it). */
  pushgatewayUrl?: string;
}

/** `loomworks-restore-<subdomain>-<hash of the target>`, at most 63 characters. */
export function restoreJobName(subdomain: string, target: RestoreTarget): string {
  const { kind, value } = targetKind(subdomain, target);
  const hash = contentHash(JSON.stringify([subdomain, kind, value]));
  const room = MAX_NAME - `${NAMES.restorePrefix}--${hash}`.length;
  // A cut subdomain could end in `-`; the hash (which covers the whole subdomain) keeps names apart.
  const sub = subdomain.slice(0, room).replace(/-+$/, "");
  return `${NAMES.restorePrefix}-${sub}-${hash}`;
}

/** The Job restoring one tenant to its declared target. */
export function restoreJob(
  name: string,
  args: RestoreJobArgs,
  opts: pulumi.CustomResourceOptions = {},
): k8s.batch.v1.Job {
  const { namespace, postgres, tenant } = args;
  const jobName = restoreJobName(tenant.subdomain, args.target);
  const { kind, value } = targetKind(tenant.subdomain, args.target);
  const labels = objectLabels({
    ...OPS_LABELS,
    [LABEL_OPS_JOB]: "restore",
    [LABEL_TENANT]: tenant.subdomain,
  });
  const pgbackrestConfigDir = POSTGRES_CONTAINER.pgbackrestConfig.replace(/\/[^/]+$/, "");
  const settings = opsSettings(namespace, postgres);
  const pod = postgres.pod ?? NAMES.postgresPod;
  const cliArgs = pulumi
    .output(args.snapshotLsn)
    .apply((lsn) => [
      "restore",
      ...["--tenant", tenant.subdomain, "--database", tenant.database, "--role", tenant.roleName],
      ...[`--${kind}`, value],
      ...(lsn ? ["--snapshot-lsn", lsn] : []),
      ...["--pgbackrest-config", POSTGRES_CONTAINER.pgbackrestConfig],
      ...["--scratch-dir", RESTORE_SCRATCH_DIR, "--filestore-root", OPS_FILESTORE_ROOT],
      ...(tenant.state ? ["--tenant-state", tenant.state] : []),
    ]);
  const container = opsContainer({
    name: "restore",
    image: args.image,
    imagePullPolicy: args.imagePullPolicy,
    args: cliArgs,
    // pgBackRest runs here, on the mounted repository: no LOOMWORKS_PGBACKREST wrapper, no ConfigMap.
    env: [
      ...["LOOMWORKS_ADMIN_DSN", "LOOMWORKS_STANZA", "LOOMWORKS_LOG_FORMAT", "HOME"].map((n) => ({
        name: n,
        value: settings[n],
      })),
      ...opsSecretEnv(postgres),
      ...(args.notify ? opsNotifyEnv(args.notify) : []),
      ...opsPushgatewayEnv(args.pushgatewayUrl),
    ],
    resources: args.resources ?? { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "4Gi" } },
    volumeMounts: [
      { name: "backups", mountPath: POSTGRES_CONTAINER.repoDir, readOnly: true },
      { name: "wal-archive", mountPath: POSTGRES_CONTAINER.walArchiveDir, readOnly: true },
      { name: "pgbackrest-config", mountPath: pgbackrestConfigDir, readOnly: true },
      { name: "scratch", mountPath: RESTORE_SCRATCH_DIR },
      { name: "filestore", mountPath: ERP_DATA_DIR },
    ],
  });
  return new k8s.batch.v1.Job(
    name,
    {
      metadata: {
        name: jobName,
        namespace,
        labels,
        // A failed Job is replaced (the restore resumed) by the next `pulumi up`.
        annotations: { "pulumi.com/replaceUnready": "true" },
      },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: args.activeDeadlineSeconds ?? 12 * 3600,
        // No ttlSecondsAfterFinished: the finished Job is the record that this target was restored.
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: "Never",
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            ...(args.imagePullSecrets && args.imagePullSecrets.length > 0
              ? { imagePullSecrets: args.imagePullSecrets.map((s) => ({ name: s })) }
              : {}),
            // The filestore's owner (hard links of the ERP's files), in postgres' group: pgBackRest's
            // repository files are postgres:postgres 0640. No fsGroup: it would chown the repository.
            securityContext: opsPodSecurityContext(args.filestoreOwner, [OPS_IMAGE.gid]),
            // The repository volumes are ReadWriteOnce, attached to the PostgreSQL pod's node: a pod
            // elsewhere could never mount them. Required affinity puts the Job on that node.
            affinity: {
              podAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: [
                  {
                    labelSelector: {
                      matchLabels: {
                        ...(postgres.podLabels ?? POSTGRES_LABELS),
                        "statefulset.kubernetes.io/pod-name": pod,
                      },
                    },
                    topologyKey: "kubernetes.io/hostname",
                  },
                ],
              },
            },
            volumes: [
              { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
              { name: "scratch", emptyDir: { sizeLimit: args.scratchSizeLimit } },
              {
                name: "backups",
                persistentVolumeClaim: { claimName: NAMES.postgresBackupsClaim, readOnly: true },
              },
              {
                name: "wal-archive",
                persistentVolumeClaim: { claimName: NAMES.postgresWalClaim, readOnly: true },
              },
              {
                name: "pgbackrest-config",
                secret: {
                  secretName: args.pgbackrestConfigSecret.name,
                  items: [
                    { key: args.pgbackrestConfigSecret.key, path: "pgbackrest.conf" },
                    ...(args.pgbackrestConfigSecret.extraKeys ?? []).map((key) => ({ key, path: key })),
                  ],
                  // Readable by the container's user (no fsGroup, see above); only this pod mounts it.
                  defaultMode: 0o444,
                },
              },
              { name: "filestore", persistentVolumeClaim: { claimName: NAMES.filestore } },
            ],
            containers: [container],
          },
        },
      },
    },
    { customTimeouts: { create: "13h", update: "13h" }, deleteBeforeReplace: true, ...opts },
  );
}
