#!/usr/bin/env bash
# Runs the benchmarks and renders BENCHMARKS.md from their results.
#
#   bench/run.sh [--rounds N] [--budget-seconds N] [--restores N] [--undo-rounds N] [--undo-seconds N]
#                [--rotation-rounds N] [--k8s-cold-rounds N] [--k8s-rounds N] [--scale-tenants N]
#                [--cold-build]
#                [--only tenant-create|pulumi-up|restore|snapshot-create|undo|undo-erp|router|rotation|k8s-up|scale|report]
#
#   --rounds N          tenant-create rounds (default 15)
#   --budget-seconds N  soft time budget of pulumi-up (default 600)
#   --restores N        restore: restores of the 100 MB tenant per method and cluster size (default 3;
#                       the whole restore benchmark takes ~20 min: 12 then 36 tenants, baselines included)
#   --undo-rounds N     undo: interleaved pgbench rounds of the four capture scenarios (default 8)
#   --undo-seconds N    undo: seconds per pgbench run (default 8; the undo benchmark takes ~10 min:
#                       pgbench rounds, a one-client profile of the capture cost, 10,000-row undos)
#                       `--only undo-erp`: the same batch of Odoo ORM writes inside an operation vs without
#                       capture (~10 min; one line and nothing else when no Odoo 18 is installed)
#   --cold-build        also time a Pulumi CLI build with an empty Go build cache (4-8 min on 2 cores;
#                       run it when nothing else is being measured)
#   --only WHAT         run one benchmark (or just the report) and keep the others' last results
#                       (router: wrk against the local router, a 10,000-tenant map vs one tenant, its
#                       reload time; ~3 min; installs the Debian package wrk when missing)
#   --scale-tenants N   scale: tenants of the large stack (default 500; the baseline stack has 50). The
#                       scale benchmark takes 40-60 min on 2 cores: router reloads (50/500/10,000),
#                       then each size from nothing: create, no-change, add one, logged breakdowns,
#                       PostgreSQL facts, a full backup and a restore of one tenant
#   --rotation-rounds N rotation: alternating rounds of a rotating vs a no-change `up`, and of a preview
#                       with vs without its Markdown summary (default 5; ~5 min)
#   --k8s-cold-rounds N k8s-up: cold `up` rounds of the prod-like kubernetes stack and its local baseline
#                       (default 3)
#   --k8s-rounds N      k8s-up: no-change rounds (default 5; the whole benchmark takes ~10 min). It needs the
#                       k8s test cluster's binaries and provider plugin (scripts/ensure-k8s-tools.sh, 20+ min
#                       to build once): without them the default run skips it, `--only k8s-up` fails.
#
# Results go to bench/results/*.json (committed); BENCHMARKS.md is rewritten from them. A benchmark with
# no result file keeps its section of the current BENCHMARKS.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
# shellcheck source=../scripts/env.sh
source scripts/env.sh

rounds=15
budget=600
restores=3
undo_rounds=8
undo_seconds=8
rotation_rounds=5
k8s_cold_rounds=3
k8s_rounds=5
scale_tenants=500
cold=0
only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --budget-seconds) budget="$2"; shift 2 ;;
    --restores) restores="$2"; shift 2 ;;
    --undo-rounds) undo_rounds="$2"; shift 2 ;;
    --undo-seconds) undo_seconds="$2"; shift 2 ;;
    --rotation-rounds) rotation_rounds="$2"; shift 2 ;;
    --k8s-cold-rounds) k8s_cold_rounds="$2"; shift 2 ;;
    --k8s-rounds) k8s_rounds="$2"; shift 2 ;;
    --scale-tenants) scale_tenants="$2"; shift 2 ;;
    --cold-build) cold=1; shift ;;
    --only) only="$2"; shift 2 ;;
    *) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
wants() { [[ -z "$only" || "$only" == "$1" ]]; }

results="$repo/bench/results"
mkdir -p "$results"

echo "[bench] $(date -u +%FT%TZ) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"
npx tsc -p .

if wants tenant-create; then
  node bin/bench/tenant-create.js --rounds "$rounds"
fi
if wants pulumi-up; then
  node bin/bench/pulumi-up.js --budget-seconds "$budget"
fi
if wants restore; then
  node bin/bench/restore.js --restores "$restores"
fi
if wants snapshot-create; then
  node bin/bench/snapshot-create.js
fi
if wants undo; then
  node bin/bench/undo.js --rounds "$undo_rounds" --seconds "$undo_seconds"
fi
if wants undo-erp; then
  node bin/bench/undo-erp.js
fi
if wants router; then
  if ! command -v wrk >/dev/null; then
    echo "[bench] installing wrk (Debian package)"
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends wrk >/dev/null
  fi
  node bin/bench/router.js
fi
if wants rotation; then
  node bin/bench/rotation.js --rounds "$rotation_rounds"
fi
if wants k8s-up; then
  missing=()
  for tool in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok pulumi-resource-kubernetes; do
    [[ -x .tools/k8s-bin/$tool ]] || missing+=("$tool")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    node bin/bench/k8s-up.js --cold-rounds "$k8s_cold_rounds" --rounds "$k8s_rounds"
  elif [[ "$only" == k8s-up ]]; then
    echo "[bench] k8s-up needs ${missing[*]} in .tools/k8s-bin: run scripts/ensure-k8s-tools.sh (builds them once, 20+ min)" >&2
    exit 1
  else
    echo "[bench] skipping k8s-up: ${missing[*]} not in .tools/k8s-bin (scripts/ensure-k8s-tools.sh builds them once, 20+ min)"
  fi
fi
if wants scale; then
  # The `up`s creating and removing every tenant skip Pulumi's intermediate checkpoints (see
  # bench/scale.ts); every other `up` checkpoints as usual.
  node bin/bench/scale.js --tenants "$scale_tenants" --create-skip-checkpoints 1
fi

if [[ $cold -eq 1 ]]; then
  gocache=$(mktemp -d)
  out=$(mktemp -u /tmp/pulumi-cold.XXXXXX)
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "[bench] cold Pulumi CLI build (GOCACHE=$gocache), load $load_start"
  start=$(date +%s)
  rc=0
  (cd tools/pulumi && GOCACHE="$gocache" GOFLAGS=-mod=readonly GOPROXY=off \
    go build -trimpath -o "$out" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) || rc=$?
  seconds=$(($(date +%s) - start))
  load_end=$(cut -d' ' -f1-3 /proc/loadavg)
  rm -rf "$gocache" "$out"
  ok=$([[ $rc -eq 0 ]] && echo true || echo false)
  note=$([[ $rc -eq 0 ]] && echo "load at the end: $load_end" || echo "go build failed with exit $rc")
  printf '{\n  "date": "%s",\n  "seconds": %d,\n  "ok": %s,\n  "load": [%s],\n  "note": "%s"\n}\n' \
    "$(date -u +%FT%TZ)" "$seconds" "$ok" "$(tr ' ' ',' <<<"$load_start")" "$note" \
    >"$results/pulumi-cold-build.json"
  echo "[bench] cold build: ${seconds} s (exit $rc)"
fi

node bin/bench/report.js
npx prettier --log-level warn --write BENCHMARKS.md
echo "[bench] BENCHMARKS.md updated"
