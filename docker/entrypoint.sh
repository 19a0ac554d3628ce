#!/bin/sh
# Loomworks ERP container entrypoint (runs under tini as PID 1; see docs/developer/images.md).
#
#   loomworks-entrypoint [odoo [SUBCOMMAND] [ARGS...]]   the ERP server (default), or an odoo subcommand
#   loomworks-entrypoint update                          module updates only, then exit
#   loomworks-entrypoint COMMAND [ARGS...]               any other command, run as is
#
# For the server and `update`, in this order:
#  1. config: the platform renders odoo.conf from templates/odoo.conf.tmpl for every target and mounts
#     it (read-only) at $LOOMWORKS_ODOO_CONF. Secret values in it are written `${LOOMWORKS_NAME}`; they
#     are filled in here from $LOOMWORKS_NAME or from the file named by $LOOMWORKS_NAME_FILE, into a
#     private copy (mode 0600) under $LOOMWORKS_RUNTIME_DIR. Nothing else in the file is changed.
#  2. waits (bounded: $LOOMWORKS_DB_WAIT_SECONDS) until PostgreSQL at the config's db_host:db_port
#     accepts connections and the ERP role's password (a credential rotation rolls the pods before the
#     server may have applied the new one), and until Redis answers when sessions are stored there.
#  3. module updates, for each database the platform lists ($LOOMWORKS_DATABASES, or one per line in
#     $LOOMWORKS_DATABASES_FILE): a database whose marker (ir_config_parameter
#     `loomworks.image_version`) differs from this image's version ($LOOMWORKS_IMAGE_VERSION, else the
#     file $LOOMWORKS_IMAGE_VERSION_FILE the build writes: Odoo release + a hash of the addons) gets `-u all` and
#     the new marker; $LOOMWORKS_UPDATE_MODULES (comma list) are updated in every listed database.
#     The marker lives in the database, so it follows the database through templates, snapshots and
#     restores. Each database is updated under a PostgreSQL advisory lock, so replicas starting together
#     update it once. A failed update fails the start (exit 70) unless LOOMWORKS_UPDATE_STRICT=0.
#     A tenant database is read and updated as its own role, from the tenant credentials file the
#     loomworks_tenants addon reads ($LOOMWORKS_TENANT_CREDENTIALS, else odoo.conf's
#     loomworks_tenant_credentials): the ERP's role reaches no tenant database. The `odoo -u` run
#     gets the same odoo.conf, so the addon (server_wide_modules) opens the database the same way.
#  4. exec: the server replaces this script, so signals from tini reach it directly. Before that, a
#     SIGTERM/SIGINT is forwarded to the running child (an update), waited for, and its exit code is
#     this script's.
#
# Exit codes: 69 PostgreSQL/Redis unreachable in time, 70 module update failed, 78 configuration error,
# 128+n killed by signal n before any child ran; otherwise the child's.
set -euf # -f: no globbing, database names and values are never patterns

ODOO_BIN=${LOOMWORKS_ODOO_BIN:-odoo}
SOURCE_CONF=${LOOMWORKS_ODOO_CONF:-${ODOO_RC:-/etc/odoo/odoo.conf}}
RUNTIME_DIR=${LOOMWORKS_RUNTIME_DIR:-${TMPDIR:-/tmp}/loomworks}
DB_WAIT_SECONDS=${LOOMWORKS_DB_WAIT_SECONDS:-60}
UPDATE_STRICT=${LOOMWORKS_UPDATE_STRICT:-1}
LOCK_TIMEOUT_SECONDS=${LOOMWORKS_UPDATE_LOCK_TIMEOUT_SECONDS:-1800}
MARKER_KEY=loomworks.image_version
# pg_advisory_lock key of the module update, per database (advisory locks are scoped to a database).
LOCK_KEY=7135406233

log() { printf 'loomworks-entrypoint: %s\n' "$*" >&2; }
die() {
  code=$1
  shift
  log "error: $*"
  exit "$code"
}

is_uint() {
  case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac
}
is_uint "$DB_WAIT_SECONDS" || die 78 "LOOMWORKS_DB_WAIT_SECONDS must be a whole number of seconds (got '$DB_WAIT_SECONDS')"
is_uint "$LOCK_TIMEOUT_SECONDS" || die 78 "LOOMWORKS_UPDATE_LOCK_TIMEOUT_SECONDS must be a whole number of seconds"

