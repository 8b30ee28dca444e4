#!/usr/bin/env bash
# A local base image for docker/Dockerfile (its PYTHON_IMAGE) made without any registry: Debian bookworm by
# debootstrap from the Debian mirror, with what python:3.11-slim has (python3.11, venv, pip, and `python`),
# imported with `docker import`. Prints the image name on its last line.
#
#   scripts/docker-base.sh          # root, debootstrap, and a Docker engine (DOCKER_HOST) are needed
#
# Cached: the image's tag is a hash of the recipe below, and an image of that tag is reused (debootstrap
# takes about 3 minutes; reuse, under a second). When the host trusts certificate authorities of its own
# (/usr/local/share/ca-certificates, e.g. a TLS-inspecting proxy in front of PyPI), a thin layer adds them so
# pip inside `docker build` trusts what the host trusts; that layer is tagged by their hash.
#
# Environment:
#   DEBIAN_MIRROR   default http://deb.debian.org/debian
#   BASE_NAME       repository of the image (default cds-python-base)
set -euo pipefail

SUITE=bookworm
PACKAGES=python3,python3-venv,python3-pip,python-is-python3,ca-certificates
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NAME="${BASE_NAME:-cds-python-base}"
# what a slim image leaves out: documentation, translations, the package cache and lists
TRIM=(usr/share/doc usr/share/man usr/share/info usr/share/locale var/cache/apt/archives var/lib/apt/lists)

log() { echo "docker-base: $*" >&2; }
die() { echo "docker-base: error: $*" >&2; exit 1; }

recipe="$SUITE $PACKAGES ${TRIM[*]} 1"
tag="$NAME:3.11-$SUITE-$(printf '%s' "$recipe" | sha256sum | cut -c1-12)"

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

if image_exists "$tag"; then
  log "reusing $tag"
else
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (apt-get install debootstrap)"
  [[ $EUID -eq 0 ]] || die "debootstrap needs root"
  root="$(mktemp -d /var/tmp/cds-base.XXXXXX)"
  trap 'rm -rf "$root"' EXIT
  log "debootstrap $SUITE with $PACKAGES from $MIRROR (a few minutes) ..."
  t0=$SECONDS
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root/fs" "$MIRROR" >"$root/log" 2>&1; then
    tail -n 30 "$root/log" >&2
    die "debootstrap failed"
  fi
  for path in "${TRIM[@]}"; do
    rm -rf "${root:?}/fs/$path"
  done
  mkdir -p "$root/fs/var/cache/apt/archives/partial" "$root/fs/var/lib/apt/lists/partial"
  chroot "$root/fs" python3 -m venv --help >/dev/null || die "the base has no working python3 venv"
  for tool in python pip groupadd useradd sh; do
    chroot "$root/fs" sh -c "command -v $tool" >/dev/null || die "the base has no $tool"
  done
  tar -C "$root/fs" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$tag" >/dev/null
  rm -rf "$root"
  trap - EXIT
  log "built $tag in $((SECONDS - t0)) s"
fi

shopt -s nullglob
authorities=(/usr/local/share/ca-certificates/*.crt)
if ((${#authorities[@]} == 0)); then
  echo "$tag"
  exit 0
fi
trusted="$tag-ca$(cat "${authorities[@]}" | sha256sum | cut -c1-12)"
if ! image_exists "$trusted"; then
  context="$(mktemp -d)"
  trap 'rm -rf "$context"' EXIT
  cp "${authorities[@]}" "$context/"
  printf '%s\n' "FROM $tag" "COPY *.crt /usr/local/share/ca-certificates/" \
    "RUN update-ca-certificates >/dev/null" >"$context/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$trusted" "$context" >/dev/null 2>"$context/err" \
    || { cat "$context/err" >&2; die "adding the host's certificate authorities failed"; }
  log "added ${#authorities[@]} certificate authorities of this host: $trusted"
fi
echo "$trusted"
