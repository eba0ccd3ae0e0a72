"""Learner train steps/s on 1 and 2 replicas, at the same global batch:
the default strategy, MirroredStrategy on one CPU device, and on 2 logical
CPU devices (the code path of a 2-GPU learner).

    .venv/bin/python -m benchmarks.replicas \
        [--experiments=cartpole_dqn,minitaur_sac] [--seconds=10] [--rounds=3]

Logical devices must be set before TensorFlow starts its own, so each
measurement is a process of its own (measure.in_child), training
through the production input (replay_input.distributed_replay) from one
Reverb server process whose table holds --items random transitions under
a MinSize limiter. The variants alternate for --rounds rounds; medians.
"""
import tempfile

from absl import app
from absl import flags
from absl import logging
import tensorflow as tf
from tf_agents.train import learner as tfa_learner

from benchmarks import experiments
from benchmarks.filled_table import fill
from benchmarks.filled_table import reverb_steps_per_sec
from benchmarks.measure import alternate
from benchmarks.measure import define_child
from benchmarks.measure import define_experiments
from benchmarks.measure import define_rounds
from benchmarks.measure import define_seconds
from benchmarks.measure import in_child
from benchmarks.measure import medians
from benchmarks.measure import run_child
from benchmarks.table import print_table
from common import agents
from common import envs
from common import settings
from common import specs as specs_lib
from common.config import StrategySettings
from learner import metrics as learner_metrics
from learner import replay_input
from learner import strategy as strategy_lib

_EXPERIMENTS = define_experiments(['cartpole_dqn', 'minitaur_sac'])
_SECONDS = define_seconds(10)
_ROUNDS = define_rounds(3)
_ITEMS = flags.DEFINE_integer('items', 20000, 'Transitions in the table.')
_CHILD = define_child()
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
  """measure_variant in a process of its own."""
  return in_child('benchmarks.replicas', [name, address],
                  [f'--seconds={_SECONDS.value}', *VARIANTS[variant]])


def measure(name: str):
  """{variant: (replicas, median steps/s, median data wait)}."""
  config = experiments.load(name)
  env = envs.load_env(config.env)
  agent, train_step = agents.make_agent(config, env)
  env.close()
  with experiments.server_process(name) as server:
    layout = specs_lib.specs_of(config, agent, train_step).replay_layout
    fill(server.address, layout, _ITEMS.value)
    runs = alternate(
        list(VARIANTS), _ROUNDS.value,
        lambda variant, _: run_worker(name, variant, server.address),
        lambda variant, _, result: print(f'{name} {variant}: {result}',
                                         flush=True))
  rates = medians({v: [r['rate'] for r in rs] for v, rs in runs.items()})
  waits = medians({v: [r['wait'] for r in rs] for v, rs in runs.items()})
  return {variant: (results[0]['replicas'], rates[variant], waits[variant])
          for variant, results in runs.items()}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  if run_child(_CHILD, measure_variant):
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
