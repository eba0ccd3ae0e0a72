"""Running the project's binaries as real processes, and reading their output."""
import datetime
import glob
import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import portpicker

from common import run_dir
from common import shutdown
from common.config import REPLAY_TABLE
from common.connection import connect

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CARTPOLE_FLAGS = os.path.join(PROJECT_ROOT, 'configs', 'cartpole_dqn.flags')
MINITAUR_FLAGS = os.path.join(PROJECT_ROOT, 'configs', 'minitaur_sac.flags')


# Where TF's Cloud TPU client looks up a TPU name (the GCE metadata server):
# a closed loopback port, so that no test reaches past this host.
GCE_METADATA_HOST = '127.0.0.1:1'


def child_env() -> dict:
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      p for p in (PROJECT_ROOT, env.get('PYTHONPATH')) if p)
  env['GCE_METADATA_HOST'] = GCE_METADATA_HOST
  return env


def run_module(module: str, args: List[str], timeout_s: float,
               env: Optional[Dict[str, str]] = None
               ) -> subprocess.CompletedProcess:
  """Runs `python -m module args` (with `env` added to the environment) to
  completion; fails the test on timeout.

  Children of the tests stop when the test process dies (a pytest-timeout
  or a Ctrl-C), so no test leaves processes behind.
  """
  return subprocess.run([sys.executable, '-m', module, *args],
                        capture_output=True, text=True, timeout=timeout_s,
                        env={**child_env(), **(env or {})}, cwd=PROJECT_ROOT,
                        preexec_fn=shutdown.stop_with_parent())


def popen_module(module: str, args: List[str], **popen_kwargs
                 ) -> subprocess.Popen:
  """Starts `python -m module args`; it stops when the test process dies."""
  return subprocess.Popen([sys.executable, '-m', module, *args],
                          env=child_env(), cwd=PROJECT_ROOT,
                          preexec_fn=shutdown.stop_with_parent(),
                          **popen_kwargs)


def start_module(module: str, args: List[str], log_path: str
                 ) -> subprocess.Popen:
  with open(log_path, 'wb') as log:
    return popen_module(module, args, stdout=log, stderr=subprocess.STDOUT)


class LauncherRun:
  """deploy.launch_local as a process, its output read as it comes: the
  lines so far, and each child's current pid."""

  def __init__(self, args: List[str]):
    self.process = popen_module('deploy.launch_local', args,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    self.lines: List[str] = []
    self.pids: Dict[str, int] = {}
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self) -> None:
    for line in self.process.stdout:
      child = (re.match(r'\s+(\S+)\s+pid (\d+) ', line) or
               re.match(r'(\S+) restarted \(.*pid (\d+),', line))
      if child:
        self.pids[child[1]] = int(child[2])
      self.lines.append(line)

  @property
  def output(self) -> str:
    return ''.join(self.lines)

  def wait_for(self, pattern: str, timeout_s: float = 240) -> re.Match:
    """The first output line matching `pattern`, waiting for it."""
    deadline = time.monotonic() + timeout_s
    while True:
      for line in list(self.lines):
        match = re.search(pattern, line)
        if match:
          return match
      assert self.process.poll() is None or self._reader.is_alive(), (
          f'the launcher exited ({self.process.returncode}) before '
          f'{pattern!r}:\n{self.output[-5000:]}')
      assert time.monotonic() < deadline, (
          f'no {pattern!r} within {timeout_s}s:\n{self.output[-5000:]}')
      time.sleep(0.2)

  def finish(self, timeout_s: float) -> int:
    """The launcher's exit code, once it and its output have ended."""
    try:
      self.process.wait(timeout_s)
    finally:
      self.process.kill()
    self._reader.join(10)
    return self.process.returncode


def alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  return True


def stop_processes(processes: List[subprocess.Popen]) -> None:
  """SIGTERM to each process still running, then a kill after 60 s."""
  for process in processes:
    if process.poll() is None:
      process.send_signal(signal.SIGTERM)
  for process in processes:
    try:
      process.wait(60)
    except subprocess.TimeoutExpired:
      process.kill()


def start_training(log_dir, experiment: List[str],
                   learner_args: List[str] = ()):
  """A Reverb server on a free port, a learner (root_dir `log_dir`) and one
  collect actor on the `experiment` flags, each logging to
  log_dir/<name>.log; (a client of the server, the processes). Stop them
  with stop_processes."""
  port = unused_port()
  args = [*experiment, f'--reverb_address=localhost:{port}']
  processes = [start_module('reverb_server', [*experiment, f'--port={port}'],
                            os.path.join(log_dir, 'server.log'))]
  try:
    client = connect(f'localhost:{port}', timeout_s=120)
    processes.append(start_module(
        'learner', [*args, f'--root_dir={log_dir}', *learner_args],
        os.path.join(log_dir, 'learner.log')))
    processes.append(start_module('actor', [*args, '--task=0'],
                                  os.path.join(log_dir, 'actor.log')))
  except BaseException:
    stop_processes(processes)
    raise
  return client, processes


