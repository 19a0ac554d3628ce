#!/bin/sh
# Run once by the postgres image's entrypoint after initdb, while its temporary server is up: creates
# the pgBackRest stanza so that archive_command (archive-push) succeeds from the first WAL segment.
set -eu
stanza=${LOOMWORKS_STANZA:-loomworks}
echo "loomworks: creating the pgBackRest stanza '$stanza'"
pgbackrest --stanza="$stanza" --log-level-console=info stanza-create
