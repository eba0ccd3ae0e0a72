"""PPO's throughput under the launcher with 1 and 2 collect actors.

    .venv/bin/python -m benchmarks.ppo_throughput --root_dir=/tmp/ppo_tp \
        [--experiment=cartpole_ppo] [--actors=1,2] [--rounds=3] \
        [--max_train_steps=1600]

Each run is `deploy.launch_local` on the flagfile with --actors=N, no eval
actor, to --max_train_steps; rounds alternate the actor counts. From the
learner's progress lines (every --log_every_steps), between the first and
the last: env steps trained per second, train steps per second, and the
share of the collected steps the learner dropped as stale. Prints the
medians over rounds.
"""
import datetime
import os
import re
import shutil
import statistics
import subprocess
import sys

from absl import app
from absl import flags

from benchmarks import experiments
from benchmarks.table import print_table
from benchmarks.targets import flagfile_path
from common import cli
from common import run_dir

_ROOT_DIR = flags.DEFINE_string('root_dir', '/tmp/ppo_throughput',
                                'Runs go here (replaced).')
_EXPERIMENT = flags.DEFINE_string('experiment', 'cartpole_ppo',
                                  'configs/<name>.flags, a PPO one.')
_ACTORS = flags.DEFINE_list('actors', ['1', '2'], 'Actor counts to compare.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Rounds (alternating).')
_MAX_TRAIN_STEPS = flags.DEFINE_integer('max_train_steps', 1600,
                                        'Train steps per run.')

_PROGRESS = re.compile(
    r'^I\d{4} (\d\d:\d\d:\d\d\.\d+) .*train_step=(\d+) PPO: \d+ iterations, '
    r'(\d+) env steps trained \(\d+ each\), (\d+) stale items dropped',
    re.MULTILINE)


def measure(log_text: str, sequence_length: int) -> dict:
  """Rates between the first and the last progress line of a learner log."""
  lines = _PROGRESS.findall(log_text)
  if len(lines) < 2:
    raise RuntimeError('fewer than 2 PPO progress lines in the learner log')
  (t0, step0, trained0, dropped0), (t1, step1, trained1, dropped1) = (
      lines[0], lines[-1])
  seconds = (datetime.datetime.strptime(t1, '%H:%M:%S.%f') -
             datetime.datetime.strptime(t0, '%H:%M:%S.%f')).total_seconds()
  trained = int(trained1) - int(trained0)
  dropped_steps = (int(dropped1) - int(dropped0)) * sequence_length
  return {'env_steps_per_s': trained / seconds,
          'train_steps_per_s': (int(step1) - int(step0)) / seconds,
          'dropped_share': dropped_steps / (trained + dropped_steps)}


def run(actors: int, round_index: int, sequence_length: int) -> dict:
  root = os.path.join(_ROOT_DIR.value, f'actors_{actors}_round_{round_index}')
  shutil.rmtree(root, ignore_errors=True)
  os.makedirs(root)
  command = [sys.executable, '-m', 'deploy.launch_local',
             f'--flagfile={flagfile_path(_EXPERIMENT.value)}',
             f'--actors={actors}', '--eval=false',
             f'--max_train_steps={_MAX_TRAIN_STEPS.value}',
             f'--root_dir={root}']
  with open(os.path.join(root, 'launcher.out'), 'w') as out:
    subprocess.run(command, cwd=experiments.PROJECT_ROOT, stdout=out,
                   stderr=subprocess.STDOUT, check=True)
  with open(run_dir.log_path(root, 'learner'), errors='replace') as f:
    return measure(f.read(), sequence_length)


def main(argv):
  del argv
  config = cli.parse_experiment(
      [f'--flagfile={flagfile_path(_EXPERIMENT.value)}'])
  if not config.on_policy:
    raise app.UsageError(f'{_EXPERIMENT.value} is not a PPO experiment')
  counts = [int(a) for a in _ACTORS.value]
  results = {count: [] for count in counts}
  for round_index in range(_ROUNDS.value):
    for count in counts:
      results[count].append(run(count, round_index,
                                config.ppo.sequence_length))
      print(f'{count} actor(s), round {round_index}: {results[count][-1]}',
            flush=True)
  base = statistics.median(r['env_steps_per_s'] for r in results[counts[0]])
  rows = []
  for count, runs in results.items():
    median = {key: statistics.median(r[key] for r in runs)
              for key in runs[0]}
    rows.append((count, f'{median["env_steps_per_s"]:.0f}',
                 f'{median["env_steps_per_s"] / base:.2f}',
                 f'{median["train_steps_per_s"]:.1f}',
                 f'{100 * median["dropped_share"]:.0f}%'))
  print(f'{_EXPERIMENT.value}: {config.ppo.steps_per_iteration} env steps '
        f'per iteration, {config.train.envs_per_actor} envs per actor, '
        f'{_ROUNDS.value} rounds, medians')
  print_table(('actors', 'env steps trained/s', f'vs {counts[0]} actor(s)',
               'train steps/s', 'collected steps dropped as stale'), rows)


if __name__ == '__main__':
  app.run(main)