def unused_port() -> int:
  return portpicker.pick_unused_port()


def scalar_values(summary_dir: str, tag: str) -> List[float]:
  """Every value TensorBoard event files under `summary_dir` hold for `tag`."""
  return [value for _, value in scalar_steps(summary_dir, tag)]


def scalar_steps(summary_dir: str, tag: str) -> List[Tuple[int, float]]:
  """(step, value) of every `tag` event under `summary_dir`, by file and
  order of writing."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  values = []
  for path in sorted(glob.glob(os.path.join(summary_dir, '**',
                                            'events.out.*'), recursive=True)):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          values.append((event.step, float(tf.make_ndarray(value.tensor))))
  return values


def assert_finished_job(output: str, root_dir: str, max_train_steps: int,
                        actors: int) -> None:
  """What a launcher run that trained to `max_train_steps` leaves: its
  output's last line, each actor's items and weights, eval's results up to
  the last step, the checkpoints and policies."""
  finished = re.search(r'Finished: train_step (\d+), env steps (\d+)', output)
  assert finished, output[-3000:]
  assert int(finished.group(1)) == max_train_steps
  assert int(finished.group(2)) > 0
  for task in range(actors):
    log = os.path.join(root_dir, 'logs', f'actor_{task}.log')
    assert actor_items_written(log) > 0, f'actor_{task} inserted nothing'
    versions = scalar_values(
        os.path.join(root_dir, 'actors', f'task_{task}'),
        'Actor/policy_version')
    assert versions and max(versions) > 0, (
        f'actor_{task} never received new weights: {versions}')
  rows = run_dir.read_eval_returns(run_dir.returns_csv_path(root_dir))
  steps = [int(row['train_step']) for row in rows]
  # Eval starts once training runs: its first evaluation is of the weights
  # of that moment, its last of the final ones.
  assert steps == sorted(steps) and steps[-1] == max_train_steps, steps
  assert all(float(row['average_episode_length']) > 0 for row in rows)
  checkpoints = os.listdir(os.path.join(root_dir, 'train', 'checkpoints'))
  assert f'ckpt-{max_train_steps}.index' in checkpoints, checkpoints
  assert os.path.exists(os.path.join(root_dir, 'policies', 'greedy_policy',
                                     'saved_model.pb'))
  policy_steps = policy_checkpoint_steps(root_dir)
  assert policy_steps[-1] == max_train_steps, policy_steps
  assert len(policy_steps) <= run_dir.CHECKPOINTS_KEPT, policy_steps


def replay_items_by_key(client, count: int) -> Dict[int, object]:
  """Every item of the replay table, which holds `count` items of equal
  priority (sampled with replacement until each was drawn): key -> its
  packed steps."""
  items = {}
  while len(items) < count:
    for sample in client.sample(REPLAY_TABLE, num_samples=10 * count,
                                emit_timesteps=False):
      items[int(sample.info.key)] = sample.data[0]
  assert len(items) == count
  return items


def policy_checkpoint_steps(root_dir: str) -> List[int]:
  return [int(path[-10:]) for path in run_dir.policy_checkpoints(root_dir)]


def log_time(log_text: str, message: str) -> float:
  """Epoch seconds of the first absl log line (`I1206 07:15:01.123456 ...`)
  holding `message`: when the process itself says it happened."""
  for line in log_text.splitlines():
    stamp = re.match(r'[IWEF](\d{4} \d\d:\d\d:\d\d\.\d+) ', line)
    if stamp and message in line:
      year = datetime.date.today().year
      return datetime.datetime.strptime(
          f'{year}{stamp.group(1)}', '%Y%m%d %H:%M:%S.%f').timestamp()
  raise AssertionError(f'no log line with {message!r}')


def actor_items_written(log_path: str) -> int:
  """The items an actor reports having written to the replay table."""
  with open(log_path, errors='replace') as f:
    found = re.findall(r'Actor \d+ done: \d+ env steps, (\d+) items written',
                       f.read())
  assert found, f'no final line in {log_path}'
  return int(found[-1])


def assert_cartpole_step(before, after, message: str = '') -> None:
  """`after` is the CartPole observation one step after `before`: the cart
  moved as gym's physics moves it (x' = x + 0.02 * x_dot)."""
  np.testing.assert_allclose(after[0], before[0] + 0.02 * before[1],
                             atol=1e-5, err_msg=message)
