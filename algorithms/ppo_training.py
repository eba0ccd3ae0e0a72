"""PPO's learner side: iterations over a queue of on-policy sequences.

An iteration (synchronous PPO: after requesting its rounds from the actors)
takes exactly `ppo_steps_per_iteration` env steps of items from
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
from typing import Dict, List, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from algorithms import ppo as ppo_builder
from algorithms.base import LearnerParts
from algorithms.base import TrainingStopped
from algorithms.collect_requests import CollectRequests
from common.config import ExperimentConfig
from common.config import REPLAY_TABLE
from common.queue_reader import QueueReader
from common.replay_layout import ReplayLayout
from common.replay_layout import STEP_COLUMN
from common.replay_layout import VERSION_COLUMN


def policy_lag(item_version: int, train_step: int,
               train_steps_per_iteration: int) -> int:
  """Iterations between the weights that collected an item and the
  learner's: negative for a version this learner never pushed (items left
  by a run that got further before a restart)."""
  return (train_step - item_version) // train_steps_per_iteration


class PPOTraining:
  """PPO iterations with TF-Agents' Learner (its checkpoint restore,
  summaries and triggers): one between two pushes of the learner; counts
  what it trained on and dropped.

  Synchronous PPO (`requests` given) first requests the iteration's rounds
  from the actors (algorithms/collect_requests.py). When no fresh item has come
  for a while, the server may hold older weights than the learner's (it
  was restored from a checkpoint) and requests may have been lost (with an
  actor that died mid-round, or with the server): the weights are pushed
  again and the missing rounds requested again.
  """

  def __init__(self, config: ExperimentConfig, agent, learner,
               reader: QueueReader, layout: ReplayLayout,
               weights, requests: Optional[CollectRequests] = None):
    ppo = config.ppo
    self.learner = learner
    self._ppo = ppo
    self._agent = agent
    self._reader = reader
    self._layout = layout
    self._weights = weights
    self._requests = requests
    self._rounds = ppo_builder.rounds_per_iteration(config)
    self._envs_per_actor = config.train.envs_per_actor
    self._batch_size = config.agent.batch_size
    self.train_steps_per_iteration = ppo.train_steps_per_iteration(
        self._batch_size)
    self.iterations = 0
    self.env_steps_trained = 0
    self.stale_items_dropped = 0
    self.rounds_requested_again = 0
    # The longest wait for a fresh item so far (about a round's
    # collection) sets how long a wait means a stall; neither the first
    # (actors starting) nor one with a stall in it counts.
    self._longest_wait_s = 0.0
    self._count_next_wait = False
    self._prepare = tf.function(self._prepare_steps, autograph=False)

  def run_first(self):
    return self.run_to_next_push()

  def run_to_next_push(self):
    """One iteration; returns the loss info of its last train step."""
    if self._requests and not self._requests.issue(
        self._rounds, self.learner.train_step_numpy):
      raise TrainingStopped()
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

  def counters(self) -> Dict[str, float]:
    return {'iterations': self.iterations,
            'env_steps_trained': self.env_steps_trained,
            'stale_items_dropped': self.stale_items_dropped,
            'rounds_requested_again': self.rounds_requested_again}

  def log_progress(self, step: int) -> None:
    """The PPO counters as summaries and a log line."""
    tf.summary.scalar('Learner/stale_items_dropped', self.stale_items_dropped,
                      step=step)
    tf.summary.scalar('Learner/env_steps_trained', self.env_steps_trained,
                      step=step)
    logging.info('train_step=%d PPO: %d iterations, %d env steps trained (%d '
                 'each), %d stale items dropped, %d rounds requested again',
                 step, self.iterations, self.env_steps_trained,
                 self._ppo.steps_per_iteration, self.stale_items_dropped,
                 self.rounds_requested_again)

  def _take_fresh_items(self) -> List[np.ndarray]:
    """An iteration's items, in the order the queue hands them out: those
    collected at most max_policy_lag iterations ago are kept, older ones
    dropped; a wait that stalls recovers (`_recover`) and goes on."""
    train_step = self.learner.train_step_numpy
    items = []
    last_fresh = time.monotonic()
    while len(items) < self._ppo.items_per_iteration:
      taken = self._next_item()
      now = time.monotonic()
      if taken is not None:
        packed, version = taken
        lag = policy_lag(version, train_step, self.train_steps_per_iteration)
        if 0 <= lag <= self._ppo.max_policy_lag:
          items.append(packed)
          if self._count_next_wait:
            self._longest_wait_s = max(self._longest_wait_s, now - last_fresh)
          self._count_next_wait = True
          last_fresh = now
        else:
          self.stale_items_dropped += 1
      stall_s = max(self._ppo.stall_s, 3 * self._longest_wait_s)
      if now - last_fresh >= stall_s:
        self._recover(self._ppo.items_per_iteration - len(items))
        self._count_next_wait = False
        last_fresh = time.monotonic()
    return items

  def _recover(self, missing_items: int) -> None:
    """Pushes the weights again if the server holds others, and requests
    the missing rounds again if no request is left untaken."""
    try:
      self._weights.push_if_replaced()
      if self._requests and self._requests.untaken() == 0:
        rounds = -(-missing_items // self._envs_per_actor)
        logging.warning('No fresh item for a while, %d missing, and every '
                        'request taken (lost with an actor or the server?): '
                        'requesting %d rounds again', missing_items, rounds)
        self._requests.issue(rounds, self.learner.train_step_numpy)
        self.rounds_requested_again += rounds
    except InterruptedError:
      raise TrainingStopped() from None

  def _next_item(self) -> Optional[Tuple[np.ndarray, int]]:
    """(packed steps [sequence_length, step_bytes], policy version) of the
    next item, or None when the queue stayed empty for a slice."""
    try:
      data = self._reader.take()
    except InterruptedError:
      raise TrainingStopped() from None
    if data is None:
      return None
    return data[STEP_COLUMN].numpy(), int(data[VERSION_COLUMN].numpy())

  def _prepare_steps(self, packed: tf.Tensor):
    """Packed items [items, length, bytes] -> single steps [steps, 1, ...]
    with their returns and advantages, after a normalizer update."""
    trajectory = self._layout.unpack(packed)
    self._agent.update_observation_normalizer(trajectory.observation)
    self._agent.update_reward_normalizer(trajectory.reward)
    trajectory = self._agent.preprocess_sequence(trajectory)
    return tf.nest.map_structure(
        lambda t: tf.reshape(t, [-1, 1, *t.shape[2:]]), trajectory)


def make_ppo_training(parts: LearnerParts) -> PPOTraining:
  config = parts.config
  reader = QueueReader(parts.address, REPLAY_TABLE,
                       parts.specs.replay_layout.signature, parts.should_stop)
  requests = None
  if ppo_builder.rounds_per_iteration(config):
    requests = CollectRequests(parts.address, parts.should_stop)
  return PPOTraining(config, parts.agent, parts.make_learner(), reader,
                     parts.specs.replay_layout, parts.weights, requests)
