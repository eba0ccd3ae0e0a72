"""Connecting to the Reverb server, and watching that it answers."""
import threading
import time
from typing import Callable, List, Optional

from absl import logging
import reverb

from common import ports
from common import shutdown
from common.errors import UserError
from common.reverb_calls import SERVER_AWAY_ERRORS
from common.tables import check_tables


class ReverbConnectionError(UserError, ConnectionError):
  """The Reverb server did not answer in time."""


def connect(address: str, timeout_s: float,
            expected: Optional[List[reverb.Table]] = None,
            should_stop: Callable[[], bool] = lambda: False) -> reverb.Client:
  """A client once the server at `address` answers (and, given `expected`,
  serves tables with their names and signatures), else raises; raises
  InterruptedError once `should_stop()` while nothing listens there."""
  deadline = time.monotonic() + timeout_s
  logging.info('Connecting to the Reverb server at %s (waiting up to %.0fs)',
               address, timeout_s)
  _wait_for_listener(address, deadline, should_stop)
  client = reverb.Client(address)
  try:
    client.server_info(timeout=max(1, int(deadline - time.monotonic())))
  except SERVER_AWAY_ERRORS as e:
    raise ReverbConnectionError(
        f'no Reverb server answered at {address} within {timeout_s:.0f}s: '
        f'start reverb_server first and check --reverb_address') from e
  if expected is not None:
    check_tables(client, expected)
  return client


def _wait_for_listener(address: str, deadline: float,
                       should_stop: Callable[[], bool]) -> None:
  """Until something listens at `address` (host:port), at most to deadline.

  A gRPC channel whose connection was refused waits about a second before it
  tries again: a process that asked while the server was starting would lose
  that second (all start at once under the launcher, compose and k8s).
  """
  host, _, port = address.rpartition(':')
  if not host or not port.isdigit():
    return  # Not host:port; gRPC resolves it.
  # If nothing answers, the server_info call that follows says so.
  def stop_waiting():
    if should_stop():
      raise InterruptedError(f'stopped while connecting to {address}')
  ports.wait_until_listening(host, int(port), deadline - time.monotonic(),
                             poll_s=0.05, between_tries=stop_waiting)


class ServerWatch:
  """Logs, in a thread, when the Reverb server stops answering and when it
  answers again.

  Reverb's clients wait for an absent server and carry on once it is back
  (gRPC reconnects underneath), so writers, samples and datasets resume by
  themselves after a server restart. Without this watch they would wait
  without a word. While the server is away the checks back off
  exponentially, from 1s to `max_backoff_s`.
  """

  def __init__(self, address: str, stop: shutdown.Shutdown,
               every_s: float = 5.0, max_backoff_s: float = 60.0):
    self._address = address
    self._stop = stop
    self._every_s = every_s
    self._max_backoff_s = max_backoff_s
    threading.Thread(target=self._run, daemon=True,
                     name='reverb-watch').start()

  def _run(self) -> None:
    client = reverb.Client(self._address)
    away_since, backoff_s = None, 1.0
    while not self._stop.wait(self._every_s if away_since is None
                              else backoff_s):
      asked_at = time.monotonic()
      try:
        client.server_info(timeout=3)
      except reverb.errors.DeadlineExceededError:
        if away_since is None:
          away_since, backoff_s = asked_at, 1.0
        else:
          backoff_s = min(2 * backoff_s, self._max_backoff_s)
        logging.warning(
            'The Reverb server at %s has not answered for %.0fs; waiting '
            'for it to come back (next check in %.0fs)', self._address,
            time.monotonic() - away_since, backoff_s)
        continue
      if away_since is not None:
        logging.info('The Reverb server at %s answers again, after %.0fs '
                     'away', self._address, time.monotonic() - away_since)
        away_since = None
