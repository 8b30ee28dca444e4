#!/usr/bin/env bash
# Build / start / stop a local HAPI FHIR R4 JPA server (in-memory H2) for integration tests.
# The server is a small launcher in tests/hapi (HAPI FHIR 8.8.0 from Maven Central); see
# tests/hapi/README.md.
#
#   scripts/hapi.sh build            build tests/hapi/target/hapi-test-server.jar if stale
#   scripts/hapi.sh start [--port N] build if needed, start in the background, wait for
#                                    GET <base>/metadata == 200, print the base URL
#                                    (e.g. http://127.0.0.1:53123/fhir) as the LAST stdout line
#   scripts/hapi.sh stop             SIGTERM, wait, SIGKILL after a timeout; remove run files
#   scripts/hapi.sh status           print the base URL if running (exit 1 if not)
#
# Progress and diagnostics go to stderr; stdout of `start`/`status` is only the base URL.
# Environment:
#   HAPI_PORT            port for `start` when --port is not given (default: a free port)
#   HAPI_JAVA_OPTS       JVM options (default: -Xms256m -Xmx768m -XX:+UseSerialGC -XX:TieredStopAtLevel=1)
#   HAPI_START_TIMEOUT   seconds to wait for /metadata (default 180)
#   HAPI_STOP_TIMEOUT    seconds to wait after SIGTERM before SIGKILL (default 30)
#   HAPI_MAVEN_REPO      optional Maven local repository (default: Maven's own, ~/.m2/repository)
#   HAPI_RUN_DIR         pid, URL and log files (default tests/hapi/run): one server per folder, so
#                        scripts/sandbox.sh runs its own beside the integration tests' one. While
#                        $HAPI_RUN_DIR/smart-configuration.json exists the server publishes it at
#                        <base>/.well-known/smart-configuration and checks bearer tokens (tests/hapi/README.md)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HAPI_DIR="$ROOT/tests/hapi"
JAR="$HAPI_DIR/target/hapi-test-server.jar"
RUN_DIR="${HAPI_RUN_DIR:-$HAPI_DIR/run}"
PID_FILE="$RUN_DIR/server.pid"
URL_FILE="$RUN_DIR/base_url"
LOG_FILE="$RUN_DIR/server.log"
SMART_FILE="$RUN_DIR/smart-configuration.json"
JAVA_OPTS="${HAPI_JAVA_OPTS:--Xms256m -Xmx768m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
START_TIMEOUT="${HAPI_START_TIMEOUT:-180}"
STOP_TIMEOUT="${HAPI_STOP_TIMEOUT:-30}"

log() { echo "hapi: $*" >&2; }
die() { echo "hapi: error: $*" >&2; exit 1; }

usage() {
  sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

require_java() {
  command -v java >/dev/null 2>&1 || die "java not found on PATH (Java 17+ is required; e.g. apt-get install openjdk-17-jre-headless)"
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [[ -n "$v" && "$v" -ge 17 ]] || die "Java 17+ is required, found: $(java -version 2>&1 | head -n1)"
}

require_mvn() {
  command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH (Maven 3.8+ is required to build tests/hapi; e.g. apt-get install maven)"
}

jar_is_stale() {
  [[ -f "$JAR" ]] || return 0
  [[ -n "$(find "$HAPI_DIR/pom.xml" "$HAPI_DIR/src" -newer "$JAR" -type f -print -quit)" ]]
}

cmd_build() {
  require_java
  if ! jar_is_stale; then
    log "jar is up to date: ${JAR#"$ROOT"/}"
    return 0
  fi
  require_mvn
  local args=(-B -q -Dstyle.color=never -DskipTests package)
  [[ -n "${HAPI_MAVEN_REPO:-}" ]] && args=("-Dmaven.repo.local=$HAPI_MAVEN_REPO" "${args[@]}")
  log "building ${JAR#"$ROOT"/} (first build downloads ~300 MB from Maven Central) ..."
  local t0=$SECONDS
  local out
  out="$(mktemp)"
  if ! (cd "$HAPI_DIR" && mvn "${args[@]}") >"$out" 2>&1; then
    cat "$out" >&2
    rm -f "$out"
    die "maven build failed (cd tests/hapi && mvn -DskipTests package)"
  fi
  rm -f "$out"
  [[ -f "$JAR" ]] || die "build finished but $JAR is missing"
  touch "$JAR"
  log "built in $((SECONDS - t0)) s"
}

# PID of our server if it is running, else nothing (and stale run files are removed).
running_pid() {
  [[ -f "$PID_FILE" ]] || return 0
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
      && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'hapi-test-server.jar'; then
    echo "$pid"
  else
    rm -f "$PID_FILE" "$URL_FILE"
  fi
}

free_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
    return
  fi
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "could not find a free port"
}