# --- signals: forward to the running child, then exit with its code --------------------------------
child=''
lock_pid=''
terminating=''
on_signal() {
  terminating=$1
  if [ -n "$child" ]; then
    log "received SIG$1: forwarding SIGTERM to pid $child and waiting for it"
    kill -TERM "$child" 2>/dev/null || true
  else
    [ -z "$lock_pid" ] || kill -TERM "$lock_pid" 2>/dev/null || true
    log "received SIG$1 before the server started: exiting"
    [ "$1" = INT ] && exit 130
    exit 143
  fi
}
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT

# Runs "$@" as a child and waits for it; a signal meanwhile is forwarded (see on_signal). Sets $rc.
run_child() {
  "$@" &
  child=$!
  while :; do
    rc=0
    wait "$child" || rc=$?
    # wait returns early (status > 128) when a trapped signal arrives; the child is then still there.
    kill -0 "$child" 2>/dev/null || break
  done
  # The child may have ended between an interrupted wait and kill -0: its own status is then still
  # to be collected (a wait for a child already collected answers 127).
  if [ -n "$terminating" ] && [ "$rc" -gt 128 ]; then
    again=0
    wait "$child" 2>/dev/null || again=$?
    [ "$again" -eq 127 ] || rc=$again
  fi
  child=''
  if [ -n "$terminating" ]; then
    log "child exited with status $rc after SIG$terminating: exiting with it"
    exit "$rc"
  fi
}

# --- odoo.conf -----------------------------------------------------------------------------------
trim() { printf '%s' "$1" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//'; }

# The value of secret $1 (a LOOMWORKS_ name): from the file named by $1_FILE, else from $1.
secret_value() {
  name=$1
  eval "file=\${${name}_FILE-}"
  eval "value=\${${name}-}"
  # shellcheck disable=SC2154 # both assigned by the evals above
  if [ -n "$file" ]; then
    [ -r "$file" ] || die 78 "${name}_FILE: cannot read $file"
    value=$(cat "$file") || die 78 "cannot read $file"
  fi
  [ -n "$value" ] || return 1
  case $value in *'
'*) die 78 "$name must be one line" ;; esac
  printf '%s' "$value"
}

# Copies odoo.conf $1 to $2 (mode 0600), filling in every `key = ${LOOMWORKS_NAME}` value.
render_config() {
  src=$1
  dst=$2
  [ -r "$src" ] || die 78 "odoo.conf not found or not readable: $src (mount the platform's rendered file there, or set LOOMWORKS_ODOO_CONF)"
  tmp="$dst.tmp.$$"
  (umask 077 && : >"$tmp")
  missing=''
  while IFS= read -r line || [ -n "$line" ]; do
    case $line in
      '' | [\;\#]* | [[:space:]]*[\;\#]*) ;;
      *=*)
        key=$(trim "${line%%=*}")
        value=$(trim "${line#*=}")
        # shellcheck disable=SC2016 # a literal ${...}: the reference as written in the file
        case $value in
          '${LOOMWORKS_'*'}')
            name=${value#??}
            name=${name%?}
            case $name in *[!A-Z0-9_]*) die 78 "odoo.conf: $key: '$value' is not a valid secret reference" ;; esac
            if secret=$(secret_value "$name"); then
              line="$key = $secret"
            else
              missing="$missing $key(\$$name or \$${name}_FILE)"
            fi
            ;;
        esac
        ;;
    esac
    printf '%s\n' "$line" >>"$tmp"
  done <"$src"
  if [ -n "$missing" ]; then
    rm -f "$tmp"
    die 78 "odoo.conf: no value for the secret(s):$missing"
  fi
  mv -f "$tmp" "$dst"
}

# The value of option $1 in the rendered odoo.conf (last one wins, as in Odoo), or $2.
conf_get() {
  v=$(sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$CONF" | tail -n 1)
  v=$(trim "$v")
  case $v in '' | False | None) v=$2 ;; esac
  printf '%s' "$v"
}

# --- PostgreSQL and Redis ------------------------------------------------------------------------
now() { date +%s; }

