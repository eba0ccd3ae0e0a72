"""Talking to the Reverb server: connecting, checking tables, syncing weights."""
import concurrent.futures
import queue
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from absl import logging
import numpy as np
import reverb
from reverb import reverb_types
import tensorflow as tf
import tree
from tf_agents.experimental.distributed import reverb_variable_container

from common import ports
from common import shutdown
from common.specs import ExperimentSpecs
from common.specs import REQUEST_SIGNATURE
from common.specs import REQUESTS_TABLE
from common.specs import TRAIN_STEP_KEY
from common.specs import VARIABLES_TABLE
from common.config import REPLAY_TABLE
from common.errors import UserError


class ReverbConnectionError(UserError, ConnectionError):
  """The Reverb server did not answer in time."""


class TableMismatchError(UserError, ValueError):
  """The server's tables do not match this process's experiment config."""


class WeightsTimeoutError(UserError, TimeoutError):
  """The learner pushed no weights in time."""


# Waits on the server (a sample, an insert) end this often to check for a
# stop request.
_WAIT_SLICE_MS = 500

# What a client call raises when the server does not answer: a deadline, or
# a RuntimeError ("Socket closed") when the server goes away mid-call.
SERVER_AWAY_ERRORS = (reverb.errors.DeadlineExceededError, RuntimeError)


def connect(address: str, timeout_s: float,
            expected: Optional[ExperimentSpecs] = None) -> reverb.Client:
  """A client once the server at `address` answers (and, given `expected`,
  serves the tables of that experiment), else raises."""
  deadline = time.monotonic() + timeout_s
  _wait_for_listener(address, deadline)
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


def _wait_for_listener(address: str, deadline: float) -> None:
  """Until something listens at `address` (host:port), at most to deadline.

  A gRPC channel whose connection was refused waits about a second before it
  tries again: a process that asked while the server was starting would lose
  that second (all start at once under the launcher, compose and k8s).
  """
  host, _, port = address.rpartition(':')
  if not host or not port.isdigit():
    return  # Not host:port; gRPC resolves it.
  # If nothing answers, the server_info call that follows says so.
  ports.wait_until_listening(host, int(port), deadline - time.monotonic(),
                             poll_s=0.05)


def check_tables(client: reverb.Client, specs: ExperimentSpecs) -> None:
  """Raises TableMismatchError unless the server's signatures match `specs`."""
  info = client.server_info()
  expected = {REPLAY_TABLE: specs.replay_signature,
              VARIABLES_TABLE: specs.variables_signature}
  if specs.rounds_per_iteration:
    expected[REQUESTS_TABLE] = REQUEST_SIGNATURE
  for name, signature in expected.items():
    if name not in info:
      raise TableMismatchError(
          f'the Reverb server has no table {name!r} (it has {sorted(info)}); '
          f'is it a reverb_server of this project?')
    differences = _signature_differences(info[name].signature, signature)
    if differences:
      raise TableMismatchError(
          f'table {name!r} on the server does not match this experiment '
          f'config: {"; ".join(differences[:5])}. Start every process with '
          f'the same --flagfile')


_LIMITER_FIELDS = ('samples_per_insert', 'min_size_to_sample', 'min_diff',
                   'max_diff')


def table_differences(served: reverb_types.TableInfo,
                      expected: reverb_types.TableInfo) -> List[str]:
  """How a served table's configuration and signature differ from another's."""
  differences = []
  pairs = [('max_size', served.max_size, expected.max_size),
           ('max_times_sampled', served.max_times_sampled,
            expected.max_times_sampled),
           ('sampler', served.sampler_options, expected.sampler_options),
           ('remover', served.remover_options, expected.remover_options)]
  pairs += [(f'rate_limiter.{field}',
             getattr(served.rate_limiter_info, field),
             getattr(expected.rate_limiter_info, field))
            for field in _LIMITER_FIELDS]
  for name, got, want in pairs:
    if got != want:
      differences.append(f'{name}: server {_one_line(got)} vs config '
                         f'{_one_line(want)}')
  return differences + _signature_differences(served.signature,
                                              expected.signature)


def _one_line(value) -> str:
  return ' '.join(str(value).split()) or '{}'


def _signature_differences(served, expected) -> List[str]:
  served_flat = tf.nest.flatten(served)
  expected_flat = tf.nest.flatten(expected)
  paths = _paths(expected)
  if len(served_flat) != len(expected_flat):
    return [f'server has {len(served_flat)} tensors, config gives '
            f'{len(expected_flat)}' + _columns_named(_paths(served), paths)]
  differences = []
  for path, got, want in zip(paths, served_flat, expected_flat):
    if got.shape != want.shape or got.dtype != want.dtype:
      differences.append(
          f'{path}: server {got.dtype.name}{got.shape.as_list()} vs config '
          f'{want.dtype.name}{want.shape.as_list()}')
  return differences