http_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$1" 2>/dev/null || true
}

cmd_start() {
  local port="${HAPI_PORT:-}"
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --port) [[ $# -ge 2 ]] || die "--port needs a value"; port="$2"; shift 2 ;;
      --port=*) port="${1#--port=}"; shift ;;
      *) die "unknown option for start: $1" ;;
    esac
  done
  command -v curl >/dev/null 2>&1 || die "curl not found on PATH"

  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    log "already running (pid $pid)"
    cat "$URL_FILE"
    return 0
  fi

  cmd_build
  [[ -n "$port" ]] || port="$(free_port)"
  [[ "$port" =~ ^[0-9]+$ ]] || die "invalid port: $port"
  local base="http://127.0.0.1:$port/fhir"
  if [[ "$(http_status "http://127.0.0.1:$port/")" != "000" ]]; then
    die "port $port is already in use"
  fi

  mkdir -p "$RUN_DIR"
  rm -f "$SMART_FILE" # a fresh server checks no tokens until a test writes it
  log "starting HAPI FHIR on $base (log: ${LOG_FILE#"$ROOT"/})"
  # shellcheck disable=SC2086
  nohup java $JAVA_OPTS "-Dhapi.smart-configuration=$SMART_FILE" -jar "$JAR" --port "$port" --host 127.0.0.1 \
    </dev/null >"$LOG_FILE" 2>&1 &
  pid=$!
  echo "$pid" > "$PID_FILE"
  echo "$base" > "$URL_FILE"

  local t0=$SECONDS code
  while true; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE" "$URL_FILE"
      log "server exited during startup; last log lines:"
      tail -n 40 "$LOG_FILE" >&2 || true
      exit 1
    fi
    code="$(http_status "$base/metadata")"
    if [[ "$code" == "200" ]]; then
      break
    fi
    if (( SECONDS - t0 >= START_TIMEOUT )); then
      log "no answer from $base/metadata after ${START_TIMEOUT}s (last HTTP status $code); stopping"
      tail -n 40 "$LOG_FILE" >&2 || true
      cmd_stop >/dev/null 2>&1 || true
      exit 1
    fi
    if (( (SECONDS - t0) % 5 == 0 )); then
      log "waiting for $base/metadata ... $((SECONDS - t0))s"
    fi
    sleep 1
  done
  log "ready after $((SECONDS - t0)) s (pid $pid)"
  echo "$base"
}

cmd_stop() {
  local pid
  pid="$(running_pid)"
  if [[ -z "$pid" ]]; then
    rm -f "$PID_FILE" "$URL_FILE"
    log "not running"
    return 0
  fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local t0=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    if (( SECONDS - t0 >= STOP_TIMEOUT )); then
      log "still alive after ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.5
  done
  rm -f "$PID_FILE" "$URL_FILE"
  log "stopped"
}

cmd_status() {
  local pid
  pid="$(running_pid)"
  if [[ -n "$pid" ]]; then
    log "running (pid $pid)"
    cat "$URL_FILE"
  else
    log "not running"
    return 1
  fi
}

[[ $# -ge 1 ]] || usage
cmd="$1"; shift
case "$cmd" in
  build) cmd_build "$@" ;;
  start) cmd_start "$@" ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  -h|--help|help) usage ;;
  *) log "unknown command: $cmd"; usage ;;
esac
