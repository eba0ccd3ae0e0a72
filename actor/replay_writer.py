"""Writes collected steps to the replay table with bounded, interruptible waits.

It writes the same items as TF-Agents' ReverbAddTrajectoryObserver with
sequence_length 2 and stride 1 (every pair of consecutive steps of an
episode), but it never runs more than `max_in_flight_items` ahead of the
server, and every wait on the server (the rate limiter holding an insert)
wakes up twice a second to check whether the actor should stop, and logs
when it has waited long. A stop request ends collection at the next step.
"""
import dataclasses
import time
from typing import Callable

from absl import logging
import numpy as np
import reverb
from tf_agents.trajectories import time_step as ts
import tree

from common import reverb_io
from common.config import REPLAY_TABLE
from common.config import SEQUENCE_LENGTH

_WAIT_SLICE_MS = 500


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

  With num_envs > 1 the trajectories are batched (a BatchedPyEnvironment);
  each env gets its own Reverb trajectory writer, so items never mix steps
  of different envs and each env's episodes end on their own.
  """

  def __init__(self, client: reverb.Client, should_stop: Callable[[], bool],
               num_envs: int = 1, max_in_flight_items: int = 8,
               log_wait_after_s: float = 30.0):
    self._streams = [_EnvStream(client.trajectory_writer(
        num_keep_alive_refs=SEQUENCE_LENGTH + 1, validate_items=False))
                     for _ in range(num_envs)]
    self._client = client
    self._should_stop = should_stop
    self._max_in_flight_items = max_in_flight_items
    self._log_wait_after_s = log_wait_after_s

  @property
  def items_written(self) -> int:
    return sum(stream.items_written for stream in self._streams)

  def __call__(self, trajectory) -> None:
    if self._should_stop():
      raise StopCollection(server_blocked=False)
    # The LAST -> FIRST step that closes an episode, per env.
    boundaries = np.reshape(trajectory.step_type == ts.StepType.LAST, -1)
    if len(self._streams) == 1:
      self._write(self._streams[0], trajectory, boundaries[0])
      return
    for index, stream in enumerate(self._streams):
      self._write(stream, tree.map_structure(lambda x: x[index], trajectory),
                  boundaries[index])

  def end_episode(self) -> None:
    """Waits until every item is on the server; the next steps start afresh."""
    for stream in self._streams:
      self._end_episode(stream)

  def close(self, flush_timeout_s: float) -> None:
    """Sends what is pending (waiting at most `flush_timeout_s`), then closes."""
    try:
      if flush_timeout_s > 0:
        for stream in self._streams:
          stream.writer.flush(timeout_ms=int(flush_timeout_s * 1000))
    except reverb.errors.DeadlineExceededError:
      logging.warning('Closing with items the server did not take within '
                      '%.0fs (rate limited): they are dropped', flush_timeout_s)
    for stream in self._streams:
      stream.writer.close()

  def _write(self, stream, trajectory, is_boundary: bool) -> None:
    stream.writer.append(trajectory)
    stream.episode_steps += 1
    if stream.episode_steps >= SEQUENCE_LENGTH:
      item = tree.map_structure(lambda column: column[-SEQUENCE_LENGTH:],
                                stream.writer.history)
      stream.writer.create_item(REPLAY_TABLE, priority=1.0, trajectory=item)
      stream.items_written += 1
    self._wait(stream, self._max_in_flight_items)
    if is_boundary:
      # Items never span episodes: the next one is the next episode's first
      # two steps. (Reverb's end_episode would wait for the server here.)
      stream.episode_steps = 0

  def _end_episode(self, stream) -> None:
    self._wait(stream, 0)
    stream.writer.end_episode(clear_buffers=True)
    stream.episode_steps = 0

  def _wait(self, stream, max_pending: int) -> None:
    start = last_log = time.monotonic()
    while True:
      try:
        stream.writer.flush(block_until_num_items=max_pending,
                            timeout_ms=_WAIT_SLICE_MS)
        return
      except reverb.errors.DeadlineExceededError:
        if self._should_stop():
          raise StopCollection(server_blocked=True) from None
        now = time.monotonic()
        if now - last_log >= self._log_wait_after_s:
          logging.info('Inserts have waited %.0fs for the server (rate '
                       'limited, or the server is away): %s', now - start,
                       reverb_io.describe_replay(self._client))
          last_log = now


@dataclasses.dataclass
class _EnvStream:
  """One env's Reverb writer and where its episode stands."""
  writer: reverb.TrajectoryWriter
  episode_steps: int = 0
  items_written: int = 0
