/**
 * `platform.backups.offsite` in the Compose project (compose.ts): the repository DockerPlatform's
 * containers get (dockerOffsiteRepo), rendered into the mounted pgbackrest.conf with a stand-in for
 * each secret (the S3 keys, the offsite passphrase) that pgbackrest-conf.sh fills from Compose
 * secrets sourced from `.env`; a `path` repository bind-mounted into postgres and ops; an SFTP key
 * a Compose secret read from the host file `.env` names, installed where pgbackrest.conf says.
 */
import type { StackConfig } from "../../infra/config/schema";
import type { OffsiteRepo } from "../../lib/pg/offsite";
import { OFFSITE_CONTAINER, dockerOffsiteRepo } from "./config";
import {
  MOUNTED,
  SECRET_PLACEHOLDER,
  SECRET_VARIABLES,
  secretFileStandin,
  type ComposeVariable,
  type SecretInstall,
  type SecretOption,
} from "./composeLayout";

/** The `.env` variables of the offsite repository. */
export const OFFSITE_VARIABLES = {
  s3Key: "LOOMWORKS_OFFSITE_S3_KEY",
  s3KeySecret: "LOOMWORKS_OFFSITE_S3_KEY_SECRET",
  cipherPass: "LOOMWORKS_OFFSITE_CIPHER_PASS",
  sftpKeyFile: "LOOMWORKS_OFFSITE_SFTP_KEY_FILE",
} as const;

/** One Compose secret: its name in the project, its source, and the file the services see. */
interface OffsiteSecret {
  name: string;
  source: { environment: string } | { file: string };
  target: string;
}

export interface ComposeOffsite {
  /** The repository pgbackrest.conf renders: DockerPlatform's, each secret a stand-in. */
  repo: OffsiteRepo;
  /** The options pgbackrest-conf.sh fills (the passphrase of repo1's secret when repo2 shares it). */
  fill: SecretOption[];
  /** The SFTP key, installed at the repository's `privateKeyFile`. */
  install: SecretInstall[];
  secrets: OffsiteSecret[];
  /** A `path` repository's bind mount (postgres and ops: both write it, as under Pulumi). */
  volumes: Record<string, unknown>[];
  variables: ComposeVariable[];
}

const secretFile = (name: string): string => `/run/secrets/${name}`;

/** A secret from an `.env` variable behind a pgbackrest.conf option. */
function optionSecret(name: string, option: string, variable: string): [OffsiteSecret, SecretOption] {
  const file = secretFile(name);
  return [
    { name: name.replace(/-/g, "_"), source: { environment: variable }, target: file },
    { option: `repo2-${option}`, file, variable },
  ];
}

const standinOf = ([, option]: [OffsiteSecret, SecretOption]): string => secretFileStandin(option.file);

function variable(name: string, comment: string, placeholder: string): ComposeVariable {
  return { name, comment, placeholder };
}

/** The offsite repository of the Compose project; undefined without `backups.offsite`. */
export function composeOffsite(config: StackConfig, stackDir: string): ComposeOffsite | undefined {
  const backups = config.platform.backups;
  const offsite = backups.offsite;
  const repo = dockerOffsiteRepo(backups, stackDir);
  if (!offsite || !repo) return undefined;
  const pairs: [OffsiteSecret, SecretOption][] = [];
  const variables: ComposeVariable[] = [];
  const out: ComposeOffsite = { repo, fill: [], install: [], secrets: [], volumes: [], variables };

  if (repo.type === "s3") {
    pairs.push(
      optionSecret("offsite-s3-key", "s3-key", OFFSITE_VARIABLES.s3Key),
      optionSecret("offsite-s3-key-secret", "s3-key-secret", OFFSITE_VARIABLES.s3KeySecret),
    );
    variables.push(
      variable(
        OFFSITE_VARIABLES.s3Key,
        "offsite S3 repository's access key id (backups.offsite.accessKey)",
        SECRET_PLACEHOLDER,
      ),
      variable(
        OFFSITE_VARIABLES.s3KeySecret,
        "offsite S3 repository's secret access key (backups.offsite.secretKey)",
        SECRET_PLACEHOLDER,
      ),
    );
    out.repo = { ...repo, accessKey: standinOf(pairs[0]), secretKey: standinOf(pairs[1]) };
  }
  if (repo.type === "path") {
    // The container does not start while the directory (say an unmounted share) is missing.
    out.volumes.push({
      type: "bind",
      source: offsite.path,
      target: OFFSITE_CONTAINER.mountDir,
      bind: { create_host_path: false },
    });
  }
  if (repo.type === "sftp") {
    // The key itself (a stand-in here) is never rendered: the secret below replaces it.
    const { privateKey: _key, ...withoutKey } = repo;
    out.repo = withoutKey;
    const file = secretFile("offsite-sftp-key");
    out.secrets.push({
      name: "offsite_sftp_key",
      source: { file: `\${${OFFSITE_VARIABLES.sftpKeyFile}:?set ${OFFSITE_VARIABLES.sftpKeyFile} in .env}` },
      target: file,
    });
    out.install.push({ file, target: repo.privateKeyFile, variable: OFFSITE_VARIABLES.sftpKeyFile });
    variables.push(
      variable(
        OFFSITE_VARIABLES.sftpKeyFile,
        `offsite SFTP repository's private key file on this host (keep it 0600), a Compose secret installed at ${repo.privateKeyFile} for pgBackRest`,
        "/path/to/offsite-sftp-private-key",
      ),
    );
  }

  if (repo.encryptionPassphrase !== undefined) {
    if (offsite.encryptionPassphrase !== undefined) {
      pairs.push(optionSecret("offsite-cipher-pass", "cipher-pass", OFFSITE_VARIABLES.cipherPass));
      variables.push(
        variable(
          OFFSITE_VARIABLES.cipherPass,
          "offsite repository passphrase (aes-256-cbc; backups.offsite.encryptionPassphrase): its backups are useless without it, keep a copy apart from the host",
          SECRET_PLACEHOLDER,
        ),
      );
      out.repo = { ...out.repo, encryptionPassphrase: standinOf(pairs[pairs.length - 1]) };
    } else {
      // repo2 shares repo1's passphrase (backups.encryptionPassphrase), and so its secret.
      const shared = { file: MOUNTED.backupCipherPass, variable: SECRET_VARIABLES.backupCipher };
      out.fill.push({ option: "repo2-cipher-pass", ...shared });
      out.repo = { ...out.repo, encryptionPassphrase: secretFileStandin(shared.file) };
    }
  }
  for (const [secret, option] of pairs) {
    out.secrets.push(secret);
    out.fill.push(option);
  }
  return out;
}
