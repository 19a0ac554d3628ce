/**
 * PostgreSQL 15 on the Kubernetes target
 * (docs/architecture.md#kubernetes-and-docker): one pod of a StatefulSet running the image
 * built from docker/postgres (PostgreSQL 15 + pgBackRest), its three volumes, its configuration
 * (rendered from the templates every target runs: postgresql.conf, pg_hba.conf and pg_ident.conf in
 * a ConfigMap; pgbackrest.conf, which carries the repository's passphrase, in the Secret), the
 * superuser's, replication and monitoring passwords, a postgres_exporter sidecar, a headless
 * Service and a NetworkPolicy.
 *
 * Storage: plain PersistentVolumeClaims (not volumeClaimTemplates, which a StatefulSet never lets
 * change). Growing a volume is a config change: the claim's requested size is updated in place and
 * the storage driver expands the volume — the StorageClass must have `allowVolumeExpansion: true`;
 * Kubernetes refuses to shrink a claim.
 *
 * Rotation: changing `rotation` makes new superuser, replication, monitoring (and ERP role)
 * passwords. The pod is NOT restarted — sessions stay open: the kubelet updates the mounted Secret's
 * files and the pod's `loomworks-sync-roles` sidecar applies them to the server within a minute or
 * two; whatever connects with a new password waits for it first (dynamic-providers/postgresLogin.ts
 * in the platform, the ERP image's entrypoint for its pods).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { OffsiteRepo } from "../../lib/pg/offsite";
import { RandomSecret, rotationKeepers } from "../../dynamic-providers/randomSecret";
import { POSTGRES_CONTAINER } from "../docker/config";
import {
  ERP_LABELS,
  NAMES,
  OPS_LABELS,
  POSTGRES_EXPORTER_PORT,
  POSTGRES_LABELS,
  POSTGRES_PORT,
  POSTGRES_ROLES,
  POSTGRES_SECRET_KEYS,
  UPDATE_LABELS,
  contentHash,
  objectLabels,
  restrictedContainerSecurity,
} from "./common";
import {
  DEFAULT_EXPORTER_IMAGE,
  PGBACKREST_CONFIG_DIR,
  OFFSITE_SFTP_KEY,
  PGBACKREST_CONFIG_KEY,
  PG_CONFIG_DIR,
  PG_CONFIG_FILES,
  PG_SECRETS_DIR,
  POSTGRES_ROLES_CONTAINER,
  POSTGRES_STANZA,
  postgresArgs,
  renderKubernetesPgBackRestConf,
  renderKubernetesPgHba,
  renderKubernetesPgIdent,
  renderKubernetesPostgresqlConf,
} from "./postgresConfig";

type Container = k8s.types.input.core.v1.Container;

export interface PostgresResources {
  requests: { cpu: string; memory: string };
  limits: { cpu: string; memory: string };
}

export interface PostgresStorage {
  /** Must allow volume expansion for the sizes to be raised later. Default: the cluster's default class. */
  storageClass?: string;
  dataSize?: string;
  walSize?: string;
  backupsSize?: string;
}

export interface PostgresServerArgs {
  /** The platform's namespace (OdooDeployment.namespace). */
  namespace: pulumi.Input<string>;
  /** The image built from docker/postgres. */
  image: string;
  /** The data, WAL-archive and backup volumes (default POSTGRES_DEFAULTS.storage). */
  storage?: PostgresStorage;
  /** Of the PostgreSQL container (default POSTGRES_DEFAULTS.resources); the memory settings follow the limit. */
  resources?: PostgresResources;
  /** platform.credentialRotation: changing it makes new superuser, replication and monitoring passwords. */
  rotation?: string;
  /** The backup repository's passphrase (secret); generated once when absent. */
  encryptionPassphrase?: pulumi.Input<string>;
  /** archive_timeout (loomworks:platform.archiveTimeoutSeconds). */
  archiveTimeoutSeconds: number;
  /** Full backups kept by pgBackRest (loomworks:platform.backups.retentionFull). */
  retentionFull: number;
  /** The offsite repository (repo2; s3 or sftp), with the container's key path (OFFSITE_CONTAINER). */
  offsite?: OffsiteRepo;
  /** Default DEFAULT_EXPORTER_IMAGE. */
  exporterImage?: string;
  /** Namespace of the Prometheus that scrapes the exporter (port 9187); none: no scraping allowed. */
  monitoringNamespace?: string;
  imagePullSecrets?: string[];
  /** Where the pod may be scheduled. */
  nodeSelector?: Record<string, string>;
  tolerations?: k8s.types.input.core.v1.Toleration[];
  /** max_connections (default 100). */
  maxConnections?: number;
  /**
   * The ERP's own login role, kept by the role-sync sidecar (created at initdb, password applied on
   * every change): the ERP can log in before `pulumi up` ever reaches the server.
   */
  erpRole?: { name: string; password: pulumi.Input<string> };
}

