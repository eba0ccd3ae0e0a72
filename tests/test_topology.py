"""The whole topology as real processes on localhost, through the launcher
(CartPole DQN's: tests/test_report.py's run)."""
import os

import pytest

from tests.helpers import MINITAUR_FLAGS
from tests.helpers import assert_finished_job
from tests.helpers import run_module

pytestmark = pytest.mark.slow  # Real processes.


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
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert_finished_job(result.stdout, root_dir, max_train_steps=200, actors=2)
  with open(os.path.join(root_dir, 'logs', 'learner.log')) as f:
    assert 'Learner on 2 replica(s) x 16 = global batch 32' in f.read()
