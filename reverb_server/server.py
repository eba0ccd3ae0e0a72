"""Builds the experiment's Reverb tables and serves them."""
import socket

from absl import logging
import reverb

from common import specs as specs_lib
from common.config import ExperimentConfig
from common.errors import UserError


class PortInUseError(UserError, ValueError):
  """The port to serve on is taken."""


def check_port_free(port: int) -> None:
  """Raises PortInUseError if something already listens on `port`."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    # As gRPC does: a port in TIME_WAIT is free, one with a listener is not.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
      s.bind(('0.0.0.0', port))
    except OSError as e:
      raise PortInUseError(
          f'port {port} is already in use ({e.strerror}): stop what holds '
          f'it or pick another --port') from e


def start_server(config: ExperimentConfig, port: int) -> reverb.Server:
  """Derives the tables from `config` and starts serving them on `port`."""
  specs = specs_lib.derive_specs(config)
  tables = [specs_lib.replay_table(config.replay, specs),
            specs_lib.variables_table(specs)]
  check_port_free(port)
  server = reverb.Server(tables=tables, port=port)
  logging.info('Reverb server listening on port %d with tables %s',
               server.port, [t.name for t in tables])
  return server
