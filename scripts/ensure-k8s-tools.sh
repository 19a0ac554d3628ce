#!/usr/bin/env bash
# Makes the test cluster's binaries (scripts/k8s-test-cluster.sh) available in .tools/k8s-bin: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok, and the Pulumi Kubernetes
# provider plugin (scripts/ensure-pulumi-kubernetes.sh). None can be downloaded
# here, so they are built from the Go modules pinned under tools/{etcd,kubernetes,kwok}, through the
# Go module proxy, once per machine, into versioned cache directories outside the checkout (as
# ensure-pulumi.sh does for the Pulumi CLI); every clone on the machine links them.
# LOOMWORKS_SKIP_K8S_TOOLS=1 skips this. Guide: docs/developer/k8s-test-cluster.md
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
link="$repo/.tools/k8s-bin"
cache_root="${LOOMWORKS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/loomworks-hosting}"

log() { printf '[ensure-k8s-tools] %s\n' "$*" >&2; }

if [[ "${LOOMWORKS_SKIP_K8S_TOOLS:-}" == 1 ]]; then
  log "LOOMWORKS_SKIP_K8S_TOOLS=1: not building the test cluster's binaries"
  exit 0
fi

# The version our tools module requires of the upstream module.
pinned_version() { # tools_mod module
  awk -v m="$2" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$1/go.mod"
}

# Upstream go.mod files point modules of their own repository at local paths (etcd's sibling modules,
# k8s.io/kubernetes's staging tree). Outside that repository each must resolve to the release that
# belongs to the pinned version: `expected`.
check_path_replaces() { # tools_mod module version expected
  local tools_mod=$1 module=$2 version=$3 expected=$4 upstream_mod from effective
  upstream_mod=$(cd "$tools_mod" && go mod download -json "$module@$version" | sed -nE 's/^\s*"GoMod": "(.*)",?$/\1/p')
  [[ -f "$upstream_mod" ]] || { log "could not download $module@$version"; return 1; }
  effective=$(cd "$tools_mod" && go list -m -f '{{.Path}} {{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}' all)
  while read -r from; do
    local found
    found=$(awk -v m="$from" '$1 == m { print $2 }' <<<"$effective")
    # A module outside our build (e.g. etcd's FORBIDDEN_DEPENDENCY guards) needs nothing.
    [[ -z "$found" || "$found" == "$expected" ]] \
      || { log "${tools_mod#"$repo/"}/go.mod resolves $from to $found; $module@$version needs $expected"; return 1; }
  done < <(sed -nE 's/^(replace)?\s+(\S+)( v\S+)? => \.\.?\/.*/\2/p' "$upstream_mod")
}

# Builds one tool group into its cache directory unless that is already complete, then links its
# binaries. BUILD_FUNCTION VERSION BIN_DIR builds through `run build ...`; with RECIPE_ONLY=1 it prints
# those commands instead, and they are part of the cache key: changing flags rebuilds.
# SIBLINGS says which release the upstream path replaces must resolve to: "same" (the pinned version)
# or "staging" (k8s.io staging modules: v1.X.Y is published as v0.X.Y).
ensure_tool() { # NAME MODULE SIBLINGS BUILD_FUNCTION
  local name=$1 module=$2 siblings=$3 build_fn=$4
  local tools_mod="$repo/tools/$name" version expected inputs_hash cache start end
  version=$(pinned_version "$tools_mod" "$module")
  [[ -n "$version" ]] || { log "cannot read the pinned $module version from tools/$name/go.mod"; return 1; }
  expected=$version
  [[ "$siblings" != staging ]] || expected="v0.${version#v1.}"
  inputs_hash=$(cat "$tools_mod/go.mod" "$tools_mod/go.sum" <(RECIPE_ONLY=1 "$build_fn" "$version" /dev/null) \
    | sha256sum | cut -c1-12)
  cache="$cache_root/$name-$version-$arch-$inputs_hash"

  if [[ ! -f "$cache/.complete" ]]; then
    mkdir -p "$cache_root"
    exec 8>"$cache_root/.build-$name.lock"
    flock 8
  fi
  if [[ ! -f "$cache/.complete" ]]; then
    check_path_replaces "$tools_mod" "$module" "$version" "$expected"
    staging="$cache.tmp.$$"
    rm -rf "$staging"
    mkdir -p "$staging/bin"
    start=$(date +%s)
    log "building $name $version ($module) — the first build on a machine takes minutes"
    (cd "$tools_mod" && "$build_fn" "$version" "$staging/bin")
    end=$(date +%s)
    echo "$((end - start))" >"$staging/build-seconds"
    touch "$staging/.complete"
    rm -rf "$cache"
    mv "$staging" "$cache"
    staging=
    log "built $name $version in $((end - start)) s"
    exec 8>&-
  fi

  mkdir -p "$link"
  local binary
  for binary in "$cache"/bin/*; do
    ln -sfn "$binary" "$link/$(basename "$binary")"
  done
}

# One binary: `go build` with the given ldflags, logged with its build time.
build() { # ldflags output package
  local start=$SECONDS
  nice -n 10 go build -trimpath -ldflags "$1" -o "$2" "$3"
  log "  $(basename "$2"): $((SECONDS - start)) s"
}

# With RECIPE_ONLY=1 the build functions print what they would build instead of building it.
run() {
  if [[ -n "${RECIPE_ONLY:-}" ]]; then printf '%q ' "$@" && echo; else "$@"; fi
}

build_etcd() { # version bin_dir
  run build "-s -w" "$2/etcd" go.etcd.io/etcd/server/v3
}

# Without the version stamps (as upstream's hack/lib/version.sh sets them) every client would see
# the server as v0.0.0-master.
build_kubernetes() { # version bin_dir
  local version=$1 minor ldflags pkg
  minor=$(cut -d. -f2 <<<"$version")
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  for pkg in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    run build "$ldflags" "$2/$pkg" "k8s.io/kubernetes/cmd/$pkg"
  done
}

build_kwok() { # version bin_dir
  run build "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${1#v}" "$2/kwok" sigs.k8s.io/kwok/cmd/kwok
}

if ! command -v go >/dev/null; then
  log "go (>= 1.24) is required to build the test cluster's binaries (Go toolchain not found on PATH)"
  exit 1
fi
export GOFLAGS="${GOFLAGS:-} -mod=readonly"
# Static binaries, as the upstream releases are; no C toolchain needed.
export CGO_ENABLED=0
arch="$(go env GOOS)-$(go env GOARCH)"
staging=
trap '[[ -z "$staging" ]] || rm -rf "$staging"' EXIT

ensure_tool etcd go.etcd.io/etcd/server/v3 same build_etcd
ensure_tool kubernetes k8s.io/kubernetes staging build_kubernetes
ensure_tool kwok sigs.k8s.io/kwok same build_kwok
log "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok ready in .tools/k8s-bin"
# The Pulumi Kubernetes provider plugin the e2e test deploys the kubernetes target with.
"$repo/scripts/ensure-pulumi-kubernetes.sh"
