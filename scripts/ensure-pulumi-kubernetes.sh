#!/usr/bin/env bash
# Builds the Pulumi Kubernetes provider plugin (pulumi-resource-kubernetes) from the Go module pinned in
# tools/pulumi-kubernetes/go.mod, through the Go module proxy, once per machine, into a versioned cache
# directory outside the checkout (beside the Pulumi CLI's); every clone links it into .tools/k8s-bin
# beside the test cluster's binaries (scripts/ensure-k8s-tools.sh, which calls this). With that
# directory on PATH the engine takes it whatever version the SDK asks for (an ambient plugin).
#
# The module proxy serves one build of the provider module (a January 2026 commit, which requires the
# v4.24.0 SDK module), not the release that matches the @pulumi/kubernetes npm SDK: see
# docs/operations/kubernetes.md. The module's zip holds schema.json but not the
# schema-embed.json its main package embeds: as upstream's `go generate` does, generate.go writes it
# (with the version) into a copy of the module, which our module replaces the upstream one with.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_mod="$repo/tools/pulumi-kubernetes"
link="$repo/.tools/k8s-bin/pulumi-resource-kubernetes"
module=github.com/pulumi/pulumi-kubernetes/provider/v4

log() { printf '[ensure-pulumi-kubernetes] %s\n' "$*" >&2; }

pinned=$(awk -v m="$module" '$1 == "require" && $2 == m { print $3 } $1 == m { print $2 }' "$tools_mod/go.mod" | head -1)
[[ -n "$pinned" ]] || { log "cannot read the pinned $module version from $tools_mod/go.mod"; exit 1; }
# The plugin's own version: the SDK module the pinned commit requires, and the commit.
sdk=$(awk '$1 == "github.com/pulumi/pulumi-kubernetes/sdk/v4" { sub(/^v/, "", $2); print $2 }' "$tools_mod/go.mod")
commit=${pinned##*-}
version="$sdk-dev.${commit:0:12}"
arch="$(go env GOOS)-$(go env GOARCH)"
inputs_hash=$(cat "$tools_mod/go.mod" "$tools_mod/go.sum" "$0" | sha256sum | cut -c1-12)
cache_root="${LOOMWORKS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/loomworks-hosting}"
cache="$cache_root/pulumi-kubernetes-v$version-$arch-$inputs_hash"

link_cache() {
  mkdir -p "$(dirname "$link")"
  ln -sfn "$cache/bin/pulumi-resource-kubernetes" "$link"
  log "pulumi-resource-kubernetes $version ready in .tools/k8s-bin -> $cache/bin"
}

if [[ -f "$cache/.complete" ]]; then
  link_cache
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.build.lock"
flock 9
if [[ -f "$cache/.complete" ]]; then
  link_cache
  exit 0
fi

command -v go >/dev/null || { log "go is required to build the Kubernetes provider plugin"; exit 1; }

staging="$cache.tmp.$$"
rm -rf "$staging"
mkdir -p "$staging/bin" "$staging/src"
trap 'rm -rf "$staging"' EXIT

start=$(date +%s)
cp "$tools_mod/go.mod" "$tools_mod/go.sum" "$staging/src/"
log "downloading $module@$pinned"
upstream=$(cd "$staging/src" && go mod download -json "$module@$pinned" | sed -nE 's/^\s*"Dir": "(.*)",?$/\1/p')
[[ -d "$upstream" ]] || { log "could not download $module@$pinned"; exit 1; }
cp -r "$upstream" "$staging/src/provider"
chmod -R u+w "$staging/src/provider"
# The generator is built in our module (the copy's own go.mod points at a ../sdk that is not there).
cmd_dir="$staging/src/provider/cmd/pulumi-resource-kubernetes"
cp "$cmd_dir/generate.go" "$staging/src/generate.go"
(cd "$staging/src" && GOFLAGS=-mod=readonly go build -o "$staging/generate" generate.go)
rm "$staging/src/generate.go"
(cd "$cmd_dir" && VERSION="$version" "$staging/generate")
log "building pulumi-resource-kubernetes $version — the first build on a machine takes 10 to 20 minutes"
(cd "$staging/src" && GOFLAGS=-mod=readonly nice -n 10 go build -trimpath \
  -ldflags "-s -w -X $module/pkg/version.Version=$version" \
  -o "$staging/bin/pulumi-resource-kubernetes" "$module/cmd/pulumi-resource-kubernetes")
end=$(date +%s)
rm -rf "$staging/src"

echo "$((end - start))" >"$staging/build-seconds"
echo "$version" >"$staging/version"
touch "$staging/.complete"
rm -rf "$cache"
mv "$staging" "$cache"
trap - EXIT
log "built in $((end - start)) s"
link_cache
