"""python -m reverb_server --flagfile=configs/cartpole_dqn.flags --port=8000 \
     [--checkpoint_dir=/results/reverb_checkpoints]"""
from common import shutdown
shutdown.block_signals()  # Before anything starts threads.

# pylint: disable=g-import-not-at-top,wrong-import-position
from common import cli
cli.pause_gc()  # Until cli.run: the imports go faster.
from common import quiet
quiet.import_tensorflow()  # Without its start-up messages.

from absl import logging

from common import settings
from reverb_server.server import ReplayServer
from reverb_server.server import ServerSettings

cli.define_experiment_flags()
settings.define_flags(ServerSettings, module_name=__name__)
# Checkpointing a large table on SIGTERM takes a while.
_SHUTDOWN_GRACE_S = 60


def main():
  config = cli.experiment_config()
  cli.log_config(config)
  stop = shutdown.Shutdown(grace_s=_SHUTDOWN_GRACE_S)
  server_settings = settings.from_flags(ServerSettings)
  server = ReplayServer(config, server_settings)
  period_s = (config.replay.checkpoint_every_s
              if server_settings.checkpoint_dir else None)
  while not stop.wait(period_s):
    server.checkpoint(periodic=True)
  logging.info('Stopping the Reverb server (%s)', stop.reason)
  server.stop()


if __name__ == '__main__':
  cli.run('reverb_server', main)
