"""Blocking Reverb calls a process can leave when it is asked to stop,
retried while the server is away, and waits that say how long they last."""
import concurrent.futures
import queue
import threading
import time
from typing import Any, Callable

from absl import logging
import reverb
import tensorflow as tf

# Waits on the server (a sample, an insert, a queue take) end this often to
# check for a stop request.
WAIT_SLICE_MS = 500

# What a client call raises when the server does not answer: a deadline, or
# a RuntimeError ("Socket closed") when the server goes away mid-call.
SERVER_AWAY_ERRORS = (reverb.errors.DeadlineExceededError, RuntimeError)


class LongWait:
  """Says how long a wait has lasted, every `every_s` seconds of it: call
  `tick()` in the wait's loop; `say(seconds)` logs."""

  def __init__(self, every_s: float, say: Callable[[float], None]):
    self._every_s = every_s
    self._say = say
    self._start = self._last = time.monotonic()

  def tick(self) -> None:
    now = time.monotonic()
    if now - self._last >= self._every_s:
      self._say(now - self._start)
      self._last = now


class StoppableCalls:
  """Runs blocking Reverb calls in one worker thread, so that the caller can
  leave a call the server will never answer when it is asked to stop.

  Reverb's clients wait for a server that went away until it comes back:
  right for a restart, but a process stopping together with its server (a
  launcher's Ctrl-C, docker compose down) would sit in a push or a pull
  until its forced exit. The worker is a daemon thread, so a call left
  behind never holds up the exit of the process (a thread pool's workers
  are joined at exit, which would wait for that call forever).
  """

  def __init__(self, should_stop: Callable[[], bool], poll_s: float = 0.5):
    self._calls = queue.SimpleQueue()
    threading.Thread(target=self._run, daemon=True,
                     name='reverb-call').start()
    self.should_stop = should_stop
    self._poll_s = poll_s

  def _run(self) -> None:
    while True:
      fn, future = self._calls.get()
      if not future.set_running_or_notify_cancel():
        continue
      try:
        future.set_result(fn())
      except Exception as e:  # pylint: disable=broad-except
        future.set_exception(e)

  def call(self, fn: Callable[[], Any]) -> Any:
    """fn(), or InterruptedError once a stop is requested while it runs."""
    future = concurrent.futures.Future()
    self._calls.put((fn, future))
    while True:
      try:
        return future.result(timeout=self._poll_s)
      except concurrent.futures.TimeoutError:
        if self.should_stop():
          future.cancel()
          raise InterruptedError(
              'stopped while the Reverb server did not answer') from None


def retry_call(calls: StoppableCalls, fn: Callable[[], Any],
               what: str) -> bool:
  """fn() through `calls`; whether it ran. A call the server cut off by
  going away (a restart) is retried every second until it answers again,
  or until a stop is requested."""
  last_log = None
  while True:
    try:
      calls.call(fn)
      return True
    except InterruptedError:
      return False
    except (tf.errors.OpError, reverb.errors.ReverbError, RuntimeError) as e:
      if calls.should_stop():
        return False
      if last_log is None or time.monotonic() - last_log >= 10:
        logging.warning('%s failed (%s); retrying until the server answers',
                        what, str(e).splitlines()[0])
        last_log = time.monotonic()
      time.sleep(1.0)
