#!/usr/bin/env bash
# Make `docker compose` available: when the docker CLI has no working compose plugin, build Docker Compose v2
# from the Go module proxy and install it as a CLI plugin ($DOCKER_CONFIG/cli-plugins/docker-compose).
# Idempotent: does nothing (and prints nothing) when `docker compose version` already works. Needs the
# docker CLI and Go 1.21+ (the module asks for Go 1.22.10, which Go 1.21+ fetches by itself unless
# GOTOOLCHAIN=local); no Docker engine is needed for `docker compose config`, which is what the tests run.
# The first build downloads and compiles a few hundred modules (about 3 minutes); later builds hit Go's cache.
#
#   scripts/compose.sh
#
# Environment:
#   COMPOSE_VERSION   github.com/docker/compose/v2 version to build (default v2.32.4)
#   DOCKER_CONFIG     docker's configuration folder (default ~/.docker)
set -euo pipefail

VERSION="${COMPOSE_VERSION:-v2.32.4}"
PLUGIN_DIR="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
PLUGIN="$PLUGIN_DIR/docker-compose"
MODULE="github.com/docker/compose/v2"

log() { echo "compose: $*" >&2; }
die() { echo "compose: error: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker CLI not found on PATH (compose is a plugin of it)"
if docker compose version >/dev/null 2>&1; then
  exit 0
fi
command -v go >/dev/null 2>&1 || die "go not found on PATH; it is needed to build the compose plugin $VERSION"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "building Docker Compose $VERSION from the Go module proxy (first build takes a few minutes) ..."
t0=$SECONDS
if ! GOFLAGS=-mod=mod GOBIN="$work/bin" \
    go install -ldflags "-w -X $MODULE/internal.Version=$VERSION" "$MODULE/cmd@$VERSION" \
    >"$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  die "go install $MODULE/cmd@$VERSION failed"
fi
[[ -x "$work/bin/cmd" ]] || die "the build finished but $work/bin/cmd is missing"

mkdir -p "$PLUGIN_DIR"
install -m 0755 "$work/bin/cmd" "$PLUGIN.tmp"
mv -f "$PLUGIN.tmp" "$PLUGIN"
docker compose version >/dev/null 2>&1 || die "installed $PLUGIN, but \`docker compose version\` still fails"
log "installed $(docker compose version --short 2>/dev/null || echo "$VERSION") as $PLUGIN ($((SECONDS - t0)) s)"