/** The offsite repository with its secrets replaced: what the pod's config hash covers. */
function offsiteShape(o: OffsiteRepo): OffsiteRepo {
  const hidden = (v: string | undefined) => (v === undefined ? undefined : "x");
  const shape: OffsiteRepo =
    o.type === "s3"
      ? { ...o, accessKey: "x", secretKey: "x" }
      : o.type === "sftp"
        ? { ...o, privateKey: hidden(o.privateKey) }
        : { ...o };
  return { ...shape, encryptionPassphrase: hidden(o.encryptionPassphrase) };
}

export const POSTGRES_DEFAULTS = {
  storage: { dataSize: "100Gi", walSize: "50Gi", backupsSize: "200Gi" },
  resources: { requests: { cpu: "1", memory: "2Gi" }, limits: { cpu: "2", memory: "4Gi" } },
} as const;

/** The postgres uid and gid of the image (the Debian postgres package's). */
export const POSTGRES_UID = 999;

/** Pod template annotation: the configuration's content hash (a change rolls the pod). */
export const CONFIG_HASH_ANNOTATION = "loomworks/config-hash";

export class PostgresServer extends pulumi.ComponentResource {
  /** `postgres.<namespace>.svc`: the headless Service's name (its one pod's address). */
  readonly serviceHost: pulumi.Output<string>;
  readonly port: pulumi.Output<number>;
  /** Secret. */
  readonly superuserPassword: pulumi.Output<string>;
  readonly statefulSet: k8s.apps.v1.StatefulSet;
  readonly service: k8s.core.v1.Service;
  readonly secretName: string = NAMES.postgresSecrets;
  /** The ConfigMap's postgresql.conf. */
  readonly postgresqlConf: string;

