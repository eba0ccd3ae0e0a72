"""Writes collected steps to the replay table with bounded, interruptible waits.

Items are the layout's sequence_length consecutive steps of one episode,
stride 1: with length 2, the same items as TF-Agents'
ReverbAddTrajectoryObserver (every pair of consecutive steps), in the packed
layout. Longer items (n-step returns) that would run past an episode's end
are padded with copies of its last step (step_type LAST), so every
transition of the episode starts an item and no item holds two episodes.
That last step and its copies carry discount 1/gamma: the n-step target
multiplies gamma * discount over the item's steps, so they add no
discounting, and an episode cut by a time limit bootstraps with
gamma ** (transitions left) (a terminal step's discount 0 still ends it).
The writer never runs more than
`max_in_flight_items` per env ahead of the server, and every wait on the
server (the rate limiter holding an insert) wakes up twice a second to
check whether the actor should stop, and logs when it has waited long. A
stop request ends collection at the next step.
"""
import collections
from typing import Callable

from absl import logging
import numpy as np
import reverb
from tf_agents.trajectories import time_step as ts

from common import reverb_calls
from common import tables
from common.config import REPLAY_TABLE
from common.replay_layout import ReplayLayout
from common.replay_layout import STEP_COLUMN

class StopCollection(Exception):
  """Raised from inside a write when the actor was asked to stop.

  `server_blocked` tells whether the server was holding back this actor's
  items (then waiting for them on the way out is pointless).
  """

  def __init__(self, server_blocked: bool):
    super().__init__('collection stopped')
    self.server_blocked = server_blocked


class ReplayWriter:
  """A trajectory observer for `num_envs` environments.

  With num_envs > 1 the trajectories are batched (a BatchedPyEnvironment).
  Each step is packed into one byte vector (common/replay_layout.py), and one
  Reverb writer holds a column per env: per batched step there is one pack,
  one append and one flush, and each env's item comes from its own column,
  so items never mix steps of different envs and each env's episodes end on
  their own.
  """

  def __init__(self, client: reverb.Client, layout: ReplayLayout,
               should_stop: Callable[[], bool], num_envs: int = 1,
               max_in_flight_items: int = 8, log_wait_after_s: float = 30.0,
               priority: float = 1.0, gamma: float = 1.0):
    self._length = layout.sequence_length
    # (gamma 0: the target is the first reward alone, whatever this is.)
    self._last_step_discount = np.float32(1.0 / gamma if gamma else 1.0)
    # Padding appends up to length - 2 steps to one env's column only.
    self._writer = client.trajectory_writer(
        num_keep_alive_refs=2 * self._length, validate_items=False)
    self._layout = layout
    self._num_envs = num_envs
    self._priority = priority
    self._columns = None  # Each env's column history, from the first step.
    # Per env: the writer's step indices of its current episode's last steps.
    self._episode = [collections.deque(maxlen=self._length)
                     for _ in range(num_envs)]
    self._client = client
    self._should_stop = should_stop
    self._max_pending_items = max_in_flight_items * num_envs
    self._log_wait_after_s = log_wait_after_s
    self.items_written = 0

  def __call__(self, trajectory) -> None:
    if self._should_stop():
      raise StopCollection(server_blocked=False)
    last = trajectory.step_type == ts.StepType.LAST
    if self._length > 2 and np.any(last):  # Padded items: see the docstring.
      trajectory = trajectory._replace(discount=np.where(
          last, self._last_step_discount, trajectory.discount).astype(
              np.float32))
    packed = self._layout.pack(trajectory)
    packed = list(packed) if self._num_envs > 1 else [packed]
    self._writer.append(packed)
    if self._columns is None:
      self._columns = self._writer.history
    for env in range(self._num_envs):
      self._add_step(env)
    # Items never span episodes: after the LAST -> FIRST step that closes an
    # env's episode, its next item starts with the next episode's first step.
    # (Reverb's end_episode would wait for the server here.)
    for env in np.flatnonzero(np.reshape(last, -1)):
      for _ in range(self._length - 2):
        self._writer.append([packed[env] if i == env else None
                             for i in range(self._num_envs)])
        self._add_step(env)
      self._episode[env].clear()
    self._wait(self._max_pending_items)

  def _add_step(self, env: int) -> None:
    """Notes the step just appended to env's column; an item once the env's
    episode has a full sequence."""
    episode = self._episode[env]
    episode.append(len(self._columns[env]) - 1)
    if len(episode) == self._length:
      self._writer.create_item(
          REPLAY_TABLE, priority=self._priority,
          trajectory={STEP_COLUMN: self._columns[env][list(episode)]})
      self.items_written += 1

  def end_episode(self) -> None:
    """Waits until every item is on the server; the next steps start afresh."""
    self._wait(0)
    self._writer.end_episode(clear_buffers=True)
    for episode in self._episode:
      episode.clear()

  def close(self, flush_timeout_s: float) -> None:
    """Sends what is pending (waiting at most `flush_timeout_s`), then closes."""
    try:
      if flush_timeout_s > 0:
        self._writer.flush(timeout_ms=int(flush_timeout_s * 1000))
    except reverb.errors.DeadlineExceededError:
      logging.warning('Closing with items the server did not take within '
                      '%.0fs (rate limited): they are dropped', flush_timeout_s)
    self._writer.close()

  def _wait(self, max_pending: int) -> None:
    wait = reverb_calls.LongWait(self._log_wait_after_s, lambda waited: (
        logging.info('Inserts have waited %.0fs for the server (rate '
                     'limited, or the server is away): %s', waited,
                     tables.describe_replay(self._client))))
    while True:
      try:
        self._writer.flush(block_until_num_items=max_pending,
                           timeout_ms=reverb_calls.WAIT_SLICE_MS)
        return
      except reverb.errors.DeadlineExceededError:
        if self._should_stop():
          raise StopCollection(server_blocked=True) from None
        wait.tick()
