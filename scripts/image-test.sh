#!/usr/bin/env bash
# The image, built and run for real (.ci/run calls this). Builds docker/Dockerfile as it is, on a base made
# locally (scripts/docker-base.sh: debootstrap + docker import, no registry), then checks in containers:
# read-only root (with a tmpfs on /tmp), uid 10001, healthy by Docker's own health status on a port that is
# not 8000, refuses to start with auth on and no trusted clients, names the folder and uid when /app/data is
# a root-owned bind mount, feedback survives a new container on the same named volume, the report runs in the
# read-only /app, and `docker stop` ends it cleanly within the grace period. Prints a summary with numbers;
# exits 1 on the first failure, with a line saying what failed.
#
#   scripts/image-test.sh           # as root (it may install packages and start a Docker engine)
#
# What it needs it takes from Debian when missing: debootstrap, and docker.io when no Docker engine answers.
# Then it starts its own dockerd (`--iptables=false --bridge=none`: containers and builds use the host's
# network) with its data under CDS_IMAGE_TEST_DOCKER_ROOT (default /var/lib/cds-image-test/docker, where the
# base image and build cache stay for the next run), and stops it at the end. Everything it creates
# (containers, the volume) is removed at the end; the images stay, as cache.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=cds-service:image-test
RUN_ID="cds-image-test-$$"
STATE=/run/cds-image-test  # the engine's socket, pidfile and exec-root (unix socket paths must stay short)
DOCKER_ROOT="${CDS_IMAGE_TEST_DOCKER_ROOT:-/var/lib/cds-image-test/docker}"
GRACE_S=10       # docker stop -t
HEALTHY_S=120    # how long the service may take to become healthy
DOCKERD_S=60     # how long dockerd may take to answer
UID_EXPECTED=10001

