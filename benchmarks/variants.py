"""Variants of one experiment to its target return, on the same seeds.

    .venv/bin/python -m benchmarks.variants --set=replay --root_dir=/tmp/v \
        [--seeds=0,1,2] [--variants=uniform,n_step_3,...]
    .venv/bin/python -m benchmarks.variants --set=ppo --root_dir=/tmp/v
    .venv/bin/python -m benchmarks.variants --set=ppo_pendulum --root_dir=/tmp/v

replay: CartPole DQN, uniform replay vs prioritized replay and n-step
returns. ppo: CartPole PPO (synchronous) with 1 and 2 collect actors, and
training on items up to one iteration old (--max_policy_lag=1);
ppo_pendulum: Pendulum PPO, synchronous and with lag 1. Each run is
`deploy.launch_local` on the set's flagfile with the variant's flags, --seed, and the flagfile's target as
--stop_at_return and --max_train_steps. Seeds run in turn, each through
every variant (noise hits all alike). A run whose <root_dir>/<set>/<variant>/
seed_<n> already holds results is reported, not run again.

Prints train steps (PPO: and env steps) and seconds after launch to the
first evaluation at the target, per seed and the median, and from the
learner's records the median train steps/s and, for PPO, the stale items it
dropped.
"""
import math
import os
import statistics
import sys
from typing import List

from absl import app
from absl import flags

from benchmarks import experiments
from benchmarks import measure
from benchmarks.table import print_table
from benchmarks.targets import first_reached
from benchmarks.targets import flagfile_path
from benchmarks.targets import read_target
from common import cli

# Set: its flagfile, and each variant's flags on top of it.
SETS = {
    'replay': ('cartpole_dqn', {
        'uniform': [],
        'n_step_3': ['--n_step=3'],
        'prioritized': ['--replay_sampler=prioritized'],
        'prioritized_n_step_3': ['--replay_sampler=prioritized',
                                 '--n_step=3'],
    }),
    'ppo': ('cartpole_ppo', {
        'actors_1': ['--actors=1'],
        'actors_2': ['--actors=2'],
        'actors_1_lag_1': ['--actors=1', '--max_policy_lag=1'],
        'actors_2_lag_1': ['--actors=2', '--max_policy_lag=1'],
    }),
    'ppo_pendulum': ('pendulum_ppo', {
        'synchronous': ['--max_policy_lag=0'],
        'lag_1': ['--max_policy_lag=1'],
    }),
}

_SET = flags.DEFINE_enum('set', 'replay', list(SETS), 'Which variants.')
_ROOT_DIR = measure.define_root_dir(
    '/tmp/variants', 'One sub-directory per set, variant, seed.')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds per variant.')
_VARIANTS = flags.DEFINE_list('variants', None,
                              'Which to run (unset: all of the set).')


def _median_cell(values: List[float], digits: int = 0) -> List[str]:
  """[per-value list, median], 'not reached' for infinities."""
  shown = [f'{v:.{digits}f}' if math.isfinite(v) else 'not reached'
           for v in values]
  median = statistics.median(values)
  return [', '.join(shown),
          f'{median:.{digits}f}' if math.isfinite(median) else 'not reached']


def _learner_numbers(root: str):
  """(median recorded train steps/s, stale items dropped as last recorded
  in a progress or the finished record); None and '-' for a run whose
  learner recorded none."""
  learner = measure.learner_records(root)
  rates = [r['Learner/train_steps_per_sec'] for r in
           measure.progress_with(learner, 'Learner/train_steps_per_sec')]
  dropped = measure.last_value(learner, 'stale_items_dropped')
  return (statistics.median(rates) if rates else None,
          int(dropped) if dropped is not None else '-')


def main(argv):
  del argv
  experiment, variants = SETS[_SET.value]
  names = _VARIANTS.value or list(variants)
  unknown = set(names) - set(variants)
  if unknown:
    raise app.UsageError(f'--variants: unknown {sorted(unknown)}; '
                         f'known in --set={_SET.value}: {list(variants)}')
  target = read_target(experiment)
  config = cli.parse_experiment([f'--flagfile={flagfile_path(experiment)}'])
  env_steps_per_train_step = (
      config.ppo.steps_per_iteration /
      config.ppo.train_steps_per_iteration(config.agent.batch_size)
      if config.agent.kind == 'ppo' else None)
  seeds = list(map(int, _SEEDS.value))
  def run(name, seed_index):
    seed = seeds[seed_index]
    root = os.path.join(_ROOT_DIR.value, _SET.value, name, f'seed_{seed}')
    experiments.run_to_results(f'{name} seed {seed}', [
        sys.executable, '-m', 'deploy.launch_local',
        f'--flagfile={flagfile_path(experiment)}', *variants[name],
        f'--seed={seed}', f'--max_train_steps={target.train_steps}',
        f'--stop_at_return={target.average_return}', f'--root_dir={root}'],
                               root)
    reached = first_reached(root, target) or (math.inf, math.inf)
    return (*reached, *_learner_numbers(root))
  # Each seed through every variant in turn (noise hits all alike).
  runs = measure.alternate(
      names, len(seeds), run,
      lambda name, seed_index, result: print(
          f'{name} seed {seeds[seed_index]}: {result}', flush=True))

  rows = []
  for name, results in runs.items():
    steps = [r[0] for r in results]
    row = [name, ' '.join(variants[name]) or '-', *_median_cell(steps)]
    if env_steps_per_train_step:
      row += _median_cell([s * env_steps_per_train_step for s in steps])
    row += _median_cell([r[1] for r in results])
    rates = [r[2] for r in results if r[2] is not None]
    row.append(f'{statistics.median(rates):.0f}' if rates else '-')
    if env_steps_per_train_step:
      row.append(', '.join(str(r[3]) for r in results))
    rows.append(row)
  header = ['variant', 'flags', 'train steps to target (per seed)', 'median']
  if env_steps_per_train_step:
    header += ['env steps to target (per seed)', 'median']
  header += ['s after launch (per seed)', 'median', 'train steps/s']
  if env_steps_per_train_step:
    header.append('stale items dropped (per seed)')
  print(f'{experiment}: target eval return >= {target.average_return:g} '
        f'within {target.train_steps} train steps')
  print_table(header, rows)


if __name__ == '__main__':
  app.run(main)
