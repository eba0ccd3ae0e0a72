"""PPO's collection: the queue and request tables, the writer that cuts
each env's steps into versioned sequences, and the actor's rounds (one
sequence of each env, on request when synchronous)."""
import time
from typing import Callable, List, Optional

from absl import logging
import numpy as np
import reverb
import tensorflow as tf
from tf_agents.trajectories import trajectory

from actor.replay_writer import ReplayWriter
from actor.replay_writer import StopCollection
from algorithms import ppo as ppo_builder
from algorithms.base import CollectParts
from algorithms.collect_requests import CollectRequests
from algorithms.collect_requests import requests_table
from common import reverb_calls
from common import tables as tables_lib
from common.config import ExperimentConfig
from common.config import REPLAY_TABLE
from common.replay_layout import ReplayLayout
from common.replay_layout import STEP_COLUMN
from common.replay_layout import VERSION_COLUMN
from common.specs import ExperimentSpecs


def tables(config: ExperimentConfig,
           specs: ExperimentSpecs) -> List[reverb.Table]:
  """A queue of one iteration's items (each taken once, in order; actors
  wait while it is full) and, synchronous, the collect requests."""
  served = [reverb.Table.queue(REPLAY_TABLE,
                               max_size=config.ppo.items_per_iteration,
                               signature=specs.replay_signature)]
  rounds = ppo_builder.rounds_per_iteration(config)
  if rounds:
    served.append(requests_table(rounds))
  return served


class PPOCollector:
  """Rounds of one sequence of each env. Synchronous PPO takes one of the
  learner's requests before each round; otherwise a round waits until the
  queue has room for it."""

  def __init__(self, parts: CollectParts):
    self._writer = parts.writer
    self._rounds = SequenceRounds(parts.env, parts.policy,
                                  [parts.writer, parts.stats],
                                  parts.config.ppo.sequence_length,
                                  parts.summary_dir)
    self.summary_writer = self._rounds.summary_writer
    self._requests = None
    if ppo_builder.rounds_per_iteration(parts.config):
      self._requests = CollectRequests(parts.address, parts.should_stop)

  def warm_up(self) -> None:
    pass  # PPO learns from its own policy's steps only.

  def wait_for_round(self) -> None:
    if self._requests:
      self._requests.take()
    else:
      self._writer.wait_for_room()

  def run_round(self) -> None:
    self._rounds.run()


class SequenceRounds:
  """PPO's collection: each run() steps every env exactly `steps` times,
  one sequence of each, so that the actor pulls weights between sequences.

  (TF-Agents' driver counts steps without the LAST -> FIRST ones between
  episodes, so its runs drift off the sequences, and a sequence would be
  collected with two versions of the weights.)
  """

  def __init__(self, env, policy, observers, steps: int,
               summary_dir: Optional[str]):
    self._env = env
    self._policy = policy
    self._observers = observers
    self._steps = steps
    self._time_step = env.reset()
    self.summary_writer = (
        tf.summary.create_file_writer(summary_dir, flush_millis=10000)
        if summary_dir else tf.summary.create_noop_writer())

  def run(self) -> None:
    time_step = self._time_step
    for _ in range(self._steps):
      action_step = self._policy.action(time_step)
      next_time_step = self._env.step(action_step.action)
      step = trajectory.from_transition(time_step, action_step, next_time_step)
      for observer in self._observers:
        observer(step)
      time_step = next_time_step
    self._time_step = time_step


class SequenceWriter(ReplayWriter):
  """On-policy items (PPO): each env's steps cut into back-to-back
  sequences of the layout's length (episodes may end and start inside one),
  each with the version of the weights that collected it.

  The actor pulls weights only between sequences, so a sequence is one
  policy's; the version recorded is its first step's. After each sequence
  the writer waits until the queue has taken it. Synchronous PPO's actors
  collect only the rounds the learner requested; otherwise `wait_for_room`
  holds the next sequence back until the queue has room for it, so that an
  actor does not hold collected steps the queue cannot take yet.
  """

  def __init__(self, client: reverb.Client, layout: ReplayLayout,
               should_stop: Callable[[], bool],
               policy_version: Callable[[], int], num_envs: int = 1,
               log_wait_after_s: float = 30.0):
    super().__init__(client, layout, should_stop, num_envs,
                     log_wait_after_s=log_wait_after_s)
    self._policy_version = policy_version
    self._version = None  # The current sequence's.
    self._steps = 0

  def wait_for_room(self, poll_s: float = 0.02) -> None:
    """Until the queue has room for one sequence of every env."""
    wait = reverb_calls.LongWait(self._log_wait_after_s, lambda waited: (
        logging.info('The queue has been full for %.0fs (is the learner '
                     'training?): %s', waited,
                     tables_lib.describe_replay(self._client))))
    while True:
      try:
        table = self._client.server_info(timeout=2)[REPLAY_TABLE]
        if table.current_size + self._num_envs <= table.max_size:
          return
      except reverb_calls.SERVER_AWAY_ERRORS:
        pass  # The server watch logs it; wait for it here.
      if self._should_stop():
        raise StopCollection(server_blocked=True)
      wait.tick()
      time.sleep(poll_s)

  def __call__(self, trajectory) -> None:
    if self._should_stop():
      raise StopCollection(server_blocked=False)
    packed = self._layout.pack(trajectory)
    packed = list(packed) if self._num_envs > 1 else [packed]
    if self._steps % self._length == 0:  # Weights change between sequences.
      self._version = np.int64(self._policy_version())
    self._writer.append(packed + [self._version])
    self._steps += 1
    if self._steps % self._length:
      return
    columns = self._writer.history
    version = columns[self._num_envs][-self._length]
    for env in range(self._num_envs):
      self._writer.create_item(
          REPLAY_TABLE, priority=1.0,
          trajectory={STEP_COLUMN: columns[env][-self._length:],
                      VERSION_COLUMN: version})
      self.items_written += 1
    self._wait(0)
