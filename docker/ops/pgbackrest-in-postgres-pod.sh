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

# A killed kubectl does not stop the command in the pod: `timeout` there ends pgbackrest by the
# Job's deadline (LOOMWORKS_PGBACKREST_TIMEOUT_SECONDS), so its lock never outlives the run.
timeout_seconds=${LOOMWORKS_PGBACKREST_TIMEOUT_SECONDS:-0}
case $timeout_seconds in
    '' | *[!0-9]*)
        echo "pgbackrest-in-postgres-pod: LOOMWORKS_PGBACKREST_TIMEOUT_SECONDS must be whole seconds" >&2
        exit 2
        ;;
esac
if [ "$timeout_seconds" -gt 0 ]; then
    exec kubectl exec -n "$LOOMWORKS_NAMESPACE" "$LOOMWORKS_POSTGRES_POD" \
        -c "${LOOMWORKS_POSTGRES_CONTAINER:-postgres}" -- \
        timeout --kill-after=30 "$timeout_seconds" pgbackrest "$@"
fi
exec kubectl exec -n "$LOOMWORKS_NAMESPACE" "$LOOMWORKS_POSTGRES_POD" \
    -c "${LOOMWORKS_POSTGRES_CONTAINER:-postgres}" -- pgbackrest "$@"
