"""SAC Minitaur learning curves: the SAC tutorial's loop vs our topology.

    .venv/bin/python -m benchmarks.minitaur_curves --root_dir=/tmp/curves \
        [--sides=tutorial,topology] [--max_train_steps=100000] [--seed=0]

Both sides train configs/minitaur_sac.flags (the tutorial's settings: 10000
random initial steps, batch 256, a 10000-item table, 20 greedy eval episodes
every 10000 train steps) with the same seed, one after the other, each in
fresh processes:
  - tutorial: benchmarks/tutorial.py's loop, collect 1 step and train 1
    step per iteration, evaluating inside the loop (at step 0, then every
    eval_every_steps), as the tutorial does;
  - topology: deploy.launch_local (server, 2 collect actors at the
    flagfile's 1:1 sample-to-insert ratio, learner, eval actor beside them).
Each writes <root_dir>/<side>/eval/returns.csv and the time it started, so
`report.plot` draws both (it prints the command and writes
<root_dir>/returns.png). The table gives each side's return and wall time at
the evaluations nearest 25k, 50k and 100k train steps.
"""
import os
import shlex
import subprocess
import sys
from typing import List, Optional

from absl import app
from absl import flags

from benchmarks import experiments
from benchmarks import measure
from benchmarks.experiments import PROJECT_ROOT
from benchmarks.table import print_table
from common import cli
from common import run_dir

SIDES = ('tutorial', 'topology')
_LABELS = {'tutorial': 'tutorial loop', 'topology': 'topology'}
_FLAGFILE = os.path.join(PROJECT_ROOT, 'configs', 'minitaur_sac.flags')

_ROOT_DIR = measure.define_root_dir('/tmp/minitaur_curves',
                                    'One sub-directory per side goes here.')
_SIDES = flags.DEFINE_list('sides', list(SIDES),
                           f'Which of {SIDES} to run, in this order.')
_MAX_TRAIN_STEPS = flags.DEFINE_integer('max_train_steps', 100000,
                                        'Train steps for each side.')
_SEED = flags.DEFINE_integer('seed', 0, 'The experiment seed, both sides.')
_MARKS = flags.DEFINE_list('marks', ['25000', '50000', '100000'],
                           'Train steps the table reports.')
_EXTRA = flags.DEFINE_multi_string(
    'extra', [], 'More experiment flags for both sides (smoke runs), e.g. '
    '--extra=--initial_collect_steps=500.')
_CHILD = measure.define_child()


def experiment_args() -> List[str]:
  return [f'--flagfile={_FLAGFILE}', f'--seed={_SEED.value}',
          f'--max_train_steps={_MAX_TRAIN_STEPS.value}', *_EXTRA.value]


def tutorial_main(root_dir: str) -> None:
  """The tutorial's loop, in this process, to max_train_steps."""
  from benchmarks import tutorial  # pylint: disable=g-import-not-at-top
  config = cli.parse_experiment(experiment_args())
  loop = tutorial.TutorialLoop(
      config, root_dir,
      policy_save_every_steps=config.train.policy_save_every_steps)
  loop.collect_initial(config.replay.initial_collect_steps)
  every = config.train.eval_every_steps
  print(f'step 0: eval return {loop.evaluate():.2f}', flush=True)
  step = 0
  while step < config.train.max_train_steps:
    step = loop.iteration()
    if step % every == 0 or step == config.train.max_train_steps:
      print(f'step {step}: eval return {loop.evaluate():.2f}', flush=True)
  loop.close()


def run_side(side: str) -> str:
  """Runs one side to the end; its root_dir."""
  root = os.path.join(_ROOT_DIR.value, side)
  if side == 'tutorial':
    command = measure.child_command('benchmarks.minitaur_curves', [root],
                                    _forwarded_flags())
  else:
    command = [sys.executable, '-m', 'deploy.launch_local',
               *experiment_args(), f'--root_dir={root}']
  return experiments.run_to_results(side, command, root,
                                    record_start=side == 'tutorial')


def _forwarded_flags() -> List[str]:
  return [f'--seed={_SEED.value}', f'--max_train_steps={_MAX_TRAIN_STEPS.value}',
          *[f'--extra={e}' for e in _EXTRA.value]]


def nearest_eval(rows: List[dict], started: float, step: int) -> Optional[str]:
  """'return @ train step, wall s' of the evaluation nearest `step`."""
  if not rows:
    return None
  row = min(rows, key=lambda r: abs(int(r['train_step']) - step))
  return (f'{float(row["average_return"]):.2f} @ {row["train_step"]}, '
          f'{float(row["wall_time"]) - started:.0f}s')


def report(roots: List[str]) -> None:
  table = []
  for side, root in zip(_SIDES.value, roots):
    rows = run_dir.read_eval_returns(run_dir.returns_csv_path(root))
    started = run_dir.read_start(root)
    table.append((_LABELS[side], *[nearest_eval(rows, started, int(m)) or '-'
                                   for m in _MARKS.value]))
  print_table(('side', *[f'return @ step, wall time (near {int(m) // 1000}k)'
                         for m in _MARKS.value]), table)
  out = os.path.join(_ROOT_DIR.value, 'returns.png')
  command = [sys.executable, '-m', 'report.plot',
             *[f'--root_dir={root}' for root in roots],
             f'--labels={",".join(_LABELS[s] for s in _SIDES.value)}',
             f'--out={out}', '--title=SAC Minitaur: average eval return']
  print(shlex.join(command), flush=True)
  subprocess.run(command, cwd=PROJECT_ROOT, check=True)


def main(argv):
  del argv
  if measure.run_child(_CHILD, tutorial_main):
    return
  unknown = set(_SIDES.value) - set(SIDES)
  if unknown:
    raise app.UsageError(f'--sides: unknown {sorted(unknown)}; pick from '
                         f'{SIDES}')
  report([run_side(side) for side in _SIDES.value])


if __name__ == '__main__':
  app.run(main)
