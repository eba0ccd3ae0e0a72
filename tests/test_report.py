"""A real short CartPole DQN run through the launcher (2 vectorized
actors, the learner, eval) and what users look at: TensorBoard metrics, the
return plot, the status screen and TensorBoard started by the launcher."""
import contextlib
import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

import numpy as np
from PIL import Image
import pytest

from actor.evaluate import append_result
from common import run_dir
from common.run_dir import read_eval_returns
from common.run_dir import returns_csv_path
from report import plot_lib
from tests.helpers import CARTPOLE_FLAGS
from tests.helpers import assert_finished_job
from tests.helpers import policy_checkpoint_steps
from tests.helpers import popen_module
from tests.helpers import run_module
from tests.helpers import scalar_steps
from tests.helpers import scalar_values
from tests.helpers import unused_port

_RUN = [f'--flagfile={CARTPOLE_FLAGS}', '--max_train_steps=3000',
        '--initial_collect_steps=200', '--push_every_steps=50',
        '--pull_every_steps=50', '--eval_every_steps=500',
        '--eval_episodes=2', '--log_every_steps=100',
        '--checkpoint_every_steps=1000', '--policy_save_every_steps=500',
        '--rate_limiter_slack_steps=100', '--actors=2', '--progress_every_s=2',
        '--envs_per_actor=3']  # Vectorized actors, end to end.
