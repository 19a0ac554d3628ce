#!/usr/bin/env bash
# Runs the whole test suite: lint, type check, unit, integration (real PostgreSQL, pgBackRest, nginx),
# end-to-end (the Pulumi engine through the Automation API) and the real-ERP suite (test/odoo: an
# installed Odoo 18; one line says it is skipped where there is none). Installs whatever is missing first.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/scripts/setup.sh"
# The Kubernetes test cluster's binaries and provider plugin: built once per machine (~20 min the
# first time), a no-op once built. Here rather than in setup.sh: bringing up the dev stack needs none.
"$repo/scripts/ensure-k8s-tools.sh"
# shellcheck source=env.sh
source "$repo/scripts/env.sh"
cd "$repo"
npx tsc -p tsconfig.test.json
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --list-different .; exit 1; }
npx vite-node scripts/check-links.ts
npx vitest run --project unit --project integration --project e2e --project odoo "$@"
