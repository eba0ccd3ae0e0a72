"""What the launcher reads while it runs: the learner's milestones, the
Reverb server and the eval results."""
import time
from typing import Callable, List, Tuple

from common import ports
from common import progress
from common import quiet
from common import records
from common import run_dir
from deploy.graph import LaunchSettings


class LearnerMilestones:
  """The learner's milestones recorded since the launch (common/records.py):
  which it has reached, read as its records file grows."""

  def __init__(self, root_dir: str):
    self._reader = records.RecordReader(
        run_dir.records_path(root_dir, records.LEARNER))
    self._reached = set()

  def reached(self, event: str) -> bool:
    self._reached.update(record.event for record in self._reader.new())
    return event in self._reached


class StatusMilestones:
  """The learner's milestones from its status in Reverb
  (common/learner_status.py), for a launcher that cannot read the learner's
  records file: those recorded at or after `since` (epoch seconds; a
  restored server holds an earlier launch's)."""

  def __init__(self, server: 'ServerView', since: float):
    self._server = server
    self._since = since
    self._reached = set()

  def reached(self, event: str) -> bool:
    if event not in self._reached:
      from common.learner_status import read_status  # pylint: disable=g-import-not-at-top
      status = self._server.read(read_status) or {}
      self._reached.update(name for name, values in status.items()
                           if values['time'] >= self._since)
    return event in self._reached


class ServerView:
  """The launcher's Reverb client, made on first use: importing Reverb
  imports TensorFlow, which the launcher puts off until training runs.
  `address()` is the server's (host, port), which may move on a restart."""

  def __init__(self, address: Callable[[], Tuple[str, int]]):
    self.address = address
    self._client = None
    self._client_address = None

  def client(self):
    """The client of the server's current address."""
    if self._client is None or self._client_address != self.address():
      quiet.import_tensorflow()  # Reverb imports it.
      import reverb  # pylint: disable=g-import-not-at-top
      self._client_address = self.address()
      self._client = reverb.Client('%s:%d' % self._client_address)
    return self._client

  def answers(self) -> bool:
    """Whether the server's port takes connections (no Reverb call: a call
    to a server that is away would block for its timeout)."""
    host, port = self.address()
    return host is not None and ports.listening(host, port)

  def read(self, read_fn: Callable, default=None):
    """`read_fn(client)`, or `default` while the server is away (restarting)."""
    if not self.answers():
      return default
    try:
      return read_fn(self.client())
    except Exception:  # pylint: disable=broad-except
      return default  # It went away during the call.


class ProgressLines:
  """The launcher's progress line, every `progress_every_s`: rates since the
  last line, the ETA at the last minute's rate, the restarts so far."""

  def __init__(self, start: float, settings: LaunchSettings,
               eval_rows: Callable[[], List[dict]]):
    self._start = start
    self._settings = settings
    self._eval_rows = eval_rows
    self._previous = None
    self._rate = progress.StepRate()
    self._next = start + settings.progress_every_s

  def start(self, server: ServerView) -> None:
    """Takes the first look, which the first line's rates are measured
    from, and prints the first line one interval later."""
    self._previous = self._snapshot(server)
    self._next = time.monotonic() + self._settings.progress_every_s

  def print_when_due(self, server: ServerView, restarts: int) -> None:
    now = time.monotonic()
    if now < self._next:
      return
    while self._next <= now:
      self._next += self._settings.progress_every_s
    snapshot = self._snapshot(server)
    if snapshot is None:
      return  # The server is restarting.
    print(progress.progress_line(
        self._start, self._previous, snapshot,
        eta_s=self._rate.eta_s(self._settings.max_train_steps),
        restarts=restarts), flush=True)
    self._previous = snapshot

  def _snapshot(self, server: ServerView):
    snapshot = server.read(
        lambda client: progress.take_snapshot(client, self._eval_rows()))
    if snapshot is not None:
      self._rate.add(snapshot.time, snapshot.train_step)
    return snapshot


def reached_return(eval_rows: List[dict], target: float,
                   start: float) -> bool:
  """Whether an evaluation reached `target` (said once it has)."""
  for row in eval_rows:
    if float(row['average_return']) >= target:
      print(f'Eval return {float(row["average_return"]):.1f} >= {target} at '
            f'train step {row["train_step"]}, {time.monotonic() - start:.0f}s '
            f'after launch: stopping', flush=True)
      return True
  return False
