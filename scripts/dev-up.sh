#!/usr/bin/env bash
# Brings the `dev` stack up on the local target: a PostgreSQL 15 cluster with pgBackRest, the tenant
# template and the demo tenants of Pulumi.dev.yaml. Installs whatever is missing first.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/setup.sh"
# shellcheck source=env.sh
source "$repo/scripts/env.sh"
cd "$repo"
# Development default only; every other stack needs PULUMI_CONFIG_PASSPHRASE from the environment.
export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-loomworks-dev}"
pulumi stack select dev --create --non-interactive >/dev/null
pulumi up --stack dev --yes --non-interactive --skip-preview "$@"
echo
echo "Tenants (dsn and passwords: pulumi stack output --stack dev --show-secrets tenants):"
pulumi stack output --stack dev tenants --json | node -e '
  const t = JSON.parse(require("fs").readFileSync(0, "utf8"));
  for (const [sub, v] of Object.entries(t)) console.log(`  ${sub.padEnd(16)} ${v.state.padEnd(10)} ${v.url}  database ${v.database}`);'
