#!/usr/bin/env bash
# Prints a tenant's own connection string from the stack outputs: scripts/tenant-dsn.sh acme [stack]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tenant=${1:?usage: tenant-dsn.sh TENANT [STACK]}
stack=${2:-dev}
# shellcheck source=env.sh
source "$repo/scripts/env.sh"
cd "$repo"
[[ "$stack" == dev ]] && export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-loomworks-dev}"
pulumi stack output --stack "$stack" --show-secrets tenants --json |
  node -e 'const t = JSON.parse(require("fs").readFileSync(0, "utf8"))[process.argv[1]];
    if (!t) { console.error(`no tenant "${process.argv[1]}" in the stack outputs`); process.exit(1); }
    console.log(t.dsn);' "$tenant"
