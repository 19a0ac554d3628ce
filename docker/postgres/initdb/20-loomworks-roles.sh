#!/bin/sh
# Run once after initdb, after 10-pgbackrest-stanza.sh: where the platform mounts the roles' password
# files (the Kubernetes target sets LOOMWORKS_SECRETS_DIR), creates the replication and monitoring
# roles at once, so the exporter can connect from the first start. The Docker target mounts no such
# files: nothing to do there.
set -eu
if [ -z "${LOOMWORKS_SECRETS_DIR:-}" ]; then
  exit 0
fi
echo "loomworks: creating the replication and monitoring roles"
loomworks-sync-roles --once
