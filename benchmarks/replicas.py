"""Learner train steps/s on 1 and 2 replicas, at the same global batch:
the default strategy, MirroredStrategy on one CPU device, and on 2 logical
CPU devices (the code path of a 2-GPU learner).

    .venv/bin/python -m benchmarks.replicas \
        [--experiments=cartpole_dqn,minitaur_sac] [--seconds=10] [--rounds=3]

Logical devices must be set before TensorFlow starts its own, so each
measurement is a process of its own (this module with --worker_at), training
through the production input (replay_input.distributed_replay) from one
Reverb server process whose table holds --items random transitions under
a MinSize limiter. The variants alternate for --rounds rounds; medians.
"""
import json
import statistics
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf
from tf_agents.train import learner as tfa_learner

from benchmarks import experiments
from benchmarks.filled_table import fill
from benchmarks.filled_table import reverb_steps_per_sec
from benchmarks.table import print_table
from common import agents
from common import envs
from common import settings
from common import specs as specs_lib
from common.config import StrategySettings
from learner import metrics as learner_metrics
from learner import replay_input
from learner import strategy as strategy_lib

_EXPERIMENTS = flags.DEFINE_list(
    'experiments', ['cartpole_dqn', 'minitaur_sac'], 'configs/<name>.flags.')
_SECONDS = flags.DEFINE_float('seconds', 10, 'Length of one measurement.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Alternating rounds.')
_ITEMS = flags.DEFINE_integer('items', 20000, 'Transitions in the table.')
_WORKER_AT = flags.DEFINE_string(
    'worker_at', None, 'Internal: measure the learner given by the strategy '
    'flags against this Reverb address, print the result as JSON.')
settings.define_flags(StrategySettings, module_name=__name__)

# Variant name: the learner's strategy flags.
VARIANTS = {
    'default': ['--strategy=default'],
    'mirrored, 1 device': ['--strategy=mirrored'],
    'mirrored, 2 CPU replicas': ['--strategy=mirrored', '--cpu_replicas=2'],
}


def measure_variant(name: str, address: str) -> dict:
  """A learner on the strategy flags against the filled table: train
  steps/s and the fraction of that time it waited for data."""
  config = experiments.load(name)
  # First: logical devices are set before TensorFlow starts its own.
  strategy = strategy_lib.make_strategy(
      settings.from_flags(StrategySettings), 30)
  tf.keras.utils.set_random_seed(config.seed)
  env = envs.load_env(config.env)
  with strategy.scope():
    agent, train_step = agents.make_agent(config, env)
  env.close()
  layout = specs_lib.specs_of(config, agent, train_step).replay_layout
  iterator = learner_metrics.TimedIterator(replay_input.distributed_replay(
      strategy, address, layout,
      replay_input.per_replica_batch(config.agent.batch_size,
                                     strategy.num_replicas_in_sync)))
  learner = tfa_learner.Learner(tempfile.mkdtemp(), train_step, agent,
                                summary_interval=0, strategy=strategy)
  iterations = config.train.push_every_steps
  reverb_steps_per_sec(learner, iterator, iterations, 3.0)  # Warm up.
  rate, wait = reverb_steps_per_sec(learner, iterator, iterations,
                                    _SECONDS.value)
  return {'replicas': strategy.num_replicas_in_sync, 'rate': rate,
          'wait': wait}


def run_worker(name: str, variant: str, address: str) -> dict:
  """measure_variant in a process of its own; its result line."""
  result = subprocess.run(
      [sys.executable, '-m', 'benchmarks.replicas',
       f'--experiments={name}', f'--worker_at={address}',
       f'--seconds={_SECONDS.value}', *VARIANTS[variant]],
      cwd=experiments.PROJECT_ROOT, capture_output=True, text=True,
      check=False)
  if result.returncode:
    raise RuntimeError(f'{variant} on {name} failed:\n{result.stderr[-3000:]}')
  return json.loads(result.stdout.strip().splitlines()[-1])


def measure(name: str):
  """{variant: (replicas, median steps/s, median data wait)}."""
  config = experiments.load(name)
  env = envs.load_env(config.env)
  agent, train_step = agents.make_agent(config, env)
  env.close()
  runs = {variant: [] for variant in VARIANTS}
  with experiments.server_process(name) as server:
    layout = specs_lib.specs_of(config, agent, train_step).replay_layout
    fill(server.address, layout, _ITEMS.value)
    for _ in range(_ROUNDS.value):
      for variant, results in runs.items():
        results.append(run_worker(name, variant, server.address))
        print(f'{name} {variant}: {results[-1]}', flush=True)
  return {variant: (results[0]['replicas'],
                    statistics.median(r['rate'] for r in results),
                    statistics.median(r['wait'] for r in results))
          for variant, results in runs.items()}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  if _WORKER_AT.value:
    print(json.dumps(measure_variant(_EXPERIMENTS.value[0],
                                     _WORKER_AT.value)))
    return
  rows = []
  for name in _EXPERIMENTS.value:
    batch = experiments.load(name).agent.batch_size
    results = measure(name)
    base = results['default'][1]
    for variant, (replicas, rate, wait) in results.items():
      rows.append((name, variant, f'{replicas} x {batch // replicas}',
                   f'{rate:.1f}', f'{100 * wait:.0f}%', f'{rate / base:.2f}'))
  print_table(('experiment', 'strategy', 'replicas x batch', 'steps/s',
               'data wait', '/ default'), rows)


if __name__ == '__main__':
  app.run(main)
