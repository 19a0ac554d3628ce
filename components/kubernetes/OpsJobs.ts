/**
 * The platform's scheduled jobs on the Kubernetes target
 * (docs/architecture.md#kubernetes-and-docker): one CronJob per job of
 * the local target's scheduler (lib/backup/schedule-defaults.ts, same `platform.backups.schedule`
 * shape and defaults, UTC), each running `node bin/infra/ops/jobs.js <command>` in the ops image
 * (docker/ops/Dockerfile) with JSON logs.
 *
 * Where pgBackRest runs: `backup`, `expire` and `verify` must run on the repository host, which
 * here is the PostgreSQL pod (it has the data directory and the repository and WAL-archive
 * volumes, both ReadWriteOnce). So the jobs do not mount the repository: their `pgbackrest` is a
 * wrapper (docker/ops/pgbackrest-in-postgres-pod.sh) that runs pgbackrest inside that pod through
 * the Kubernetes exec API, the approach established PostgreSQL operators take for their backup
 * jobs. The ops ServiceAccount may therefore do exactly two things: get the pod `postgres-0` and
 * open `pods/exec` on it (`create`, and `get`: kubectl ≥ 1.30 opens exec streams over WebSockets,
 * an HTTP GET that API servers before 1.35 authorize as the `get` verb).
 *
 * No secret is in a plain value: the DSN in the ConfigMap has no password; the superuser password
 * (`PGPASSWORD`) and the repository passphrase come from the PostgreSQL Secret by secretKeyRef, the
 * notification webhook's URL (`platform.notify`, it may carry a token) from a Secret of its own.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { OPS_IMAGE, opsJobSpecs } from "../../lib/backup/opsJobs";
import type { BackupSchedule, SparesJob } from "../../lib/backup/schedule-defaults";
import { NOTIFY_ENV, PUSHGATEWAY_ENV } from "../../lib/notify/settings";
import { adminDsn } from "../../lib/pg/client";
import { POSTGRES_CONTAINER } from "../docker/config";
import {
  LABEL_OPS_JOB,
  NAMES,
  NOTIFY_SECRET_KEY,
  OPS_LABELS,
  POSTGRES_LABELS,
  POSTGRES_PORT,
  POSTGRES_SECRET_KEYS,
  contentHash,
  objectLabels,
  restrictedContainerSecurity,
} from "./common";
import { ERP_DATA_DIR } from "./erpPod";

type Container = k8s.types.input.core.v1.Container;
type EnvVar = k8s.types.input.core.v1.EnvVar;
type ResourceRequirements = { requests?: Record<string, string>; limits?: Record<string, string> };

export { DEFAULT_SYNC_SCHEDULE, OPS_IMAGE, opsJobSpecs, type OpsJobSpec } from "../../lib/backup/opsJobs";

/** Where the ops pods mount the ERP's ReadWriteMany filestore volume (as the ERP does). */
export const OPS_FILESTORE_ROOT = `${ERP_DATA_DIR}/filestore`;
/** Filestore copies of snapshots: on the same volume, so that they are hard links. */
export const OPS_SNAPSHOT_ROOT = `${ERP_DATA_DIR}/snapshots`;

export const DEFAULT_OPS_RESOURCES: ResourceRequirements = {
  requests: { cpu: "100m", memory: "256Mi" },
  limits: { memory: "1Gi" },
};

/** What the jobs need to know about the PostgreSQL server (components/kubernetes/PostgresServer.ts). */
export interface OpsPostgres {
  /** Headless Service (default NAMES.postgres): host `<service>.<namespace>.svc`. */
  service?: string;
  port?: number;
  /** The pod pgBackRest runs in (default NAMES.postgresPod) and its container. */
  pod?: string;
  container?: string;
  /** The Secret with POSTGRES_SECRET_KEYS (default NAMES.postgresSecrets). */
  secretName?: string;
  /** Labels of the PostgreSQL pod (default POSTGRES_LABELS). */
  podLabels?: Record<string, string>;
  stanza: string;
  retentionFull: number;
}

