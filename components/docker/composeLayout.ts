/**
 * The layout of the Compose project `npm run compose` renders (compose.ts): where its files sit,
 * where the services see them, the `.env` variables behind its secrets, and the start script that
 * writes pgbackrest.conf with the repository passphrase filled in (Pulumi uploads it instead).
 */
import { shellQuote } from "../../lib/process/shellQuote";
import { POSTGRES_CONTAINER } from "./config";

/** Where the mounted files sit, relative to the Compose files. */
export const FILES = {
  postgresqlConf: "postgres/postgresql.conf",
  pgbackrestConf: "postgres/pgbackrest.conf",
  pgbackrestSetup: "postgres/pgbackrest-conf.sh",
  erpSecretsCheck: "erp/secrets-check.sh",
  odooConf: "erp/odoo.conf",
  odooDevConf: "erp/odoo.dev.conf",
  tenantsDir: "erp/tenants",
  nginxConf: "nginx/nginx.conf",
  nginxDevConf: "nginx/nginx.dev.conf",
  nginxHtml: "nginx/html",
  schedule: "ops/schedule.json",
  jobScript: "ops/loomworks-job",
} as const;

/** Where the services see them. */
export const MOUNTED = {
  pgbackrestConf: "/etc/loomworks/pgbackrest.conf",
  pgbackrestSetup: "/etc/loomworks/pgbackrest-conf.sh",
  erpSecretsCheck: "/etc/loomworks/secrets-check.sh",
  rolesSecretsDir: "/run/secrets/loomworks",
  backupCipherPass: "/run/secrets/backup-cipher-pass",
} as const;

/** Stands in for a secret option's value in the mounted pgbackrest.conf; pgbackrest-conf.sh replaces it. */
export const secretFileStandin = (file: string): string => `from-secret-file:${file}`;
/** The repository passphrase's stand-in. */
export const CIPHER_PASS_STANDIN = secretFileStandin(MOUNTED.backupCipherPass);

/**
 * Every secret's value in `.env.example`. The services' start scripts refuse it (and an empty value),
 * so that a copied `.env.example` never starts the platform with publicly known passwords.
 */
export const SECRET_PLACEHOLDER = "change-me";

/** A secret a service's start checks: the file it is mounted at (or its environment variable), and its `.env` variable. */
export interface SecretCheck {
  /** The secret file; undefined when the service reads `variable` from its environment. */
  file?: string;
  variable: string;
}

/** One variable of `.env`: what it is, and a placeholder that is never a usable value. */
export interface ComposeVariable {
  name: string;
  comment: string;
  placeholder: string;
}

/** A pgbackrest.conf option whose value pgbackrest-conf.sh reads from a Compose secret file. */
export interface SecretOption {
  option: string;
  /** The secret file (first line: the value). */
  file: string;
  /** The `.env` variable behind the secret (named when it is missing). */
  variable: string;
}

/** A secret file pgbackrest-conf.sh installs where pgBackRest reads it (owned by postgres, 0600). */
export interface SecretInstall {
  file: string;
  target: string;
  variable: string;
}

/** The `.env` variables behind the Compose secrets. */
export const SECRET_VARIABLES = {
  superuser: "LOOMWORKS_POSTGRES_PASSWORD",
  replication: "LOOMWORKS_REPLICATION_PASSWORD",
  monitor: "LOOMWORKS_MONITOR_PASSWORD",
  erpDb: "LOOMWORKS_ERP_DB_PASSWORD",
  odooAdmin: "LOOMWORKS_ODOO_ADMIN_PASSWD",
  backupCipher: "LOOMWORKS_BACKUP_CIPHER_PASS",
} as const;
/** The router's certificate and key on the host (`platform.routerTls`), when not the stack's paths. */
export const ROUTER_TLS_VARIABLES = {
  certFile: "LOOMWORKS_ROUTER_TLS_CERT_FILE",
  keyFile: "LOOMWORKS_ROUTER_TLS_KEY_FILE",
} as const;
/** The tenant databases the ERP updates at each start (none until tenants exist). */
export const DATABASES_VARIABLE = "LOOMWORKS_DATABASES";
/** The development override's addons checkout when the stack names none. */
export const ADDONS_VARIABLE = "LOOMWORKS_ADDONS_PATH";

/**
 * The shell functions of the start scripts (sh, `set -u`): `require FILE VARIABLE` and
 * `require_value VALUE VARIABLE` stop with 78 (a configuration error) naming the `.env` variable
 * while a secret is missing, empty or still SECRET_PLACEHOLDER.
 */
