#!/bin/sh
# LOOMWORKS_PGBACKREST of the scheduled jobs on Kubernetes (components/kubernetes/OpsJobs.ts):
# pgBackRest's backup, expire and verify must run where the data directory and the repository are,
# the PostgreSQL pod, so this runs `pgbackrest <args>` there through the Kubernetes exec API. The
# ops ServiceAccount may exec into that one pod only. kubectl returns pgbackrest's exit code.
set -eu

if ! command -v kubectl >/dev/null 2>&1; then
    echo "pgbackrest-in-postgres-pod: kubectl is not on PATH (the ops image installs it from pkgs.k8s.io)" >&2
    exit 127
fi
: "${LOOMWORKS_NAMESPACE:?LOOMWORKS_NAMESPACE is not set (the namespace of this pod, from the downward API)}"
: "${LOOMWORKS_POSTGRES_POD:?LOOMWORKS_POSTGRES_POD is not set (the PostgreSQL pod, e.g. postgres-0)}"

exec kubectl exec -n "$LOOMWORKS_NAMESPACE" "$LOOMWORKS_POSTGRES_POD" \
    -c "${LOOMWORKS_POSTGRES_CONTAINER:-postgres}" -- pgbackrest "$@"