/** How the ops pods reach the notification webhook, without the URL (it is in NAMES.opsNotify). */
export interface OpsNotifySettings {
  /** The body's `stack`. */
  stack?: string;
  timeoutSeconds?: number;
  attempts?: number;
}

/** `platform.notify` on Kubernetes. */
export interface OpsNotify extends OpsNotifySettings {
  /** Secret: kept in the Secret NAMES.opsNotify only, read by secretKeyRef. */
  webhookUrl: pulumi.Input<string>;
  /** The URL's port: the ops pods' egress allows it (to any address, like a webhook's host). */
  port: number;
}

/** The non-root user and group of the ERP, owner of the filestore's files. */
export interface FilestoreOwner {
  uid: number;
  gid: number;
}

/** Where the ops pods (scheduled jobs, restores) run and from which image. */
export interface OpsPods {
  /** The platform's namespace (PostgreSQL's and the ERP's). */
  namespace: string;
  /** The ops image (docker/ops/Dockerfile), how it is pulled and with which registry Secrets. */
  image: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  imagePullSecrets?: readonly string[];
}

export interface OpsJobsArgs extends OpsPods {
  /** The server the jobs back up, expire, verify and check. */
  postgres: OpsPostgres;
  /** `platform.backups.schedule` (cron, UTC); unset keys take DEFAULT_BACKUP_SCHEDULE's. */
  schedule?: Partial<BackupSchedule>;
  /** `platform.quotas.checkSchedule` (default every 10 minutes). */
  quotaCheckSchedule?: string;
  /** `platform.undo.retentionDays`: the quota check prunes older undo logs. */
  undoRetentionDays: number;
  /** Records the repository's backups in the registry (default hourly at :30). */
  syncSchedule?: string;
  /** `platform.provisioning`: a `spares` CronJob when its count is above 0. */
  spares?: SparesJob;
  /** The ERP's user and group: the jobs that touch the filestore run as them. */
  filestoreOwner: FilestoreOwner;
  /** Of each job's container (default DEFAULT_OPS_RESOURCES). */
  resources?: ResourceRequirements;
  /** Suspends every CronJob (e.g. during a migration). */
  suspend?: boolean;
  /**
   * Where the Kubernetes API server is, for the egress policy of the jobs that exec into the
   * PostgreSQL pod (the namespace denies all egress by default). Default: any address on 443 and
   * 6443; narrow `cidrs` to the control plane's addresses where they are known.
   */
  apiServer?: { cidrs?: readonly string[]; ports?: readonly number[] };
  /** Operator notifications: absent, none are sent. */
  notify?: OpsNotify;
  /** `monitoring.pushgatewayUrl`: the jobs push their outcomes there (the job alerts); absent, nothing. */
  pushgatewayUrl?: string;
}

const HOUR = 3600;

/** The superuser DSN the jobs use: no password (PGPASSWORD comes from the Secret). */
export function opsAdminDsn(namespace: string, postgres: OpsPostgres): string {
  return adminDsn({
    host: `${postgres.service ?? NAMES.postgres}.${namespace}.svc`,
    port: postgres.port ?? POSTGRES_PORT,
    user: "postgres",
  });
}

/** Non-secret settings of every ops pod (the ConfigMap; jobs.js's KUBERNETES_ENV). */
export function opsSettings(namespace: string, postgres: OpsPostgres): Record<string, string> {
  return {
    LOOMWORKS_ADMIN_DSN: opsAdminDsn(namespace, postgres),
    LOOMWORKS_STANZA: postgres.stanza,
    LOOMWORKS_RETENTION_FULL: String(postgres.retentionFull),
    LOOMWORKS_PGBACKREST_CONFIG: POSTGRES_CONTAINER.pgbackrestConfig,
    LOOMWORKS_PGBACKREST: OPS_IMAGE.pgbackrestWrapper,
    LOOMWORKS_POSTGRES_POD: postgres.pod ?? NAMES.postgresPod,
    LOOMWORKS_POSTGRES_CONTAINER: postgres.container ?? NAMES.postgresContainer,
    LOOMWORKS_FILESTORE_ROOT: OPS_FILESTORE_ROOT,
    LOOMWORKS_SNAPSHOT_ROOT: OPS_SNAPSHOT_ROOT,
    LOOMWORKS_LOG_FORMAT: "json",
    // kubectl keeps a discovery cache under $HOME; the root filesystem is read-only.
    HOME: "/tmp",
  };
}

