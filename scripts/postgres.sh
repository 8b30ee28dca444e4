#!/usr/bin/env bash
# Start / stop a throwaway PostgreSQL server (Debian's package) on loopback for the tests.
#
#   scripts/postgres.sh start    initdb in $PG_RUN_DIR if needed, start on a free port, create role `cds`
#                                (password auth, CREATEDB) and database `cds_test`; print the SQLAlchemy URL
#                                (postgresql+asyncpg://cds:...@127.0.0.1:PORT/cds_test) as the LAST stdout line
#   scripts/postgres.sh stop     fast shutdown and remove $PG_RUN_DIR
#   scripts/postgres.sh status   print the URL if running (exit 1 if not)
#
# As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).
# Durability is traded for speed (fsync off): this cluster is for tests only.
# Environment: PG_RUN_DIR (default /tmp/cds-postgres), PG_PORT (default: a free port).
set -euo pipefail

RUN_DIR="${PG_RUN_DIR:-/tmp/cds-postgres}"
DATA="$RUN_DIR/data"
URL_FILE="$RUN_DIR/url"
PASSWORD="cds-test-only"

log() { echo "postgres: $*" >&2; }
die() { echo "postgres: error: $*" >&2; exit 1; }

bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  [[ -n "$dir" && -x "$dir/initdb" ]] || die "PostgreSQL server not installed (apt-get install postgresql)"
  echo "$dir"
}

as_owner() {
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

running() {
  [[ -f "$URL_FILE" && -f "$DATA/postmaster.pid" ]] && as_owner "$(bindir)/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

cmd_start() {
  if running; then cat "$URL_FILE"; return 0; fi
  local bin port
  bin="$(bindir)"
  port="${PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
  rm -rf "$RUN_DIR"
  mkdir -p "$RUN_DIR"
  [[ "$(id -u)" == 0 ]] && chown postgres: "$RUN_DIR"
  as_owner bash -c "echo '$PASSWORD' > '$RUN_DIR/pw'"
  as_owner "$bin/initdb" -D "$DATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$RUN_DIR/pw" -E UTF8 --no-locale >"$RUN_DIR/initdb.log" 2>&1 || {
    cat "$RUN_DIR/initdb.log" >&2; die "initdb failed"; }
  as_owner "$bin/pg_ctl" -D "$DATA" -l "$RUN_DIR/server.log" -w -t 60 \
    -o "-p $port -k $RUN_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200" \
    start >/dev/null || { cat "$RUN_DIR/server.log" >&2; die "server did not start"; }
  as_owner "$bin/psql" -q -h "$RUN_DIR" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE cds LOGIN CREATEDB PASSWORD '$PASSWORD'" -c "CREATE DATABASE cds_test OWNER cds" >/dev/null
  echo "postgresql+asyncpg://cds:$PASSWORD@127.0.0.1:$port/cds_test" | as_owner tee "$URL_FILE" >/dev/null
  log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
  cat "$URL_FILE"
}

cmd_stop() {
  if [[ -f "$DATA/postmaster.pid" ]]; then
    as_owner "$(bindir)/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$RUN_DIR"
}

cmd_status() {
  running || exit 1
  cat "$URL_FILE"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
