"""Builds the experiment's Reverb tables and serves them."""
from absl import logging
import reverb

from common import specs as specs_lib
from common.config import ExperimentConfig


def start_server(config: ExperimentConfig, port: int) -> reverb.Server:
  """Derives the tables from `config` and starts serving them on `port`."""
  specs = specs_lib.derive_specs(config)
  tables = [specs_lib.replay_table(config.replay, specs),
            specs_lib.variables_table(specs)]
  server = reverb.Server(tables=tables, port=port)
  logging.info('Reverb server listening on port %d with tables %s',
               server.port, [t.name for t in tables])
  return server
