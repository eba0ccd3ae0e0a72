#!/usr/bin/env bash
# Installs everything (the venv, Debian's libosmesa6), then runs the whole
# test suite: unit tests, integration tests with real processes, the
# learning tests, and the
# docker compose end-to-end test (scripts/docker_setup.sh installs and starts
# a Docker engine for it, and stops the engine again if it started it).
# Extra arguments go to pytest (e.g. -m 'not slow' runs only the in-process
# tests);
# RL_SKIP_DOCKER_TESTS=1 skips the Docker set-up and tests.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup_venv.sh"
bash "$repo/scripts/system_packages.sh"
export STATE="${STATE:-/tmp/rl-docker}"
if [ "${RL_SKIP_DOCKER_TESTS:-0}" != 1 ]; then
  rm -f "$STATE/dockerd.pid"
  trap 'if [ -f "$STATE/dockerd.pid" ]; then kill "$(cat "$STATE/dockerd.pid")" 2>/dev/null || true; fi' EXIT
  bash "$repo/scripts/docker_setup.sh"
fi
cd "$repo"
.venv/bin/python -m pytest -ra --durations=30 "$@"
