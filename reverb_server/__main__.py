"""python -m reverb_server --flagfile=configs/cartpole_dqn.flags --port=8000"""
from common import shutdown
shutdown.block_signals()  # Before anything starts threads.

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags
from absl import logging

from common import cli
from reverb_server.server import start_server

cli.define_experiment_flags()
_PORT = flags.DEFINE_integer('port', 8000, 'Port to serve Reverb on.')


def main():
  config = cli.experiment_config()
  cli.log_config(config)
  stop = shutdown.Shutdown(grace_s=10)
  server = start_server(config, _PORT.value)
  stop.wait(timeout_s=None)
  logging.info('Stopping the Reverb server (%s)', stop.reason)
  server.stop()


if __name__ == '__main__':
  cli.run('reverb_server', main)
