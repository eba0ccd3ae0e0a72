"""CartPole DQN to eval return 200: uniform replay vs prioritized replay and
n-step returns, on the same seeds.

    .venv/bin/python -m benchmarks.replay_variants --root_dir=/tmp/variants \
        [--seeds=0,1,2] [--variants=uniform,n_step_3,prioritized,...]

Each run is `deploy.launch_local` on configs/cartpole_dqn.flags with the
variant's flags, --seed, --stop_at_return=200 and --max_train_steps=20000
(the flagfile's target). Seeds run in turn, each through every variant
(noise hits all alike). A run whose <root_dir>/<variant>/seed_<n> already
holds results is reported, not run again. Prints train steps and seconds
after launch to the first evaluation of 200, per seed and the median.
"""
import math
import os
import statistics
import sys

from absl import app
from absl import flags

from benchmarks import experiments
from benchmarks.table import print_table
from benchmarks.targets import first_reached
from benchmarks.targets import flagfile_path
from benchmarks.targets import read_target

# Variant: its flags on top of configs/cartpole_dqn.flags.
VARIANTS = {
    'uniform': [],
    'n_step_3': ['--n_step=3'],
    'prioritized': ['--replay_sampler=prioritized'],
    'prioritized_n_step_3': ['--replay_sampler=prioritized', '--n_step=3'],
}

_ROOT_DIR = flags.DEFINE_string('root_dir', '/tmp/replay_variants',
                                'One sub-directory per variant and seed.')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds per variant.')
_VARIANTS = flags.DEFINE_list('variants', list(VARIANTS), 'Which to run.')


def main(argv):
  del argv
  unknown = set(_VARIANTS.value) - set(VARIANTS)
  if unknown:
    raise app.UsageError(f'--variants: unknown {sorted(unknown)}; '
                         f'known: {list(VARIANTS)}')
  target = read_target('cartpole_dqn')
  results = {name: [] for name in _VARIANTS.value}
  for seed in map(int, _SEEDS.value):
    for name in _VARIANTS.value:
      root = os.path.join(_ROOT_DIR.value, name, f'seed_{seed}')
      experiments.run_to_results(f'{name} seed {seed}', [
          sys.executable, '-m', 'deploy.launch_local',
          f'--flagfile={flagfile_path("cartpole_dqn")}', *VARIANTS[name],
          f'--seed={seed}', f'--max_train_steps={target.train_steps}',
          f'--stop_at_return={target.average_return}', f'--root_dir={root}'],
                                 root)
      results[name].append(first_reached(root, target) or (math.inf,
                                                            math.inf))
      print(f'{name} seed {seed}: {results[name][-1]}', flush=True)

  def cells(values, digits=0):
    finite = [f'{v:.{digits}f}' if math.isfinite(v) else 'not reached'
              for v in values]
    median = statistics.median(values)
    return ', '.join(finite), (f'{median:.{digits}f}'
                               if math.isfinite(median) else 'not reached')

  rows = []
  for name, runs in results.items():
    steps, steps_median = cells([r[0] for r in runs])
    seconds, seconds_median = cells([r[1] for r in runs])
    rows.append((name, ' '.join(VARIANTS[name]) or '-', steps, steps_median,
                 seconds, seconds_median))
  print_table(('variant', 'flags', 'train steps to 200 (per seed)', 'median',
               's after launch (per seed)', 'median'), rows)


if __name__ == '__main__':
  app.run(main)
