"""Running the project's binaries as real processes, and reading their output."""
import glob
import os
import re
import subprocess
import sys
from typing import List

import portpicker

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARTPOLE_FLAGS = os.path.join(PROJECT_ROOT, 'configs', 'cartpole_dqn.flags')
MINITAUR_FLAGS = os.path.join(PROJECT_ROOT, 'configs', 'minitaur_sac.flags')


def child_env() -> dict:
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      p for p in (PROJECT_ROOT, env.get('PYTHONPATH')) if p)
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'
  return env


def run_module(module: str, args: List[str], timeout_s: float
               ) -> subprocess.CompletedProcess:
  """Runs `python -m module args` to completion; fails the test on timeout."""
  return subprocess.run([sys.executable, '-m', module, *args],
                        capture_output=True, text=True, timeout=timeout_s,
                        env=child_env(), cwd=PROJECT_ROOT)


def start_module(module: str, args: List[str], log_path: str
                 ) -> subprocess.Popen:
  with open(log_path, 'wb') as log:
    return subprocess.Popen([sys.executable, '-m', module, *args],
                            stdout=log, stderr=subprocess.STDOUT,
                            env=child_env(), cwd=PROJECT_ROOT)


def unused_port() -> int:
  return portpicker.pick_unused_port()


def scalar_values(summary_dir: str, tag: str) -> List[float]:
  """Every value TensorBoard event files under `summary_dir` hold for `tag`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  values = []
  for path in glob.glob(os.path.join(summary_dir, '**', 'events.out.*'),
                        recursive=True):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          values.append(float(tf.make_ndarray(value.tensor)))
  return values


def actor_items_written(log_path: str) -> int:
  """The items an actor reports having written to the replay table."""
  with open(log_path, errors='replace') as f:
    found = re.findall(r'Actor \d+ done: \d+ env steps, (\d+) items written',
                       f.read())
  assert found, f'no final line in {log_path}'
  return int(found[-1])
