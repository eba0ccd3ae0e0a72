"""Prioritized replay on the learner (Schaul et al. 2016, as Reverb serves it).

The replay table samples items in proportion to priority ** alpha (Reverb's
Prioritized selector). The learner weights each sampled item's loss by
(N * P(item)) ** -beta, divided by the batch's largest weight, and sends
|TD error| back as the item's new priority. The train step only hands the
priorities to a thread, which merges what arrived into one
mutate_priorities call at a time: the train step never waits for Reverb.
"""
import dataclasses
import threading
import time
from typing import Dict, Optional

from absl import logging
import numpy as np
import reverb
import tensorflow as tf

from common.config import REPLAY_TABLE
from common.config import ReplayConfig

# Keeps every item sampleable: a TD error of 0 would never be drawn again.
MIN_PRIORITY = 1e-6
_LOG_FAILURES_EVERY_S = 30.0


class ImportanceExponent:
  """beta as a variable the input pipeline reads; calling it with a train
  step sets it (a Learner trigger, called after every run)."""

  def __init__(self, config: ReplayConfig):
    self._config = config
    self.variable = tf.Variable(config.importance_exponent_at(0),
                                dtype=tf.float32, trainable=False,
                                name='importance_exponent')

  def __call__(self, train_step) -> None:
    self.variable.assign(self._config.importance_exponent_at(int(train_step)))


def importance_weights(probability: tf.Tensor, table_size: tf.Tensor,
                       exponent: tf.Tensor) -> tf.Tensor:
  """(N * P(item)) ** -beta over a batch of sampled items, divided by the
  batch's largest: in (0, 1], the rarest item 1."""
  weights = tf.pow(tf.cast(table_size, tf.float64) * probability,
                   -tf.cast(exponent, tf.float64))
  return tf.cast(weights / tf.reduce_max(weights), tf.float32)


class PriorityUpdater:
  """Sends new priorities to the replay table from a thread of its own.

  `after_train_step` is the Learner's after_train_strategy_step_fn: it
  passes the batch's keys and |TD errors| out of the train function. Items
  removed from the table before their update arrives are skipped by Reverb.
  While the server is away, a call fails (its updates are dropped, counted
  and logged) or, once the connection is seen down, waits for the server
  (the updates arriving meanwhile merge into the next call); after a
  restart, updates land on the restored items.
  """

  def __init__(self, address: str):
    self._client = reverb.Client(address)
    self._pending = {}  # key -> priority; a later update of a key wins.
    self._lock = threading.Lock()
    self._arrived = threading.Event()
    self.items_sent = 0
    self.calls = 0
    self.send_s = 0.0
    self.dropped = 0
    threading.Thread(target=self._send_forever, daemon=True,
                     name='priority-updates').start()

  def after_train_step(self, experience, loss_info) -> None:
    """In each replica's train step: hands keys and priorities over.
    `experience` is (agent.train's arguments, sample info)."""
    _, info = experience
    keys = info.key[:, 0]  # The info is repeated along the time axis.
    priorities = tf.maximum(tf.abs(loss_info.extra.td_error), MIN_PRIORITY)
    tf.numpy_function(self.add, [keys, priorities], Tout=[], stateful=True)

  def add(self, keys: np.ndarray, priorities: np.ndarray) -> None:
    with self._lock:
      self._pending.update(zip(keys.tolist(), priorities.tolist()))
    self._arrived.set()

  def _send_forever(self) -> None:
    last_failure_log = 0.0
    while True:
      self._arrived.wait()
      self._arrived.clear()
      with self._lock:
        updates, self._pending = self._pending, {}
      if not updates:
        continue
      start = time.monotonic()
      try:
        self._client.mutate_priorities(REPLAY_TABLE, updates=updates)
      except Exception as e:  # pylint: disable=broad-except
        # The thread outlives any failed call (the server away, mostly).
        self.dropped += len(updates)
        if time.monotonic() - last_failure_log >= _LOG_FAILURES_EVERY_S:
          logging.warning('Priority updates dropped (%d so far): %s',
                          self.dropped, str(e).splitlines()[0])
          last_failure_log = time.monotonic()
        continue
      self.send_s += time.monotonic() - start
      self.calls += 1
      self.items_sent += len(updates)


@dataclasses.dataclass(frozen=True)
class PrioritizedTraining:
  """What prioritized replay adds to a learner: beta for its input, the
  priority updates after each train step."""
  importance: ImportanceExponent
  updater: PriorityUpdater

  @property
  def learner_kwargs(self) -> dict:
    """For TF-Agents' Learner: the batches are agent.train's keyword
    arguments (experience, weights), priorities go out after each step."""
    return dict(use_kwargs_in_agent_train=True,
                after_train_strategy_step_fn=self.updater.after_train_step)

  def counters(self) -> Dict[str, float]:
    updater = self.updater
    return {'priorities_sent': updater.items_sent,
            'priority_calls': updater.calls,
            'priority_ms_per_call': 1000 * updater.send_s / max(
                updater.calls, 1),
            'priorities_dropped': updater.dropped,
            'importance_exponent': float(self.importance.variable.numpy())}

  def describe(self) -> str:
    c = self.counters()
    return (f'priorities: {c["priorities_sent"]} sent in '
            f'{c["priority_calls"]} calls ({c["priority_ms_per_call"]:.1f} ms '
            f'each), {c["priorities_dropped"]} dropped, beta '
            f'{c["importance_exponent"]:.2f}')


def prioritized_training(config: ReplayConfig, address: str
                         ) -> Optional[PrioritizedTraining]:
  """For a prioritized replay config, else None."""
  if config.sampler != 'prioritized':
    return None
  return PrioritizedTraining(ImportanceExponent(config),
                             PriorityUpdater(address))