  constructor(name: string, args: PostgresServerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("loomworks:kubernetes:PostgresServer", name, {}, opts);
    const parent = { parent: this };
    const namespace = args.namespace;
    const labels = objectLabels(POSTGRES_LABELS);
    const storage = {
      storageClass: args.storage?.storageClass,
      dataSize: args.storage?.dataSize ?? POSTGRES_DEFAULTS.storage.dataSize,
      walSize: args.storage?.walSize ?? POSTGRES_DEFAULTS.storage.walSize,
      backupsSize: args.storage?.backupsSize ?? POSTGRES_DEFAULTS.storage.backupsSize,
    };
    const resources = args.resources ?? POSTGRES_DEFAULTS.resources;

    // --- configuration (first: it validates the memory limit before any resource exists) ------
    this.postgresqlConf = renderKubernetesPostgresqlConf({
      archiveTimeoutSeconds: args.archiveTimeoutSeconds,
      memoryLimit: resources.limits.memory,
      ...(args.maxConnections ? { maxConnections: args.maxConnections } : {}),
    });

    // --- secrets -----------------------------------------------------------------------------
    const rotated = (suffix: string) =>
      new RandomSecret(
        `${name}-${suffix}`,
        { length: 32, keepers: rotationKeepers({ platform: args.rotation }) },
        parent,
      );
    const superuser = rotated("superuser-password");
    const replication = rotated("replication-password");
    // Not rotated: postgres_exporter reads its password file once, at start, and the pod is not
    // restarted by a rotation; the role has pg_monitor only and pg_hba admits it from inside the pod only.
    const monitor = new RandomSecret(`${name}-monitor-password`, { length: 32 }, parent);
    // Never rotated: the passphrase encrypts every backup and archived WAL segment of the
    // repository; a new one would leave the existing backups unreadable.
    const cipherPass =
      args.encryptionPassphrase ??
      new RandomSecret(`${name}-backup-cipher-pass`, { length: 48 }, parent).result;
    this.superuserPassword = pulumi.secret(superuser.result);

    const pgbackrestConf = pulumi.output(cipherPass).apply((encryptionPassphrase) =>
      renderKubernetesPgBackRestConf({
        retentionFull: args.retentionFull,
        encryptionPassphrase,
        ...(args.offsite ? { offsite: args.offsite } : {}),
      }),
    );
    const sftpKey = args.offsite?.type === "sftp" ? args.offsite.privateKey : undefined;
    const secretValues: Record<string, pulumi.Input<string>> = {
      [POSTGRES_SECRET_KEYS.superuserPassword]: superuser.result,
      [POSTGRES_SECRET_KEYS.replicationPassword]: replication.result,
      [POSTGRES_SECRET_KEYS.monitorPassword]: monitor.result,
      [POSTGRES_SECRET_KEYS.backupCipherPass]: cipherPass,
      [PGBACKREST_CONFIG_KEY]: pgbackrestConf,
      ...(sftpKey ? { [OFFSITE_SFTP_KEY]: sftpKey } : {}),
      ...(args.erpRole ? { [POSTGRES_SECRET_KEYS.erpPassword]: args.erpRole.password } : {}),
    };
    const stringData: Record<string, pulumi.Output<string>> = {};
    for (const [key, value] of Object.entries(secretValues)) stringData[key] = pulumi.secret(value);
    const secret = new k8s.core.v1.Secret(
      `${name}-secrets`,
      { metadata: { name: NAMES.postgresSecrets, namespace, labels }, type: "Opaque", stringData },
      parent,
    );

    const configData = {
      [PG_CONFIG_FILES.postgresql]: this.postgresqlConf,
      [PG_CONFIG_FILES.hba]: renderKubernetesPgHba(),
      [PG_CONFIG_FILES.ident]: renderKubernetesPgIdent(),
    };
    // The Secret's pgbackrest.conf is covered by its shape (the passphrase replaced), not its value.
    const configHash = contentHash(
      JSON.stringify([
        configData,
        renderKubernetesPgBackRestConf({
          retentionFull: args.retentionFull,
          encryptionPassphrase: "x",
          ...(args.offsite ? { offsite: offsiteShape(args.offsite) } : {}),
        }),
      ]),
    );
    const configMapName = `${NAMES.postgresConfigPrefix}-${configHash}`;
    const configMap = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      { metadata: { name: configMapName, namespace, labels }, data: configData },
      parent,
    );

    // --- volumes -----------------------------------------------------------------------------
    // retainOnDelete rather than protect: `pulumi destroy` completes and leaves the claims (and
    // their volumes) in the cluster, where protect would fail the whole destroy. A change that
    // would replace a claim (e.g. another storage class) fails on the existing name instead of
    // deleting data. skipAwait: with a WaitForFirstConsumer class a claim binds only once the pod
    // exists; the StatefulSet's readiness is what `pulumi up` waits for.
    const claim = (suffix: string, claimName: string, size: string) =>
      new k8s.core.v1.PersistentVolumeClaim(
        `${name}-${suffix}`,
        {
          metadata: {
            name: claimName,
            namespace,
            labels,
            annotations: { "pulumi.com/skipAwait": "true" },
          },
          spec: {
            accessModes: ["ReadWriteOnce"],
            ...(storage.storageClass ? { storageClassName: storage.storageClass } : {}),
            resources: { requests: { storage: size } },
          },
        },
        { parent: this, retainOnDelete: true },
      );
    const claims = [
      claim("data", NAMES.postgresDataClaim, storage.dataSize),
      claim("wal-archive", NAMES.postgresWalClaim, storage.walSize),
      claim("backups", NAMES.postgresBackupsClaim, storage.backupsSize),
    ];

