"""Shipped experiments run to the return their flagfile states.

    .venv/bin/python -m benchmarks.returns --root_dir=/tmp/returns \
        [--experiments=cartpole_dqn,acrobot_dqn,pendulum_sac] [--seed=0]

Each configs/<name>.flags states its target in a comment line
    # Target: eval return >= R within N train steps.
This runs `deploy.launch_local` on the flagfile with --stop_at_return=R and
--max_train_steps=N, one experiment at a time, and prints: target, reached,
train steps and wall seconds (from launch) to the first evaluation at or
above R, and the last evaluation's return. An experiment whose
<root_dir>/<name> already holds results is reported, not run again (e.g. the
topology side of benchmarks.minitaur_curves, linked there).
"""
import os
import sys
from typing import List

from absl import app
from absl import flags

from benchmarks import experiments
from benchmarks import measure
from benchmarks.targets import SHIPPED
from benchmarks.targets import Target
from benchmarks.targets import TARGET_LINE
from benchmarks.targets import first_reached
from benchmarks.targets import flagfile_path
from benchmarks.targets import read_target
from benchmarks.table import print_table
from common import run_dir

_ROOT_DIR = measure.define_root_dir(
    '/tmp/returns', 'One sub-directory per experiment goes here.')
_EXPERIMENTS = measure.define_experiments(
    SHIPPED, 'configs/<name>.flags to run, in order.')
_SEED = flags.DEFINE_integer('seed', 0, 'The experiments\' seed.')


def run(name: str, target: Target) -> str:
  """Runs one experiment (unless its results exist); its root_dir."""
  root = os.path.join(_ROOT_DIR.value, name)
  return experiments.run_to_results(name, [
      sys.executable, '-m', 'deploy.launch_local',
      f'--flagfile={flagfile_path(name)}', f'--seed={_SEED.value}',
      f'--max_train_steps={target.train_steps}',
      f'--stop_at_return={target.average_return}', f'--root_dir={root}'], root)


def result_row(name: str, target: Target, root: str) -> List[str]:
  rows = run_dir.read_eval_returns(run_dir.returns_csv_path(root))
  reached = first_reached(root, target)
  final = f'{float(rows[-1]["average_return"]):.1f}' if rows else '-'
  return [name, f'>= {target.average_return:g} in {target.train_steps}',
          'yes' if reached else 'no',
          str(reached[0]) if reached else '-',
          f'{reached[1]:.0f}' if reached else '-', final]


def main(argv):
  del argv
  targets = {}
  for name in _EXPERIMENTS.value:
    if not os.path.exists(flagfile_path(name)):
      raise app.UsageError(f'--experiments: no {flagfile_path(name)}')
    targets[name] = read_target(name)
    if targets[name] is None:
      raise app.UsageError(f'{flagfile_path(name)} states no target line '
                           f'"{TARGET_LINE.pattern}"')
  rows = [result_row(name, target, run(name, target))
          for name, target in targets.items()]
  print_table(('experiment', 'target', 'reached', 'train steps to target',
               'wall s to target', 'last eval return'), rows)


if __name__ == '__main__':
  app.run(main)
