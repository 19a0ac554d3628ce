/**
 * The Kubernetes target's scheduled jobs (OpsJobs) and restore Jobs (RestoreJob) under Pulumi
 * mocks (test/helpers/pulumi-mocks.ts): CronJob names, schedules (the stack's and the local target's
 * defaults), commands, bounds, RBAC limited to exec into the PostgreSQL pod, the restore Job's
 * mounts, affinity and name, secret handling (the password only by reference: every reference
 * resolved against a Secret holding it, the whole rendered tree scanned for it), and the schema of
 * every object. Also jobs.js's Kubernetes-mode helpers (DSN, pgBackRest configuration paths).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { beforeAll, describe, expect, it } from "vitest";
import { type K8sObject, isK8s, one } from "../helpers/k8s-objects";
import { assertValidK8sObject } from "../helpers/k8s-validate";
import { installMocks, plain, registered, type Registration } from "../helpers/pulumi-mocks";

const registrations = installMocks();

import {
  LABEL_OPS_JOB,
  NAMES,
  OPS_LABELS,
  POSTGRES_LABELS,
  POSTGRES_SECRET_KEYS,
} from "../../components/kubernetes/common";
import { OPS_IMAGE, OpsJobs, type OpsJobsArgs } from "../../components/kubernetes/OpsJobs";
import { RESTORE_SCRATCH_DIR, restoreJob, restoreJobName } from "../../components/kubernetes/RestoreJob";
import { POSTGRES_CONTAINER } from "../../components/docker/config";
import {
  kubernetesAdminDsn,
  restoreJobPgBackRestConf,
  stateDirForPgBackRestConfig,
} from "../../infra/ops/jobs";
import { parseCron } from "../../lib/backup/cron";
import {
  DEFAULT_BACKUP_SCHEDULE,
  DEFAULT_QUOTA_CHECK_SCHEDULE,
  DEFAULT_SPARES_SCHEDULE,
} from "../../lib/backup/schedule-defaults";
import { clusterPaths } from "../../lib/pg/paths";

const NS = "loomworks-prod";
const IMAGE = "registry.example.com/loomworks/ops:1.4.0";
const SUPERUSER_PASSWORD = "superuser-Pa55word-0123456789";
const CIPHER_PASS = "cipher-passphrase-9876543210";
const ERP_USER = { uid: 101, gid: 101 }; // the ERP image's user (lib/odoo/image.ts)

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    fieldRef?: { fieldPath: string };
  };
}

const objectsOf = (regs: Registration[]) => regs.filter(isK8s).map((r) => plain(r.inputs) as K8sObject);

async function build<T extends pulumi.Resource>(make: () => T): Promise<[T, K8sObject[]]> {
  const first = registrations.length;
  const resource = make();
  await registered(resource);
  return [resource, objectsOf(registrations.slice(first))];
}

/** The PostgreSQL Secret as PostgresServer declares it (the values these references must resolve to). */
function postgresSecret(): k8s.core.v1.Secret {
  return new k8s.core.v1.Secret("pg-secret", {
    metadata: { name: NAMES.postgresSecrets, namespace: NS },
    stringData: pulumi.secret({
      [POSTGRES_SECRET_KEYS.superuserPassword]: SUPERUSER_PASSWORD,
      [POSTGRES_SECRET_KEYS.backupCipherPass]: CIPHER_PASS,
    }),
  });
}

