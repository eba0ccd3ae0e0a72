"""A run's root_dir: where each process writes what (the one place that
names them), the eval results reader, and the check that a directory is
writable before a process starts work.

    experiment.flags       the experiment every process ran with (launcher)
    started_at             the first launch, epoch seconds (launcher)
    logs/<process>.log     each child's output (launcher)
    records/<process>.jsonl  milestones and progress, for programs
                           (common/records.py: learner, launcher, server)
    eval/returns.csv       one row per evaluation (eval actor)
    eval/, train/, actors/task_N/   TensorBoard summaries
    train/checkpoints/     learner checkpoints
    policies/<policy>/     SavedModel policies (learner)
    policies/checkpoints/  their weights every --policy_save_every_steps,
                           the newest CHECKPOINTS_KEPT kept (learner)
    reverb_checkpoints/    the Reverb server's table checkpoints (launcher)
    returns.png            the return plot (launcher, report.plot)

Imports nothing heavy: the launcher and report.plot read it without
TensorFlow. train/ and policies/ are the names TF-Agents' Learner uses.
"""
import csv
import glob
import os
import shutil
import tempfile
import time
from typing import List, Optional

from common.errors import UserError

EXPERIMENT_FLAGS = 'experiment.flags'
STARTED_AT = 'started_at'
LOGS_DIR = 'logs'
RECORDS_DIR = 'records'
EVAL_DIR = 'eval'
RETURNS_CSV = 'returns.csv'
TRAIN_DIR = 'train'  # tf_agents.train.learner.TRAIN_DIR
CHECKPOINTS_DIR = 'checkpoints'  # Under TRAIN_DIR, by TF-Agents' Learner.
POLICIES_DIR = 'policies'  # tf_agents.train.learner.POLICY_SAVED_MODEL_DIR
GREEDY_POLICY = 'greedy_policy'  # ...learner.GREEDY_POLICY_SAVED_MODEL_DIR
POLICY_CHECKPOINTS_DIR = 'checkpoints'  # ...learner.POLICY_CHECKPOINT_DIR
# Of the learner's checkpoints and of its policy checkpoints, as TF-Agents'
# Learner keeps.
CHECKPOINTS_KEPT = 3
ACTORS_DIR = 'actors'
REVERB_CHECKPOINTS_DIR = 'reverb_checkpoints'
RETURNS_PNG = 'returns.png'


def log_path(root_dir: str, process: str) -> str:
  return os.path.join(root_dir, LOGS_DIR, f'{process}.log')


def records_path(root_dir: str, process: str) -> str:
  return os.path.join(root_dir, RECORDS_DIR, f'{process}.jsonl')


def eval_dir(root_dir: str) -> str:
  return os.path.join(root_dir, EVAL_DIR)


def returns_csv_path(root_dir: str) -> str:
  """The eval actor's results: one row per evaluation."""
  return os.path.join(root_dir, EVAL_DIR, RETURNS_CSV)


def checkpoints_dir(root_dir: str) -> str:
  return os.path.join(root_dir, TRAIN_DIR, CHECKPOINTS_DIR)


def policies_dir(root_dir: str) -> str:
  return os.path.join(root_dir, POLICIES_DIR)


def policy_checkpoints(root_dir: str) -> List[str]:
  """The complete policy checkpoints, oldest first."""
  return [path for path in _policy_checkpoint_dirs(root_dir)
          if os.path.isfile(os.path.join(path, 'variables', 'variables.index'))]


def prune_policy_checkpoints(root_dir: str,
                             kept: int = CHECKPOINTS_KEPT) -> None:
  """Deletes the policy checkpoints older than the newest `kept` complete
  ones (complete or not: a crash can leave one half written)."""
  complete = policy_checkpoints(root_dir)
  if len(complete) <= kept:
    return
  oldest_kept = complete[-kept]
  for path in _policy_checkpoint_dirs(root_dir):
    if path < oldest_kept:
      shutil.rmtree(path, ignore_errors=True)


def _policy_checkpoint_dirs(root_dir: str) -> List[str]:
  # Named policy_checkpoint_<train step, 10 digits>: sorted is oldest first.
  return sorted(glob.glob(os.path.join(
      policies_dir(root_dir), POLICY_CHECKPOINTS_DIR, 'policy_checkpoint_*')))


def actor_summary_dir(root_dir: str, task: int) -> str:
  return os.path.join(root_dir, ACTORS_DIR, f'task_{task}')


def read_eval_returns(csv_path: str) -> List[dict]:
  """The eval actor's rows (train_step, wall_time, average_return, ...)."""
  if not os.path.exists(csv_path):
    return []
  with open(csv_path, newline='') as f:
    return [row for row in csv.DictReader(f) if row.get('average_return')]


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