def _paths(signature) -> List[str]:
  return ['/'.join(map(str, path))
          for path, _ in tree.flatten_with_path(signature)]


def _columns_named(served: List[str], expected: List[str]) -> str:
  """Names the top-level columns when they differ (another layout)."""
  tops = [sorted({path.split('/')[0] for path in paths})
          for paths in (served, expected)]
  if tops[0] == tops[1]:
    return ''
  return f' (server columns {tops[0]} vs config {tops[1]})'


def describe_replay(client: reverb.Client) -> str:
  """The numbers that explain a stall: size, inserts, samples, limiter."""
  try:
    table = client.server_info(timeout=5)[REPLAY_TABLE]
  except reverb.errors.DeadlineExceededError:
    return 'the Reverb server does not answer'

  limiter = table.rate_limiter_info
  return (f'table {REPLAY_TABLE!r}: size {table.current_size}/'
          f'{table.max_size}, inserts {limiter.insert_stats.completed}, '
          f'samples {limiter.sample_stats.completed}; rate limiter: sampling '
          f'needs size >= {limiter.min_size_to_sample}, samples_per_insert '
          f'{limiter.samples_per_insert:g}, inserts*spi - samples kept in '
          f'[{limiter.min_diff:g}, {limiter.max_diff:g}]')


def table_size(client: reverb.Client, table: str = REPLAY_TABLE) -> int:
  """The table's item count; waits for the server if it is away."""
  return client.server_info()[table].current_size


def learner_train_step(client: reverb.Client) -> Optional[int]:
  """The train_step of the latest pushed weights, or None before version 0."""
  info = client.server_info()[VARIABLES_TABLE]
  if info.current_size == 0:
    return None
  sample = next(client.sample(VARIABLES_TABLE, num_samples=1,
                              emit_timesteps=False))
  values = tf.nest.pack_sequence_as(info.signature, sample.data)
  return int(np.asarray(values[TRAIN_STEP_KEY]).reshape(-1)[0])


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


class LongWait:
  """Says how long a wait has lasted, every `every_s` seconds of it: call
  `tick()` in the wait's loop; `say(seconds)` logs."""

  def __init__(self, every_s: float, say: Callable[[float], None]):
    self._every_s = every_s
    self._say = say
    self._start = self._last = time.monotonic()

  def tick(self) -> None:
    now = time.monotonic()
    if now - self._last >= self._every_s:
      self._say(now - self._start)
      self._last = now


class StoppableCalls:
  """Runs blocking Reverb calls in one worker thread, so that the caller can
  leave a call the server will never answer when it is asked to stop.

  Reverb's clients wait for a server that went away until it comes back:
  right for a restart, but a process stopping together with its server (a
  launcher's Ctrl-C, docker compose down) would sit in a push or a pull
  until its forced exit. The worker is a daemon thread, so a call left
  behind never holds up the exit of the process (a thread pool's workers
  are joined at exit, which would wait for that call forever).
  """

  def __init__(self, should_stop: Callable[[], bool], poll_s: float = 0.5):
    self._calls = queue.SimpleQueue()
    threading.Thread(target=self._run, daemon=True,
                     name='reverb-call').start()
    self.should_stop = should_stop
    self._poll_s = poll_s

  def _run(self) -> None:
    while True:
      fn, future = self._calls.get()
      if not future.set_running_or_notify_cancel():
        continue
      try:
        future.set_result(fn())
      except Exception as e:  # pylint: disable=broad-except
        future.set_exception(e)

  def call(self, fn: Callable[[], Any]) -> Any:
    """fn(), or InterruptedError once a stop is requested while it runs."""
    future = concurrent.futures.Future()
    self._calls.put((fn, future))
    while True:
      try:
        return future.result(timeout=self._poll_s)
      except concurrent.futures.TimeoutError:
        if self.should_stop():
          future.cancel()
          raise InterruptedError(
              'stopped while the Reverb server did not answer') from None


