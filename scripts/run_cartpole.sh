#!/usr/bin/env bash
# Installs everything, then trains DQN on CartPole-v0 with 2 collect actors,
# a learner and an eval actor as local processes, until eval return 200.
# Extra arguments go to the launcher (e.g. --actors=4 --root_dir=...).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$repo/scripts/setup_venv.sh"
cd "$repo"
exec .venv/bin/python -m deploy.launch_local \
  --flagfile=configs/cartpole_dqn.flags --actors=2 --stop_at_return=200 \
  --root_dir="${ROOT_DIR:-$HOME/rl_runs/cartpole_dqn_$(date +%Y%m%d_%H%M%S)}" "$@"