    // --- the pod -----------------------------------------------------------------------------
    const passwordItems = [
      POSTGRES_SECRET_KEYS.superuserPassword,
      POSTGRES_SECRET_KEYS.replicationPassword,
      POSTGRES_SECRET_KEYS.monitorPassword,
      ...(args.erpRole ? [POSTGRES_SECRET_KEYS.erpPassword] : []),
    ].map((key) => ({ key, path: key }));
    const erpRoleEnv = args.erpRole ? [{ name: "LOOMWORKS_ERP_ROLE", value: args.erpRole.name }] : [];
    const secretsMount = { name: "passwords", mountPath: PG_SECRETS_DIR, readOnly: true };
    const socketMount = { name: "socket", mountPath: POSTGRES_CONTAINER.socketDir };
    const tmpMount = { name: "tmp", mountPath: "/tmp" };
    const isReady = (host: string) => ({
      exec: { command: ["pg_isready", "-q", "-h", host, "-p", String(POSTGRES_PORT), "-U", "postgres"] },
    });

    const postgres: Container = {
      name: NAMES.postgresContainer,
      image: args.image,
      args: postgresArgs(),
      env: [
        { name: "PGDATA", value: POSTGRES_CONTAINER.dataDir },
        {
          name: "POSTGRES_PASSWORD_FILE",
          value: `${PG_SECRETS_DIR}/${POSTGRES_SECRET_KEYS.superuserPassword}`,
        },
        { name: "LOOMWORKS_STANZA", value: POSTGRES_STANZA },
        // The initdb hook creates the replication and monitoring roles from these files.
        { name: "LOOMWORKS_SECRETS_DIR", value: PG_SECRETS_DIR },
        ...erpRoleEnv,
      ],
      ports: [{ name: "postgresql", containerPort: POSTGRES_PORT, protocol: "TCP" }],
      resources: {
        requests: { ...resources.requests },
        limits: { ...resources.limits },
      },
      // initdb on an empty volume, or a long WAL replay after a crash: up to an hour to start.
      startupProbe: { ...isReady("127.0.0.1"), periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 360 },
      readinessProbe: { ...isReady("127.0.0.1"), periodSeconds: 10, timeoutSeconds: 5, failureThreshold: 3 },
      // Only a dead or hung postmaster: it keeps accepting TCP connections during the crash
      // recovery that follows a backend crash, which pg_isready would report as not ready.
      livenessProbe: {
        tcpSocket: { port: POSTGRES_PORT },
        initialDelaySeconds: 30,
        periodSeconds: 20,
        timeoutSeconds: 5,
        failureThreshold: 6,
      },
      // A fast shutdown (the image's STOPSIGNAL is SIGINT, but not every runtime honours it).
      lifecycle: {
        preStop: {
          exec: {
            command: ["pg_ctl", "stop", "-D", POSTGRES_CONTAINER.dataDir, "-m", "fast", "-w", "-t", "100"],
          },
        },
      },
      securityContext: restrictedContainerSecurity(),
      volumeMounts: [
        { name: "data", mountPath: POSTGRES_CONTAINER.volumeDir },
        { name: "backups", mountPath: POSTGRES_CONTAINER.repoDir },
        { name: "wal-archive", mountPath: POSTGRES_CONTAINER.walArchiveDir },
        { name: "config", mountPath: PG_CONFIG_DIR, readOnly: true },
        { name: "pgbackrest-config", mountPath: PGBACKREST_CONFIG_DIR, readOnly: true },
        secretsMount,
        socketMount,
        tmpMount,
        { name: "pgbackrest-spool", mountPath: POSTGRES_CONTAINER.spoolDir },
        { name: "pgbackrest-log", mountPath: POSTGRES_CONTAINER.logDir },
        { name: "shm", mountPath: "/dev/shm" },
      ],
    };

