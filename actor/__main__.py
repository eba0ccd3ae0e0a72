"""python -m actor --flagfile=configs/cartpole_dqn.flags \
     --reverb_address=localhost:8000 --task=0 [--mode=eval --root_dir=...]"""
from common import shutdown
shutdown.block_signals()  # Before anything starts threads.

# pylint: disable=g-import-not-at-top,wrong-import-position
from common import cli
cli.pause_gc()  # Until cli.run: the imports go faster.
from common import quiet
quiet.import_tensorflow()  # Without its start-up messages.

import dataclasses
import socket

from absl import flags
from absl import logging
import tensorflow as tf

from actor.collect import run_collect
from actor.evaluate import run_eval
from actor.runtime import ActorSettings
from actor.runtime import task_from_hostname
from common import settings

cli.define_experiment_flags()
_MODE = flags.DEFINE_enum('mode', 'collect', ['collect', 'eval'],
                          'collect: fill the replay table; eval: greedy '
                          'policy episodes, results under --root_dir/eval.')
_TASK_FROM_HOSTNAME = flags.DEFINE_boolean(
    'task_from_hostname', False, 'Derive --task from the hostname: its '
    'trailing ordinal (StatefulSet pod actor-3 -> 3), else a stable hash '
    '(compose replicas). For replicas started without numbering.')
settings.define_flags(ActorSettings, module_name=__name__)


def main():
  # One small policy per actor: more threads only fight over the cores.
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  config = cli.experiment_config()
  cli.log_config(config)
  actor = settings.from_flags(ActorSettings)
  if _TASK_FROM_HOSTNAME.value:
    actor = dataclasses.replace(
        actor, task=task_from_hostname(socket.gethostname()))
    logging.info('Task id %d, from hostname %s', actor.task,
                 socket.gethostname())
  stop = shutdown.Shutdown(grace_s=20)
  if _MODE.value == 'eval':
    run_eval(config, actor, stop)
  else:
    run_collect(config, actor, stop)


if __name__ == '__main__':
  cli.run('actor', main)