# How long a hold (see `run`) may wait for eval's first result or TensorBoard
# on a slow machine; the run fails if they take longer.
_HOLD_TIMEOUT_S = 240


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A launcher run; status, TensorBoard and eval are looked at while it
  trains.

  When the launcher says the learner has trained its first step, the
  learner is stopped (SIGSTOP) until the status command has looked at the job,
  TensorBoard has answered and eval has written its first result, then
  resumed (SIGCONT). The job cannot end while its learner is held (the
  launcher waits for it), so none of this depends on how fast the machine
  trains the 3000 steps.
  """
  root_dir = str(tmp_path_factory.mktemp('report') / 'run')
  tensorboard_port = unused_port()
  launcher = popen_module(
      'deploy.launch_local', [*_RUN, f'--root_dir={root_dir}',
                              f'--tensorboard_port={tensorboard_port}'],
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  live = {}
  tensorboard = threading.Thread(target=_poll_tensorboard, args=(
      f'http://localhost:{tensorboard_port}/data/runs', launcher, live,
      time.monotonic() + 2 * _HOLD_TIMEOUT_S))
  tensorboard.start()
  lines, pids = [], {}
  try:
    for line in launcher.stdout:
      lines.append(line)
      child = re.match(r'\s+(\S+)\s+pid (\d+)', line)
      if child:
        pids[child.group(1)] = int(child.group(2))
      # The launcher's line when the learner has trained its first step:
      # thousands of steps before the run's end, however fast the machine.
      if line.startswith('First train step') and 'status' not in live:
        address = re.search(r'--reverb_address=(\S+)',
                            ''.join(lines)).group(1)
        held_at = time.monotonic()
        with _held(pids['learner']):
          live['status'] = run_module('report.status', [
              f'--reverb_address={address}', f'--root_dir={root_dir}'], 60)
          held_step = re.search(r'learner train_step (\d+)',
                                live['status'].stdout)
          live['held_step'] = int(held_step.group(1)) if held_step else 0
          tensorboard.join(timeout=_HOLD_TIMEOUT_S)
          # (Unless the launcher ended: a child died, which it reports.)
          _wait_for(lambda: launcher.poll() is not None or read_eval_returns(
              os.path.join(root_dir, 'eval', 'returns.csv')),
                    'the first evaluation')
        print(f'Learner held {time.monotonic() - held_at:.0f}s from: '
              f'{line.strip()}')
    assert launcher.wait(timeout=600) == 0, ''.join(lines)[-3000:]
  finally:
    if launcher.poll() is None:  # The fixture failed: stop the job.
      launcher.terminate()
      launcher.wait(timeout=300)
  tensorboard.join()
  return root_dir, ''.join(lines), live


@contextlib.contextmanager
def _held(pid):
  """The process stopped (SIGSTOP) inside the block, resumed after it."""
  os.kill(pid, signal.SIGSTOP)
  try:
    yield
  finally:
    os.kill(pid, signal.SIGCONT)


def _wait_for(condition, what):
  deadline = time.monotonic() + _HOLD_TIMEOUT_S
  while not condition():
    assert time.monotonic() < deadline, f'timed out waiting for {what}'
    time.sleep(0.5)


def _poll_tensorboard(url, launcher, live, deadline):
  """Keeps asking TensorBoard for its runs (it takes a while to start and to
  find them) until it lists some, the launcher is done or the deadline has
  passed."""
  while launcher.poll() is None and time.monotonic() < deadline:
    try:
      with urllib.request.urlopen(url, timeout=5) as response:
        runs = json.loads(response.read().decode())
      if runs:
        live['tensorboard_runs'] = runs
        return
    except OSError:
      pass
    time.sleep(1)


@pytest.mark.slow
def test_the_job_trained_to_its_last_step(run):
  """2 vectorized actors, the learner and eval, through the launcher."""
  root_dir, output, _ = run
  assert_finished_job(output, root_dir, max_train_steps=3000, actors=2)
  # Saved every 500 steps: the older ones were pruned.
  assert policy_checkpoint_steps(root_dir) == [2000, 2500, 3000]


@pytest.mark.slow
def test_status_screen_while_training(run):
  root_dir, output, live = run
  assert live, f'training never showed progress:\n{output[-3000:]}'
  status = live['status']
  print(status.stdout)
  assert status.returncode == 0, status.stderr[-2000:]
  step = int(re.search(r'learner train_step (\d+)', status.stdout).group(1))
  assert step > 0, status.stdout
  assert re.search(r"table 'experience': size [1-9]\d*/100000",
                   status.stdout), status.stdout
  assert f'Run {root_dir}:' in status.stdout


@pytest.mark.slow
def test_status_of_a_stopped_job_says_so(run):
  root_dir, _, _ = run
  result = run_module('report.status', [
      f'--reverb_address=localhost:{unused_port()}',
      f'--root_dir={root_dir}'], 60)
  assert result.returncode == 1
  assert 'NOT ANSWERING' in result.stdout
  assert re.search(r'last eval return [-\d.]+ at train step 3000',
                   result.stdout), result.stdout


@pytest.mark.slow
def test_launcher_served_tensorboard(run):
  _, _, live = run
  assert 'tensorboard_runs' in live, (
      'TensorBoard never listed a run during the run')
  # The job's summary directories, and nothing else.
  assert set(live['tensorboard_runs']) <= {
      'train', 'eval', 'actors/task_0', 'actors/task_1'}, live


_RATES = {
    'actors/task_0': ['Actor/env_steps_per_sec'],
    'actors/task_1': ['Actor/env_steps_per_sec'],
    'train': ['Learner/train_steps_per_sec', 'Reverb/inserts_per_sec',
              'Reverb/samples_per_sec', 'Reverb/samples_per_insert'],
}


@pytest.mark.slow
@pytest.mark.parametrize('summary_dir, tag', [
    (d, tag) for d, tags in _RATES.items() for tag in tags])
def test_rate_is_written_and_something_moved(run, summary_dir, tag):
  root_dir, _, _ = run
  values = scalar_values(os.path.join(root_dir, summary_dir), tag)
  assert values and max(values) > 0, (tag, values)


@pytest.mark.slow
@pytest.mark.parametrize('task', [0, 1])
def test_actor_metrics_agree_with_each_other(run, task):
  """CartPole pays 1 a step: an actor's average return is its average
  episode length at every write. Its episodes only grow, and it acts on
  the versions the learner pushes: 0, 1 (after the first train step), and
  multiples of --push_every_steps (50)."""
  root_dir, _, _ = run
  summaries = os.path.join(root_dir, 'actors', f'task_{task}')
  returns = scalar_steps(summaries, 'Actor/average_return')
  assert returns and returns == scalar_steps(
      summaries, 'Actor/average_episode_length')
  assert max(value for _, value in returns) > 9  # CartPole's shortest.
  episodes = scalar_values(summaries, 'Actor/episodes')
  assert episodes == sorted(episodes) and episodes[-1] > 0, episodes
  versions = scalar_values(summaries, 'Actor/policy_version')
  assert versions == sorted(versions) and versions[-1] >= 50, versions
  assert all(v in (0, 1) or v % 50 == 0 for v in versions), versions


@pytest.mark.slow
def test_eval_metrics_are_the_results_written(run):
  """Eval's TensorBoard scalars are the returns.csv rows, step for step;
  a CartPole episode's return is its length."""
  root_dir, _, _ = run
  summaries = os.path.join(root_dir, 'eval')
  written = [(int(row['train_step']), float(row['average_return']))
             for row in read_eval_returns(returns_csv_path(root_dir))]
  returns = scalar_steps(summaries, 'Metrics/eval/AverageReturn')
  assert returns and [step for step, _ in returns] == [
      step for step, _ in written], (returns, written)
  assert [value for _, value in returns] == pytest.approx(
      [value for _, value in written])
  assert returns == scalar_steps(summaries,
                                 'Metrics/eval/AverageEpisodeLength')


@pytest.mark.slow
def test_learner_losses_are_finite_and_the_table_fills(run):
  root_dir, _, _ = run
  summaries = os.path.join(root_dir, 'train')
  losses = scalar_values(summaries, 'Losses/total_loss')
  assert losses and all(np.isfinite(losses)), losses
  sizes = scalar_values(summaries, 'Reverb/table_size')
  # 2 actors x 3 envs insert until the end; the table never shrinks.
  assert sizes == sorted(sizes) and sizes[-1] > 200, sizes


