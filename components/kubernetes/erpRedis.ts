/**
 * Redis for the ERP's sessions (so any replica serves any user): one Deployment and its Service,
 * children of the OdooDeployment. Memory only: a restart logs users out, nothing else. Its
 * password is the ERP Secret's `REDIS_PASSWORD_KEY`.
 */
import * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { NAMES, REDIS_LABELS, REDIS_PORT, objectLabels, restrictedContainerSecurity } from "./common";
import { REDIS_PASSWORD_KEY } from "./odooConfig";

export interface SessionRedisArgs {
  namespace: pulumi.Input<string>;
  image: string;
  /** Redis' `maxmemory` ("256mb", "1gb"); the container's memory is sized from it. */
  maxMemory: string;
}

/** Declares `<name>-redis` (Deployment) and `<name>-redis-service` under `parent`. */
export function declareSessionRedis(parent: pulumi.Resource, name: string, args: SessionRedisArgs): void {
  const { namespace } = args;
  const passwordEnv = {
    name: "REDIS_PASSWORD",
    valueFrom: { secretKeyRef: { name: NAMES.erpSecrets, key: REDIS_PASSWORD_KEY } },
  };
  const maxMemoryMiB = redisMemoryMiB(args.maxMemory);
  const memoryLimit = `${Math.ceil(maxMemoryMiB * 1.5) + 32}Mi`;
  const script = redisStartScript(args.maxMemory);
  const probe = { tcpSocket: { port: REDIS_PORT }, periodSeconds: 10, timeoutSeconds: 3 };
  new k8s.apps.v1.Deployment(
    `${name}-redis`,
    {
      metadata: { name: NAMES.redis, namespace, labels: objectLabels(REDIS_LABELS) },
      spec: {
        replicas: 1,
        selector: { matchLabels: REDIS_LABELS },
        // One instance at a time: sessions live in memory only (a restart logs users out, nothing else).
        strategy: { type: "Recreate" },
        template: {
          metadata: { labels: objectLabels(REDIS_LABELS) },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 999,
              runAsGroup: 999,
              seccompProfile: { type: "RuntimeDefault" },
            },
            containers: [
              {
                name: "redis",
                image: args.image,
                command: ["/bin/sh", "-c", script],
                env: [passwordEnv],
                ports: [{ name: "redis", containerPort: REDIS_PORT, protocol: "TCP" }],
                readinessProbe: probe,
                livenessProbe: { ...probe, periodSeconds: 20 },
                resources: {
                  requests: { cpu: "50m", memory: memoryLimit },
                  limits: { cpu: "500m", memory: memoryLimit },
                },
                securityContext: restrictedContainerSecurity(),
                volumeMounts: [{ name: "data", mountPath: "/data" }],
              },
            ],
            volumes: [{ name: "data", emptyDir: { sizeLimit: "64Mi" } }],
          },
        },
      },
    },
    { parent },
  );
  new k8s.core.v1.Service(
    `${name}-redis-service`,
    {
      metadata: { name: NAMES.redis, namespace, labels: objectLabels(REDIS_LABELS) },
      spec: {
        type: "ClusterIP",
        selector: REDIS_LABELS,
        ports: [{ name: "redis", port: REDIS_PORT, targetPort: "redis", protocol: "TCP" }],
      },
    },
    { parent },
  );
}

/** MiB of a Redis memory size ("256mb", "1gb", "512kb": Redis units are powers of 1024). */
export function redisMemoryMiB(size: string): number {
  const m = /^([0-9]+)(kb|mb|gb)$/.exec(size);
  if (!m) throw new Error(`not a Redis memory size: ${size}`);
  const n = Number(m[1]);
  return m[2] === "gb" ? n * 1024 : m[2] === "mb" ? n : Math.ceil(n / 1024);
}

/**
 * The Redis container's `sh -c` script: the password (`$REDIS_PASSWORD`, from the Secret) reaches
 * redis-server on stdin as a one-line config file, never on its command line; no persistence
 * (sessions only); at `maxMemory` the least recently used sessions go first.
 */
export function redisStartScript(maxMemory: string): string {
  redisMemoryMiB(maxMemory); // refuses anything but a Redis size
  return [
    "set -eu",
    `exec redis-server - --save '' --appendonly no --maxmemory ${maxMemory} --maxmemory-policy allkeys-lru <<EOF`,
    "requirepass $REDIS_PASSWORD",
    "EOF",
    "",
  ].join("\n");
}