/** Every env var must be a plain non-secret value or a reference; references resolve in `secret`. */
function checkEnv(
  env: EnvVar[],
  secret: K8sObject,
  ownSettings: Record<string, string>,
): Record<string, string> {
  const resolved: Record<string, string> = { ...ownSettings };
  for (const e of env) {
    if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      expect(ref.name).toBe(secret.metadata.name);
      const value = secret.stringData?.[ref.key];
      expect(value, `${e.name} → ${ref.key}`).toBeDefined();
      resolved[e.name] = value as string;
    } else if (e.valueFrom?.fieldRef) {
      resolved[e.name] = `<${e.valueFrom.fieldRef.fieldPath}>`;
    } else {
      expect(e.value, e.name).toEqual(expect.any(String));
      resolved[e.name] = e.value as string;
    }
  }
  // The password reaches the jobs, but only through the Secret.
  expect(resolved.PGPASSWORD).toBe(SUPERUSER_PASSWORD);
  expect(resolved.LOOMWORKS_BACKUP_CIPHER_PASS).toBe(CIPHER_PASS);
  const dsn = new URL(resolved.LOOMWORKS_ADMIN_DSN);
  expect(dsn.password).toBe("");
  expect(`${dsn.username}@${dsn.host}`).toBe(`postgres@${NAMES.postgres}.${NS}.svc:5432`);
  expect(resolved.LOOMWORKS_LOG_FORMAT).toBe("json");
  expect(resolved.LOOMWORKS_STANZA).toBe("loomworks");
  return resolved;
}

const ARGS: OpsJobsArgs = {
  namespace: NS,
  image: IMAGE,
  imagePullPolicy: "IfNotPresent",
  postgres: { stanza: "loomworks", retentionFull: 3 },
  schedule: { full: "15 2 * * 6", autoSnapshots: "0 * * * *" },
  quotaCheckSchedule: "*/5 * * * *",
  undoRetentionDays: 14,
  filestoreOwner: ERP_USER,
};

