"""python -m deploy.launch_local --flagfile=configs/cartpole_dqn.flags \
     --actors=2 --root_dir=/tmp/cartpole_dqn

Runs the whole topology as processes on this host. Any experiment flag given
here overrides the flagfile for every process.
"""
from common import shutdown
shutdown.block_signals()  # Before anything starts threads.

# pylint: disable=g-import-not-at-top,wrong-import-position
from common import cli
from deploy import launch_flags
from deploy.supervisor import run_local

_EXPERIMENT_FLAGS = launch_flags.define_flags(__name__)


def main():
  launch = launch_flags.launch_settings(_EXPERIMENT_FLAGS)
  cli.exit_now(run_local(launch, shutdown.Shutdown(grace_s=300)))


if __name__ == '__main__':
  cli.run('launcher', main)