    const roles: Container = {
      name: POSTGRES_ROLES_CONTAINER,
      image: args.image,
      command: ["loomworks-sync-roles"],
      env: [
        { name: "LOOMWORKS_SECRETS_DIR", value: PG_SECRETS_DIR },
        { name: "LOOMWORKS_SOCKET_DIR", value: POSTGRES_CONTAINER.socketDir },
        { name: "LOOMWORKS_REPLICATION_ROLE", value: POSTGRES_ROLES.replication },
        { name: "LOOMWORKS_MONITOR_ROLE", value: POSTGRES_ROLES.monitor },
        ...erpRoleEnv,
      ],
      // Ready once it has applied the mounted Secret's passwords since the pod started.
      readinessProbe: {
        exec: { command: ["loomworks-sync-roles", "--check"] },
        periodSeconds: 10,
        timeoutSeconds: 5,
      },
      resources: { requests: { cpu: "10m", memory: "16Mi" }, limits: { cpu: "100m", memory: "64Mi" } },
      securityContext: restrictedContainerSecurity(),
      volumeMounts: [secretsMount, socketMount, tmpMount],
    };

    const exporter: Container = {
      name: NAMES.postgresExporterContainer,
      image: args.exporterImage ?? DEFAULT_EXPORTER_IMAGE,
      args: [`--web.listen-address=:${POSTGRES_EXPORTER_PORT}`, "--log.format=json"],
      env: [
        { name: "DATA_SOURCE_URI", value: `127.0.0.1:${POSTGRES_PORT}/postgres?sslmode=disable` },
        { name: "DATA_SOURCE_USER", value: POSTGRES_ROLES.monitor },
        {
          name: "DATA_SOURCE_PASS_FILE",
          value: `${PG_SECRETS_DIR}/${POSTGRES_SECRET_KEYS.monitorPassword}`,
        },
      ],
      ports: [{ name: "metrics", containerPort: POSTGRES_EXPORTER_PORT, protocol: "TCP" }],
      // The port, not /metrics: a scrape queries the database, whose outage must not restart the exporter.
      readinessProbe: { tcpSocket: { port: POSTGRES_EXPORTER_PORT }, periodSeconds: 10, timeoutSeconds: 3 },
      livenessProbe: { tcpSocket: { port: POSTGRES_EXPORTER_PORT }, periodSeconds: 30, timeoutSeconds: 3 },
      resources: { requests: { cpu: "20m", memory: "32Mi" }, limits: { cpu: "200m", memory: "128Mi" } },
      securityContext: restrictedContainerSecurity(),
      volumeMounts: [secretsMount],
    };

