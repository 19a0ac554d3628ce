/**
 * The layout of the Compose project `npm run compose` renders (compose.ts): where its files sit,
 * where the services see them, the `.env` variables behind its secrets, and the start script that
 * writes pgbackrest.conf with the repository passphrase filled in (Pulumi uploads it instead).
 */
import { POSTGRES_CONTAINER } from "./config";

/** Where the mounted files sit, relative to the Compose files. */
export const FILES = {
  postgresqlConf: "postgres/postgresql.conf",
  pgbackrestConf: "postgres/pgbackrest.conf",
  pgbackrestSetup: "postgres/pgbackrest-conf.sh",
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
  rolesSecretsDir: "/run/secrets/loomworks",
  backupCipherPass: "/run/secrets/backup-cipher-pass",
} as const;

/** Stands in for the passphrase in the mounted pgbackrest.conf; pgbackrest-conf.sh replaces it. */
export const CIPHER_PASS_STANDIN = `from-secret-file:${MOUNTED.backupCipherPass}`;

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

/** The starter of the PostgreSQL and ops containers: pgbackrest.conf with its passphrase, root only. */
export function pgbackrestSetupScript(): string {
  return `#!/bin/sh
# Rendered by \`npm run compose\`. Run as root when the postgres and ops containers start: writes
# ${POSTGRES_CONTAINER.pgbackrestConfig} (mode 0600, owned by postgres) from the mounted
# ${MOUNTED.pgbackrestConf}, with the repository passphrase from the secret file
# ${MOUNTED.backupCipherPass} when the repository is encrypted: the passphrase is never in a
# file next to the Compose project.
set -eu
source=${MOUNTED.pgbackrestConf}
target=${POSTGRES_CONTAINER.pgbackrestConfig}
secret=${MOUNTED.backupCipherPass}
umask 077
mkdir -p "$(dirname "$target")"
for dir in ${POSTGRES_CONTAINER.spoolDir} ${POSTGRES_CONTAINER.logDir} ${POSTGRES_CONTAINER.lockDir}; do
  install -d -o postgres -g postgres -m 0750 "$dir"
done
if grep -q '^repo1-cipher-pass=' "$source"; then
  if [ ! -s "$secret" ]; then
    echo "pgbackrest-conf: $secret is missing or empty (${SECRET_VARIABLES.backupCipher} in .env)" >&2
    exit 78
  fi
  awk -v secret="$secret" 'BEGIN { getline pass < secret } /^repo1-cipher-pass=/ { print "repo1-cipher-pass=" pass; next } { print }' "$source" >"$target.tmp"
else
  cp "$source" "$target.tmp"
fi
chown postgres:postgres "$target.tmp"
mv "$target.tmp" "$target"
`;
}
