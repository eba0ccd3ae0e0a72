"""Builds the experiment's Reverb tables, serves them, checkpoints them."""
import dataclasses
import glob
import os
import socket
import time
from typing import List, Optional

from absl import logging
import reverb

from common import ports
from common import records
from common import run_dir
from common import specs as specs_lib
from common import tables as tables_lib
from common.config import ExperimentConfig
from common.config import OLD_REPLAY_TABLE
from common.config import REPLAY_TABLE
from common.errors import UserError
from common.settings import setting


class PortInUseError(UserError, ValueError):
  """The port to serve on is taken."""


class CheckpointMismatchError(UserError, ValueError):
  """The checkpoint to restore holds tables of another experiment."""


@dataclasses.dataclass(frozen=True)
class ServerSettings:
  """Where the server listens (0: a free port) and keeps its checkpoints
  (None: none)."""
  port: int = setting(8000, lower_bound=0, upper_bound=65535,
                      help='Port to serve Reverb on (0: a free one).')
  checkpoint_dir: Optional[str] = setting(
      help='Checkpoint the tables here (every --replay_checkpoint_every_s '
      'and on SIGTERM), and restore the latest checkpoint from here on '
      'start. Unset: no checkpoints.')
  root_dir: Optional[str] = setting(
      help='The run\'s directory: the server\'s records (each checkpoint, '
      'common/records.py) go under it. Unset: none.')


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


def has_checkpoint(checkpoint_dir: str) -> bool:
  """Whether Reverb finished writing a checkpoint in `checkpoint_dir`."""
  return bool(glob.glob(os.path.join(checkpoint_dir, '*', 'DONE')))


class ReplayServer:
  """The experiment's tables on `settings.port`, restored if checkpointed.

  Reverb's restore replaces the tables it is given by the checkpointed ones,
  configuration included, so a checkpoint of another experiment would be
  served silently. The restored tables are compared with `config`'s first.
  """

  def __init__(self, config: ExperimentConfig, settings: ServerSettings):
    specs = specs_lib.derive_specs(config)
    tables = tables_lib.experiment_tables(config, specs)
    self.port = settings.port or ports.free_port()
    check_port_free(self.port)
    self._settings = settings
    self._checkpoint_every_s = config.replay.checkpoint_every_s
    self._records = records.RecordWriter(settings.root_dir,
                                         records.REVERB_SERVER)
    checkpointer = None
    restoring = False
    if settings.checkpoint_dir:
      run_dir.ensure_writable_dir(settings.checkpoint_dir, '--checkpoint_dir')
      restoring = has_checkpoint(settings.checkpoint_dir)
      checkpointer = reverb.checkpointers.DefaultCheckpointer(
          settings.checkpoint_dir)
    try:
      self._server = reverb.Server(tables=tables, port=self.port,
                                   checkpointer=checkpointer)
    except ValueError as e:  # Reverb's: a checkpointed table it was not given.
      raise CheckpointMismatchError(
          f'the checkpoint in --checkpoint_dir {settings.checkpoint_dir} holds '
          f'tables this config does not serve ({str(e).splitlines()[0]}). A '
          f'checkpoint written before the experience table was renamed '
          f'({OLD_REPLAY_TABLE!r} is now {REPLAY_TABLE!r}) cannot be restored: '
          f'start from an empty --checkpoint_dir (the learner\'s checkpoints '
          f'are not affected)') from e
    self._client = self._server.localhost_client()
    if restoring:
      self._check_restored(tables)
    # Reverb binds every interface and has no option for one address.
    logging.info('Reverb server listening on port %d: %s', self.port,
                 self.describe_tables())
    logging.info('The port is open on every network interface of this host '
                 'and Reverb has no authentication: on a host with a public '
                 'address, firewall port %d (or run in compose or '
                 'Kubernetes, where it stays on a private network)', self.port)

  def describe_tables(self) -> str:
    info = self._client.server_info(timeout=30)
    return ', '.join(f'{name!r} size {table.current_size}/{table.max_size}'
                     for name, table in sorted(info.items()))

  def checkpoint(self, periodic: bool) -> None:
    """Writes the tables to the checkpoint dir (Reverb keeps the latest),
    every checkpoint_every_s (`periodic`) or on shutdown; recorded."""
    if not self._settings.checkpoint_dir:
      return
    # Sizes taken before: inserts may land while the checkpoint is written.
    tables = self.describe_tables()
    start = time.monotonic()
    path = self._client.checkpoint()
    seconds = time.monotonic() - start
    self._records.write(records.CHECKPOINTED, seconds=seconds,
                        periodic=periodic)
    why = ('every %.0fs' % self._checkpoint_every_s if periodic
           else 'on shutdown')
    logging.info('Checkpointed (%s) in %.1fs to %s, from %s', why, seconds,
                 path, tables)

  def stop(self) -> None:
    """Checkpoints (when configured), then stops serving."""
    self.checkpoint(periodic=False)
    self._server.stop()

  def _check_restored(self, tables: List[reverb.Table]) -> None:
    served = self._client.server_info(timeout=30)
    differences = []
    for table in tables:
      if table.name not in served:
        differences.append(f'{table.name!r} missing')
      else:
        differences += [f'{table.name}.{d}' for d in tables_lib.table_differences(
            served[table.name], table.info)]
    if differences:
      self._server.stop()
      raise CheckpointMismatchError(
          f'the checkpoint in --checkpoint_dir {self._settings.checkpoint_dir} '
          f'holds tables of another experiment config: '
          f'{"; ".join(differences[:5])}. Restore it with the flagfile that '
          f'wrote it, or start from an empty --checkpoint_dir')
    logging.info('Restored the tables from the checkpoint in %s',
                 self._settings.checkpoint_dir)
