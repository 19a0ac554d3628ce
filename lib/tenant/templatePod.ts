/**
 * A template's `fromCommand` on the kubernetes target: the ERP's initializer (`odoo -d {db} -i ...`)
 * lives in the ERP image, not on the machine running `pulumi up`, so the command runs in a pod of
 * that image in the platform's namespace — `kubectl run --attach --rm`, its output streamed back and
 * its exit code returned — connected to the cluster's PostgreSQL through PG* variables. The
 * superuser's password reaches the pod by a secretKeyRef: it is never on a command line.
 */
import { createHash } from "node:crypto";

export interface KubernetesCommandRunner {
  namespace: string;
  /** The ERP image (the command's programs). */
  image: string;
  /** In-cluster address of PostgreSQL. */
  host: string;
  port: number;
  /** The superuser's password: a key of a Secret in the namespace. */
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

/** The pod the command runs in (kubectl's `--overrides`): restricted Pod Security, no secret value. */
export function templatePodOverrides(runner: KubernetesCommandRunner, database: string, command: string) {
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
            { name: "PGUSER", value: "postgres" },
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

/** `kubectl` arguments running `command` (with `{db}` already replaced) for template database `database`. */
export function kubectlRunArgs(runner: KubernetesCommandRunner, database: string, command: string): string[] {
  const labels = Object.entries(runner.labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return [
    "run",
    templatePodName(database),
    `--namespace=${runner.namespace}`,
    `--image=${runner.image}`,
    "--restart=Never",
    "--attach",
    "--rm",
    "--quiet",
    `--pod-running-timeout=${runner.podRunningTimeoutSeconds ?? 600}s`,
    ...(labels ? [`--labels=${labels}`] : []),
    `--overrides=${JSON.stringify(templatePodOverrides(runner, database, command))}`,
  ];
}
