#!/usr/bin/env bash
# A throw-away Kubernetes control plane on loopback for tests: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (fake nodes that run Pods to Ready/Succeeded), with
# generated certificates, an admin kubeconfig, a default StorageClass with a pool of static volumes,
# and the CRDs the prod stack uses (Gateway API, cert-manager, Prometheus operator) at pinned versions.
# Binaries come from scripts/ensure-k8s-tools.sh (.tools/k8s-bin). Guide: docs/developer/k8s-test-cluster.md
#
#   scripts/k8s-test-cluster.sh up   [--state-dir DIR]            start (again); harmless when running
#   scripts/k8s-test-cluster.sh down [--state-dir DIR] [--purge]  stop; --purge also deletes DIR
#
# State (default .loomworks/k8s-test-cluster): pki/, etcd/, logs/, run/*.pid, ports.env, kubeconfig.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$repo/.tools/k8s-bin"

# The upstream CRD manifests, read from the Go module zips (GitHub is not reachable from here). Versions
# match the @kubernetes-models packages in package.json; only the kinds' groups the program uses.
CRD_SOURCES=(
  "sigs.k8s.io/gateway-api@v1.5.1 config/crd/standard"
  "github.com/cert-manager/cert-manager@v1.20.2 deploy/crds"
  "github.com/prometheus-operator/prometheus-operator@v0.91.0 example/prometheus-operator-crd"
)
NODE_NAME=kwok-node-0
SERVICE_CIDR=10.96.0.0/16
VOLUME_POOL_SIZE=24

log() { printf '[k8s-test-cluster] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() { die "usage: $0 up|down [--state-dir DIR] [--purge]"; }

command=${1:-}
[[ "$command" == up || "$command" == down ]] || usage
shift
state="$repo/.loomworks/k8s-test-cluster"
purge=
while (($#)); do
  case $1 in
    --state-dir) state=${2:?--state-dir needs a directory}; shift 2 ;;
    --purge) purge=1; shift ;;
    *) usage ;;
  esac
done
mkdir -p "$state"
state=$(cd "$state" && pwd)
pki="$state/pki" run="$state/run" logs="$state/logs"
kubeconfig="$state/kubeconfig"

# ---------------------------------------------------------------------------------------------
# Processes: one pid file each; a pid counts only while it still runs the same binary with this
# state directory on its command line (all of them name a file in it).

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

running() { # component
  local pid
  pid=$(cat "$run/$1.pid" 2>/dev/null) || return 1
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  local cmdline
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline")
  [[ "$cmdline" == *"/$1 "* && "$cmdline" == *"$state/"* ]]
}

start() { # component args...
  local component=$1
  shift
  if running "$component"; then
    log "$component already running (pid $(cat "$run/$component.pid"))"
    return
  fi
  mkdir -p "$run" "$logs"
  rm -f "$run/$component.pid"
  # Its own session: the cluster outlives the shell (or test runner) that started it, until `down`.
  # The process writes its own pid (setsid may fork), then becomes the component.
  # shellcheck disable=SC2016 # $$ and $0 belong to the inner shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$run/$component.pid" "$bin/$component" "$@" \
    >>"$logs/$component.log" 2>&1 </dev/null 9>&- &
  local deadline=$((SECONDS + 30))
  until [[ -s "$run/$component.pid" ]]; do
    ((SECONDS < deadline)) || die "$component did not start within 30 s; its log: $logs/$component.log"
    sleep 0.1
  done
  log "started $component (pid $(cat "$run/$component.pid"), log $logs/$component.log)"
}

