/**
 * `platform.backups.offsite` as the repository pgbackrest.conf renders (lib/pg/offsite.ts), for
 * each target: where the SFTP key file is, and where a mounted directory appears.
 */
import * as path from "node:path";
import type { PlatformConfig } from "../infra/config/schema";
import type { OffsiteRepo } from "../lib/pg/offsite";

export interface OffsitePlacement {
  /**
   * `<project>/<stack>`: the repository lives under this subdirectory (or key prefix) of the configured
   * path, so two stacks given the same share or bucket never restore from, nor expire, each other's
   * backups; the same stack rebuilt elsewhere finds its own.
   */
  stackDir: string;
  /** Where an SFTP private key given as a secret is written (the file pgbackrest.conf names). */
  sftpKeyFile: string;
  /** Where a `path` repository appears to pgBackRest (docker: the bind mount); default its own path. */
  mountedPath?: string;
}

/** The offsite repository of `backups` (undefined when none is configured). */
export function offsiteRepo(
  backups: PlatformConfig["backups"],
  placement: OffsitePlacement,
): OffsiteRepo | undefined {
  const o = backups.offsite;
  if (!o) return undefined;
  const under = (base: string) => path.posix.join(base, placement.stackDir);
  const passphrase = o.encryptionPassphrase ?? backups.encryptionPassphrase;
  const common = {
    retentionFull: o.retentionFull,
    ...(passphrase ? { encryptionPassphrase: passphrase } : {}),
  };
  if (o.type === "path") {
    const mountPoint = placement.mountedPath ?? o.path;
    return { type: "path", path: under(mountPoint), mountPoint, ...common };
  }
  if (o.type === "s3") {
    return {
      type: "s3",
      path: under(o.path),
      endpoint: o.endpoint ?? "",
      bucket: o.bucket ?? "",
      region: o.region ?? "",
      accessKey: o.accessKey ?? "",
      secretKey: o.secretKey ?? "",
      uriStyle: o.uriStyle,
      verifyTls: o.verifyTls,
      ...common,
    };
  }
  return {
    type: "sftp",
    path: under(o.path),
    host: o.host ?? "",
    port: o.port,
    user: o.user ?? "",
    privateKeyFile: o.privateKeyFile ?? placement.sftpKeyFile,
    ...(o.privateKey ? { privateKey: o.privateKey } : {}),
    ...(o.hostKeyFingerprint
      ? { hostKeyFingerprint: o.hostKeyFingerprint, hostKeyHashType: o.hostKeyHashType }
      : {}),
    ...(o.knownHostsFile ? { knownHostsFile: o.knownHostsFile } : {}),
    ...common,
  };
}

/** The stack's own subdirectory of an offsite repository: `<project>/<stack>`. */
export function offsiteStackDir(project: string, stack: string): string {
  return `${project}/${stack}`;
}
