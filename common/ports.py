"""TCP ports: whether something listens on one, and a free one.

Imports no TensorFlow: the launcher uses it before training runs.
"""
import socket


def listening(host: str, port: int, timeout_s: float = 1.0) -> bool:
  """Whether `host:port` takes TCP connections."""
  try:
    with socket.create_connection((host.strip('[]'), port), timeout=timeout_s):
      return True
  except OSError:
    return False


def free_port() -> int:
  """A port nothing listens on now, on every interface (as Reverb binds)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('', 0))
    return s.getsockname()[1]
