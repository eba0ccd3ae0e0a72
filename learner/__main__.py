"""python -m learner --flagfile=configs/cartpole_dqn.flags \
     --reverb_address=localhost:8000 --root_dir=/tmp/cartpole"""
from common import shutdown
shutdown.block_signals()  # Before anything starts threads.

# pylint: disable=g-import-not-at-top,wrong-import-position
from common import cli
cli.pause_gc()  # Until cli.run: the imports go faster.
from common import quiet
quiet.import_tensorflow()  # Without its start-up messages.

from absl import flags

from common.config import STRATEGIES
from common.config import StrategyConfig
from learner.replay_input import InputSettings
from learner.train import LearnerSettings
from learner.train import run_learner

cli.define_experiment_flags()
_REVERB_ADDRESS = flags.DEFINE_string(
    'reverb_address', 'localhost:8000', 'host:port of the Reverb server.')
_ROOT_DIR = flags.DEFINE_string(
    'root_dir', None, 'Checkpoints, policies and summaries go here.',
    required=True)
_STRATEGY = flags.DEFINE_enum(
    'strategy', 'default', STRATEGIES,
    'default: CPU or one GPU; mirrored: all local GPUs; tpu: see --tpu.')
_TPU = flags.DEFINE_string('tpu', None, 'TPU name or grpc:// address.')
_CONNECT_TIMEOUT_S = flags.DEFINE_float(
    'connect_timeout_s', 30, 'Give up if Reverb does not answer by then.')
_STALL_LOG_S = flags.DEFINE_float(
    'stall_log_s', 30, 'Log the replay table\'s numbers when no train step '
    'happened for this long.')
_SAMPLING_WORKERS = flags.DEFINE_integer(
    'sampling_workers', 0, 'Threads sampling from Reverb for the learner; '
    '0: one per CPU available to it.', lower_bound=0)


def main():
  config = cli.experiment_config()
  cli.log_config(config)
  settings = LearnerSettings(
      reverb_address=_REVERB_ADDRESS.value, root_dir=_ROOT_DIR.value,
      strategy=StrategyConfig(kind=_STRATEGY.value, tpu_address=_TPU.value),
      connect_timeout_s=_CONNECT_TIMEOUT_S.value,
      stall_log_s=_STALL_LOG_S.value,
      sampling=InputSettings(sampling_workers=_SAMPLING_WORKERS.value))
  run_learner(config, settings, shutdown.Shutdown(grace_s=20))


if __name__ == '__main__':
  cli.run('learner', main)
