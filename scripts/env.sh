# Sourced by the project's scripts: puts the project's Pulumi on PATH and points it at the local
# file:// backend under the state directory. An already configured backend or passphrase wins.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$repo/.tools/bin:$repo/node_modules/.bin:$PATH"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DIY_BACKEND_NO_LEGACY_WARNING=true
if [[ -z "${PULUMI_BACKEND_URL:-}" ]]; then
  mkdir -p "$repo/.loomworks/pulumi-state"
  chmod 700 "$repo/.loomworks/pulumi-state" # the stack state is the operator's alone
  export PULUMI_BACKEND_URL="file://$repo/.loomworks/pulumi-state"
fi
