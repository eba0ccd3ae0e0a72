"""python -m learner --flagfile=configs/cartpole_dqn.flags \
     --reverb_address=localhost:8000 --root_dir=/tmp/cartpole"""
from common import shutdown
shutdown.block_signals()  # Before anything starts threads.

# pylint: disable=g-import-not-at-top,wrong-import-position
from common import cli
cli.pause_gc()  # Until cli.run: the imports go faster.
from common import quiet
quiet.import_tensorflow()  # Without its start-up messages.

from common import settings
from common.config import StrategySettings
from learner.replay_input import InputSettings
from learner.train import LearnerSettings
from learner.train import run_learner

cli.define_experiment_flags()
for _process_settings in (LearnerSettings, StrategySettings, InputSettings):
  settings.define_flags(_process_settings, module_name=__name__)


def main():
  config = cli.experiment_config()
  cli.log_config(config)
  learner = settings.from_flags(
      LearnerSettings, strategy=settings.from_flags(StrategySettings),
      sampling=settings.from_flags(InputSettings))
  run_learner(config, learner, shutdown.Shutdown(grace_s=20))


if __name__ == '__main__':
  cli.run('learner', main)