class QueueReader:
  """Takes items off a queue table one at a time, first in first out; each
  item leaves the queue when it is taken (a queue hands out every item
  once).

  A take waits for an item for one slice of half a second, and for a server
  that went away until it answers again, so that a stop request is seen
  within a slice. With `prefetch`, the reader asks for the next item as
  soon as it hands one out (an item it holds is gone from the queue);
  without, it takes exactly the items it hands out.
  """

  def __init__(self, address: str, table: str, signature,
               should_stop: Callable[[], bool], prefetch: bool = True):
    self._dataset = reverb.TrajectoryDataset(
        address, table,
        tf.nest.map_structure(lambda spec: spec.dtype, signature),
        tf.nest.map_structure(lambda spec: spec.shape, signature),
        max_in_flight_samples_per_worker=1, num_workers_per_iterator=1,
        max_samples=-1 if prefetch else 1,
        rate_limiter_timeout_ms=_WAIT_SLICE_MS)
    self._table = table
    self._prefetch = prefetch
    self._iterator = iter(self._dataset) if prefetch else None
    # A sample waits for a server that went away until it is back.
    self._calls = StoppableCalls(should_stop)

  def take(self):
    """An item's data (a nest like the signature's, of tensors), or None
    when the queue stayed empty for a slice. Raises InterruptedError once
    a stop is requested."""
    try:
      if self._iterator is None:
        self._iterator = iter(self._dataset)
      data = self._calls.call(lambda: next(self._iterator)).data
      if not self._prefetch:
        self._iterator = None
      return data
    except (StopIteration, tf.errors.OutOfRangeError):
      pass  # The queue stayed empty for a slice.
    except tf.errors.InvalidArgumentError:
      raise  # An item of another signature: no retry takes it.
    except tf.errors.OpError as e:  # The server went away (a restart).
      logging.log_every_n_seconds(
          logging.WARNING, 'Taking from queue %r failed (%s); retrying until '
          'the server answers', 10, self._table, str(e).splitlines()[0])
      time.sleep(1.0)
    if self._calls.should_stop():
      raise InterruptedError('stopped while waiting for the queue')
    self._iterator = iter(self._dataset) if self._prefetch else None
    return None


def retry_call(calls: StoppableCalls, fn: Callable[[], Any],
               what: str) -> bool:
  """fn() through `calls`; whether it ran. A call the server cut off by
  going away (a restart) is retried every second until it answers again,
  or until a stop is requested."""
  last_log = None
  while True:
    try:
      calls.call(fn)
      return True
    except InterruptedError:
      return False
    except (tf.errors.OpError, reverb.errors.ReverbError, RuntimeError) as e:
      if calls.should_stop():
        return False
      if last_log is None or time.monotonic() - last_log >= 10:
        logging.warning('%s failed (%s); retrying until the server answers',
                        what, str(e).splitlines()[0])
        last_log = time.monotonic()
      time.sleep(1.0)


class WeightsSync:
  """Pushes or pulls the policy variables + train_step through Reverb.

  Until `should_stop()`: then a push or pull the server does not answer
  gives up (see StoppableCalls).
  """

  def __init__(self, address: str, variables: Dict,
               should_stop: Callable[[], bool] = lambda: False):
    self._container = reverb_variable_container.ReverbVariableContainer(
        address, table_names=[VARIABLES_TABLE])
    self._client = reverb.Client(address)
    self._variables = variables
    self._flat_variables = tf.nest.flatten(variables)
    self._version_index = [path for path, _ in tree.flatten_with_path(
        variables)].index((TRAIN_STEP_KEY,))
    self._calls = StoppableCalls(should_stop)

  @property
  def version(self) -> int:
    """The train_step the local weights come from."""
    return int(self._variables[TRAIN_STEP_KEY].numpy())

  def push(self) -> bool:
    """Pushes the variables; whether they were pushed (see retry_call)."""
    return retry_call(self._calls, lambda: self._container.push(
        self._variables), 'Pushing weights')

  def push_if_replaced(self) -> bool:
    """Pushes again if the server holds weights of another version (a
    server restored from an older checkpoint); whether it pushed. Raises
    InterruptedError when stopped while the server does not answer."""
    served = self._calls.call(lambda: learner_train_step(self._client))
    if served == self.version:
      return False
    logging.warning('The server holds weights version %s, not %d (restored '
                    'from an older checkpoint?): pushing them again', served,
                    self.version)
    return self.push()

  def pull(self) -> int:
    """Updates the local variables to the latest pushed ones; the version.

    One sample with the Python client and an assign per variable, none when
    the version is the one held: half the CPU of TF-Agents' container pull.
    Raises InterruptedError when stopped during a pull the server does not
    answer.
    """
    values = self._calls.call(lambda: next(self._client.sample(
        VARIABLES_TABLE, num_samples=1, emit_timesteps=False)).data)
    version = int(np.reshape(values[self._version_index], -1)[0])
    if version != self.version:
      for variable, value in zip(self._flat_variables, values):
        variable.assign(np.reshape(value, variable.shape))
    return version

  def wait_and_pull(self, timeout_s: float, log_every_s: float = 10.0) -> int:
    """Blocks until the learner pushed weights, then pulls them."""
    start = time.monotonic()
    wait = LongWait(log_every_s, lambda waited: logging.info(
        'Waiting for the learner to push weights version 0 to table %r '
        '(%.0fs of %.0fs)', VARIABLES_TABLE, waited, timeout_s))
    while self._client.server_info()[VARIABLES_TABLE].current_size == 0:
      if self._calls.should_stop():
        raise InterruptedError('stopped while waiting for weights')
      if time.monotonic() - start > timeout_s:
        raise WeightsTimeoutError(
            f'the learner pushed no weights to table {VARIABLES_TABLE!r} '
            f'within {timeout_s:.0f}s: is the learner running against the '
            f'same Reverb server? (see --weights_timeout_s)')
      wait.tick()
      time.sleep(0.2)
    return self.pull()
