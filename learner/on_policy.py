"""PPO's learner side: iterations over a queue of on-policy sequences.

An iteration takes exactly `ppo_steps_per_iteration` env steps of items from
the queue, in the order the actors wrote them, dropping (and counting) items
collected with weights more than `max_policy_lag` iterations old; updates
the observation and reward normalizers on them; computes advantages (GAE)
from the value predictions the actors recorded; trains `num_epochs`
shuffled passes in minibatches of batch_size steps; then the learner pushes
the new weights. Versions are train steps, and every iteration trains the
same number of them, so an item's lag in iterations is exact, across learner
restarts too.
"""
import time
from typing import Callable, List, Tuple

from absl import logging
import numpy as np
import reverb
import tensorflow as tf

from common import reverb_io
from common.config import ExperimentConfig
from common.config import REPLAY_TABLE
from common.errors import ConfigError
from common.replay_layout import ReplayLayout
from common.replay_layout import STEP_COLUMN
from common.replay_layout import VERSION_COLUMN

_WAIT_SLICE_MS = 500


class QueueStopped(Exception):
  """The learner was asked to stop while it waited for the queue."""


def policy_lag(item_version: int, train_step: int,
               train_steps_per_iteration: int) -> int:
  """Iterations between the weights that collected an item and the
  learner's: negative for a version this learner never pushed (items left
  by a run that got further before a restart)."""
  return (train_step - item_version) // train_steps_per_iteration


def check_single_replica(strategy: tf.distribute.Strategy) -> None:
  if strategy.num_replicas_in_sync > 1:
    raise ConfigError(
        f'--agent=ppo trains on one replica; the strategy has '
        f'{strategy.num_replicas_in_sync} (use --strategy=default, or '
        f'mirrored on one GPU)')


class QueueReader:
  """Takes items off the queue one at a time, first in first out.

  Each item leaves the queue when it is taken (a queue hands out every item
  once). Waits for items, and for a server that went away, in slices, so
  that a stop request is seen within half a second.
  """

  def __init__(self, address: str, layout: ReplayLayout,
               should_stop: Callable[[], bool]):
    signature = layout.signature
    self._dataset = reverb.TrajectoryDataset(
        address, REPLAY_TABLE,
        tf.nest.map_structure(lambda spec: spec.dtype, signature),
        tf.nest.map_structure(lambda spec: spec.shape, signature),
        max_in_flight_samples_per_worker=1, num_workers_per_iterator=1,
        rate_limiter_timeout_ms=_WAIT_SLICE_MS)
    self._iterator = iter(self._dataset)
    self._should_stop = should_stop
    # A sample waits for a server that went away until it is back.
    self._calls = reverb_io.StoppableCalls(should_stop)
    self.waited_s = 0.0

  def next_item(self) -> Tuple[np.ndarray, int]:
    """(packed steps [sequence_length, step_bytes], policy version)."""
    start = time.monotonic()
    try:
      while True:
        try:
          sample = self._calls.call(lambda: next(self._iterator))
          return (sample.data[STEP_COLUMN].numpy(),
                  int(sample.data[VERSION_COLUMN].numpy()))
        except InterruptedError:
          raise QueueStopped() from None
        except (StopIteration, tf.errors.OutOfRangeError):
          pass  # The queue stayed empty for a slice.
        except tf.errors.OpError as e:  # The server went away (a restart).
          logging.log_every_n_seconds(
              logging.WARNING, 'Taking from the queue failed (%s); retrying '
              'until the server answers', 10, str(e).splitlines()[0])
          time.sleep(1.0)
        if self._should_stop():
          raise QueueStopped()
        self._iterator = iter(self._dataset)
    finally:
      self.waited_s += time.monotonic() - start


class PPOTraining:
  """PPO iterations with TF-Agents' Learner (its checkpoint restore,
  summaries and triggers): one per `run`, between the learner's pushes;
  counts what it trained on and dropped."""

  def __init__(self, config: ExperimentConfig, agent, learner,
               reader: QueueReader, layout: ReplayLayout):
    ppo = config.ppo
    self.learner = learner
    self._ppo = ppo
    self._agent = agent
    self._reader = reader
    self._layout = layout
    self._batch_size = config.agent.batch_size
    self.train_steps_per_iteration = ppo.train_steps_per_iteration(
        self._batch_size)
    self.iterations = 0
    self.env_steps_trained = 0
    self.stale_items_dropped = 0
    self._prepare = tf.function(self._prepare_steps, autograph=False)

  def run(self, first: bool = False):
    """One iteration; returns the loss info of its last train step."""
    del first  # Every run is one iteration.
    items = self._take_fresh_items()
    steps = self._prepare(tf.constant(np.stack(items)))
    num_steps = self._ppo.steps_per_iteration
    minibatches = (tf.data.Dataset.from_tensor_slices(steps)
                   .shuffle(num_steps, reshuffle_each_iteration=True)
                   .repeat(self._ppo.num_epochs)
                   .batch(self._batch_size, drop_remainder=True)
                   .map(lambda step: (step, ())))
    loss = self.learner.run(iterations=self.train_steps_per_iteration,
                            iterator=iter(minibatches))
    self.iterations += 1
    self.env_steps_trained += num_steps
    return loss

  def waited_s(self) -> float:
    """Seconds spent waiting for the queue so far."""
    return self._reader.waited_s

  def log_progress(self, step: int) -> None:
    """The PPO counters as summaries and a log line."""
    tf.summary.scalar('Learner/stale_items_dropped', self.stale_items_dropped,
                      step=step)
    tf.summary.scalar('Learner/env_steps_trained', self.env_steps_trained,
                      step=step)
    logging.info('train_step=%d PPO: %d iterations, %d env steps trained (%d '
                 'each), %d stale items dropped', step, self.iterations,
                 self.env_steps_trained, self._ppo.steps_per_iteration,
                 self.stale_items_dropped)

  def _take_fresh_items(self) -> List[np.ndarray]:
    train_step = self.learner.train_step_numpy
    items = []
    while len(items) < self._ppo.items_per_iteration:
      packed, version = self._reader.next_item()
      lag = policy_lag(version, train_step, self.train_steps_per_iteration)
      if 0 <= lag <= self._ppo.max_policy_lag:
        items.append(packed)
      else:
        self.stale_items_dropped += 1
    return items

  def _prepare_steps(self, packed: tf.Tensor):
    """Packed items [items, length, bytes] -> single steps [steps, 1, ...]
    with their returns and advantages, after a normalizer update."""
    trajectory = self._layout.unpack(packed)
    self._agent.update_observation_normalizer(trajectory.observation)
    self._agent.update_reward_normalizer(trajectory.reward)
    trajectory = self._agent.preprocess_sequence(trajectory)
    return tf.nest.map_structure(
        lambda t: tf.reshape(t, [-1, 1, *t.shape[2:]]), trajectory)
