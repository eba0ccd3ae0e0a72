"""Reads a running job's progress from Reverb and the eval results.

Importing it does not import TensorFlow (Reverb's client does): the launcher
and report.plot read the results file without paying for it.
"""
import collections
import dataclasses
import time
from typing import Deque, Optional, Sequence, Tuple, TYPE_CHECKING

from common.config import REPLAY_TABLE
from common.config import STEP_COLUMN
from common.config import VERSION_COLUMN

if TYPE_CHECKING:
  import reverb  # pylint: disable=g-bad-import-order


@dataclasses.dataclass(frozen=True)
class Snapshot:
  """One look at the job: counters from the server, the last eval result."""
  time: float
  train_step: Optional[int]
  inserts: int
  replay_size: int
  replay_capacity: int
  eval_step: Optional[int]
  eval_return: Optional[float]
  steps_per_insert: int = 1  # On-policy items are sequences, back to back.

  @property
  def env_steps(self) -> int:
    return self.inserts * self.steps_per_insert


def take_snapshot(client: 'reverb.Client',
                  eval_rows: Sequence[dict] = ()) -> Snapshot:
  """Server counters, and the last of the eval results' rows
  (run_dir.read_eval_returns) when given."""
  from common import tables  # pylint: disable=g-import-not-at-top
  table = client.server_info(timeout=5)[REPLAY_TABLE]
  last = eval_rows[-1] if eval_rows else None
  signature = table.signature or {}
  return Snapshot(
      time=time.monotonic(),
      train_step=tables.learner_train_step(client),
      inserts=table.rate_limiter_info.insert_stats.completed,
      replay_size=table.current_size,
      replay_capacity=table.max_size,
      eval_step=int(last['train_step']) if last else None,
      eval_return=float(last['average_return']) if last else None,
      steps_per_insert=(signature[STEP_COLUMN].shape[0]
                        if VERSION_COLUMN in signature else 1))


class StepRate:
  """Train steps per second over the last `window_s`: what an ETA uses.

  A train_step that goes back (a learner restored an older checkpoint)
  starts the window again.
  """

  def __init__(self, window_s: float = 60.0):
    self._window_s = window_s
    self._points: Deque[Tuple[float, int]] = collections.deque()

  def add(self, time_s: float, train_step: Optional[int]) -> None:
    if train_step is None:
      return
    if self._points and train_step < self._points[-1][1]:
      self._points.clear()
    self._points.append((time_s, train_step))
    while (len(self._points) > 2 and
           time_s - self._points[1][0] >= self._window_s):
      self._points.popleft()

  def eta_s(self, target_step: int) -> Optional[float]:
    """Seconds until `target_step` at the recent rate; None: no rate yet."""
    if len(self._points) < 2:
      return None
    (t0, s0), (t1, s1) = self._points[0], self._points[-1]
    if s1 <= s0 or t1 <= t0:
      return None
    return max(target_step - s1, 0) / ((s1 - s0) / (t1 - t0))


def format_duration(seconds: Optional[float]) -> str:
  """1h02m, 3m05s, 42s; '-' for None."""
  if seconds is None:
    return '-'
  seconds = int(round(seconds))
  if seconds >= 3600:
    return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'
  if seconds >= 60:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds}s'


def progress_line(start: float, previous: Optional[Snapshot], now: Snapshot,
                  eta_s: Optional[float] = None,
                  restarts: Optional[int] = None) -> str:
  """One line: train step and env steps with their rates, last eval; the
  ETA and the restarts so far when given."""
  train_rate = env_rate = 0.0
  if previous is not None and now.time > previous.time:
    seconds = now.time - previous.time
    train_rate = ((now.train_step or 0) - (previous.train_step or 0)) / seconds
    env_rate = (now.env_steps - previous.env_steps) / seconds
  evaluation = ('eval return -' if now.eval_return is None else
                f'eval return {now.eval_return:.1f} @ {now.eval_step}')
  train_step = '-' if now.train_step is None else now.train_step
  line = (f'[{now.time - start:6.0f}s] train_step {train_step} '
          f'({train_rate:.1f}/s) | env steps {now.env_steps} ({env_rate:.1f}/s) '
          f'| replay {now.replay_size}/{now.replay_capacity} | {evaluation}')
  if restarts is not None:
    line += f' | ETA {format_duration(eta_s)} | restarts {restarts}'
  return line
