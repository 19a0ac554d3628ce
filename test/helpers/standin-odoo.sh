#!/bin/sh
# STAND-IN for the `odoo` command, used by test/integration/entrypoint.test.ts to run the image's
# entrypoint (docker/entrypoint.sh) where Odoo itself is not installable. It is NOT Odoo: it only
# records how it was called and behaves like the server's process for signals and exit codes.
#
#   STANDIN_ODOO_LOG           file each call appends to: "CALL<TAB>pid<TAB>arg1<TAB>arg2...",
#                              then "TERM<TAB>pid" when it receives SIGTERM, "EXIT<TAB>pid<TAB>code"
#   STANDIN_ODOO_UPDATE_SECONDS  how long a `--stop-after-init` call (a module update) takes (default 0)
#   STANDIN_ODOO_FAIL_DB       a database whose update fails (exit 1)
#   STANDIN_ODOO_EXIT_CODE     exit code after SIGTERM (default 0, as Odoo after a graceful shutdown)
#
# Without --stop-after-init it "serves" until SIGTERM.
set -u
log=${STANDIN_ODOO_LOG:?STANDIN_ODOO_LOG must name the call log}
# The trap comes first: a SIGTERM right after the call is logged must find it.
sleeper=''
finish() {
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null
  printf 'EXIT\t%s\t%s\n' "$$" "$1" >>"$log"
  exit "$1"
}
trap 'printf "TERM\t%s\n" "$$" >>"$log"; finish "${STANDIN_ODOO_EXIT_CODE:-0}"' TERM

line="CALL	$$"
db=''
update=0
prev=''
for arg in "$@"; do
  line="$line	$arg"
  [ "$prev" = -d ] && db=$arg
  [ "$arg" = --stop-after-init ] && update=1
  prev=$arg
done
printf '%s\n' "$line" >>"$log"

if [ "$update" = 1 ]; then
  remaining=${STANDIN_ODOO_UPDATE_SECONDS:-0}
  while [ "$remaining" -gt 0 ]; do
    sleep 1 &
    sleeper=$!
    wait "$sleeper"
    remaining=$((remaining - 1))
  done
  if [ -n "$db" ] && [ "$db" = "${STANDIN_ODOO_FAIL_DB:-}" ]; then finish 1; fi
  finish 0
fi

printf 'SERVING\t%s\n' "$$" >>"$log"
while :; do
  sleep 1 &
  sleeper=$!
  wait "$sleeper"
done
