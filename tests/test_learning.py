"""The topology learns: CartPole-v0 DQN to the top (greedy eval return
>= 195), with uniform and with prioritized n-step replay, CartPole-v0 PPO
over its queue, and Pendulum-v1 SAC to its flagfile's stated target."""
import os

import pytest

from benchmarks import experiments
from benchmarks.targets import flagfile_path
from benchmarks.targets import read_target

from common import records
from common import run_dir
from tests.helpers import CARTPOLE_FLAGS
from tests.helpers import run_module

# The tutorial's single loop reaches 200 after ~5000-15000 train steps; ours
# took 5000-12600 in our runs. DQN's greedy return swings between
# evaluations, so the test evaluates every 500 steps and allows 25000; it
# stops as soon as an evaluation reaches 195 (on 2 cores: 1.5-4 minutes).
MAX_TRAIN_STEPS = 25000
TARGET_RETURN = 195.0


# Prioritized replay with 3-step returns reached 200 at 1510-13730 train
# steps over 5 seeds (BENCHMARKS.md); the budget is its flagfile's target.
PER_MAX_TRAIN_STEPS = 20000


@pytest.mark.slow
@pytest.mark.parametrize('flagfile, max_train_steps', [
    (CARTPOLE_FLAGS, MAX_TRAIN_STEPS),
    (flagfile_path('cartpole_dqn_per'), PER_MAX_TRAIN_STEPS)])
def test_cartpole_dqn_reaches_195(tmp_path, flagfile, max_train_steps):
  _learns(tmp_path, flagfile, max_train_steps, TARGET_RETURN,
          ['--eval_every_steps=500'])


@pytest.mark.slow
def test_cartpole_ppo_reaches_195(tmp_path):
  """PPO through the real topology: 2 actors writing sequences to the
  queue, the learner's iterations, within the flagfile's train steps."""
  _learns(tmp_path, flagfile_path('cartpole_ppo'),
          read_target('cartpole_ppo').train_steps, TARGET_RETURN)
  # Synchronous PPO: the actors collected only the rounds the learner
  # requested, with the weights it requested them for. The one source of
  # stale items is a round requested again after an iteration stalled (on a
  # loaded machine a slow round looks like a lost one): its items may come
  # after the iteration they were for, each dropped once.
  finished = records.read(
      run_dir.records_path(str(tmp_path / 'run'), records.LEARNER))[-1]
  assert finished.event == records.FINISHED, finished
  envs_per_actor = experiments.load('cartpole_ppo').train.envs_per_actor
  assert finished['stale_items_dropped'] <= (
      finished['rounds_requested_again'] * envs_per_actor), finished


def _learns(tmp_path, flagfile, max_train_steps, target, args=()):
  """The launcher with 2 actors reaches `target` within `max_train_steps`
  and stops there."""
  root_dir = str(tmp_path / 'run')
  result = run_module('deploy.launch_local', [
      f'--flagfile={flagfile}', f'--max_train_steps={max_train_steps}',
      '--actors=2', f'--stop_at_return={target}', f'--root_dir={root_dir}',
      *args], timeout_s=600)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  rows = run_dir.read_eval_returns(
      os.path.join(root_dir, 'eval', 'returns.csv'))
  print('eval returns:', [(r['train_step'], r['average_return'])
                          for r in rows])
  best = max(rows, key=lambda row: float(row['average_return']))
  assert float(best['average_return']) >= target, rows
  assert int(best['train_step']) <= max_train_steps
  _assert_stopped_at_return(result.stdout, rows, target)


def _assert_stopped_at_return(output, rows, target):
  """The launcher ended the run at the first evaluation reaching `target`
  (--stop_at_return), not at the step budget."""
  first = next(r for r in rows if float(r['average_return']) >= target)
  assert (f'>= {target} at train step {first["train_step"]}' in output and
          'after launch: stopping' in output), output[-3000:]


@pytest.mark.slow
def test_pendulum_sac_reaches_its_target(tmp_path):
  """The SAC path learns through the real topology: configs/pendulum_sac.flags
  reaches the return it states within its train steps (~1-2 minutes)."""
  target = read_target('pendulum_sac')
  _learns(tmp_path, flagfile_path('pendulum_sac'), target.train_steps,
          target.average_return)