wait_for_postgres() {
  command -v pg_isready >/dev/null 2>&1 || die 78 "pg_isready not found (postgresql-client is part of the image)"
  started=$(now)
  log "waiting up to ${DB_WAIT_SECONDS}s for PostgreSQL at $DB_HOST:$DB_PORT"
  while :; do
    if last=$(pg_isready -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -t 2 2>&1); then
      # Only a refused password keeps waiting: any other answer (e.g. no database `postgres` for this
      # role) comes after authentication, so the password is in force.
      if ! answer=$(psql_db postgres -c 'SELECT 1' 2>&1) && printf '%s' "$answer" | grep -q 'password authentication failed'; then
        last="the server refuses the password of role $DB_USER (a credential rotation not applied yet?)"
      else
        log "PostgreSQL at $DB_HOST:$DB_PORT accepts connections as $DB_USER"
        return 0
      fi
    fi
    # Whole seconds: more than N elapsed on the clock means at least N really did.
    [ $(($(now) - started)) -le "$DB_WAIT_SECONDS" ] || die 69 "PostgreSQL at $DB_HOST:$DB_PORT did not accept connections within ${DB_WAIT_SECONDS}s (last answer: $last); check db_host/db_port in odoo.conf and that the database server is running"
    sleep 1
  done
}

# Redis of the session store (session_store = redis): host and port from session_redis_url.
wait_for_redis() {
  [ "$(conf_get session_store filesystem)" = redis ] || return 0
  url=$(conf_get session_redis_url '')
  hostport=${url#*://}
  hostport=${hostport#*@}
  hostport=${hostport%%/*}
  rhost=${hostport%:*}
  rport=${hostport##*:}
  [ "$rport" != "$hostport" ] || rport=6379
  command -v python3 >/dev/null 2>&1 || die 78 "python3 not found (needed to check Redis)"
  started=$(now)
  log "waiting up to ${DB_WAIT_SECONDS}s for Redis at $rhost:$rport"
  while :; do
    python3 -c 'import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()' \
      "$rhost" "$rport" 2>/dev/null && return 0
    [ $(($(now) - started)) -le "$DB_WAIT_SECONDS" ] || die 69 "Redis at $rhost:$rport (session_redis_url) did not accept connections within ${DB_WAIT_SECONDS}s"
    sleep 1
  done
}

# psql on database $1 as $LOGIN_USER (the ERP's role, or the database's own after login_for);
# further arguments are psql's.
psql_db() {
  db=$1
  shift
  PGPASSWORD=$LOGIN_PASSWORD PGSSLMODE=$DB_SSLMODE PGCONNECT_TIMEOUT=10 \
    psql -X -q -A -t -h "$DB_HOST" -p "$DB_PORT" -U "$LOGIN_USER" -d "$db" "$@"
}

# --- tenant credentials --------------------------------------------------------------------------
NL='
'

# Sets LOGIN_USER and LOGIN_PASSWORD for database $1: its own role when the tenant credentials file
# names it, else the ERP's role (as the loomworks_tenants addon connects).
login_for() {
  LOGIN_USER=$DB_USER
  LOGIN_PASSWORD=$DB_PASSWORD
  [ -n "$TENANT_CREDENTIALS" ] || return 0
  [ -r "$TENANT_CREDENTIALS" ] || die 78 "tenant credentials not found or not readable: $TENANT_CREDENTIALS (loomworks_tenant_credentials)"
  command -v python3 >/dev/null 2>&1 || die 78 "python3 not found (needed to read the tenant credentials)"
  login=$(
    python3 - "$TENANT_CREDENTIALS" "$1" <<'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    data = json.load(f)
c = data["databases"].get(sys.argv[2])
if c:
    if not (isinstance(c.get("user"), str) and isinstance(c.get("password"), str)) or "\n" in c["user"]:
        sys.exit("%s: user and password must be strings" % sys.argv[2])
    sys.stdout.write(c["user"] + "\n" + c["password"])
PY
  ) || die 78 "cannot read the tenant credentials $TENANT_CREDENTIALS"
  [ -n "$login" ] || return 0
  LOGIN_USER=${login%%"$NL"*}
  LOGIN_PASSWORD=${login#*"$NL"}
}

# --- module updates ------------------------------------------------------------------------------
list_databases() {
  {
    printf '%s\n' "${LOOMWORKS_DATABASES:-}" | tr ', \t' '[\n*]'
    if [ -n "${LOOMWORKS_DATABASES_FILE:-}" ]; then
      [ -r "$LOOMWORKS_DATABASES_FILE" ] || die 78 "LOOMWORKS_DATABASES_FILE: cannot read $LOOMWORKS_DATABASES_FILE"
      sed -e 's/#.*//' "$LOOMWORKS_DATABASES_FILE" | tr ', \t' '[\n*]'
    fi
  } | sed -e '/^$/d' | awk '!seen[$0]++'
}

# Prints the database's marker; fails when the database cannot be read. "-" = no marker,
# "!" = not an Odoo database, "?" = the database does not exist, "~" = it refuses connections (or
# its role may not log in: a suspended tenant).
read_marker() {
  if ! out=$(psql_db "$1" -v ON_ERROR_STOP=1 2>&1 <<SQL
SELECT to_regclass('ir_config_parameter') IS NOT NULL AS is_odoo \\gset
\\if :is_odoo
SELECT coalesce((SELECT value FROM ir_config_parameter WHERE key = '$MARKER_KEY'), '-');
\\else
SELECT '!';
\\endif
SQL
  ); then
    case $out in
      *"database \"$1\" does not exist"*) printf '?' && return 0 ;;
      *"is not currently accepting connections"* | *"is not permitted to log in"*) printf '~' && return 0 ;;
    esac
    log "$1: cannot read the update marker: $out"
    return 1
  fi
  printf '%s' "$out"
}

