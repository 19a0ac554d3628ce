#!/usr/bin/env bash
# Brings the `dev` stack up on the local target: a PostgreSQL 15 cluster with pgBackRest, the tenant
# template and the demo tenants of Pulumi.dev.yaml. Installs whatever is missing first.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/setup.sh"
# shellcheck source=env.sh
source "$repo/scripts/env.sh"
cd "$repo"
# The router's self-signed certificate (platform.routerTls in Pulumi.dev.yaml): made once, then reused.
node bin/infra/automation/dev-certificate.js --stack dev
node bin/infra/automation/run.js up --stack dev --refresh
echo
echo "Tenants of the dev stack (their dsn: pulumi stack output --stack dev --show-secrets tenants):"
PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-loomworks-dev}" pulumi stack output --stack dev tenants --json |
  node -e 'const t = JSON.parse(require("fs").readFileSync(0, "utf8"));
    for (const [s, v] of Object.entries(t)) console.log(`  ${s.padEnd(14)} ${v.state.padEnd(10)} ${v.url}`);'
