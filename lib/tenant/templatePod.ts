/**
 * A template's `fromCommand` on the kubernetes target: the ERP's initializer (`odoo -d {db} -i ...`)
 * lives in the ERP image, not on the machine running `pulumi up`, so the command runs in a pod of
 * that image in the platform's namespace — `kubectl run --attach --rm`, its output streamed back and
 * its exit code returned — connected to the cluster's PostgreSQL through PG* variables naming the
 * template's builder role (templateBuilder.ts), never a superuser. The builder's password reaches
 * the pod by a secretKeyRef to a Secret the program manages: it is never on a command line nor in
 * the pod spec.
 */
import { createHash } from "node:crypto";

export interface KubernetesCommandRunner {
  namespace: string;
  /** The ERP image (the command's programs). */
  image: string;
  /** In-cluster address of PostgreSQL. */
  host: string;
  port: number;
  /** The builder role's password: a key of a Secret in the namespace (builderSecretName). */
  passwordSecret: { name: string; key: string };
  /** Pod labels (those the namespace's NetworkPolicies admit to PostgreSQL). */
  labels: Record<string, string>;
  /** The non-root user the pod runs as (the image's). */
  user: { uid: number; gid: number };
  imagePullSecrets?: string[];
  /** How long kubectl waits for the pod to start (default 600). */
  podRunningTimeoutSeconds?: number;
}

/** `loomworks-template-<hash>`: a valid pod name for any database name. */
export function templatePodName(database: string): string {
  return `loomworks-template-${createHash("sha256").update(database).digest("hex").slice(0, 10)}`;
}

/** What a pod runs: `command` (`{db}` replaced) in `database`, logged in as `role`. */
export interface TemplatePodCommand {
  database: string;
  role: string;
  command: string;
}

/** `{data_dir}` of a command in the pod: under its writable `/tmp` (an emptyDir, gone with the pod). */
export const POD_DATA_DIR = "/tmp/loomworks-build-data";

/** The key of the builder's password in its Secret. */
export const BUILDER_PASSWORD_KEY = "password";

/**
 * `loomworks-template-builder-<template>`: the Secret holding a template builder's password. A
 * template name may hold `_`, which no Kubernetes name may: it becomes `-`, and a hash of the
 * name keeps `a_b` and `a-b` apart (and ends a name that would end in `-`).
 */
export function builderSecretName(templateName: string): string {
  const dns = templateName.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  const plainName = dns === templateName && !dns.endsWith("-");
  const suffix = plainName ? "" : `-${createHash("sha256").update(templateName).digest("hex").slice(0, 6)}`;
  return `loomworks-template-builder-${dns}${suffix}`;
}

/** The pod the command runs in (kubectl's `--overrides`): restricted Pod Security, no secret value. */
export function templatePodOverrides(runner: KubernetesCommandRunner, run: TemplatePodCommand) {
  const { database, role, command } = run;
  const name = templatePodName(database);
  return {
    apiVersion: "v1",
    spec: {
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      restartPolicy: "Never",
      securityContext: {
        runAsNonRoot: true,
        runAsUser: runner.user.uid,
        runAsGroup: runner.user.gid,
        seccompProfile: { type: "RuntimeDefault" },
      },
      ...(runner.imagePullSecrets?.length
        ? { imagePullSecrets: runner.imagePullSecrets.map((s) => ({ name: s })) }
        : {}),
      containers: [
        {
          name,
          image: runner.image,
          command: ["sh", "-c", command],
          env: [
            { name: "PGHOST", value: runner.host },
            { name: "PGPORT", value: String(runner.port) },
            { name: "PGUSER", value: role },
            { name: "PGDATABASE", value: database },
            { name: "PGPASSWORD", valueFrom: { secretKeyRef: { ...runner.passwordSecret } } },
            { name: "HOME", value: "/tmp" },
          ],
          securityContext: {
            allowPrivilegeEscalation: false,
            capabilities: { drop: ["ALL"] },
          },
          volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
        },
      ],
      volumes: [{ name: "tmp", emptyDir: {} }],
    },
  };
}

/** `kubectl` arguments running a command (with `{db}` already replaced) in a pod. */
export function kubectlRunArgs(runner: KubernetesCommandRunner, run: TemplatePodCommand): string[] {
  const labels = Object.entries(runner.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return [
    "run",
    templatePodName(run.database),
    `--namespace=${runner.namespace}`,
    `--image=${runner.image}`,
    "--restart=Never",
    "--attach",
    "--rm",
    "--quiet",
    `--pod-running-timeout=${runner.podRunningTimeoutSeconds ?? 600}s`,
    ...(labels ? [`--labels=${labels}`] : []),
    `--overrides=${JSON.stringify(templatePodOverrides(runner, run))}`,
  ];
}
