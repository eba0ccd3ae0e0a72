"""What the learner measures besides the losses: its wait for data and the
replay table's rates, as TensorBoard summaries."""
import time
from typing import Callable

import reverb
import tensorflow as tf

from common.config import REPLAY_TABLE


class TimedIterator:
  """Wraps a dataset iterator; `waited_s` sums the time next() blocked.

  The timestamps are ops inside the train function, chained around the
  iterator's get_next, so this is the time the train step waited for a
  batch (close to 0 while the prefetch buffer has one ready).
  """

  def __init__(self, iterator):
    self._iterator = iterator
    self.waited_s = tf.Variable(0.0, dtype=tf.float64, trainable=False,
                                name='data_wait_s')

  def __iter__(self):
    return self

  def __next__(self):
    start = tf.timestamp()
    with tf.control_dependencies([start]):
      element = next(self._iterator)
    arrived = [t for t in tf.nest.flatten(element, expand_composites=True)
               if tf.is_tensor(t)]
    with tf.control_dependencies(arrived):
      self.waited_s.assign_add(tf.timestamp() - start)
    return element


class LearnerSummaries:
  """Writes Learner/* and Reverb/* scalars at every call of `write`."""

  def __init__(self, client: reverb.Client, waited_s: Callable[[], float],
               train_step: int):
    """`waited_s()`: the seconds training has waited for data so far."""
    self._client = client
    self._waited_s = waited_s
    self._last = self._read(train_step)

  def write(self, train_step: int) -> dict:
    """Rates since the previous call, as summaries; returns them."""
    now = self._read(train_step)
    seconds = max(now['time'] - self._last['time'], 1e-6)
    inserts = now['inserts'] - self._last['inserts']
    samples = now['samples'] - self._last['samples']
    values = {
        'Learner/train_steps_per_sec':
            (train_step - self._last['step']) / seconds,
        'Learner/data_wait_fraction':
            (now['waited'] - self._last['waited']) / seconds,
        'Reverb/table_size': now['size'],
        'Reverb/inserts_per_sec': inserts / seconds,
        'Reverb/samples_per_sec': samples / seconds,
        'Reverb/samples_per_insert': samples / max(inserts, 1),
    }
    for tag, value in values.items():
      tf.summary.scalar(tag, value, step=train_step)
    self._last = now
    return values

  def _read(self, train_step: int) -> dict:
    table = self._client.server_info(timeout=10)[REPLAY_TABLE]
    limiter = table.rate_limiter_info
    return {'time': time.monotonic(), 'step': train_step,
            'waited': self._waited_s(),
            'size': table.current_size,
            'inserts': limiter.insert_stats.completed,
            'samples': limiter.sample_stats.completed}
