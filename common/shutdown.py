"""Graceful stop on SIGTERM / SIGINT / SIGHUP, even while the main thread is
blocked.

A Python signal handler only runs when the main thread returns to the
interpreter, which never happens while it is blocked inside Reverb or
TensorFlow (a rate-limited insert, a sample from an empty table). So the main
module blocks the signals before anything starts threads, and a watcher
thread receives them with sigwait, sets an event the main loop checks, and
forces the exit if the main thread has not finished after a grace period.
"""
import ctypes
import os
import signal
import sys
import threading
from typing import Callable, Optional

# SIGHUP is also what a child of the launcher gets when the launcher dies
# (stop_with_parent). Only a second SIGTERM or SIGINT forces the exit: Linux
# sends the parent-death signal again for each thread of the dying parent.
_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def block_signals() -> None:
  """Call first thing in a main module, before TF or Reverb start threads."""
  signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)


def stop_with_parent() -> Callable[[], None]:
  """A Popen `preexec_fn`: the child gets SIGHUP when this process dies,
  however it dies (kill -9 included), and starts with the stop signals
  unblocked (a blocked signal mask is inherited across exec).

  Call it in the thread that starts the child and lives as long as this
  process (the main thread): Linux sends the signal when that thread ends.
  """
  parent = os.getpid()
  prctl = (ctypes.CDLL(None, use_errno=True).prctl
           if sys.platform.startswith('linux') else None)

  def preexec() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
    if prctl is not None:
      prctl(_PR_SET_PDEATHSIG, signal.SIGHUP)
    if os.getppid() != parent:  # The parent died before the prctl.
      os.kill(os.getpid(), signal.SIGHUP)
  return preexec


class Shutdown:
  """Set when the process should stop; forces the exit after `grace_s`."""

  def __init__(self, grace_s: float = 20.0):
    self._event = threading.Event()
    self._grace_s = grace_s
    self._reason = ''
    self._signal: Optional[int] = None
    threading.Thread(target=self._wait_for_signal, daemon=True,
                     name='shutdown-signals').start()

  @property
  def requested(self) -> bool:
    return self._event.is_set()

  @property
  def reason(self) -> str:
    return self._reason

  @property
  def signal_number(self) -> Optional[int]:
    """The signal that asked for the stop; None if none did."""
    return self._signal

  def request(self, reason: str, grace_s: Optional[float] = None) -> None:
    """Asks the main loop to stop; exits anyway after the grace period."""
    if self._event.is_set():
      return
    self._reason = reason
    self._event.set()
    grace_s = self._grace_s if grace_s is None else grace_s
    _log(f'Stopping: {reason} (forced exit in {grace_s:.0f}s)')
    timer = threading.Timer(grace_s, self._force_exit, (0, grace_s))
    timer.daemon = True
    timer.start()

  def wait(self, timeout_s: float) -> bool:
    """Sleeps up to `timeout_s`; True if a stop was requested."""
    return self._event.wait(timeout_s)

  def watch(self, is_done: Callable[[], Optional[str]], every_s: float = 2.0,
            grace_s: Optional[float] = None) -> None:
    """Polls `is_done` in a thread; requests a stop when it returns a reason."""
    def poll():
      while not self._event.wait(every_s):
        try:
          reason = is_done()
        except Exception as e:  # pylint: disable=broad-except
          _log(f'Shutdown watch failed once: {e}')
          continue
        if reason:
          self.request(reason, grace_s)
    threading.Thread(target=poll, daemon=True, name='shutdown-watch').start()

  def _wait_for_signal(self):
    received = signal.sigwait(_SIGNALS)
    if not self._event.is_set():
      self._signal = received
    self.request(f'received {signal.Signals(received).name}')
    while signal.sigwait(_SIGNALS) == signal.SIGHUP:
      pass  # The same stop again: a dying parent sends it once per thread.
    self._reason = 'a second signal'
    self._force_exit(1, 0)

  def _force_exit(self, exit_code: int, after_s: float):
    _log(f'Still running {after_s:.0f}s after "{self._reason}": '
         f'exiting now (exit code {exit_code})')
    sys.stderr.flush()
    os._exit(exit_code)  # pylint: disable=protected-access


def _log(message: str) -> None:
  # absl logging takes locks the blocked main thread may hold; write directly.
  sys.stderr.write(f'[shutdown] {message}\n')
  sys.stderr.flush()