function secretCheckFunctions(script: string): string {
  return `# require_value VALUE VARIABLE: stop (78, a configuration error) while a secret is empty or still the placeholder.
require_value() {
  if [ -z "$1" ]; then
    echo "${script}: $2 is empty: set it in .env" >&2
    exit 78
  fi
  if [ "$1" = ${shellQuote(SECRET_PLACEHOLDER)} ]; then
    echo "${script}: $2 is still the placeholder of .env.example (${SECRET_PLACEHOLDER}): set it in .env" >&2
    exit 78
  fi
}
# require FILE VARIABLE: the same for a secret file.
require() {
  if [ ! -s "$1" ]; then
    echo "${script}: $1 is missing or empty ($2 in .env)" >&2
    exit 78
  fi
  require_value "$(cat "$1")" "$2"
}`;
}

/** The lines that check `checks` (secretCheckFunctions). */
const checkLines = (checks: readonly SecretCheck[]): string[] =>
  checks.map((c) =>
    c.file === undefined
      ? `require_value "\${${c.variable}-}" ${c.variable}`
      : `require ${shellQuote(c.file)} ${c.variable}`,
  );

/** The arguments of pgbackrest-conf.sh: the service's own secret files to check first. */
export const pgbackrestSetupArguments = (checks: readonly SecretCheck[]): string[] =>
  checks.flatMap((c) => {
    if (c.file === undefined) throw new Error(`pgbackrest-conf.sh checks secret files only (${c.variable})`);
    return [c.file, c.variable];
  });

/**
 * The ERP's start check (Compose only, before the image's entrypoint): its secret files and the AI
 * keys in its environment are set and not the placeholder.
 */
export function erpSecretsCheckScript(checks: readonly SecretCheck[]): string {
  return `#!/bin/sh
# Rendered by \`npm run compose\`. Run when the erp container starts, before the image's entrypoint:
# refuses to start (78) while a secret from .env is empty or still the placeholder of .env.example.
set -eu
${secretCheckFunctions("secrets-check")}
${checkLines(checks).join("\n")}
`;
}

/**
 * The starter of the PostgreSQL and ops containers, root only: the secret files named by its
 * arguments (FILE VARIABLE pairs) checked first, then pgbackrest.conf with the options of `fill`
 * read from their secret files, and the files of `install` (the offsite SFTP key).
 */
export function pgbackrestSetupScript(
  fill: readonly SecretOption[] = [],
  install: readonly SecretInstall[] = [],
): string {
  const steps = [
    ...install.map((i) => `install_secret ${i.file} ${shellQuote(i.target)} ${i.variable}`),
    ...fill.map((f) => `fill ${f.option} ${f.file} ${f.variable}`),
  ];
  return `#!/bin/sh
# Rendered by \`npm run compose\`. Run as root when the postgres and ops containers start: writes
# ${POSTGRES_CONTAINER.pgbackrestConfig} (mode 0600, owned by postgres) from the mounted
# ${MOUNTED.pgbackrestConf}, each secret option (the repository passphrases, the offsite S3 keys)
# read from its Compose secret file under /run/secrets: no secret is in a file next to the
# Compose project.
set -eu
${secretCheckFunctions("pgbackrest-conf")}
while [ "$#" -ge 2 ]; do
  require "$1" "$2"
  shift 2
done
source=${MOUNTED.pgbackrestConf}
target=${POSTGRES_CONTAINER.pgbackrestConfig}
umask 077
mkdir -p "$(dirname "$target")"
for dir in ${POSTGRES_CONTAINER.spoolDir} ${POSTGRES_CONTAINER.logDir} ${POSTGRES_CONTAINER.lockDir}; do
  install -d -o postgres -g postgres -m 0750 "$dir"
done
# fill OPTION FILE VARIABLE: OPTION's value in "$target.tmp" becomes FILE's first line.
fill() {
  require "$2" "$3"
  awk -v option="$1=" -v secret="$2" 'BEGIN { getline value < secret } index($0, option) == 1 { print option value; next } { print }' "$target.tmp" >"$target.next"
  mv "$target.next" "$target.tmp"
}
# install_secret FILE TARGET VARIABLE: a copy of FILE for pgbackrest (run as postgres).
install_secret() {
  require "$1" "$3"
  mkdir -p "$(dirname "$2")"
  install -o postgres -g postgres -m 0600 "$1" "$2"
}
cp "$source" "$target.tmp"
${steps.join("\n")}
chown postgres:postgres "$target.tmp"
mv "$target.tmp" "$target"
`;
}
