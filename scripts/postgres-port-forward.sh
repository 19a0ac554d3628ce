#!/usr/bin/env bash
# Opens the way `pulumi up` reaches the kubernetes target's PostgreSQL (kubernetes.postgres.adminEndpoint):
# a `kubectl port-forward` to the stack's `postgres` Service, kept in the background and reopened
# whenever it ends (a port-forward follows one pod and ends when postgres-0 is replaced, e.g. by a
# configuration change during the very `up` it serves).
#
#   scripts/postgres-port-forward.sh <stack>          start (returns once the port answers)
#   scripts/postgres-port-forward.sh <stack> --stop   stop it
#
# Namespace and local port come from Pulumi.<stack>.yaml (or $LOOMWORKS_STACK_FILE; kubernetes.namespace,
# kubernetes.postgres.adminEndpoint). Nothing to do when the stack declares no endpoint or the cluster
# has no postgres Service yet (the first `up`, before any tenant can be declared).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
stack=${1:?usage: postgres-port-forward.sh <stack> [--stop]}
state_dir=${RUNNER_TEMP:-${TMPDIR:-/tmp}}/loomworks-port-forward-$stack
pid_file=$state_dir/pid

stop() {
  if [[ -f $pid_file ]]; then
    kill -- "-$(cat "$pid_file")" 2>/dev/null || kill "$(cat "$pid_file")" 2>/dev/null || true
    rm -f "$pid_file"
  fi
}
if [[ ${2:-} == --stop ]]; then
  stop
  exit 0
fi

read -r namespace endpoint < <(
  node -e '
    const fs = require("node:fs");
    const yaml = require(process.argv[1] + "/node_modules/js-yaml");
    const file = yaml.load(fs.readFileSync(process.argv[2], "utf8"));
    const k = ((file.config || {})["loomworks:platform"] || {}).kubernetes || {};
    console.log((k.namespace || "loomworks") + " " + ((k.postgres || {}).adminEndpoint || "-"));
  ' "$repo" "${LOOMWORKS_STACK_FILE:-$repo/Pulumi.$stack.yaml}"
)
if [[ $endpoint == - ]]; then
  echo "postgres-port-forward: stack $stack declares no kubernetes.postgres.adminEndpoint: nothing to forward"
  exit 0
fi
host=${endpoint%:*}
port=${endpoint##*:}
if [[ $host != 127.0.0.1 && $host != localhost ]]; then
  echo "postgres-port-forward: the endpoint $endpoint is not local: reached another way, nothing to forward"
  exit 0
fi
if ! kubectl -n "$namespace" get service postgres >/dev/null 2>&1; then
  echo "postgres-port-forward: no postgres Service in namespace $namespace yet (first up): nothing to forward"
  exit 0
fi

stop
mkdir -p "$state_dir"
# shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
setsid bash -c '
  while :; do
    kubectl -n "$1" port-forward service/postgres "$2:5432" --address 127.0.0.1 || true
    sleep 1
  done
' port-forward "$namespace" "$port" >>"$state_dir/log" 2>&1 &
echo $! >"$pid_file"
for _ in $(seq 60); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "postgres-port-forward: 127.0.0.1:$port -> service/postgres in $namespace (log: $state_dir/log)"
    exit 0
  fi
  sleep 1
done
echo "postgres-port-forward: 127.0.0.1:$port did not open within 60 s; kubectl said:" >&2
tail -n 20 "$state_dir/log" >&2
stop
exit 1
