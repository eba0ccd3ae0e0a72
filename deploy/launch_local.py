"""python -m deploy.launch_local --flagfile=configs/cartpole_dqn.flags \
     --actors=2 --root_dir=/tmp/cartpole_dqn

Runs the whole topology as processes on this host. Any experiment flag given
here overrides the flagfile for every process.
"""
from common import shutdown
shutdown.block_signals()  # Before anything starts threads.

# pylint: disable=g-import-not-at-top,wrong-import-position
import os

from absl import flags

from common import cli
from common import run_dir
from common import settings
from common.config import StrategySettings
from deploy import restarts
from deploy.graph import LaunchSettings
from deploy.supervisor import run_local

_EXPERIMENT_FLAGS = cli.define_experiment_flags()
for _launch_settings in (LaunchSettings, restarts.RestartPolicy,
                         StrategySettings):
  settings.define_flags(_launch_settings, module_name=__name__)


def main():
  # Only the flags are checked here: a bad env or agent is reported by the
  # children, which build them anyway (this launcher imports no TensorFlow
  # before they start), and repeated here as one error line.
  config = cli.experiment_config()
  root_dir = run_dir.ensure_writable_dir(flags.FLAGS.root_dir)
  # The experiment as this launcher parsed it (flagfile + overrides), so
  # every child reads exactly the same values; kept as the run's record.
  flagfile = os.path.join(root_dir, run_dir.EXPERIMENT_FLAGS)
  with open(flagfile, 'w') as f:
    for name in _EXPERIMENT_FLAGS:
      if flags.FLAGS[name].value is not None:
        f.write(flags.FLAGS[name].serialize() + '\n')
  cli.log_config(config)
  launch = settings.from_flags(
      LaunchSettings, flagfile=flagfile, root_dir=root_dir,
      max_train_steps=config.train.max_train_steps,
      restart=settings.from_flags(restarts.RestartPolicy),
      strategy=settings.from_flags(StrategySettings))
  cli.exit_now(run_local(launch, shutdown.Shutdown(grace_s=300)))


if __name__ == '__main__':
  cli.run('launcher', main)