    this.statefulSet = new k8s.apps.v1.StatefulSet(
      `${name}-statefulset`,
      {
        metadata: { name: NAMES.postgres, namespace, labels },
        spec: {
          serviceName: NAMES.postgres,
          replicas: 1,
          podManagementPolicy: "OrderedReady",
          updateStrategy: { type: "RollingUpdate" },
          selector: { matchLabels: POSTGRES_LABELS },
          template: {
            metadata: {
              labels,
              annotations: { [CONFIG_HASH_ANNOTATION]: configHash },
            },
            spec: {
              automountServiceAccountToken: false,
              enableServiceLinks: false,
              ...(args.imagePullSecrets?.length
                ? { imagePullSecrets: args.imagePullSecrets.map((s) => ({ name: s })) }
                : {}),
              ...(args.nodeSelector ? { nodeSelector: args.nodeSelector } : {}),
              ...(args.tolerations ? { tolerations: args.tolerations } : {}),
              securityContext: {
                runAsNonRoot: true,
                runAsUser: POSTGRES_UID,
                runAsGroup: POSTGRES_UID,
                fsGroup: POSTGRES_UID,
                // Volumes of hundreds of GiB: chown them only when their root is not the pod's yet.
                fsGroupChangePolicy: "OnRootMismatch",
                seccompProfile: { type: "RuntimeDefault" },
              },
              // Room for the fast shutdown (preStop) to finish its checkpoint.
              terminationGracePeriodSeconds: 120,
              containers: [postgres, roles, exporter],
              volumes: [
                { name: "data", persistentVolumeClaim: { claimName: NAMES.postgresDataClaim } },
                { name: "wal-archive", persistentVolumeClaim: { claimName: NAMES.postgresWalClaim } },
                { name: "backups", persistentVolumeClaim: { claimName: NAMES.postgresBackupsClaim } },
                { name: "config", configMap: { name: configMapName } },
                {
                  name: "pgbackrest-config",
                  secret: {
                    secretName: NAMES.postgresSecrets,
                    items: [
                      { key: PGBACKREST_CONFIG_KEY, path: PGBACKREST_CONFIG_KEY },
                      ...(sftpKey ? [{ key: OFFSITE_SFTP_KEY, path: OFFSITE_SFTP_KEY }] : []),
                    ],
                    defaultMode: 0o440,
                  },
                },
                {
                  name: "passwords",
                  secret: { secretName: NAMES.postgresSecrets, items: passwordItems, defaultMode: 0o440 },
                },
                { name: "socket", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
                { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
                { name: "pgbackrest-spool", emptyDir: { sizeLimit: "5Gi" } },
                { name: "pgbackrest-log", emptyDir: { sizeLimit: "1Gi" } },
                // Parallel queries' shared memory; the runtime's default /dev/shm is 64 MiB.
                { name: "shm", emptyDir: { medium: "Memory", sizeLimit: "256Mi" } },
              ],
            },
          },
        },
      },
      {
        parent: this,
        dependsOn: [secret, configMap, ...claims],
        // initdb on a new volume, or WAL replay after an unclean stop, may take long.
        customTimeouts: { create: "1h", update: "1h" },
      },
    );

    this.service = new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: { name: NAMES.postgres, namespace, labels },
        spec: {
          clusterIP: "None",
          selector: POSTGRES_LABELS,
          publishNotReadyAddresses: false,
          ports: [
            { name: "postgresql", port: POSTGRES_PORT, targetPort: "postgresql", protocol: "TCP" },
            { name: "metrics", port: POSTGRES_EXPORTER_PORT, targetPort: "metrics", protocol: "TCP" },
          ],
        },
      },
      { parent: this, customTimeouts: { create: "1h" } },
    );

    this.networkPolicy(name, namespace, args.monitoringNamespace);

    this.serviceHost = pulumi.interpolate`${NAMES.postgres}.${namespace}.svc`;
    this.port = pulumi.output(POSTGRES_PORT);
    this.registerOutputs({ serviceHost: this.serviceHost, port: this.port });
  }

  /**
   * The superuser's DSN through `endpoint` (`host:port`, e.g. a `kubectl port-forward` address),
   * secret. It resolves only once the StatefulSet is ready, so resources using it wait for the server.
   */
  adminDsn(endpoint: string): pulumi.Output<string> {
    return pulumi.secret(
      pulumi
        .all([this.superuserPassword, this.statefulSet.metadata])
        .apply(([password]) => `postgres://postgres:${password}@${endpoint}/postgres`),
    );
  }

  private networkPolicy(name: string, namespace: pulumi.Input<string>, monitoringNamespace?: string): void {
    const tcp = (port: number) => ({ protocol: "TCP", port });
    const pods = (selector: Record<string, string>) => ({ podSelector: { matchLabels: selector } });
    new k8s.networking.v1.NetworkPolicy(
      `${name}-network-policy`,
      {
        metadata: { name: NAMES.postgres, namespace, labels: objectLabels(POSTGRES_LABELS) },
        spec: {
          podSelector: { matchLabels: POSTGRES_LABELS },
          policyTypes: ["Ingress", "Egress"],
          ingress: [
            {
              from: [pods(ERP_LABELS), pods(UPDATE_LABELS), pods(OPS_LABELS)],
              ports: [tcp(POSTGRES_PORT)],
            },
            ...(monitoringNamespace
              ? [
                  {
                    from: [
                      {
                        namespaceSelector: {
                          matchLabels: { "kubernetes.io/metadata.name": monitoringNamespace },
                        },
                      },
                    ],
                    ports: [tcp(POSTGRES_EXPORTER_PORT)],
                  },
                ]
              : []),
          ],
          // DNS only: the WAL archive and the backups are volumes of the pod.
          egress: [{ ports: [{ protocol: "UDP", port: 53 }, tcp(53)] }],
        },
      },
      { parent: this },
    );
  }
}
