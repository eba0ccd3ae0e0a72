"""python -m reverb_server --flagfile=configs/cartpole_dqn.flags --port=8000 \
     [--checkpoint_dir=/results/reverb_checkpoints]"""
from common import shutdown
shutdown.block_signals()  # Before anything starts threads.

# pylint: disable=g-import-not-at-top,wrong-import-position
from common import cli
cli.pause_gc()  # Until cli.run: the imports go faster.
from common import quiet
quiet.import_tensorflow()  # Without its start-up messages.

from absl import flags
from absl import logging

from reverb_server.server import ReplayServer
from reverb_server.server import ServerSettings

cli.define_experiment_flags()
_PORT = flags.DEFINE_integer('port', 8000,
                             'Port to serve Reverb on (0: a free one).',
                             lower_bound=0, upper_bound=65535)
_CHECKPOINT_DIR = flags.DEFINE_string(
    'checkpoint_dir', None, 'Checkpoint the tables here (every '
    '--replay_checkpoint_every_s and on SIGTERM), and restore the latest '
    'checkpoint from here on start. Unset: no checkpoints.')
# Checkpointing a large table on SIGTERM takes a while.
_SHUTDOWN_GRACE_S = 60


def main():
  config = cli.experiment_config()
  cli.log_config(config)
  stop = shutdown.Shutdown(grace_s=_SHUTDOWN_GRACE_S)
  settings = ServerSettings(port=_PORT.value,
                            checkpoint_dir=_CHECKPOINT_DIR.value)
  server = ReplayServer(config, settings)
  period_s = (config.replay.checkpoint_every_s if settings.checkpoint_dir
              else None)
  while not stop.wait(period_s):
    server.checkpoint('every %.0fs' % period_s)
  logging.info('Stopping the Reverb server (%s)', stop.reason)
  server.stop()


if __name__ == '__main__':
  cli.run('reverb_server', main)
