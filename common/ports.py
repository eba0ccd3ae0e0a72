"""TCP ports: host:port addresses, whether something listens on one, and a
free one.

Imports no TensorFlow: the launcher uses it before training runs.
"""
import ipaddress
import re
import socket
import time
from typing import Callable, Tuple

from common.errors import UserError

_ADDRESS = re.compile(r'(?:\[(?P<ipv6>[^\]]*)\]|(?P<host>[^:\[\]]+)):'
                      r'(?P<port>[0-9]+)')
_HOST_NAME = re.compile(r'[A-Za-z0-9_.-]+')


class AddressError(UserError, ValueError):
  """--reverb_address is not host:port."""


def parse_address(address: str) -> Tuple[str, int]:
  """The host (a name, IPv4 or [IPv6], returned without brackets) and port
  of `address`, the --reverb_address host:port; else an AddressError."""
  def error(problem: str) -> AddressError:
    return AddressError(f'--reverb_address {address!r} {problem}')
  match = _ADDRESS.fullmatch(address)
  if not match:
    host, _, port = address.rpartition(':')
    raise error('is not host:port' + (
        f' (an IPv6 host goes in brackets: [{host}]:{port})'
        if _is_ip(ipaddress.IPv6Address, host) else ''))
  port = int(match['port'])
  if not 1 <= port <= 65535:
    raise error(f'has port {port}, not in 1..65535')
  if match['ipv6'] is not None:
    host = match['ipv6']
    if not _is_ip(ipaddress.IPv6Address, host):
      raise error(f'has host [{host}], not an IPv6 address')
    return host, port
  host = match['host']
  if re.fullmatch(r'[0-9.]+', host) and not _is_ip(ipaddress.IPv4Address,
                                                    host):
    raise error(f'has host {host!r}, not an IPv4 address')
  if not _HOST_NAME.fullmatch(host):
    raise error(f'has host {host!r}, not a host name or IP address')
  return host, port


def _is_ip(kind: type, host: str) -> bool:
  try:
    kind(host)
    return True
  except ValueError:
    return False


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