@pytest.mark.slow
def test_data_wait_is_a_fraction(run):
  root_dir, _, _ = run
  values = scalar_values(os.path.join(root_dir, 'train'),
                         'Learner/data_wait_fraction')
  assert values and 0 <= min(values) and max(values) <= 1, values


@pytest.mark.slow
def test_actors_act_on_recent_weights(run):
  """Actor/policy_lag: train steps between the learner's weights and the
  actor's. The actors pull every 50 steps of their 3 envs (the job trains
  ~1 step per env step, 2 actors), the learner pushes every 50 steps, and
  collection runs at most 100 env steps ahead: a lag past 1000 means pulls
  stopped."""
  root_dir, _, _ = run
  values = scalar_values(os.path.join(root_dir, 'actors', 'task_0'),
                         'Actor/policy_lag')
  assert values and max(values) <= 1000, values


def _png_size(path):
  with Image.open(path) as image:
    return image.size


@pytest.mark.slow
def test_launcher_writes_the_plot_and_says_where_results_are(run):
  root_dir, output, _ = run
  plot = os.path.join(root_dir, 'returns.png')
  assert f'plot          {plot}' in output
  assert '-m report.video --flagfile=' in output
  assert _png_size(plot) == (800, 320)


@pytest.mark.slow
def test_plot_overlays_runs_with_one_point_per_evaluation(run, tmp_path):
  root_dir, _, live = run
  evaluations = len(read_eval_returns(
      os.path.join(root_dir, 'eval', 'returns.csv')))
  # One written while the learner was held (of weights at most that old) and
  # one at 3000: the same one if the learner had already pushed its last
  # weights. Those every 500 steps come only as eval keeps up with a learner
  # that may train the 3000 steps in seconds.
  assert evaluations >= (2 if live['held_step'] < 3000 else 1), live
  out = tmp_path / 'two.png'
  result = run_module('report.plot', [
      f'--root_dir={root_dir}', f'--root_dir={root_dir}', '--labels=a,b',
      f'--out={out}'], 60)
  assert result.returncode == 0, result.stderr[-2000:]
  assert f'Wrote {out}: {2 * evaluations} evaluations of 2 run(s)' in (
      result.stdout)
  assert 10_000 < out.stat().st_size < 200_000
  pixels = np.asarray(Image.open(out).convert('RGB'))
  assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # Not blank.


@pytest.mark.slow
def test_plot_without_results_is_one_error_line(tmp_path):
  result = run_module('report.plot', [f'--root_dir={tmp_path}'], 60)
  assert result.returncode == 2
  assert f'NoResultsError: no eval results in {tmp_path}/eval/returns.csv' in (
      result.stderr)


def test_plot_times_from_the_run_start_and_a_relaunch_keeps_it(tmp_path):
  root_dir = str(tmp_path)
  append_result(returns_csv_path(root_dir), 100,
                {'AverageReturn': 1.0, 'AverageEpisodeLength': 5.0})
  no_start = plot_lib.read_run(root_dir)
  assert not no_start.since_start and no_start.seconds == [0.0]
  run_dir.record_start(root_dir)
  first_start = run_dir.read_start(root_dir)
  with open(os.path.join(root_dir, run_dir.STARTED_AT), 'w') as f:
    f.write(f'{first_start - 30}\n')  # The run started 30 s before its eval.
  run_dir.record_start(root_dir)  # A relaunch of the same run.
  run = plot_lib.read_run(root_dir)
  assert run.since_start and 29 < run.seconds[0] < 40
  assert run_dir.read_start(root_dir) == pytest.approx(first_start - 30)


def test_policy_checkpoints_keep_the_newest_complete_ones(tmp_path):
  root_dir = str(tmp_path)
  parent = os.path.join(run_dir.policies_dir(root_dir),
                        run_dir.POLICY_CHECKPOINTS_DIR)

  def make(step, complete=True):
    path = os.path.join(parent, f'policy_checkpoint_{step:010d}')
    os.makedirs(os.path.join(path, 'variables'))
    if complete:
      open(os.path.join(path, 'variables', 'variables.index'), 'w').close()
    return path

  make(50, complete=False)  # Left half written by a crash.
  old = [make(step) for step in (100, 200, 900)]
  kept = [make(step) for step in (1000, 1100, 10_000)]
  writing = make(10_100, complete=False)  # Being written now.
  assert run_dir.policy_checkpoints(root_dir) == old + kept
  run_dir.prune_policy_checkpoints(root_dir, kept=3)
  assert run_dir.policy_checkpoints(root_dir) == kept
  assert sorted(os.listdir(parent)) == [
      os.path.basename(path) for path in (*kept, writing)]
  run_dir.prune_policy_checkpoints(root_dir, kept=3)  # Nothing more to do.
  assert run_dir.policy_checkpoints(root_dir) == kept

