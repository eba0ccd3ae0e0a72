"""PPO's throughput under the launcher with 1 and 2 collect actors.

    .venv/bin/python -m benchmarks.ppo_throughput --root_dir=/tmp/ppo_tp \
        [--experiment=cartpole_ppo] [--actors=1,2] [--rounds=3] \
        [--max_train_steps=1600]

Each run is `deploy.launch_local` on the flagfile with --actors=N, no eval
actor, to --max_train_steps; rounds alternate the actor counts. From the
learner's progress records (every --log_every_steps), between the first and
the last: env steps trained per second, train steps per second, and the
share of the collected steps the learner dropped as stale. Prints the
medians over rounds.
"""
import os
import statistics

from absl import app
from absl import flags

from benchmarks import measure
from benchmarks.table import print_table
from benchmarks.targets import flagfile_path
from common import cli

_ROOT_DIR = measure.define_root_dir('/tmp/ppo_throughput',
                                    'Runs go here (replaced).')
_EXPERIMENT = flags.DEFINE_string('experiment', 'cartpole_ppo',
                                  'configs/<name>.flags, a PPO one.')
_ACTORS = flags.DEFINE_list('actors', ['1', '2'], 'Actor counts to compare.')
_ROUNDS = measure.define_rounds(3, 'Rounds (alternating).')
_MAX_TRAIN_STEPS = flags.DEFINE_integer('max_train_steps', 1600,
                                        'Train steps per run.')



def rates(learner_records, sequence_length: int) -> dict:
  """Rates between the learner's first and last progress record that hold
  the PPO counters."""
  points = measure.progress_with(learner_records, 'env_steps_trained')
  if len(points) < 2:
    raise RuntimeError('fewer than 2 PPO progress records from the learner')
  first, last = points[0], points[-1]
  seconds = last.time - first.time
  trained = last['env_steps_trained'] - first['env_steps_trained']
  dropped_steps = (last['stale_items_dropped'] -
                   first['stale_items_dropped']) * sequence_length
  return {'env_steps_per_s': trained / seconds,
          'train_steps_per_s': (last['train_step'] -
                                first['train_step']) / seconds,
          'dropped_share': dropped_steps / (trained + dropped_steps)}


def run(actors: int, round_index: int, sequence_length: int) -> dict:
  root = os.path.join(_ROOT_DIR.value, f'actors_{actors}_round_{round_index}')
  learner_records = measure.run_launcher(root, [
      f'--flagfile={flagfile_path(_EXPERIMENT.value)}', f'--actors={actors}',
      '--eval=false', f'--max_train_steps={_MAX_TRAIN_STEPS.value}'])
  return rates(learner_records, sequence_length)


def main(argv):
  del argv
  config = cli.parse_experiment(
      [f'--flagfile={flagfile_path(_EXPERIMENT.value)}'])
  if config.agent.kind != 'ppo':
    raise app.UsageError(f'{_EXPERIMENT.value} is not a PPO experiment')
  counts = [int(a) for a in _ACTORS.value]
  results = measure.alternate(
      counts, _ROUNDS.value,
      lambda count, round_index: run(count, round_index,
                                     config.ppo.sequence_length),
      lambda count, round_index, result: print(
          f'{count} actor(s), round {round_index}: {result}', flush=True))
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