describe("OpsJobs", () => {
  let objs: K8sObject[];
  let secret: K8sObject;
  let ops: OpsJobs;

  beforeAll(async () => {
    const [, secretObjs] = await build(postgresSecret);
    secret = secretObjs[0];
    [ops, objs] = await build(() => new OpsJobs("ops", ARGS));
  });

  const cronJobs = () => objs.filter((o) => o.kind === "CronJob");
  const podOf = (c: K8sObject) => c.spec.jobTemplate.spec.template.spec;

  it("declares the account, its Role and binding, the settings ConfigMap and one CronJob per job", () => {
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        `ConfigMap/${ops.configMapName}`,
        "CronJob/loomworks-backup-diff",
        "CronJob/loomworks-backup-full",
        "CronJob/loomworks-quota-check",
        "CronJob/loomworks-snapshot-auto",
        "CronJob/loomworks-sync",
        "CronJob/loomworks-verify",
        "NetworkPolicy/ops-egress",
        "Role/loomworks-ops",
        "RoleBinding/loomworks-ops",
        "ServiceAccount/loomworks-ops",
      ].sort(),
    );
    expect(ops.configMapName).toMatch(/^loomworks-ops-config-[0-9a-f]{10}$/);
    for (const o of objs) {
      expect(o.metadata.namespace).toBe(NS);
      expect(o.metadata.labels).toMatchObject(OPS_LABELS);
    }
  });

  it("grants exactly get on the pod postgres-0 and exec into it, to the ops account only", () => {
    const role = one(objs, "Role", NAMES.opsServiceAccount);
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["pods"], resourceNames: [NAMES.postgresPod], verbs: ["get"] },
      {
        apiGroups: [""],
        resources: ["pods/exec"],
        resourceNames: [NAMES.postgresPod],
        verbs: ["get", "create"],
      },
    ]);
    const binding = one(objs, "RoleBinding", NAMES.opsServiceAccount);
    expect(binding.roleRef).toEqual({
      apiGroup: "rbac.authorization.k8s.io",
      kind: "Role",
      name: "loomworks-ops",
    });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: "loomworks-ops", namespace: NS }]);
    expect(objs.some((o) => o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding")).toBe(false);
    // The token is mounted only into the jobs' pods, not into whatever else uses the account.
    expect(one(objs, "ServiceAccount", "loomworks-ops").automountServiceAccountToken).toBe(false);
  });

  it("lets the ops pods (jobs and restores) reach PostgreSQL and the API server only", () => {
    const policy = one(objs, "NetworkPolicy", "ops-egress");
    expect(policy.spec.podSelector).toEqual({ matchLabels: OPS_LABELS });
    expect(policy.spec.policyTypes).toEqual(["Egress"]);
    expect(policy.spec.egress).toEqual([
      { to: [{ podSelector: { matchLabels: POSTGRES_LABELS } }], ports: [{ protocol: "TCP", port: 5432 }] },
      {
        to: [{ ipBlock: { cidr: "0.0.0.0/0" } }, { ipBlock: { cidr: "::/0" } }],
        ports: [
          { protocol: "TCP", port: 443 },
          { protocol: "TCP", port: 6443 },
        ],
      },
    ]);
    // Every CronJob's pods carry the labels the policy selects.
    for (const c of cronJobs())
      expect(c.spec.jobTemplate.spec.template.metadata.labels).toMatchObject(OPS_LABELS);
  });

  it("narrows the API server egress when its addresses are given", async () => {
    const [, list] = await build(
      () => new OpsJobs("ops-api", { ...ARGS, apiServer: { cidrs: ["10.0.0.1/32"], ports: [443] } }),
    );
    expect(one(list, "NetworkPolicy", "ops-egress").spec.egress[1]).toEqual({
      to: [{ ipBlock: { cidr: "10.0.0.1/32" } }],
      ports: [{ protocol: "TCP", port: 443 }],
    });
  });

  it("schedules from the stack where given, the local target's defaults otherwise (UTC)", () => {
    const schedules = Object.fromEntries(cronJobs().map((c) => [c.metadata.name, c.spec.schedule as string]));
    expect(schedules).toEqual({
      "loomworks-backup-full": "15 2 * * 6",
      "loomworks-backup-diff": DEFAULT_BACKUP_SCHEDULE.diff,
      "loomworks-verify": DEFAULT_BACKUP_SCHEDULE.verify,
      "loomworks-snapshot-auto": "0 * * * *",
      "loomworks-quota-check": "*/5 * * * *",
      "loomworks-sync": "30 * * * *",
    });
    for (const c of cronJobs()) {
      expect(() => parseCron(c.spec.schedule as string)).not.toThrow();
      expect(c.spec.timeZone).toBe("Etc/UTC");
    }
  });

  it("uses the defaults when the stack sets no schedule", async () => {
    const [, list] = await build(
      () => new OpsJobs("ops-defaults", { ...ARGS, schedule: undefined, quotaCheckSchedule: undefined }),
    );
    const byName = (n: string) => one(list, "CronJob", n).spec.schedule as string;
    expect(byName("loomworks-backup-full")).toBe(DEFAULT_BACKUP_SCHEDULE.full);
    expect(byName("loomworks-snapshot-auto")).toBe(DEFAULT_BACKUP_SCHEDULE.autoSnapshots);
    expect(byName("loomworks-quota-check")).toBe(DEFAULT_QUOTA_CHECK_SCHEDULE);
  });

  it("adds a spares CronJob only with platform.provisioning.spares above 0", async () => {
    const [, list] = await build(() => new OpsJobs("ops-spares", { ...ARGS, spares: { count: 2 } }));
    const spares = one(list, "CronJob", "loomworks-spares");
    expect(spares.spec.schedule).toBe(DEFAULT_SPARES_SCHEDULE);
    expect(podOf(spares).containers[0].args).toEqual(["spares", "--count", "2"]);
    expect(list.filter((o) => o.kind === "CronJob").length).toBe(cronJobs().length + 1);
    expect(cronJobs().map((c) => c.metadata.name)).not.toContain("loomworks-spares");
  });

  it("runs jobs.js in the ops image with each job's arguments", () => {
    const commands = Object.fromEntries(
      cronJobs().map((c) => {
        const container = podOf(c).containers[0];
        expect(container.image).toBe(IMAGE);
        expect(container.imagePullPolicy).toBe("IfNotPresent");
        expect(container.command).toEqual(["node", OPS_IMAGE.jobsScript]);
        expect(container.workingDir).toBe(OPS_IMAGE.workdir);
        return [c.metadata.name, container.args as string[]];
      }),
    );
    expect(commands).toEqual({
      "loomworks-backup-full": ["backup", "--type", "full"],
      "loomworks-backup-diff": ["backup", "--type", "diff"],
      "loomworks-verify": ["verify"],
      "loomworks-snapshot-auto": ["snapshot-auto"],
      "loomworks-quota-check": ["quota-check", "--undo-retention-days", "14"],
      "loomworks-sync": ["sync"],
    });
  });

  it("bounds every run: Forbid, deadlines, history, no retry storms, Never restarts, restricted pods", () => {
    for (const c of cronJobs()) {
      const name = c.metadata.name;
      expect(c.spec.concurrencyPolicy, name).toBe("Forbid");
      expect(c.spec.startingDeadlineSeconds, name).toBeGreaterThan(0);
      expect(c.spec.successfulJobsHistoryLimit, name).toBe(3);
      expect(c.spec.failedJobsHistoryLimit, name).toBe(3);
      const job = c.spec.jobTemplate.spec;
      expect(job.backoffLimit, name).toBeLessThanOrEqual(1);
      expect(job.activeDeadlineSeconds, name).toBeGreaterThan(0);
      expect(job.ttlSecondsAfterFinished, name).toBeGreaterThan(0);
      const pod = podOf(c);
      expect(pod.restartPolicy, name).toBe("Never");
      expect(pod.serviceAccountName, name).toBe("loomworks-ops");
      expect(pod.automountServiceAccountToken, name).toBe(true);
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: "RuntimeDefault" },
      });
      const container = pod.containers[0];
      expect(container.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
      });
      expect(container.resources.requests).toEqual({ cpu: "100m", memory: "256Mi" });
      expect(container.resources.limits.memory).toBe("1Gi");
      expect(c.spec.jobTemplate.spec.template.metadata.labels[LABEL_OPS_JOB]).toBe(
        c.metadata.name.replace(/^loomworks-/, ""),
      );
    }
    // Backups may resume once; the frequent jobs never retry (the next run is minutes away).
    expect(one(objs, "CronJob", "loomworks-backup-full").spec.jobTemplate.spec.backoffLimit).toBe(1);
    expect(one(objs, "CronJob", "loomworks-quota-check").spec.jobTemplate.spec.backoffLimit).toBe(0);
    // A missed quota check is skipped before the next one is due (every 5 minutes here).
    expect(one(objs, "CronJob", "loomworks-quota-check").spec.startingDeadlineSeconds).toBeLessThanOrEqual(
      300,
    );
  });

  it("mounts the filestore only where needed, as its owner; backups run as postgres of the image", () => {
    const mounts = (n: string) => podOf(one(objs, "CronJob", n)).containers[0].volumeMounts;
    expect(mounts("loomworks-snapshot-auto")).toContainEqual({
      name: "filestore",
      mountPath: "/var/lib/odoo",
      readOnly: false,
    });
    expect(mounts("loomworks-quota-check")).toContainEqual({
      name: "filestore",
      mountPath: "/var/lib/odoo",
      readOnly: true,
    });
    expect(mounts("loomworks-backup-full").map((m: { name: string }) => m.name)).toEqual(["tmp"]);
    expect(podOf(one(objs, "CronJob", "loomworks-snapshot-auto")).securityContext).toMatchObject({
      runAsUser: ERP_USER.uid,
      runAsGroup: ERP_USER.gid,
    });
    expect(podOf(one(objs, "CronJob", "loomworks-backup-full")).securityContext).toMatchObject({
      runAsUser: OPS_IMAGE.uid,
      runAsGroup: OPS_IMAGE.gid,
    });
  });

  it("passes the password and passphrase only by reference; settings come from the ConfigMap", () => {
    const settings = one(objs, "ConfigMap", ops.configMapName).data as Record<string, string>;
    expect(settings).toMatchObject({
      LOOMWORKS_PGBACKREST: OPS_IMAGE.pgbackrestWrapper,
      LOOMWORKS_POSTGRES_POD: NAMES.postgresPod,
      LOOMWORKS_POSTGRES_CONTAINER: NAMES.postgresContainer,
      LOOMWORKS_PGBACKREST_CONFIG: POSTGRES_CONTAINER.pgbackrestConfig,
      LOOMWORKS_RETENTION_FULL: "3",
    });
    for (const c of cronJobs()) {
      const container = podOf(c).containers[0];
      expect(container.envFrom).toEqual([{ configMapRef: { name: ops.configMapName } }]);
      const env = checkEnv(container.env as EnvVar[], secret, settings);
      expect(env.LOOMWORKS_NAMESPACE).toBe("<metadata.namespace>");
    }
  });

  it("holds neither the password nor the passphrase anywhere in what it renders", () => {
    const text = JSON.stringify(objs);
    expect(text).not.toContain(SUPERUSER_PASSWORD);
    expect(text).not.toContain(CIPHER_PASS);
    // The scan is live: the Secret itself, rendered the same way, does hold them.
    expect(JSON.stringify(secret)).toContain(SUPERUSER_PASSWORD);
  });

  it("renders only objects valid against the Kubernetes schemas", () => {
    expect(objs.length).toBe(11);
    for (const o of objs) assertValidK8sObject(o);
  });
});

