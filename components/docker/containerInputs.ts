/**
 * containers.ts' facts in the shapes the docker provider's Container takes, for DockerPlatform and
 * opsContainers.ts: the same health checks, environment and volume mounts the Compose project renders.
 */
import type * as docker from "@pulumi/docker";
import type { DockerVolumeName } from "./config";
import { HEALTHCHECKS, VOLUME_MOUNTS, type DockerRole } from "./containers";

const seconds = (n: number): string => `${n}s`;

export function containerHealthcheck(role: DockerRole): docker.types.input.ContainerHealthcheck {
  const h = HEALTHCHECKS[role];
  return {
    tests: h.test,
    interval: seconds(h.intervalSeconds),
    timeout: seconds(h.timeoutSeconds),
    startPeriod: seconds(h.startPeriodSeconds),
    retries: h.retries,
  };
}

/** `K=V` strings, in the environment's own order. */
export function containerEnvs(env: Record<string, string>): string[] {
  return Object.entries(env).map(([name, value]) => `${name}=${value}`);
}

/** The role's named volumes, by the docker.Volume resources' names. */
export function containerVolumes(
  role: DockerRole,
  volumes: Record<DockerVolumeName, docker.Volume>,
): docker.types.input.ContainerVolume[] {
  return VOLUME_MOUNTS[role].map((m) => ({
    volumeName: volumes[m.volume].name,
    containerPath: m.path,
    ...(m.readOnly ? { readOnly: true } : {}),
  }));
}
