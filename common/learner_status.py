"""The learner's milestones in Reverb, beside its weights: one item, the
latest record of each event (common/records.py), as JSON. Every process on
every host that reaches the server can read it; the records file is the
local run's copy.

A thread sends the status, so the learner never waits on the server for it:
while the server is away, the newest status waits and goes out once it is
back (a server restored from a checkpoint gets it at the next record).
"""
import json
import threading
from typing import Any, Dict, Optional

from absl import logging
import reverb
import tensorflow as tf

from common.reverb_calls import SERVER_AWAY_ERRORS

STATUS_TABLE = 'learner_status'
STATUS_SIGNATURE = tf.TensorSpec([], tf.string)  # JSON.


class StatusPublisher:
  """`publish(event, values)` (a records.RecordWriter sink) keeps the latest
  values of each event and has a thread send them all."""

  def __init__(self, address: str):
    self._client = reverb.Client(address)
    self._status: Dict[str, Dict[str, Any]] = {}
    self._published = 0  # Updates so far,
    self._sent = 0  # and how many of them the server has.
    self._lock = threading.Condition()
    threading.Thread(target=self._send_forever, daemon=True,
                     name='status-publisher').start()

  def publish(self, event: str, values: Dict[str, Any]) -> None:
    with self._lock:
      self._status[event] = values
      self._published += 1
      self._lock.notify_all()

  def flush(self, timeout_s: float) -> bool:
    """Waits until the server has the latest status; whether it has."""
    with self._lock:
      return self._lock.wait_for(lambda: self._sent == self._published,
                                 timeout=timeout_s)

  def _send_forever(self) -> None:
    while True:
      with self._lock:
        self._lock.wait_for(lambda: self._sent < self._published)
        status, published = json.dumps(self._status), self._published
      try:
        self._client.insert(tf.constant(status), {STATUS_TABLE: 1.0})
      except (*SERVER_AWAY_ERRORS, reverb.errors.ReverbError) as e:
        logging.log_every_n_seconds(
            logging.WARNING, 'The learner status did not reach the server '
            '(%s); it goes with the next record', 60, str(e).splitlines()[0])
      with self._lock:
        self._sent = published
        self._lock.notify_all()


def read_status(client: reverb.Client) -> Optional[Dict[str, Dict[str, Any]]]:
  """The learner's latest record of each event, by event; None before its
  first."""
  if client.server_info()[STATUS_TABLE].current_size == 0:
    return None
  sample = next(client.sample(STATUS_TABLE, num_samples=1,
                              emit_timesteps=False))
  return json.loads(tf.nest.flatten(sample.data)[0].item().decode())