/** The secrets every ops container gets, by reference only. */
export function opsSecretEnv(postgres: OpsPostgres): EnvVar[] {
  const secretName = postgres.secretName ?? NAMES.postgresSecrets;
  return [
    {
      name: "PGPASSWORD",
      valueFrom: { secretKeyRef: { name: secretName, key: POSTGRES_SECRET_KEYS.superuserPassword } },
    },
    {
      // Only so that it is redacted from every log line; absent when the repository is not encrypted.
      name: "LOOMWORKS_BACKUP_CIPHER_PASS",
      valueFrom: {
        secretKeyRef: { name: secretName, key: POSTGRES_SECRET_KEYS.backupCipherPass, optional: true },
      },
    },
    { name: "LOOMWORKS_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
  ];
}

/** The notification settings of an ops container: the URL by secretKeyRef, the rest plain. */
export function opsNotifyEnv(settings: OpsNotifySettings): EnvVar[] {
  const plainValues: Array<[string, string | number | undefined]> = [
    [NOTIFY_ENV.stack, settings.stack],
    [NOTIFY_ENV.timeoutSeconds, settings.timeoutSeconds],
    [NOTIFY_ENV.attempts, settings.attempts],
  ];
  return [
    {
      name: NOTIFY_ENV.webhookUrl,
      valueFrom: { secretKeyRef: { name: NAMES.opsNotify, key: NOTIFY_SECRET_KEY } },
    },
    ...plainValues.flatMap(([name, value]) => (value === undefined ? [] : [{ name, value: String(value) }])),
  ];
}

/**
 * The Pushgateway of an ops container: a plain value (the config refuses user info in it), set on
 * the container like the rest of the pod-specific env rather than in the shared ConfigMap.
 */
export function opsPushgatewayEnv(url: string | undefined): EnvVar[] {
  return url ? [{ name: PUSHGATEWAY_ENV.url, value: url }] : [];
}

/** Egress of the ops pods to the Pushgateway's port: in the cluster (any namespace) or outside. */
export function pushgatewayEgress(url: string | undefined) {
  if (!url) return [];
  const u = new URL(url);
  const port = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  return [
    {
      to: [{ namespaceSelector: {} }, { ipBlock: { cidr: "0.0.0.0/0" } }, { ipBlock: { cidr: "::/0" } }],
      ports: [{ protocol: "TCP", port }],
    },
  ];
}

export function opsPodSecurityContext(user: { uid: number; gid: number }, supplementalGroups: number[] = []) {
  return {
    runAsNonRoot: true,
    runAsUser: user.uid,
    runAsGroup: user.gid,
    ...(supplementalGroups.length > 0 ? { supplementalGroups } : {}),
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** The container of an ops pod running `node bin/infra/ops/jobs.js <args>`. */
export function opsContainer(o: {
  name: string;
  image: string;
  imagePullPolicy?: string;
  args: pulumi.Input<pulumi.Input<string>[]>;
  /** The settings ConfigMap (envFrom); absent: `env` says everything. */
  configMapName?: pulumi.Input<string>;
  env: EnvVar[];
  resources: ResourceRequirements;
  volumeMounts: k8s.types.input.core.v1.VolumeMount[];
}): Container {
  return {
    name: o.name,
    image: o.image,
    ...(o.imagePullPolicy ? { imagePullPolicy: o.imagePullPolicy } : {}),
    command: ["node", OPS_IMAGE.jobsScript],
    args: o.args,
    workingDir: OPS_IMAGE.workdir,
    ...(o.configMapName ? { envFrom: [{ configMapRef: { name: o.configMapName } }] } : {}),
    env: o.env,
    resources: { requests: { ...o.resources.requests }, limits: { ...o.resources.limits } },
    securityContext: restrictedContainerSecurity(),
    volumeMounts: [{ name: "tmp", mountPath: "/tmp" }, ...o.volumeMounts],
  };
}

/** Scheduled jobs: ServiceAccount, Role + RoleBinding (exec into the PostgreSQL pod), ConfigMap, CronJobs. */
export class OpsJobs extends pulumi.ComponentResource {
  readonly serviceAccountName: string = NAMES.opsServiceAccount;
  readonly configMapName: string;
  /** CronJob names by job (`backup-full`, ...). */
  readonly cronJobNames: Record<string, string>;
  /** The Secret with the notification webhook's URL (restore Jobs read it too). */
  readonly notifySecret?: k8s.core.v1.Secret;

  constructor(name: string, args: OpsJobsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("loomworks:kubernetes:OpsJobs", name, {}, opts);
    const { namespace, postgres } = args;
    const pod = postgres.pod ?? NAMES.postgresPod;
    const labels = objectLabels(OPS_LABELS);

    const account = new k8s.core.v1.ServiceAccount(
      `${name}-account`,
      { metadata: { name: NAMES.opsServiceAccount, namespace, labels }, automountServiceAccountToken: false },
      { parent: this },
    );
    const role = new k8s.rbac.v1.Role(
      `${name}-exec-postgres`,
      {
        metadata: { name: NAMES.opsServiceAccount, namespace, labels },
        rules: [
          // kubectl exec reads the pod, then opens the exec stream: nothing else, on no other pod.
          { apiGroups: [""], resources: ["pods"], resourceNames: [pod], verbs: ["get"] },
          { apiGroups: [""], resources: ["pods/exec"], resourceNames: [pod], verbs: ["get", "create"] },
        ],
      },
      { parent: this },
    );
    const binding = new k8s.rbac.v1.RoleBinding(
      `${name}-exec-postgres`,
      {
        metadata: { name: NAMES.opsServiceAccount, namespace, labels },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: NAMES.opsServiceAccount },
        subjects: [{ kind: "ServiceAccount", name: NAMES.opsServiceAccount, namespace }],
      },
      { parent: this, dependsOn: [role, account] },
    );

    const settings = opsSettings(namespace, postgres);
    this.configMapName = `${NAMES.opsConfigPrefix}-${contentHash(JSON.stringify(settings))}`;
    const configMap = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      { metadata: { name: this.configMapName, namespace, labels }, data: settings },
      { parent: this },
    );

    // The namespace denies all egress (OdooDeployment's default-deny-all): the ops pods (scheduled
    // jobs and restores) reach PostgreSQL, and the API server for the exec into its pod.
    const notifySecret = args.notify
      ? new k8s.core.v1.Secret(
          `${name}-notify`,
          {
            metadata: { name: NAMES.opsNotify, namespace, labels },
            type: "Opaque",
            stringData: { [NOTIFY_SECRET_KEY]: pulumi.secret(args.notify.webhookUrl) },
          },
          { parent: this },
        )
      : undefined;
    const apiServer = args.apiServer ?? {};
    new k8s.networking.v1.NetworkPolicy(
      `${name}-egress`,
      {
        metadata: { name: "ops-egress", namespace, labels },
        spec: {
          podSelector: { matchLabels: OPS_LABELS },
          policyTypes: ["Egress"],
          egress: [
            {
              to: [{ podSelector: { matchLabels: postgres.podLabels ?? POSTGRES_LABELS } }],
              ports: [{ protocol: "TCP", port: postgres.port ?? POSTGRES_PORT }],
            },
            {
              to: (apiServer.cidrs ?? ["0.0.0.0/0", "::/0"]).map((cidr) => ({ ipBlock: { cidr } })),
              ports: (apiServer.ports ?? [443, 6443]).map((port) => ({ protocol: "TCP", port })),
            },
            ...(args.notify
              ? [
                  {
                    to: [{ ipBlock: { cidr: "0.0.0.0/0" } }, { ipBlock: { cidr: "::/0" } }],
                    ports: [{ protocol: "TCP", port: args.notify.port }],
                  },
                ]
              : []),
            ...pushgatewayEgress(args.pushgatewayUrl),
          ],
        },
      },
      { parent: this },
    );

    const resources = args.resources ?? DEFAULT_OPS_RESOURCES;
    const secretEnv = [
      ...opsSecretEnv(postgres),
      ...(args.notify ? opsNotifyEnv(args.notify) : []),
      ...opsPushgatewayEnv(args.pushgatewayUrl),
    ];
    this.notifySecret = notifySecret;
    this.cronJobNames = {};
    for (const spec of opsJobSpecs(args)) {
      const cronJobName = `loomworks-${spec.job}`;
      this.cronJobNames[spec.job] = cronJobName;
      const podLabels = objectLabels({ ...OPS_LABELS, [LABEL_OPS_JOB]: spec.job });
      // Filestore jobs run as the files' owner (hard links and sizes of the ERP's files).
      const user = spec.filestore ? args.filestoreOwner : { uid: OPS_IMAGE.uid, gid: OPS_IMAGE.gid };
      new k8s.batch.v1.CronJob(
        `${name}-${spec.job}`,
        {
          metadata: { name: cronJobName, namespace, labels: podLabels },
          spec: {
            schedule: spec.schedule,
            // The local scheduler's cron is UTC; so are these (not the controller's local time).
            timeZone: "Etc/UTC",
            concurrencyPolicy: "Forbid",
            startingDeadlineSeconds: spec.startingDeadlineSeconds,
            successfulJobsHistoryLimit: 3,
            failedJobsHistoryLimit: 3,
            suspend: args.suspend ?? false,
            jobTemplate: {
              metadata: { labels: podLabels },
              spec: {
                backoffLimit: spec.backoffLimit,
                activeDeadlineSeconds: spec.deadlineSeconds,
                // The history limits bound the count; this bounds the age (e.g. of a suspended job's last runs).
                ttlSecondsAfterFinished: 3 * 24 * HOUR,
                template: {
                  metadata: { labels: podLabels },
                  spec: {
                    serviceAccountName: NAMES.opsServiceAccount,
                    // Only the pod gets the token (kubectl exec), not every workload of the account.
                    automountServiceAccountToken: true,
                    enableServiceLinks: false,
                    // Never: a failed run leaves its pod (and log) for the failed-jobs history;
                    // OnFailure would restart it in place, at once, against the same pgBackRest lock.
                    restartPolicy: "Never",
                    ...(args.imagePullSecrets && args.imagePullSecrets.length > 0
                      ? { imagePullSecrets: args.imagePullSecrets.map((s) => ({ name: s })) }
                      : {}),
                    securityContext: opsPodSecurityContext(user),
                    volumes: [
                      { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
                      ...(spec.filestore
                        ? [{ name: "filestore", persistentVolumeClaim: { claimName: NAMES.filestore } }]
                        : []),
                    ],
                    containers: [
                      opsContainer({
                        name: spec.job,
                        image: args.image,
                        imagePullPolicy: args.imagePullPolicy,
                        args: spec.args,
                        configMapName: this.configMapName,
                        // pgbackrest in the PostgreSQL pod must not outlive the Job (a killed kubectl
                        // would leave it running, holding the stanza's lock for the next run).
                        env: [
                          ...secretEnv,
                          {
                            name: "LOOMWORKS_PGBACKREST_TIMEOUT_SECONDS",
                            value: String(spec.deadlineSeconds),
                          },
                        ],
                        resources,
                        volumeMounts: spec.filestore
                          ? [
                              {
                                name: "filestore",
                                mountPath: ERP_DATA_DIR,
                                readOnly: spec.filestore === "read",
                              },
                            ]
                          : [],
                      }),
                    ],
                  },
                },
              },
            },
          },
        },
        { parent: this, dependsOn: [configMap, binding, ...(notifySecret ? [notifySecret] : [])] },
      );
    }
    this.registerOutputs({ configMapName: this.configMapName, cronJobNames: this.cronJobNames });
  }
}