log() { echo "image-test: $*" >&2; }
fail() {
  echo "image-test: FAIL: $*" >&2
  exit 1
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# -- what it needs -----------------------------------------------------------------------------------------

engine_answers() { docker version >/dev/null 2>&1; }
packages=()
command -v debootstrap >/dev/null 2>&1 || packages+=(debootstrap)
if ! command -v docker >/dev/null 2>&1 || { ! engine_answers && ! command -v dockerd >/dev/null 2>&1; }; then
  packages+=(docker.io)
fi
if ((${#packages[@]})); then
  log "installing ${packages[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# -- the Docker engine -------------------------------------------------------------------------------------

started_dockerd=""
cleanup() {
  local status=$?
  if engine_answers; then
    docker ps -aq --filter "label=$RUN_ID" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker volume ls -q --filter "label=$RUN_ID" | xargs -r docker volume rm -f >/dev/null 2>&1 || true
    [[ -n "$started_dockerd" ]] && docker image prune -f >/dev/null 2>&1  # dangling layers of rebuilds
  fi
  if [[ -n "$started_dockerd" ]]; then
    kill -TERM "$started_dockerd" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$started_dockerd" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL "$started_dockerd" 2>/dev/null || true
  fi
  [[ -n "${scratch:-}" ]] && rm -rf "$scratch"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if engine_answers; then
  log "using the Docker engine at ${DOCKER_HOST:-the default socket}"
else
  export DOCKER_HOST="unix://$STATE/docker.sock"
  if engine_answers; then  # an earlier run's, left behind when it was killed: ours to stop
    started_dockerd="$(cat "$STATE/docker.pid")"
    log "using the engine an earlier run left at $DOCKER_HOST (pid $started_dockerd)"
  else
    mkdir -p "$STATE" "$DOCKER_ROOT"
    t0=$(now)
    dockerd --iptables=false --bridge=none --data-root "$DOCKER_ROOT" --exec-root "$STATE/exec" \
      --pidfile "$STATE/docker.pid" --host "$DOCKER_HOST" >"$STATE/dockerd.log" 2>&1 &
    started_dockerd=$!
    deadline=$((SECONDS + DOCKERD_S))
    until engine_answers; do
      if ! kill -0 "$started_dockerd" 2>/dev/null; then
        tail -n 20 "$STATE/dockerd.log" >&2
        started_dockerd=""
        fail "dockerd exited before it answered (log: $STATE/dockerd.log)"
      fi
      ((SECONDS < deadline)) || fail "dockerd did not answer within $DOCKERD_S s (log: $STATE/dockerd.log)"
      sleep 0.2
    done
    log "started dockerd ($(docker version -f '{{.Server.Version}}'), data in $DOCKER_ROOT) in $(since "$t0") s"
  fi
fi
scratch="$(mktemp -d)"

# -- the base and the image --------------------------------------------------------------------------------

t0=$(now)
base="$(./scripts/docker-base.sh 2>"$scratch/base.log" | tail -n1)" || {
  cat "$scratch/base.log" >&2
  fail "the base image could not be made"
}
base_s=$(since "$t0")
cat "$scratch/base.log" >&2
grep -q "^docker-base: reusing" "$scratch/base.log" && base_how="reused" || base_how="built"

# BuildKit is the builder that would fetch a `# syntax=` frontend; build with it where the CLI has it.
if docker buildx version >/dev/null 2>&1; then
  build=(docker buildx build --load)
  builder="BuildKit (buildx)"
elif [[ -x /usr/bin/docker ]] && DOCKER_BUILDKIT=1 /usr/bin/docker build --help 2>/dev/null | grep -q -- "--secret"; then
  build=(env DOCKER_BUILDKIT=1 /usr/bin/docker build)
  builder="BuildKit (Debian's docker CLI)"
else
  build=(env DOCKER_BUILDKIT=0 docker build)
  builder="classic builder"
fi
build_image() {
  "${build[@]}" --network host --build-arg "PYTHON_IMAGE=$base" -f docker/Dockerfile -t "$IMAGE" . \
    >"$scratch/build.log" 2>&1 || {
    tail -n 40 "$scratch/build.log" >&2
    fail "docker build failed with $builder"
  }
}
t0=$(now)
build_image
build_s=$(since "$t0")
t0=$(now)
build_image  # again: everything from the layer cache
rebuild_s=$(since "$t0")
size_mb=$(($(docker image inspect -f '{{.Size}}' "$IMAGE") / 1000000))
log "built $IMAGE with $builder in $build_s s (again, from cache: $rebuild_s s), $size_mb MB"

# -- containers --------------------------------------------------------------------------------------------

# every container: host network (there is no bridge), read-only root, a tmpfs on /tmp, our label
run_args=(--network host --read-only --tmpfs "/tmp:rw,nosuid,nodev,size=64m" --label "$RUN_ID")
free_port() {  # a port nothing listens on, asked of the kernel (by the image's Python: this host needs none)
  docker run --rm "${run_args[@]}" "$IMAGE" \
    python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# auth on (the default) and no trusted clients: must refuse to start, naming the setting
port=$(free_port)
status=0
timeout 120 docker run "${run_args[@]}" -e "CDS_PORT=$port" "$IMAGE" >"$scratch/refuse.log" 2>&1 || status=$?
((status != 0 && status != 124)) || fail "with auth on and no trusted clients the service did not refuse (exit $status)"
grep -q CDS_TRUSTED_CLIENTS "$scratch/refuse.log" ||
  fail "the refusal does not name CDS_TRUSTED_CLIENTS: $(tail -n 3 "$scratch/refuse.log")"
log "ok: refuses to start with auth on and no trusted clients (exit $status)"

# a root-owned bind mount over /app/data: must refuse, naming the folder and the uid
mkdir -m 0755 "$scratch/root-owned"
status=0
timeout 120 docker run "${run_args[@]}" -e "CDS_PORT=$port" -e CDS_AUTH=off -v "$scratch/root-owned:/app/data" \
  "$IMAGE" >"$scratch/bind.log" 2>&1 || status=$?
((status != 0 && status != 124)) || fail "a root-owned /app/data did not stop the service (exit $status)"
grep "/app/data" "$scratch/bind.log" | grep -q "uid $UID_EXPECTED" ||
  fail "a root-owned /app/data: the error names neither folder nor uid: $(tail -n 3 "$scratch/bind.log")"
log "ok: a root-owned /app/data is refused, naming the folder and uid $UID_EXPECTED"

volume="$RUN_ID-data"
docker volume create --label "$RUN_ID" "$volume" >/dev/null
start_service() {  # name: a service on $port with the named volume, auth off (the calls below sign nothing)
  docker run -d --name "$1" "${run_args[@]}" -e "CDS_PORT=$port" -e CDS_AUTH=off -v "$volume:/app/data" \
    "$IMAGE" >/dev/null
}
wait_healthy() {  # name -> seconds until Docker's health status said healthy
  local t0 deadline health
  t0=$(now)
  deadline=$((SECONDS + HEALTHY_S))
  while :; do
    health=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$1")
    [[ "$health" == "running healthy" ]] && break
    if [[ "$health" != running* ]] || ((SECONDS >= deadline)); then
      docker logs --tail 20 "$1" >&2 || true
      fail "$1 is not healthy after $(since "$t0") s (state: $health)"
    fi
    sleep 0.2
  done
  since "$t0"
}

port=$(free_port)
start_service "$RUN_ID-first"
healthy_s=$(wait_healthy "$RUN_ID-first")
log "ok: healthy on port $port after $healthy_s s (Docker's health status)"

[[ "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$RUN_ID-first")" == true ]] || fail "the root is not read-only"
docker exec "$RUN_ID-first" sh -c 'touch /app/probe' 2>/dev/null && fail "the service could write /app"
docker exec "$RUN_ID-first" sh -c 'touch /tmp/probe /app/data/probe && rm /tmp/probe /app/data/probe' ||
  fail "the service cannot write /tmp and /app/data"
pid1_uid=$(docker exec "$RUN_ID-first" sh -c "awk '/^Uid:/ { print \$2 }' /proc/1/status")
[[ "$pid1_uid" == "$UID_EXPECTED" ]] || fail "the service (PID 1) runs as uid $pid1_uid, not $UID_EXPECTED"
docker exec "$RUN_ID-first" sh -c "tr '\\0' ' ' </proc/1/cmdline" | grep -q -- "--port $port" ||
  fail "PID 1 is not the service on port $port"
log "ok: read-only root, writable /tmp and /app/data, PID 1 is the service as uid $pid1_uid"

# one hook call and feedback on its first card, then a new container on the same volume reads it back
client="$(cat scripts/image_test_client.py)"  # runs in the container's Python: nothing needed on this host
fed=$(docker exec -i "$RUN_ID-first" python -c "$client" feedback "$port" <fixtures/hooks/patient-view.json) ||
  fail "the hook call and its feedback failed: $fed"
log "ok: $fed"

t0=$(now)
docker stop -t "$GRACE_S" "$RUN_ID-first" >/dev/null
stop_s=$(since "$t0")
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$RUN_ID-first")
[[ "$exit_code" == 0 || "$exit_code" == 143 ]] || fail "docker stop: the service exited $exit_code (137: killed after $GRACE_S s)"
awk -v s="$stop_s" -v g="$GRACE_S" 'BEGIN { exit !(s < g / 2) }' ||
  fail "docker stop took $stop_s s, not well under the $GRACE_S s grace period"
log "ok: docker stop -t $GRACE_S: exit $exit_code after $stop_s s"
docker rm "$RUN_ID-first" >/dev/null

start_service "$RUN_ID-second"
healthy_again_s=$(wait_healthy "$RUN_ID-second")
kept=$(docker exec "$RUN_ID-second" python -c "$client" report "$fed") || fail "after the restart: $kept"
log "ok: a new container on the volume (healthy after $healthy_again_s s) reads it back: $kept"
chart=$(docker exec "$RUN_ID-second" cds-service feedback-report 2>&1 >/dev/null) ||
  fail "feedback-report with its default chart fails in the read-only /app: $chart"
! grep -qi "temporary cache" <<<"$chart" || fail "matplotlib found no writable config folder: $chart"
log "ok: feedback-report in the read-only /app: ${chart//$'\n'/; }"
docker rm -f "$RUN_ID-second" >/dev/null

cat >&2 <<SUMMARY
image-test: PASSED
  engine          Docker $(docker version -f '{{.Server.Version}}')${started_dockerd:+, started by this run}
  base image      $base: $base_how in $base_s s
  image build     $build_s s with $builder; again from cache $rebuild_s s
  image size      $size_mb MB
  healthy after   $healthy_s s on port $port (Docker's health status); $healthy_again_s s on restart
  docker stop     exit $exit_code after $stop_s s (grace $GRACE_S s)
  checked         read-only root, uid $UID_EXPECTED as PID 1, refusal without trusted clients, a root-owned
                  /app/data named, feedback kept across containers on a named volume, the report in /app
SUMMARY
