/**
 * The Docker target's containers of the ops image (docker/ops): the long-running ops container, whose
 * scheduler daemon (lib/backup/scheduler.ts) runs the Kubernetes CronJobs' jobs
 * (lib/backup/opsJobs.ts), and one one-shot container per declared restore (`jobs.js restore`, like
 * the Kubernetes restore Job). Both run jobs.js through the uploaded `loomworks-job` script, reach
 * PostgreSQL by its network alias and pgBackRest's repository on the PostgreSQL container's volumes
 * at the same paths (docs/operations/docker.md#what-runs-where).
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { OPS_IMAGE, type OpsScheduleArgs } from "../../lib/backup/opsJobs";
import { ERP_IMAGE } from "../../lib/odoo/image";
import type { TenantState } from "../../lib/registry/tenantState";
import type { RestoreTarget } from "../../lib/restore/target";
import {
  DOCKER_HOSTS,
  OPS_CONTAINER,
  POSTGRES_CONTAINER,
  containerName,
  dockerOpsCommand,
  dockerOpsEnv,
  dockerRestoreArgs,
  dockerRestoreContainerName,
  renderDockerJobScript,
  renderDockerOpsSchedule,
  type DockerVolumeName,
} from "./config";
import { containerHealthcheck, containerVolumes } from "./containerInputs";
import { RESTART_POLICY, STOP_TIMEOUT_SECONDS } from "./containers";

/** `platform.notify` for the ops and restore containers: the URL (secret) becomes a file. */
export interface DockerOpsNotify {
  webhookUrl: pulumi.Input<string>;
  stack?: string;
  timeoutSeconds?: number;
  attempts?: number;
}

/** What the ops and restore containers share. */
export interface OpsContainerSettings {
  prefix: string;
  /** The ops image's id. */
  image: pulumi.Input<string>;
  networkName: pulumi.Input<string>;
  volumes: Record<DockerVolumeName, docker.Volume>;
  stanza: string;
  retentionFull: number;
  /** The PostgreSQL container's pgbackrest.conf (secret when it holds a passphrase). */
  pgbackrestConf: pulumi.Input<string>;
  superuserPassword: pulumi.Input<string>;
  notify?: DockerOpsNotify;
  /** The offsite repository's files where pgBackRest runs (DockerPlatform's offsiteFiles). */
  offsite?: DockerOffsiteFiles;
}

/** What a container running pgBackRest needs of the offsite repository: its bind mount and SFTP key. */
export interface DockerOffsiteFiles {
  /** A `path` repository: the host directory and where it appears in the container. */
  mount?: { hostPath: string; containerPath: string };
  /** An SFTP private key given as a secret. */
  sftpKey?: { file: string; content: pulumi.Input<string> };
}

/** The SFTP key upload (root's, readable like pgbackrest.conf: pgbackrest runs as postgres). */
export function offsiteUploads(o: DockerOffsiteFiles | undefined): docker.types.input.ContainerUpload[] {
  return o?.sftpKey
    ? [{ file: o.sftpKey.file, content: pulumi.secret(o.sftpKey.content), permissions: "0444" }]
    : [];
}

/** The bind mount of a `path` repository (read-only where only restores read it). */
export function offsiteVolumes(
  o: DockerOffsiteFiles | undefined,
  readOnly = false,
): docker.types.input.ContainerVolume[] {
  return o?.mount
    ? [
        {
          hostPath: o.mount.hostPath,
          containerPath: o.mount.containerPath,
          ...(readOnly ? { readOnly } : {}),
        },
      ]
    : [];
}

/** A declared restore of one tenant. */
export interface DockerRestoreArgs {
  tenant: { subdomain: string; database: string; roleName: string; state?: TenantState };
  target: RestoreTarget;
}

/** The job script, pgbackrest.conf, the superuser's password and the webhook's URL, as files. */
function opsUploads(s: OpsContainerSettings): pulumi.Input<docker.types.input.ContainerUpload>[] {
  return [
    { file: OPS_CONTAINER.jobCommand, content: renderDockerJobScript(), permissions: "0755" },
    { file: POSTGRES_CONTAINER.pgbackrestConfig, content: s.pgbackrestConf, permissions: "0444" },
    ...offsiteUploads(s.offsite),
    { file: OPS_CONTAINER.passwordFile, content: pulumi.secret(s.superuserPassword), permissions: "0444" },
    ...(s.notify
      ? [
          {
            file: OPS_CONTAINER.notifyUrlFile,
            content: pulumi.secret(s.notify.webhookUrl),
            permissions: "0444",
          },
        ]
      : []),
  ];
}

