"""python -m actor --flagfile=configs/cartpole_dqn.flags \
     --reverb_address=localhost:8000 --task=0 [--mode=eval --root_dir=...]"""
from common import shutdown
shutdown.block_signals()  # Before anything starts threads.

# pylint: disable=g-import-not-at-top,wrong-import-position
from common import cli
cli.pause_gc()  # Until cli.run: the imports go faster.
from common import quiet
quiet.import_tensorflow()  # Without its start-up messages.

import socket

from absl import flags
from absl import logging
import tensorflow as tf

from actor.collect import run_collect
from actor.evaluate import run_eval
from actor.runtime import ActorSettings
from actor.runtime import task_from_hostname

cli.define_experiment_flags()
_MODE = flags.DEFINE_enum('mode', 'collect', ['collect', 'eval'],
                          'collect: fill the replay table; eval: greedy '
                          'policy episodes, results under --root_dir/eval.')
_REVERB_ADDRESS = flags.DEFINE_string(
    'reverb_address', 'localhost:8000', 'host:port of the Reverb server.')
_TASK = flags.DEFINE_integer('task', 0, 'Actor id: seeds the env (seed + '
                             'task) and names the summaries.', lower_bound=0)
_TASK_FROM_HOSTNAME = flags.DEFINE_boolean(
    'task_from_hostname', False, 'Derive --task from the hostname: its '
    'trailing ordinal (StatefulSet pod actor-3 -> 3), else a stable hash '
    '(compose replicas). For replicas started without numbering.')
_ROOT_DIR = flags.DEFINE_string(
    'root_dir', None, 'Summaries (collect) and eval results (eval) go here.')
_CONNECT_TIMEOUT_S = flags.DEFINE_float(
    'connect_timeout_s', 30, 'Give up if Reverb does not answer by then.')
_WEIGHTS_TIMEOUT_S = flags.DEFINE_float(
    'weights_timeout_s', 600, 'Give up if the learner pushed no weights by '
    'then.')
_LOG_EVERY_S = flags.DEFINE_float(
    'log_every_s', 10, 'Log (and summarize) env steps/s this often.')


def main():
  # One small policy per actor: more threads only fight over the cores.
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  config = cli.experiment_config()
  cli.log_config(config)
  task = _TASK.value
  if _TASK_FROM_HOSTNAME.value:
    task = task_from_hostname(socket.gethostname())
    logging.info('Task id %d, from hostname %s', task, socket.gethostname())
  settings = ActorSettings(
      reverb_address=_REVERB_ADDRESS.value, task=task,
      root_dir=_ROOT_DIR.value, connect_timeout_s=_CONNECT_TIMEOUT_S.value,
      weights_timeout_s=_WEIGHTS_TIMEOUT_S.value,
      log_every_s=_LOG_EVERY_S.value)
  stop = shutdown.Shutdown(grace_s=20)
  if _MODE.value == 'eval':
    run_eval(config, settings, stop)
  else:
    run_collect(config, settings, stop)


if __name__ == '__main__':
  cli.run('actor', main)
