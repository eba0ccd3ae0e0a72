"""What a process tells other programs: its milestones and progress as
records, one JSON object a line, under the run dir (records/<process>.jsonl).

Logs are for people; the launcher, the benchmarks and the tests read these.
A record is {"event": ..., "time": <epoch seconds>, ...values}. Appends of
one short line are atomic, so a reader sees whole records only (a line being
written is left for the next read). Imports nothing heavy.
"""
import dataclasses
import json
import os
import time
from typing import Any, Callable, Dict, List, Optional

from common import run_dir

# The learner's (learner/train.py).
WEIGHTS_PUSHED = 'weights_pushed'  # Weights version `train_step` is served.
FIRST_TRAIN_STEP = 'first_train_step'  # It trained (and pushed) once.
PROGRESS = 'progress'  # Rates and counters at `train_step`.
FINISHED = 'finished'  # It stopped at `train_step`, for `reason`.
# The launcher's (deploy/).
STARTED = 'started'  # `process` runs on `node` as `pid` (each start, once
# placed; on a Ray cluster also the server's `port` or the `reverb_address`
# it dials).
RESTARTED = 'restarted'  # `process` started again (`count` so far), after
# `exit_code` or for a `reason`.
# The Reverb server's.
CHECKPOINTED = 'checkpointed'  # Its tables were written in `seconds`.

LEARNER = 'learner'
LAUNCHER = 'launcher'
REVERB_SERVER = 'reverb_server'


@dataclasses.dataclass(frozen=True)
class Record:
  event: str
  time: float  # Epoch seconds.
  values: Dict[str, Any]

  def __getitem__(self, name: str) -> Any:
    return self.values[name]


class RecordWriter:
  """Appends `process`'s records under `root_dir` (None: to no file), and
  hands each to `publish(event, values)` when given (the learner's go to
  Reverb too: common/learner_status.py)."""

  def __init__(self, root_dir: Optional[str], process: str,
               publish: Optional[Callable[[str, Dict[str, Any]], None]] = None):
    self._path = (run_dir.records_path(root_dir, process) if root_dir
                  else None)
    self._publish = publish
    if self._path:
      os.makedirs(os.path.dirname(self._path), exist_ok=True)

  def write(self, event: str, **values) -> None:
    values = json.loads(json.dumps(
        {'time': round(time.time(), 3), **values}, default=_plain))
    if self._publish:
      self._publish(event, values)
    if self._path:
      with open(self._path, 'a') as f:
        f.write(json.dumps({'event': event, **values}) + '\n')


class RecordReader:
  """Reads a records file as it grows: `new()` returns the records written
  since the last call. From the file's current end, or its start."""

  def __init__(self, records_path: str, from_start: bool = False):
    self._path = records_path
    self._offset = 0
    if not from_start and os.path.exists(records_path):
      self._offset = os.path.getsize(records_path)

  def new(self) -> List[Record]:
    try:
      with open(self._path, 'rb') as f:
        f.seek(self._offset)
        data = f.read()
    except FileNotFoundError:
      return []
    complete = data[:data.rfind(b'\n') + 1]
    self._offset += len(complete)
    return [_parse(line) for line in complete.decode().splitlines() if line]


def read(records_path: str, event: Optional[str] = None) -> List[Record]:
  """Every record of a file (of one `event`, when given)."""
  records = RecordReader(records_path, from_start=True).new()
  return [r for r in records if event is None or r.event == event]


def _plain(value):
  """A numpy scalar as the Python number it holds (json's fallback)."""
  if hasattr(value, 'item'):
    return value.item()
  raise TypeError(f'{type(value).__name__} is not a JSON value')


def _parse(line: str) -> Record:
  values = json.loads(line)
  return Record(values.pop('event'), values.pop('time'), values)
