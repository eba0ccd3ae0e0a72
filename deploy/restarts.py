"""When the launcher restarts a child that exited unexpectedly, as compose's
`restart: on-failure` does: after a backoff that doubles with each recent
restart, and never more than `max_restarts` times within `window_s`."""
import collections
import dataclasses
from typing import Deque, Optional

from common.settings import setting

RESTART_MODES = ('on-failure', 'no')


_WINDOW_S = 600.0


@dataclasses.dataclass(frozen=True)
class RestartPolicy:
  mode: str = setting(
      'on-failure', flag='restart', enum=RESTART_MODES,
      help='on-failure: restart a child that exits unexpectedly, after a '
      'backoff that doubles with each restart; no: stop everything when one '
      'does.')
  max_restarts: int = setting(
      5, lower_bound=0, help=f'Restarts of one child within {_WINDOW_S:.0f}s '
      f'before the launcher gives up.')
  window_s: float = _WINDOW_S
  first_backoff_s: float = 1.0
  max_backoff_s: float = 30.0

  def __post_init__(self):
    if self.mode not in RESTART_MODES:
      raise ValueError(f'restart mode must be one of {RESTART_MODES}, got '
                       f'{self.mode!r}')
    if self.max_restarts < 0:
      raise ValueError(f'max_restarts must be >= 0, got {self.max_restarts}')


@dataclasses.dataclass(frozen=True)
class Restart:
  """A decision to start the child again `backoff_s` after its exit."""
  backoff_s: float
  count: int  # Restarts within the window, this one included.


class RestartHistory:
  """One child's recent restarts, and the decision for its next exit."""

  def __init__(self, policy: RestartPolicy):
    self._policy = policy
    self._times: Deque[float] = collections.deque()
    self.total = 0

  def on_exit(self, now: float) -> Optional[Restart]:
    """The restart for an unexpected exit at `now`; None: give up."""
    while self._times and now - self._times[0] > self._policy.window_s:
      self._times.popleft()
    if (self._policy.mode == 'no' or
        len(self._times) >= self._policy.max_restarts):
      return None
    self._times.append(now)
    self.total += 1
    count = len(self._times)
    backoff_s = min(self._policy.first_backoff_s * 2 ** (count - 1),
                    self._policy.max_backoff_s)
    return Restart(backoff_s=backoff_s, count=count)