describe("restore Job", () => {
  const TENANT = { subdomain: "acme", database: "acme", roleName: "acme_owner", state: "active" as const };
  const restoreArgs = (target: Record<string, string>, extra: Record<string, unknown> = {}) => ({
    namespace: NS,
    image: IMAGE,
    postgres: { stanza: "loomworks", retentionFull: 3 },
    pgbackrestConfigSecret: { name: "loomworks-postgres-pgbackrest", key: "pgbackrest.conf" },
    tenant: TENANT,
    target,
    filestoreOwner: ERP_USER,
    scratchSizeLimit: "50Gi",
    ...extra,
  });
  let job: K8sObject;
  let secret: K8sObject;

  beforeAll(async () => {
    const [, s] = await build(
      () =>
        new k8s.core.v1.Secret("pg-secret-2", {
          metadata: { name: NAMES.postgresSecrets, namespace: NS },
          stringData: pulumi.secret({
            [POSTGRES_SECRET_KEYS.superuserPassword]: SUPERUSER_PASSWORD,
            [POSTGRES_SECRET_KEYS.backupCipherPass]: CIPHER_PASS,
          }),
        }),
    );
    secret = s[0];
    const [, list] = await build(() =>
      restoreJob("restore-acme", restoreArgs({ time: "2026-11-26T10:00:00Z" }, { snapshotLsn: undefined })),
    );
    job = one(list, "Job", restoreJobName("acme", { time: "2026-11-26T10:00:00Z" }));
  });

  const pod = () => job.spec.template.spec;

  it("runs jobs.js restore for the tenant's target, once (backoffLimit 0), awaited by Pulumi", () => {
    const c = pod().containers[0];
    expect(c.image).toBe(IMAGE);
    expect(c.command).toEqual(["node", OPS_IMAGE.jobsScript]);
    expect(c.args).toEqual([
      "restore",
      ...["--tenant", "acme", "--database", "acme", "--role", "acme_owner", "--time", "2026-11-26T10:00:00Z"],
      ...["--pgbackrest-config", POSTGRES_CONTAINER.pgbackrestConfig, "--scratch-dir", RESTORE_SCRATCH_DIR],
      ...["--filestore-root", "/var/lib/odoo/filestore", "--tenant-state", "active"],
    ]);
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThanOrEqual(4 * 3600);
    expect(pod().restartPolicy).toBe("Never");
    expect(job.metadata.annotations?.["pulumi.com/skipAwait"]).toBeUndefined();
    expect(job.metadata.annotations?.["pulumi.com/replaceUnready"]).toBe("true");
    // pgBackRest runs in this pod on the mounted repository: not through the exec wrapper.
    expect(c.envFrom).toBeUndefined();
    expect((c.env as EnvVar[]).map((e) => e.name)).not.toContain("LOOMWORKS_PGBACKREST");
    expect(pod().automountServiceAccountToken).toBe(false);
  });

  it("mounts the repository and WAL archive read-only where the PostgreSQL pod has them, and a scratch emptyDir", () => {
    const c = pod().containers[0];
    const mount = (n: string) => (c.volumeMounts as { name: string }[]).find((m) => m.name === n);
    const volume = (n: string) => (pod().volumes as { name: string }[]).find((v) => v.name === n) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(mount("backups")).toEqual({
      name: "backups",
      mountPath: POSTGRES_CONTAINER.repoDir,
      readOnly: true,
    });
    expect(mount("wal-archive")).toEqual({
      name: "wal-archive",
      mountPath: POSTGRES_CONTAINER.walArchiveDir,
      readOnly: true,
    });
    expect(volume("backups").persistentVolumeClaim).toEqual({
      claimName: NAMES.postgresBackupsClaim,
      readOnly: true,
    });
    expect(volume("wal-archive").persistentVolumeClaim).toEqual({
      claimName: NAMES.postgresWalClaim,
      readOnly: true,
    });
    expect(mount("scratch")).toMatchObject({ mountPath: RESTORE_SCRATCH_DIR });
    expect(volume("scratch").emptyDir).toEqual({ sizeLimit: "50Gi" });
    expect(mount("pgbackrest-config")).toEqual({
      name: "pgbackrest-config",
      mountPath: "/etc/pgbackrest",
      readOnly: true,
    });
    expect(volume("pgbackrest-config").secret).toMatchObject({
      secretName: "loomworks-postgres-pgbackrest",
      items: [{ key: "pgbackrest.conf", path: "pgbackrest.conf" }],
    });
    // Reads the repository as a member of postgres' group, never chowning it (no fsGroup).
    expect(pod().securityContext).toMatchObject({
      runAsUser: ERP_USER.uid,
      supplementalGroups: [OPS_IMAGE.gid],
    });
    expect(pod().securityContext.fsGroup).toBeUndefined();
  });

  it("must run on the PostgreSQL pod's node (ReadWriteOnce volumes)", () => {
    expect(pod().affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution).toEqual([
      {
        labelSelector: {
          matchLabels: { ...POSTGRES_LABELS, "statefulset.kubernetes.io/pod-name": NAMES.postgresPod },
        },
        topologyKey: "kubernetes.io/hostname",
      },
    ]);
  });

  it("passes secrets only by reference", () => {
    checkEnv(pod().containers[0].env as EnvVar[], secret, {});
    const text = JSON.stringify(job);
    expect(text).not.toContain(SUPERUSER_PASSWORD);
    expect(text).not.toContain(CIPHER_PASS);
  });

  it("names the Job after the tenant and a hash of the target: stable, distinct, at most 63 characters", async () => {
    const t = { snapshot: "before-upgrade" };
    expect(restoreJobName("acme", t)).toBe(restoreJobName("acme", { snapshot: "before-upgrade" }));
    expect(restoreJobName("acme", t)).toMatch(/^loomworks-restore-acme-[0-9a-f]{10}$/);
    expect(restoreJobName("acme", t)).not.toBe(restoreJobName("acme", { snapshot: "before-migration" }));
    expect(restoreJobName("acme", t)).not.toBe(restoreJobName("acme", { lsn: "0/5A3B2C10" }));
    expect(restoreJobName("acme", t)).not.toBe(restoreJobName("acme2", t));
    const long = "a".repeat(40) + "-" + "b".repeat(22); // a 63-character subdomain
    const long2 = "a".repeat(40) + "-" + "c".repeat(22);
    for (const sub of [long, long2, "x".repeat(34) + "-y"]) {
      const n = restoreJobName(sub, t);
      expect(n.length).toBeLessThanOrEqual(63);
      expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(n).not.toContain("--");
    }
    expect(restoreJobName(long, t)).not.toBe(restoreJobName(long2, t));
    expect(() => restoreJobName("acme", { time: "x", lsn: "0/1" })).toThrow(/exactly one/);

    const [, list] = await build(() =>
      restoreJob(
        "restore-long",
        restoreArgs(t, { tenant: { ...TENANT, subdomain: long }, snapshotLsn: "0/5A3B2C10" }),
      ),
    );
    const j = list.find((o) => o.kind === "Job") as K8sObject;
    expect(j.metadata.name).toBe(restoreJobName(long, t));
    expect(j.spec.template.spec.containers[0].args).toEqual(
      expect.arrayContaining(["--snapshot", "before-upgrade", "--snapshot-lsn", "0/5A3B2C10"]),
    );
    assertValidK8sObject(j);
  });

  it("is valid against the Kubernetes schema", () => {
    assertValidK8sObject(job);
  });
});

