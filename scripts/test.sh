#!/usr/bin/env bash
# Installs everything, then runs the whole test suite (unit, integration with
# real processes, and the CartPole learning test). Extra arguments go to
# pytest (e.g. -m 'not slow' to skip the learning test).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup_venv.sh"
cd "$repo"
exec .venv/bin/python -m pytest -ra "$@"
