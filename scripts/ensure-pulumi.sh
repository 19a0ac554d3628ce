#!/usr/bin/env bash
# Makes a Pulumi CLI (>= 3.200), the Node.js language plugin and the dynamic-provider plugin available
# in .tools/bin. No Pulumi binary can be downloaded here: when none is on PATH, they are built from the
# pinned Go modules through the Go module proxy, once per machine, into a versioned cache directory
# outside the checkout; every clone on the machine links that directory as .tools/bin.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools_mod="$repo/tools/pulumi"
link="$repo/.tools/bin"
min_minor=200

log() { printf '[ensure-pulumi] %s\n' "$*" >&2; }

pinned_version() {
  awk '$1 == "github.com/pulumi/pulumi/pkg/v3" { sub(/^v/, "", $2); print $2 }' "$tools_mod/go.mod"
}

cli_minor() { "$1" version 2>/dev/null | sed -nE 's/^v?3\.([0-9]+)\..*/\1/p'; }

# A suitable pulumi already on PATH (outside our own link) is used as it is.
if [[ -z "${LOOMWORKS_BUILD_PULUMI:-}" ]]; then
  existing=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$link" | paste -sd: -) command -v pulumi || true)
  if [[ -n "$existing" ]] && minor=$(cli_minor "$existing") && [[ -n "$minor" && "$minor" -ge $min_minor ]] \
    && command -v pulumi-language-nodejs >/dev/null; then
    log "using $existing ($("$existing" version)) from PATH"
    exit 0
  fi
fi

version=$(pinned_version)
[[ -n "$version" ]] || { log "cannot read the pinned github.com/pulumi/pulumi/pkg/v3 version from $tools_mod/go.mod"; exit 1; }
arch="$(go env GOOS)-$(go env GOARCH)"
inputs_hash=$(cat "$tools_mod/go.mod" "$tools_mod/go.sum" "$tools_mod"/cmd/*/*.go "$0" | sha256sum | cut -c1-12)
cache_root="${LOOMWORKS_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/loomworks-hosting}"
cache="$cache_root/pulumi-v$version-$arch-$inputs_hash"

link_cache() {
  mkdir -p "$repo/.tools"
  ln -sfn "$cache/bin" "$link"
  log "pulumi $("$link/pulumi" version) ready in .tools/bin -> $cache/bin"
}

if [[ -f "$cache/.complete" ]]; then
  link_cache
  exit 0
fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.build.lock"
flock 9
if [[ -f "$cache/.complete" ]]; then # another clone finished the build while we waited
  link_cache
  exit 0
fi

command -v go >/dev/null || { log "go is required to build the Pulumi CLI (Go toolchain not found on PATH)"; exit 1; }
export GOFLAGS="${GOFLAGS:-} -mod=readonly"

# Our tools module must repeat the upstream replace lines of the pinned pkg/v3 go.mod: `go install`
# refuses modules with replaces, so we build inside our own module instead.
log "checking the replace lines of github.com/pulumi/pulumi/pkg/v3@v$version"
upstream_mod=$(cd "$tools_mod" && go mod download -json "github.com/pulumi/pulumi/pkg/v3@v$version" \
  | sed -nE 's/^\s*"GoMod": "(.*)",?$/\1/p')
[[ -f "$upstream_mod" ]] || { log "could not download github.com/pulumi/pulumi/pkg/v3@v$version"; exit 1; }
while IFS= read -r line; do
  from=$(awk '{print $2}' <<<"$line")
  if [[ "$line" =~ "=> ../" || "$line" =~ "=> ./" ]]; then
    # A path replace points into the pulumi repository itself; the same-version module stands in for it.
    grep -qE "^\s*$from v$version( |$)" "$tools_mod/go.mod" \
      || { log "tools/pulumi/go.mod must require $from v$version (upstream: $line)"; exit 1; }
  else
    grep -qF "$line" "$tools_mod/go.mod" \
      || { log "tools/pulumi/go.mod lacks the upstream replace line: $line"; exit 1; }
  fi
done < <(grep -E '^replace ' "$upstream_mod")

staging="$cache.tmp.$$"
rm -rf "$staging"
mkdir -p "$staging/bin"
trap 'rm -rf "$staging"' EXIT

start=$(date +%s)
ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$version"
log "building pulumi v$version (CLI) — the first build on a machine takes several minutes"
(cd "$tools_mod" && go build -trimpath -ldflags "$ldflags" -o "$staging/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
log "building pulumi-language-nodejs"
(cd "$tools_mod" && go build -trimpath -ldflags "-s -w -X main.Version=$version" \
  -o "$staging/bin/pulumi-language-nodejs" ./cmd/pulumi-language-nodejs)

# The dynamic-provider plugin is a small launcher script shipped in the pinned SDK module.
sdk_dir=$(cd "$tools_mod" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)
install -m 0755 "$sdk_dir/nodejs/dist/pulumi-resource-pulumi-nodejs" "$staging/bin/pulumi-resource-pulumi-nodejs"
end=$(date +%s)

echo "$((end - start))" >"$staging/build-seconds"
"$staging/bin/pulumi" version >"$staging/version"
touch "$staging/.complete"
rm -rf "$cache"
mv "$staging" "$cache"
trap - EXIT
log "built in $((end - start)) s"
link_cache
