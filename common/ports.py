"""TCP ports: whether something listens on one, and a free one.

Imports no TensorFlow: the launcher uses it before training runs.
"""
import socket
import time
from typing import Callable


def listening(host: str, port: int, timeout_s: float = 1.0) -> bool:
  """Whether `host:port` takes TCP connections."""
  try:
    with socket.create_connection((host.strip('[]'), port), timeout=timeout_s):
      return True
  except OSError:
    return False


def wait_until_listening(host: str, port: int, timeout_s: float,
                         poll_s: float = 0.1,
                         between_tries: Callable[[], None] = lambda: None
                         ) -> bool:
  """Waits until `host:port` takes TCP connections; False if it did not
  within `timeout_s`. `between_tries` runs after each refused try (it may
  raise, e.g. when the process that should listen has died)."""
  deadline = time.monotonic() + timeout_s
  while not listening(host, port):
    between_tries()
    if time.monotonic() >= deadline:
      return False
    time.sleep(poll_s)
  return True


def free_port() -> int:
  """A port nothing listens on now, on every interface (as Reverb binds)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('', 0))
    return s.getsockname()[1]
