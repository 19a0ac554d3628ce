#!/usr/bin/env bash
# Installs what the project needs and is missing: Debian packages (PostgreSQL 15, pgBackRest, nginx,
# test tools), npm packages, the Pulumi CLI and plugins (scripts/ensure-pulumi.sh), and the compiled
# program in bin/. Safe to run again; each step is skipped when already done, so a second run takes
# well under a second.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
log() { printf '[setup] %s\n' "$*" >&2; }

need_pkgs=()
[[ -x /usr/lib/postgresql/15/bin/initdb ]] || need_pkgs+=(postgresql-15 postgresql-contrib)
[[ -x /usr/lib/postgresql/15/bin/pg_amcheck ]] || need_pkgs+=(postgresql-15)
# hstore (the undo log's row images) is a contrib extension.
[[ -f /usr/share/postgresql/15/extension/hstore.control ]] || need_pkgs+=(postgresql-contrib)
command -v pgbackrest >/dev/null || need_pkgs+=(pgbackrest)
command -v nginx >/dev/null || need_pkgs+=(nginx-light)
command -v zstd >/dev/null || need_pkgs+=(zstd)
# The router's dev certificate (lib/router/devCertificate.ts) and the TLS tests (curl).
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v curl >/dev/null || need_pkgs+=(curl)
command -v runuser >/dev/null || need_pkgs+=(util-linux)
command -v flock >/dev/null || need_pkgs+=(util-linux)
/usr/bin/python3 -c 'import passlib' 2>/dev/null || need_pkgs+=(python3-passlib)
# The offsite-backup test's SFTP host: a private sshd, mounted with sshfs (testkit/sftpHost.ts).
[[ -x /usr/sbin/sshd ]] || need_pkgs+=(openssh-server)
command -v sshfs >/dev/null || need_pkgs+=(sshfs)
# The test suite lints the image's shell scripts (docker/entrypoint.sh).
command -v shellcheck >/dev/null || need_pkgs+=(shellcheck)
if [[ "${LOOMWORKS_WITH_BENCH_TOOLS:-}" == 1 ]]; then
  command -v wrk >/dev/null || need_pkgs+=(wrk)
  command -v hyperfine >/dev/null || need_pkgs+=(hyperfine)
fi
if ((${#need_pkgs[@]})); then
  log "installing Debian packages: ${need_pkgs[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
# promtool (the alerting rules' unit tests, test/unit/prometheus-rules.test.ts) comes with Debian's
# prometheus package, whose postinst would start a Prometheus daemon through invoke-rc.d where no
# systemd runs: a temporary policy-rc.d (exit 101 = "action forbidden") keeps it from starting.
if ! command -v promtool >/dev/null; then
  log "installing Debian package: prometheus (for promtool; its service is not started)"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  own_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo_cmd[@]}" chmod 0755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  "${sudo_cmd[@]}" apt-get update -qq
  install_rc=0
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    || install_rc=$?
  [[ -z "$own_policy" ]] || "${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d
  ((install_rc == 0)) || { log "apt-get install prometheus failed ($install_rc)"; exit 1; }
  command -v promtool >/dev/null || { log "the prometheus package installed no promtool"; exit 1; }
fi
id postgres >/dev/null 2>&1 || { log "the postgres system user is missing (it comes with postgresql-15)"; exit 1; }

command -v node >/dev/null || { log "Node.js 20 or later is required"; exit 1; }
# node_modules is what `npm ci` made of this package-lock.json with this Node.js: the stamp says so.
npm_stamp=node_modules/.loomworks-installed
npm_wanted="$(sha256sum package-lock.json | cut -d' ' -f1) node $(node --version)"
if [[ "$(cat "$npm_stamp" 2>/dev/null)" != "$npm_wanted" ]]; then
  # A node_modules linked to another checkout's stays theirs: npm ci would empty it through the link.
  [[ ! -L node_modules ]] || { log "node_modules is a link to $(readlink node_modules): installing our own instead"; rm node_modules; }
  log "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  printf '%s\n' "$npm_wanted" >"$npm_stamp"
fi

"$repo/scripts/ensure-pulumi.sh"

# bin/ is rebuilt when anything under tsconfig.json's include (or tsconfig.json, package-lock.json)
# is newer than the last build's start; a file added, renamed or removed makes its folder newer.
compile_stamp=bin/.compiled
read -ra sources < <(node -p 'require("./tsconfig.json").include.map((p) => p.split("/*")[0]).join(" ")')
if [[ ! -f "$compile_stamp" || -n "$(find tsconfig.json package-lock.json "${sources[@]}" -newer "$compile_stamp" -print -quit 2>/dev/null)" ]]; then
  log "compiling the program (tsc -> bin/)"
  mkdir -p bin
  touch bin/.compiling
  npx tsc -p tsconfig.json
  mv bin/.compiling "$compile_stamp"
fi
