"""Taking items off a queue table, first in first out."""
import time
from typing import Callable

from absl import logging
import reverb
import tensorflow as tf

from common.reverb_calls import StoppableCalls
from common.reverb_calls import WAIT_SLICE_MS


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
        rate_limiter_timeout_ms=WAIT_SLICE_MS)
    self._table = table
    self._prefetch = prefetch
    self._iterator = iter(self._dataset) if prefetch else None
    # A sample waits for a server that went away until it is back.
    self._calls = StoppableCalls(should_stop)
    self.waited_s = 0.0  # In take(), so far.

  def take(self):
    """An item's data (a nest like the signature's, of tensors), or None
    when the queue stayed empty for a slice. Raises InterruptedError once
    a stop is requested."""
    start = time.monotonic()
    try:
      return self._take()
    finally:
      self.waited_s += time.monotonic() - start

  def _take(self):
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
