/**
 * The offsite repository: pgBackRest's repo2, next to the repository beside the database (repo1).
 * Rendered into the same pgbackrest.conf on every target; backups, expire and verify run per
 * repository (lib/pg/pgbackrest.ts), archive-push writes every repository, and restores fall back
 * to repo2 when repo1 holds no usable backup (lib/restore/target.ts).
 */
import { execFileSync } from "node:child_process";

/** The repository key pgBackRest gives the offsite repository. */
export const OFFSITE_REPO_KEY = 2;

/** The first pgBackRest release with `repo-type=sftp`. */
export const SFTP_MIN_VERSION = "2.46";

interface OffsiteCommon {
  /** Full backups kept in the offsite repository (`repo2-retention-full`). */
  retentionFull: number;
  /** Encrypts the offsite repository (aes-256-cbc); absent: not encrypted. */
  encryptionPassphrase?: string;
}

/** A mounted directory (NFS, an sshfs mount of an SFTP host, ...): pgBackRest's posix repository. */
export interface OffsitePath extends OffsiteCommon {
  type: "path";
  /** The repository: the stack's own directory under the mount point (made by pgBackRest). */
  path: string;
  /** The mounted directory the configuration names (default `path`): it must exist, it is never made. */
  mountPoint?: string;
}

/** An S3-compatible object store. */
export interface OffsiteS3 extends OffsiteCommon {
  type: "s3";
  /** Host name (optionally `:port`) of the endpoint, without a scheme: pgBackRest speaks HTTPS. */
  endpoint: string;
  bucket: string;
  region: string;
  /** Path of the repository inside the bucket (absolute). */
  path: string;
  accessKey: string;
  secretKey: string;
  uriStyle: "host" | "path";
  verifyTls: boolean;
}

/** pgBackRest's native SFTP repository (pgBackRest 2.46 and later). */
export interface OffsiteSftp extends OffsiteCommon {
  type: "sftp";
  host: string;
  port: number;
  user: string;
  /** Absolute path of the repository on the SFTP host. */
  path: string;
  /** The private key file, where pgBackRest runs. */
  privateKeyFile: string;
  /** The private key itself (a secret), written to `privateKeyFile` by the target that deploys the file. */
  privateKey?: string;
  /** The host key's digest (hex, `hostKeyHashType`); or `knownHostsFile`. */
  hostKeyFingerprint?: string;
  hostKeyHashType?: "md5" | "sha1" | "sha256";
  knownHostsFile?: string;
}

export type OffsiteRepo = OffsitePath | OffsiteS3 | OffsiteSftp;

const ONE_LINE = /^[^\r\n\0]*$/;

function option(name: string, value: string | number | boolean): string {
  const text = typeof value === "boolean" ? (value ? "y" : "n") : String(value);
  if (!ONE_LINE.test(text) || text.trim() !== text || text === "") {
    throw new Error(
      `offsite repository: ${name} must be one non-empty line without leading or trailing whitespace`,
    );
  }
  return `repo${OFFSITE_REPO_KEY}-${name}=${text}`;
}

function absolute(name: string, value: string): string {
  if (!value.startsWith("/")) throw new Error(`offsite repository: ${name} must be an absolute path`);
  return value;
}

/** The `repo2-*` lines of pgbackrest.conf's [global] section for `repo`. */
export function renderOffsiteRepo(repo: OffsiteRepo): string[] {
  const lines: string[] = [];
  if (repo.type === "path") {
    lines.push(option("path", absolute("path", repo.path)));
  } else if (repo.type === "s3") {
    lines.push(
      option("type", "s3"),
      option("path", absolute("path", repo.path)),
      option("s3-endpoint", repo.endpoint),
      option("s3-bucket", repo.bucket),
      option("s3-region", repo.region),
      option("s3-key", repo.accessKey),
      option("s3-key-secret", repo.secretKey),
      option("s3-uri-style", repo.uriStyle),
      option("storage-verify-tls", repo.verifyTls),
    );
  } else {
    lines.push(
      option("type", "sftp"),
      option("path", absolute("path", repo.path)),
      option("sftp-host", repo.host),
      option("sftp-host-port", repo.port),
      option("sftp-host-user", repo.user),
      option("sftp-private-key-file", absolute("privateKeyFile", repo.privateKeyFile)),
    );
    if (repo.hostKeyFingerprint) {
      lines.push(
        option("sftp-host-key-hash-type", repo.hostKeyHashType ?? "sha256"),
        option("sftp-host-fingerprint", repo.hostKeyFingerprint),
        option("sftp-host-key-check-type", "fingerprint"),
      );
    } else if (repo.knownHostsFile) {
      lines.push(
        option("sftp-known-host", absolute("knownHostsFile", repo.knownHostsFile)),
        option("sftp-host-key-check-type", "strict"),
      );
    } else {
      throw new Error("offsite repository: sftp needs hostKeyFingerprint or knownHostsFile");
    }
  }
  lines.push(option("retention-full-type", "count"), option("retention-full", repo.retentionFull));
  if (repo.encryptionPassphrase) {
    lines.push(option("cipher-type", "aes-256-cbc"), option("cipher-pass", repo.encryptionPassphrase));
  }
  return lines;
}

/** Values of the offsite repository that must never appear in a message. */
export function offsiteSecrets(repo: OffsiteRepo | undefined): string[] {
  if (!repo) return [];
  const out = [repo.encryptionPassphrase ?? ""];
  if (repo.type === "s3") out.push(repo.accessKey, repo.secretKey);
  if (repo.type === "sftp") out.push(repo.privateKey ?? "");
  return out.filter((s) => s.length > 0);
}

/** Compares dotted versions ("2.45" < "2.46" < "2.100"). */
export function versionAtLeast(version: string, minimum: string): boolean {
  const a = version.split(".").map(Number);
  const b = minimum.split(".").map(Number);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/**
 * Why `repo` cannot be used with pgBackRest `version` (undefined when it can): native SFTP
 * repositories need pgBackRest 2.46.
 */
export function offsiteUnsupportedReason(repo: OffsiteRepo, version: string): string | undefined {
  if (repo.type !== "sftp" || versionAtLeast(version, SFTP_MIN_VERSION)) return undefined;
  return (
    `backups.offsite.type sftp needs pgBackRest ${SFTP_MIN_VERSION} or later (repo-type=sftp), ` +
    `and pgBackRest ${version} runs here. Instead mount the SFTP host's directory (sshfs) and use ` +
    "type path with that mount point, or use type s3"
  );
}

/** The version of a pgbackrest executable (`pgbackrest version`: "pgBackRest 2.45"). */
export function pgbackrestVersionOf(bin: string): string {
  const out = execFileSync(bin, ["version"], { encoding: "utf8", timeout: 30_000 });
  const m = /pgBackRest\s+(\d+(?:\.\d+)+)/.exec(out);
  if (!m) throw new Error(`${bin} version: unexpected output ${JSON.stringify(out.trim())}`);
  return m[1];
}