describe("jobs.js in the Kubernetes mode", () => {
  it("adds PGPASSWORD to a DSN without password, in memory; keeps a DSN's own", () => {
    const env = {
      LOOMWORKS_ADMIN_DSN: "postgres://postgres@postgres.ns.svc:5432/postgres",
      PGPASSWORD: "p@ss:w/rd",
    };
    const dsn = new URL(kubernetesAdminDsn(env));
    expect(decodeURIComponent(dsn.password)).toBe("p@ss:w/rd");
    expect(dsn.hostname).toBe("postgres.ns.svc");
    expect(kubernetesAdminDsn({ ...env, LOOMWORKS_ADMIN_DSN: "postgres://u:own@h:5432/db" })).toBe(
      "postgres://u:own@h:5432/db",
    );
    expect(() => kubernetesAdminDsn({})).toThrow(/LOOMWORKS_ADMIN_DSN is required/);
  });

  it("finds lib/backup's pgbackrest.conf location for the PostgreSQL image's path, refuses others", () => {
    const stateDir = stateDirForPgBackRestConfig(POSTGRES_CONTAINER.pgbackrestConfig);
    expect(clusterPaths(stateDir).pgbackrestConf).toBe(POSTGRES_CONTAINER.pgbackrestConfig);
    expect(() => stateDirForPgBackRestConfig("/etc/pgbackrest.conf")).toThrow(
      /<dir>\/pgbackrest\/pgbackrest.conf/,
    );
  });

  it("moves the restore's spool, lock and log paths into the scratch directory, keeps the rest", () => {
    const source = [
      "[global]",
      "repo1-path=/var/lib/pgbackrest",
      "repo1-cipher-pass=xyz",
      "spool-path=/var/spool/pgbackrest",
      "lock-path=/tmp/pgbackrest",
      "",
      "[loomworks]",
      "pg1-path=/var/lib/postgresql/data/pgdata",
    ].join("\n");
    const out = restoreJobPgBackRestConf(source, "/scratch");
    expect(out).toContain("spool-path=/scratch/pgbackrest/spool\n");
    expect(out).toContain("lock-path=/scratch/pgbackrest/lock\n");
    expect(out).toContain("[global]\nlog-path=/scratch/pgbackrest/log\n");
    expect(out).toContain("repo1-path=/var/lib/pgbackrest\nrepo1-cipher-pass=xyz\n");
    expect(out).not.toContain("/var/spool/pgbackrest");
    expect(out).toContain("[loomworks]\npg1-path=/var/lib/postgresql/data/pgdata");
  });
});
