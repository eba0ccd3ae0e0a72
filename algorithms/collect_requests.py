"""Synchronous PPO's collect requests: the learner asks for exactly the
actor rounds an iteration needs, and actors collect only what was asked.

Without them actors collect while the learner trains, and with
--max_policy_lag=0 all of that is stale by the time the learner reads it.
So the learner pushes its weights, then puts one request per round into a
queue table (requests_table below); before each round (one sequence of each
of its envs) an actor takes one request, waiting for it, and pulls the
weights. Every round is then collected with the weights of the iteration
that asked for it, and none is collected that no iteration trains on.

A request lost with an actor that died mid-round, or with a server restart,
is issued again by the learner when the iteration has stalled
(algorithms/ppo_training.py).
"""
from typing import Callable

from absl import logging
import numpy as np
import reverb
import tensorflow as tf

from common.queue_reader import QueueReader
from common.reverb_calls import LongWait
from common.reverb_calls import StoppableCalls
from common.reverb_calls import retry_call

# Each request holds the weights version it asks for.
REQUESTS_TABLE = 'collect_requests'
REQUEST_SIGNATURE = tf.TensorSpec([], tf.int64)


def requests_table(rounds_per_iteration: int) -> reverb.Table:
  """A queue of at most one iteration's rounds, each taken by one actor."""
  return reverb.Table.queue(REQUESTS_TABLE, max_size=rounds_per_iteration,
                            signature=REQUEST_SIGNATURE)


class CollectRequests:
  """Issues (the learner) and takes (actors) the requests at `address`;
  waits on the server end once `should_stop()`."""

  def __init__(self, address: str, should_stop: Callable[[], bool],
               log_wait_every_s: float = 30.0):
    self._address = address
    self._client = reverb.Client(address)
    self._calls = StoppableCalls(should_stop)
    self._log_wait_every_s = log_wait_every_s
    self._reader = None  # An actor's, made at its first take.

  def issue(self, rounds: int, version: int) -> bool:
    """Replaces the requests left by `rounds` new ones for weights
    `version` (already pushed); whether they were issued."""

    def replace():
      self._client.reset(REQUESTS_TABLE)
      with self._client.trajectory_writer(num_keep_alive_refs=1) as writer:
        writer.append(np.int64(version))
        for _ in range(rounds):
          writer.create_item(REQUESTS_TABLE, 1.0, writer.history[-1])

    return retry_call(self._calls, replace, 'Requesting rounds')

  def untaken(self) -> int:
    """Requests no actor has taken yet. Raises InterruptedError once
    stopped while the server does not answer."""
    return self._calls.call(
        lambda: self._client.server_info()[REQUESTS_TABLE].current_size)

  def take(self) -> int:
    """Waits for a request and takes it (no other actor gets it); the
    weights version it asks for. Raises InterruptedError once stopped."""
    if self._reader is None:
      self._reader = QueueReader(
          self._address, REQUESTS_TABLE, REQUEST_SIGNATURE,
          self._calls.should_stop, prefetch=False)
    wait = LongWait(self._log_wait_every_s, lambda waited: (
        logging.info('No collect request for %.0fs: the learner is '
                     'training, restarting or done', waited)))
    while True:
      version = self._reader.take()
      if version is not None:
        return int(version.numpy())
      wait.tick()
