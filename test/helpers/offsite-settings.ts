/** `platform.backups.offsite` maps the docker-target unit tests share (as a stack file writes them). */

/** An SFTP repository checked by host-key fingerprint, its private key given as a secret. */
export function sftpOffsiteSettings(privateKey: string): Record<string, unknown> {
  return {
    type: "sftp",
    path: "/srv/backups",
    host: "backup.example.net",
    user: "pgbackrest",
    privateKey,
    hostKeyFingerprint: "c".repeat(64),
  };
}