stop() { # component
  local pid
  running "$1" || { rm -f "$run/$1.pid"; return 0; }
  pid=$(cat "$run/$1.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$1 (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$run/$1.pid"
  log "stopped $1 (pid $pid)"
}

# Polls CHECK (a command) every half second until it succeeds, or fails naming the component's log.
wait_for() { # component seconds check...
  local component=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ! running "$component"; then
      tail -n 30 "$logs/$component.log" >&2 || true
      die "$component exited; its log: $logs/$component.log"
    fi
    ((SECONDS < deadline)) || {
      tail -n 30 "$logs/$component.log" >&2 || true
      die "$component not ready after $seconds s; its log: $logs/$component.log"
    }
    sleep 0.5
  done
}

# `up` and `down` of one state directory take turns (the components do not inherit the lock: 9>&-).
exec 9>"$state/.lock"
flock 9

if [[ "$command" == down ]]; then
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do stop "${COMPONENTS[i]}"; done
  if [[ -n "$purge" ]]; then
    rm -rf "$state"
    log "removed $state"
  fi
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# up

for tool in "${COMPONENTS[@]}" kubectl; do
  [[ -x "$bin/$tool" ]] || die "$bin/$tool is missing: run scripts/ensure-k8s-tools.sh (or scripts/setup.sh) first"
done
command -v openssl >/dev/null || die "openssl is required (apt-get install openssl)"
command -v curl >/dev/null || die "curl is required (apt-get install curl)"

# --- certificates ------------------------------------------------------------------------------

# A certificate signed by the cluster CA: SUBJECT, extended key usage, optional subjectAltName.
issue() { # name subject usage [san]
  local name=$1 subject=$2 usage=$3 san=${4:-}
  [[ -f "$pki/$name.crt" ]] && return
  local ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=$usage"
  [[ -z "$san" ]] || ext+=$'\n'"subjectAltName=$san"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 \
    -extfile <(printf '%s\n' "$ext") -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr"
}

mkdir -p "$pki"
chmod 700 "$pki"
if [[ ! -f "$pki/ca.crt" ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 \
    -subj "/CN=loomworks-test-cluster-ca" 2>/dev/null
fi
if [[ ! -f "$pki/sa.key" ]]; then
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
fi
issue apiserver "/CN=kube-apiserver" serverAuth \
  "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
issue admin "/O=system:masters/CN=loomworks-test-admin" clientAuth
issue controller-manager "/CN=system:kube-controller-manager" clientAuth
issue scheduler "/CN=system:kube-scheduler" clientAuth

# --- ports -------------------------------------------------------------------------------------

port_free() { python3 -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

PORT_NAMES=(ETCD_PORT ETCD_PEER_PORT APISERVER_PORT CONTROLLER_MANAGER_PORT SCHEDULER_PORT)
any_running=
for component in "${COMPONENTS[@]}"; do running "$component" && any_running=1; done
# shellcheck source=/dev/null
[[ ! -f "$state/ports.env" ]] || source "$state/ports.env"
# Ports stay as they were while anything runs, or when all are still free (the kubeconfig stays valid).
reuse=1
for name in "${PORT_NAMES[@]}"; do
  [[ -n "${!name:-}" ]] || reuse=
  [[ -n "$any_running" || -z "$reuse" ]] || port_free "${!name}" || reuse=
done
if [[ -z "$reuse" ]]; then
  : >"$state/ports.env"
  for name in "${PORT_NAMES[@]}"; do
    printf -v "$name" '%s' "$(free_port)"
    echo "$name=${!name}" >>"$state/ports.env"
  done
fi

# --- kubeconfigs -------------------------------------------------------------------------------

b64() { base64 -w0 <"$1"; }

write_kubeconfig() { # file cert_name user
  cat >"$1.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: loomworks-test
    cluster:
      server: https://127.0.0.1:$APISERVER_PORT
      certificate-authority-data: $(b64 "$pki/ca.crt")
users:
  - name: $3
    user:
      client-certificate-data: $(b64 "$pki/$2.crt")
      client-key-data: $(b64 "$pki/$2.key")
contexts:
  - name: loomworks-test
    context: { cluster: loomworks-test, user: $3, namespace: default }
current-context: loomworks-test
EOF
  chmod 600 "$1.tmp"
  mv "$1.tmp" "$1"
}
write_kubeconfig "$kubeconfig" admin loomworks-test-admin
write_kubeconfig "$pki/controller-manager.kubeconfig" controller-manager system:kube-controller-manager
write_kubeconfig "$pki/scheduler.kubeconfig" scheduler system:kube-scheduler

kubectl() { "$bin/kubectl" --kubeconfig "$kubeconfig" "$@"; }
https_ok() { # url: the admin client certificate against the cluster CA
  [[ "$(curl -fsS --max-time 5 --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" "$1")" == ok ]]
}

# --- control plane -----------------------------------------------------------------------------

start etcd --name loomworks-test --data-dir "$state/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "loomworks-test=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync --log-level warn
etcd_healthy() { curl -fsS --max-time 5 "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
wait_for etcd 60 etcd_healthy

# The Endpoints of the `kubernetes` Service may not point at loopback: no reconciler. The request
# header CA (no front proxy exists; no front-proxy-client certificate is issued) spares the
# controller manager and the scheduler a missing-CA-bundle error every few seconds.
start kube-apiserver --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" --cert-dir "$pki" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" --client-ca-file "$pki/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --authorization-mode Node,RBAC --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged \
  --endpoint-reconciler-type none --profiling=false \
  --requestheader-client-ca-file "$pki/ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra-
wait_for kube-apiserver 180 https_ok "https://127.0.0.1:$APISERVER_PORT/readyz"

start kube-controller-manager --kubeconfig "$pki/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$pki/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$pki/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" --leader-elect=false \
  --controllers '*' --use-service-account-credentials \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
start kube-scheduler --kubeconfig "$pki/scheduler.kubeconfig" \
  --authentication-kubeconfig "$pki/scheduler.kubeconfig" --authorization-kubeconfig "$pki/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --profiling=false
# kwok keeps every Node Ready and plays the Pods bound to them: Running and Ready, Succeeded for a
# Job's Pods. Node leases, as a kubelet renews them: without, kwok posts the Node's status about once
# a minute, past the controller manager's 50 s grace period, and the node lifecycle controller marks
# every Pod on it not Ready (for good: kwok does not patch a Pod again).
start kwok --kubeconfig "$kubeconfig" --manage-all-nodes --node-lease-duration-seconds 40

healthz_ok() { [[ "$(curl -fsSk --max-time 5 "$1")" == ok ]]; }
wait_for kube-controller-manager 120 healthz_ok "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz"
wait_for kube-scheduler 120 healthz_ok "https://127.0.0.1:$SCHEDULER_PORT/healthz"

# --- objects: the fake node, storage, CRDs ------------------------------------------------------

kubectl apply --server-side --field-manager k8s-test-cluster -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $NODE_NAME
  annotations: { node.alpha.kubernetes.io/ttl: "0", kwok.x-k8s.io/node: fake }
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: $NODE_NAME
    type: kwok
status:
  allocatable: { cpu: "64", memory: 256Gi, pods: "250", ephemeral-storage: 1Ti }
  capacity: { cpu: "64", memory: 256Gi, pods: "250", ephemeral-storage: 1Ti }
EOF
node_ready() { kubectl wait --for condition=Ready "node/$NODE_NAME" --timeout 5s; }
wait_for kwok 120 node_ready

# No volume provisioner runs here: the default StorageClass binds claims to a pool of static volumes
# (the controller manager's binder), so Pods with claims get scheduled. Nothing is ever written to them.
{
  cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: { storageclass.kubernetes.io/is-default-class: "true" }
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: Immediate
allowVolumeExpansion: true
reclaimPolicy: Retain
EOF
  for i in $(seq -w 1 "$VOLUME_POOL_SIZE"); do
    cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: { name: pool-$i, labels: { loomworks.dev/test-volume-pool: "true" } }
spec:
  storageClassName: standard
  capacity: { storage: 1Ti }
  accessModes: [ReadWriteOnce, ReadWriteMany, ReadOnlyMany]
  persistentVolumeReclaimPolicy: Retain
  hostPath: { path: $state/volumes/pool-$i }
EOF
  done
} | kubectl apply --server-side --field-manager k8s-test-cluster -f - >/dev/null

crd_files=()
for source in "${CRD_SOURCES[@]}"; do
  read -r module dir <<<"$source"
  module_dir=$(cd / && GOFLAGS='' go mod download -json "$module" | sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p')
  [[ -d "$module_dir/$dir" ]] || die "go mod download $module gave no $dir (is the Go module proxy reachable?)"
  crd_files+=("$module_dir/$dir"/*.yaml)
done
# Server-side: the Prometheus CRDs are too large for client-side apply's last-applied annotation.
kubectl apply --server-side --force-conflicts --field-manager k8s-test-cluster "${crd_files[@]/#/--filename=}" >/dev/null
kubectl wait --for condition=Established crd --all --timeout 120s >/dev/null
log "$(kubectl get crd -o name | wc -l) CRDs established (${CRD_SOURCES[*]%% *})"

log "ready: export KUBECONFIG=$kubeconfig"
