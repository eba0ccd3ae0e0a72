"""Checks on the directories a process writes to, before it starts work, and
where in a run's root_dir the results files go."""
import os
import tempfile
import time
from typing import Optional

from common.errors import UserError

EVAL_DIR = 'eval'
RETURNS_CSV = 'returns.csv'
STARTED_AT = 'started_at'  # The run's first launch, in epoch seconds.


def returns_csv_path(root_dir: str) -> str:
  """The eval actor's results: one row per evaluation."""
  return os.path.join(root_dir, EVAL_DIR, RETURNS_CSV)


def record_start(root_dir: str) -> None:
  """Notes when the run started, unless a launch before this one did."""
  path = os.path.join(root_dir, STARTED_AT)
  if not os.path.exists(path):
    os.makedirs(root_dir, exist_ok=True)
    with open(path, 'w') as f:
      f.write(f'{time.time():.3f}\n')


def read_start(root_dir: str) -> Optional[float]:
  """When the run started (epoch seconds), if its launcher noted it."""
  try:
    with open(os.path.join(root_dir, STARTED_AT)) as f:
      return float(f.read())
  except (OSError, ValueError):
    return None


class RootDirError(UserError, ValueError):
  """A directory this process must write to is not writable."""


def ensure_writable_dir(path: str, flag: str = '--root_dir') -> str:
  """Creates `path` if needed and proves it writable; its absolute path."""
  path = os.path.abspath(path)
  try:
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path):
      pass
  except OSError as e:
    raise RootDirError(f'cannot write to {flag} {path}: {e.strerror}; pick a '
                       f'directory this user can write') from e
  return path