function opsEnvs(s: OpsContainerSettings): string[] {
  const n = s.notify;
  return dockerOpsEnv({
    stanza: s.stanza,
    retentionFull: s.retentionFull,
    ...(n ? { notify: { stack: n.stack, timeoutSeconds: n.timeoutSeconds, attempts: n.attempts } } : {}),
  });
}

/**
 * The ops container: the scheduler daemon over `schedule`'s jobs, as root (jobs.js runs pgBackRest
 * as postgres and reads and hard-links the ERP's files). pgBackRest backs up where the data
 * directory is: the PostgreSQL container's volumes at its paths (the data directory read-only) and
 * its unix socket.
 */
export function opsContainer(
  name: string,
  s: OpsContainerSettings & { schedule: OpsScheduleArgs },
  opts: pulumi.CustomResourceOptions,
): docker.Container {
  return new docker.Container(
    name,
    {
      name: containerName(s.prefix, "ops"),
      image: s.image,
      hostname: DOCKER_HOSTS.ops,
      networksAdvanced: [{ name: s.networkName, aliases: [DOCKER_HOSTS.ops] }],
      user: "0:0",
      command: dockerOpsCommand(),
      envs: opsEnvs(s),
      uploads: [
        ...opsUploads(s),
        {
          file: `${OPS_CONTAINER.stateDir}/scheduler/schedule.json`,
          content: renderDockerOpsSchedule(s.schedule),
          permissions: "0444",
        },
      ],
      volumes: [...containerVolumes("ops", s.volumes), ...offsiteVolumes(s.offsite)],
      healthcheck: containerHealthcheck("ops"),
      restart: RESTART_POLICY,
      // A refresh that finds it stopped drops it from the state: the next `pulumi up` recreates it.
      mustRun: true,
      wait: true,
      waitTimeout: 180,
      stopTimeout: STOP_TIMEOUT_SECONDS.ops,
      destroyGraceSeconds: STOP_TIMEOUT_SECONDS.ops,
    },
    opts,
  );
}

/**
 * A tenant's declared restore: a one-shot container of the ops image running `jobs.js restore`
 * (lib/restore's restoreTenant, once per target), like the Kubernetes restore Job. It reads the
 * repository volumes read-only, restores into a scratch cluster in its own layer and writes the
 * filestore as the ERP's user (in postgres' group: the repository's files are postgres' 0640).
 * Pulumi waits for it to exit; a non-zero exit fails the update. The container's name carries a
 * hash of the target: the same target keeps the container (nothing reruns), a new one replaces it.
 */
export function restoreContainer(
  s: OpsContainerSettings,
  args: DockerRestoreArgs,
  opts: pulumi.CustomResourceOptions,
): docker.Container {
  const name = dockerRestoreContainerName(s.prefix, args.tenant.subdomain, args.target);
  const v = s.volumes;
  const container = new docker.Container(
    name,
    {
      name,
      image: s.image,
      networksAdvanced: [{ name: s.networkName }],
      user: `${ERP_IMAGE.uid}:${ERP_IMAGE.gid}`,
      groupAdds: [String(OPS_IMAGE.gid)],
      command: dockerRestoreArgs(args),
      envs: opsEnvs(s),
      uploads: opsUploads(s),
      volumes: [
        { volumeName: v.backups.name, containerPath: POSTGRES_CONTAINER.repoDir, readOnly: true },
        { volumeName: v.wal_archive.name, containerPath: POSTGRES_CONTAINER.walArchiveDir, readOnly: true },
        { volumeName: v.odoo_data.name, containerPath: ERP_IMAGE.dataDir },
        ...offsiteVolumes(s.offsite, true),
      ],
      // One shot: runs to its end (attach), is not restarted, and stays as the record of the restore.
      restart: "no",
      mustRun: false,
      attach: true,
      logs: true,
    },
    { customTimeouts: { create: "13h", update: "13h" }, deleteBeforeReplace: true, ...opts },
  );
  // attach waits for the end but does not judge it: a failed restore fails the update here.
  container.exitCode.apply((code) => {
    if (code !== undefined && code !== 0) {
      throw new pulumi.RunError(
        `restore container ${name}: exited ${code}; \`docker logs ${name}\` has its log. After fixing the ` +
          "cause, `pulumi up --replace <its URN>` runs it again (it resumes or rolls back the interrupted restore).",
      );
    }
  });
  return container;
}
