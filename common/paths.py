"""Checks on the directories a process writes to, before it starts work, and
where in a run's root_dir the results files go."""
import os
import tempfile

from common.errors import UserError

EVAL_DIR = 'eval'
RETURNS_CSV = 'returns.csv'


def returns_csv_path(root_dir: str) -> str:
  """The eval actor's results: one row per evaluation."""
  return os.path.join(root_dir, EVAL_DIR, RETURNS_CSV)


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
