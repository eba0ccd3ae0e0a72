"""The whole topology as real processes on localhost, through the launcher."""
import os
import re

import pytest

from common import run_dir
from tests.helpers import CARTPOLE_FLAGS
from tests.helpers import MINITAUR_FLAGS
from tests.helpers import actor_items_written
from tests.helpers import run_module
from tests.helpers import scalar_values

pytestmark = pytest.mark.slow  # Real processes.

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
  policy_steps = _policy_checkpoint_steps(root_dir)
  assert policy_steps[-1] == max_train_steps, policy_steps
  assert len(policy_steps) <= run_dir.CHECKPOINTS_KEPT, policy_steps


def _policy_checkpoint_steps(root_dir):
  return [int(path[-10:]) for path in run_dir.policy_checkpoints(root_dir)]


def test_cartpole_dqn_two_actors_learner_and_eval(tmp_path):
  root_dir = str(tmp_path / 'run')
  result = run_module('deploy.launch_local',
                      [*_SMALL_CARTPOLE, '--actors=2', f'--root_dir={root_dir}'],
                      timeout_s=400)
  _assert_finished_job(result, root_dir, max_train_steps=1000, actors=2)
  # The learner wrote its loss summaries.
  assert scalar_values(os.path.join(root_dir, 'train'), 'Losses/total_loss')
  # Saved every 200 steps: those of steps 200 and 400 were pruned.
  assert _policy_checkpoint_steps(root_dir) == [600, 800, 1000]


def test_minitaur_sac_smoke_on_two_replicas(tmp_path):
  """SAC's whole topology, its learner on MirroredStrategy with 2 replicas
  (2 logical CPU devices: a 2-GPU learner's code path)."""
  root_dir = str(tmp_path / 'run')
  result = run_module('deploy.launch_local', [
      f'--flagfile={MINITAUR_FLAGS}', '--max_train_steps=200',
      '--initial_collect_steps=300', '--batch_size=32',
      '--rate_limiter_slack_steps=50', '--push_every_steps=25',
      '--pull_every_steps=25', '--eval_every_steps=200', '--eval_episodes=1',
      '--log_every_steps=50', '--checkpoint_every_steps=200',
      '--policy_save_every_steps=200', '--progress_every_s=2', '--actors=2',
      '--strategy=mirrored', '--cpu_replicas=2', f'--root_dir={root_dir}'],
                      timeout_s=500)
  _assert_finished_job(result, root_dir, max_train_steps=200, actors=2)
  with open(os.path.join(root_dir, 'logs', 'learner.log')) as f:
    assert 'Learner on 2 replica(s) x 16 = global batch 32' in f.read()
