"""The whole topology as real processes on localhost, through the launcher."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import CARTPOLE_FLAGS
from tests.helpers import MINITAUR_FLAGS
from tests.helpers import PROJECT_ROOT
from tests.helpers import actor_items_written
from tests.helpers import child_env
from tests.helpers import run_module
from tests.helpers import scalar_values

_SMALL_CARTPOLE = [
    # Long enough that the second actor, started when the learner first
    # pushes, inserts and pulls well before the end (seconds to spare).
    f'--flagfile={CARTPOLE_FLAGS}', '--max_train_steps=1000',
    '--initial_collect_steps=200', '--push_every_steps=50',
    '--pull_every_steps=50', '--eval_every_steps=200', '--eval_episodes=2',
    '--log_every_steps=100', '--checkpoint_every_steps=200',
    '--policy_save_every_steps=200', '--progress_every_s=2',
    # Little slack: the learner cannot finish without actors' new data.
    '--rate_limiter_slack_steps=100']


def _eval_rows(root_dir):
  with open(os.path.join(root_dir, 'eval', 'returns.csv')) as f:
    header, *rows = [line.strip().split(',') for line in f if line.strip()]
  assert header == ['train_step', 'wall_time', 'average_return',
                    'average_episode_length']
  return [dict(zip(header, map(float, row))) for row in rows]


def _assert_finished_job(result, root_dir, max_train_steps, actors):
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  finished = re.search(r'Finished: train_step (\d+), env steps (\d+)',
                       result.stdout)
  assert finished, result.stdout[-3000:]
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
  rows = _eval_rows(root_dir)
  steps = [row['train_step'] for row in rows]
  # Eval starts once training runs: its first evaluation is of the weights
  # of that moment, its last of the final ones.
  assert steps == sorted(steps) and steps[-1] == max_train_steps, steps
  assert all(row['average_episode_length'] > 0 for row in rows)
  checkpoints = os.listdir(os.path.join(root_dir, 'train', 'checkpoints'))
  assert f'ckpt-{max_train_steps}.index' in checkpoints, checkpoints
  assert os.path.exists(os.path.join(root_dir, 'policies', 'greedy_policy',
                                     'saved_model.pb'))


def test_cartpole_dqn_two_actors_learner_and_eval(tmp_path):
  root_dir = str(tmp_path / 'run')
  result = run_module('deploy.launch_local',
                      [*_SMALL_CARTPOLE, '--actors=2', f'--root_dir={root_dir}'],
                      timeout_s=400)
  _assert_finished_job(result, root_dir, max_train_steps=1000, actors=2)
  # The learner wrote its loss summaries.
  assert scalar_values(os.path.join(root_dir, 'train'), 'Losses/total_loss')


def test_minitaur_sac_smoke(tmp_path):
  root_dir = str(tmp_path / 'run')
  result = run_module('deploy.launch_local', [
      f'--flagfile={MINITAUR_FLAGS}', '--max_train_steps=200',
      '--initial_collect_steps=300', '--batch_size=32',
      '--rate_limiter_slack_steps=50', '--push_every_steps=25',
      '--pull_every_steps=25', '--eval_every_steps=200', '--eval_episodes=1',
      '--log_every_steps=50', '--checkpoint_every_steps=200',
      '--policy_save_every_steps=200', '--progress_every_s=2', '--actors=2',
      f'--root_dir={root_dir}'], timeout_s=500)
  _assert_finished_job(result, root_dir, max_train_steps=200, actors=2)


def _start_launcher(root_dir):
  return subprocess.Popen(
      [sys.executable, '-m', 'deploy.launch_local', *_SMALL_CARTPOLE,
       '--max_train_steps=100000', '--actors=2', f'--root_dir={root_dir}'],
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env=child_env(), cwd=PROJECT_ROOT)


def _read_until_training(launcher, timeout_s=240):
  """Reads the launcher's output until training runs; returns child pids."""
  pids, deadline = {}, time.monotonic() + timeout_s
  for line in launcher.stdout:
    match = re.match(r'\s+(\S+)\s+pid (\d+)', line)
    if match:
      pids[match.group(1)] = int(match.group(2))
    if re.search(r'train_step [1-9]\d*', line):
      return pids
    assert time.monotonic() < deadline, 'training did not start in time'
  pytest.fail(f'launcher ended early with code {launcher.wait()}')


def _alive(pid):
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  return True


def test_launcher_fails_loudly_when_a_child_dies(tmp_path):
  launcher = _start_launcher(str(tmp_path / 'run'))
  try:
    pids = _read_until_training(launcher)
    os.kill(pids['actor_1'], signal.SIGKILL)
    rest, _ = launcher.communicate(timeout=180)
  finally:
    launcher.kill()
  assert launcher.returncode == 1
  assert 'actor_1 exited with code -9; its log: ' in rest
  assert str(tmp_path / 'run' / 'logs' / 'actor_1.log') in rest
  assert not [name for name, pid in pids.items() if _alive(pid)]


def test_launcher_stops_every_child_on_sigterm(tmp_path):
  launcher = _start_launcher(str(tmp_path / 'run'))
  try:
    pids = _read_until_training(launcher)
    assert len(pids) == 5, pids
    launcher.send_signal(signal.SIGTERM)
    start = time.monotonic()
    rest, _ = launcher.communicate(timeout=180)
  finally:
    launcher.kill()
  assert launcher.returncode == 143, rest
  assert 'Stopping all processes (received SIGTERM)' in rest
  assert time.monotonic() - start < 120
  assert not [name for name, pid in pids.items() if _alive(pid)]
  # The learner saved a checkpoint on its way out.
  checkpoints = os.listdir(tmp_path / 'run' / 'train' / 'checkpoints')
  assert any(name.endswith('.index') for name in checkpoints), checkpoints
