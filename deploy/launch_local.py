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
from common.config import STRATEGIES
from deploy import restarts
from deploy.graph import LaunchSettings
from deploy.supervisor import run_local

_EXPERIMENT_FLAGS = cli.define_experiment_flags()
_ROOT_DIR = flags.DEFINE_string('root_dir', None, 'Where results and logs go.',
                                required=True)
_ACTORS = flags.DEFINE_integer('actors', 2, 'Collect actors.', lower_bound=1)
_PORT = flags.DEFINE_integer('port', 0, 'Reverb port (0: a free one).',
                             lower_bound=0, upper_bound=65535)
_EVAL = flags.DEFINE_boolean('eval', True, 'Run the eval actor.')
# A TPU learner needs --tpu: run it by hand or under compose.
_STRATEGY = flags.DEFINE_enum('strategy', 'default',
                              [s for s in STRATEGIES if s != 'tpu'],
                              'Learner strategy.')
_PROGRESS_EVERY_S = flags.DEFINE_float('progress_every_s', 5,
                                       'Progress line interval.')
_STOP_AT_RETURN = flags.DEFINE_float(
    'stop_at_return', None, 'Stop everything once an eval average return '
    'reaches this (e.g. 200 for CartPole-v0).')
_TENSORBOARD_PORT = flags.DEFINE_integer(
    'tensorboard_port', 0, 'Also run TensorBoard on this port (0: do not).',
    lower_bound=0, upper_bound=65535)
_RESTART = flags.DEFINE_enum(
    'restart', restarts.RestartPolicy.mode, restarts.RESTART_MODES,
    'on-failure: restart a child that exits unexpectedly, after a backoff '
    'that doubles with each restart; no: stop everything when one does.')
_MAX_RESTARTS = flags.DEFINE_integer(
    'max_restarts', restarts.RestartPolicy.max_restarts,
    f'Restarts of one child within {restarts.RestartPolicy.window_s:.0f}s '
    f'before the launcher gives up.',
    lower_bound=0)


def main():
  # Only the flags are checked here: a bad env or agent is reported by the
  # children, which build them anyway (this launcher imports no TensorFlow
  # before they start), and repeated here as one error line.
  config = cli.experiment_config()
  root_dir = run_dir.ensure_writable_dir(_ROOT_DIR.value)
  # The experiment as this launcher parsed it (flagfile + overrides), so
  # every child reads exactly the same values; kept as the run's record.
  flagfile = os.path.join(root_dir, 'experiment.flags')
  with open(flagfile, 'w') as f:
    for name in _EXPERIMENT_FLAGS:
      if flags.FLAGS[name].value is not None:
        f.write(flags.FLAGS[name].serialize() + '\n')
  cli.log_config(config)
  settings = LaunchSettings(
      flagfile=flagfile, root_dir=root_dir,
      max_train_steps=config.train.max_train_steps, actors=_ACTORS.value,
      port=_PORT.value, eval=_EVAL.value, strategy=_STRATEGY.value,
      progress_every_s=_PROGRESS_EVERY_S.value,
      stop_at_return=_STOP_AT_RETURN.value,
      tensorboard_port=_TENSORBOARD_PORT.value,
      restart=restarts.RestartPolicy(mode=_RESTART.value,
                                     max_restarts=_MAX_RESTARTS.value))
  cli.exit_now(run_local(settings, shutdown.Shutdown(grace_s=300)))


if __name__ == '__main__':
  cli.run('launcher', main)