write_marker() {
  psql_db "$1" -v ON_ERROR_STOP=1 -v version="$IMAGE_VERSION" >/dev/null <<SQL
INSERT INTO ir_config_parameter (key, value) VALUES ('$MARKER_KEY', :'version')
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, write_date = now() AT TIME ZONE 'UTC';
SQL
}

# Holds pg_advisory_lock on database $1 in a background psql session until release_lock.
acquire_lock() {
  fifo="$RUNTIME_DIR/lock.fifo"
  out="$RUNTIME_DIR/lock.out"
  rm -f "$fifo" "$out"
  mkfifo -m 600 "$fifo"
  psql_db "$1" -v ON_ERROR_STOP=1 <"$fifo" >"$out" 2>&1 &
  lock_pid=$!
  exec 3>"$fifo"
  printf "SET lock_timeout = '%ss';\nSELECT pg_advisory_lock(%s);\nSELECT 'loomworks-lock-held';\n" \
    "$LOCK_TIMEOUT_SECONDS" "$LOCK_KEY" >&3
  while ! grep -q loomworks-lock-held "$out"; do
    if ! kill -0 "$lock_pid" 2>/dev/null; then
      wait "$lock_pid" || true
      exec 3>&-
      lock_pid=''
      log "$1: could not take the update lock: $(cat "$out")"
      return 1
    fi
    sleep 0.2 2>/dev/null || sleep 1
  done
}

release_lock() {
  exec 3>&-
  [ -z "$lock_pid" ] || wait "$lock_pid" || true
  lock_pid=''
  rm -f "$RUNTIME_DIR/lock.fifo" "$RUNTIME_DIR/lock.out"
}

# Updates one database when needed. Returns non-zero when its update failed.
update_database() {
  db=$1
  login_for "$db"
  marker=$(read_marker "$db") || return 1
  case $marker in
    '?')
      log "$db: database does not exist: skipped"
      return 0
      ;;
    '!')
      log "$db: not an Odoo database (no ir_config_parameter): skipped"
      return 0
      ;;
    '~')
      log "$db: does not accept connections (a suspended tenant): skipped; updated when it is active again"
      return 0
      ;;
  esac
  [ "$marker" != "$IMAGE_VERSION" ] || [ -n "$UPDATE_MODULES" ] || {
    log "$db: up to date (image $IMAGE_VERSION)"
    return 0
  }
  acquire_lock "$db" || return 1
  # Another replica may have updated it while this one waited for the lock.
  marker=$(read_marker "$db") || {
    release_lock
    return 1
  }
  if [ "$marker" != "$IMAGE_VERSION" ]; then
    modules=all
    from=${marker#-}
    log "$db: image version ${from:-(none)} -> $IMAGE_VERSION: updating all modules"
  elif [ -n "$UPDATE_MODULES" ]; then
    modules=$UPDATE_MODULES
    log "$db: updating $modules"
  else
    log "$db: updated meanwhile by another replica"
    release_lock
    return 0
  fi
  run_child "$ODOO_BIN" -c "$CONF" -d "$db" -u "$modules" --stop-after-init --no-http
  if [ "$rc" -ne 0 ]; then
    release_lock
    log "$db: module update failed (odoo exited with status $rc); the marker is left as it was, so the next start retries"
    return 1
  fi
  if [ "$marker" != "$IMAGE_VERSION" ]; then
    write_marker "$db" || {
      release_lock
      log "$db: updated, but the marker could not be written"
      return 1
    }
  fi
  release_lock
  log "$db: update done"
}

run_updates() {
  if [ "${LOOMWORKS_SKIP_UPDATES:-0}" = 1 ]; then
    log "module updates skipped (LOOMWORKS_SKIP_UPDATES=1)"
    return 0
  fi
  IMAGE_VERSION=${LOOMWORKS_IMAGE_VERSION:-}
  if [ -z "$IMAGE_VERSION" ] && [ -n "${LOOMWORKS_IMAGE_VERSION_FILE:-}" ]; then
    IMAGE_VERSION=$(cat "$LOOMWORKS_IMAGE_VERSION_FILE" 2>/dev/null) || IMAGE_VERSION=''
  fi
  case $IMAGE_VERSION in
    '') die 78 "no image version: LOOMWORKS_IMAGE_VERSION is empty and LOOMWORKS_IMAGE_VERSION_FILE unreadable (the image writes /opt/loomworks/image-version at build time)" ;;
    *[!A-Za-z0-9._+:-]*) die 78 "LOOMWORKS_IMAGE_VERSION has characters other than A-Z a-z 0-9 . _ + : -" ;;
  esac
  UPDATE_MODULES=${LOOMWORKS_UPDATE_MODULES:-}
  case $UPDATE_MODULES in *[!a-z0-9_,]*) die 78 "LOOMWORKS_UPDATE_MODULES must be a comma-separated list of module names" ;; esac
  databases=$(list_databases)
  if [ -z "$databases" ]; then
    log "no databases listed (LOOMWORKS_DATABASES, LOOMWORKS_DATABASES_FILE): no module updates"
    return 0
  fi
  failed=''
  for db in $databases; do
    case $db in
      -* | *[!A-Za-z0-9_.-]*) die 78 "'$db' is not a database name" ;;
    esac
    update_database "$db" || failed="$failed $db"
  done
  if [ -n "$failed" ]; then
    [ "$UPDATE_STRICT" = 0 ] || die 70 "module update failed for:$failed"
    log "module update failed for:$failed (LOOMWORKS_UPDATE_STRICT=0: starting anyway)"
  fi
}

prepare() {
  mkdir -p "$RUNTIME_DIR"
  chmod 700 "$RUNTIME_DIR"
  CONF="$RUNTIME_DIR/odoo.conf"
  render_config "$SOURCE_CONF" "$CONF"
  DB_HOST=$(conf_get db_host localhost)
  DB_PORT=$(conf_get db_port 5432)
  DB_USER=$(conf_get db_user odoo)
  DB_PASSWORD=$(conf_get db_password '')
  DB_SSLMODE=$(conf_get db_sslmode prefer)
  LOGIN_USER=$DB_USER
  LOGIN_PASSWORD=$DB_PASSWORD
  TENANT_CREDENTIALS=${LOOMWORKS_TENANT_CREDENTIALS:-$(conf_get loomworks_tenant_credentials '')}
  is_uint "$DB_PORT" || die 78 "odoo.conf: db_port must be a number (got '$DB_PORT')"
  wait_for_postgres
  wait_for_redis
}

# --- main ----------------------------------------------------------------------------------------
[ $# -gt 0 ] || set -- odoo
case $1 in
  update)
    prepare
    run_updates
    log "module updates done"
    exit 0
    ;;
  odoo)
    shift
    ;;
  -*) ;;
  *) exec "$@" ;;
esac

prepare
case ${1:-} in
  '' | -*)
    run_updates
    if [ "${LOOMWORKS_DEBUGPY:-0}" = 1 ]; then
      port=${LOOMWORKS_DEBUGPY_PORT:-5678}
      python3 -c 'import debugpy' 2>/dev/null || die 78 "LOOMWORKS_DEBUGPY=1 but debugpy is not installed: use the image's development target"
      odoo_path=$(command -v "$ODOO_BIN") || die 78 "$ODOO_BIN not found"
      log "starting the server under debugpy (listening on 0.0.0.0:$port)"
      exec python3 -m debugpy --listen "0.0.0.0:$port" "$odoo_path" -c "$CONF" "$@"
    fi
    log "starting the server: $ODOO_BIN -c $CONF $*"
    exec "$ODOO_BIN" -c "$CONF" "$@"
    ;;
  *)
    # An odoo subcommand (shell, neutralize, ...): no module updates.
    sub=$1
    shift
    exec "$ODOO_BIN" "$sub" -c "$CONF" "$@"
    ;;
esac
