"""Learner train steps/s on Reverb data vs the same agent.train on one fixed
in-memory batch (the limit), for DQN CartPole (uniform, and prioritized with
3-step returns) and SAC Minitaur.

    .venv/bin/python -m benchmarks.learner_throughput \
        [--experiments=cartpole_dqn,cartpole_dqn_per,minitaur_sac] \
        [--seconds=10] [--rounds=3]

On Reverb, the TF-Agents Learner runs --push_every_steps steps per call
through the timed iterator, fed by the production input pipeline
(learner/replay_input.py). The Reverb server is a separate process whose
table holds --items random transitions, packed as actors pack them, under a
MinSize limiter, so sampling never waits for actors. The two alternate for
--rounds rounds; medians.
"""
import statistics
import tempfile
import time

from absl import app
from absl import flags
from absl import logging
from tf_agents.train import learner as tfa_learner
from tf_agents.utils import common as tfa_common

from benchmarks import experiments
from benchmarks.measure import alternate
from benchmarks.measure import define_experiments
from benchmarks.measure import define_rounds
from benchmarks.measure import define_seconds
from benchmarks.filled_table import fill
from benchmarks.filled_table import reverb_steps_per_sec
from benchmarks.table import print_table
from common import agents
from common import envs
from common import specs as specs_lib
from learner import metrics as learner_metrics
from learner import priorities
from learner import replay_input

_EXPERIMENTS = define_experiments(
    ['cartpole_dqn', 'cartpole_dqn_per', 'minitaur_sac'])
_SECONDS = define_seconds(10)
_ROUNDS = define_rounds(3)
_IN_MEMORY = 'in memory'  # The limit, measured after the inputs each round.
_ITEMS = flags.DEFINE_integer('items', 20000, 'Transitions in the table.')


def memory_steps_per_sec(train, experience: dict, seconds):
  """agent.train on one batch (its keyword arguments), over and over."""
  steps, start = 0, time.monotonic()
  while time.monotonic() - start < seconds:
    train(**experience)
    steps += 1
  return steps / (time.monotonic() - start)


def measure(name: str):
  """Medians of train steps/s: {input: (rate, data wait)}, in-memory rate."""
  config = experiments.load(name)
  env = envs.load_env(config.env)
  agent, train_step = agents.make_agent(config, env)
  env.close()
  with experiments.server_process(name) as server:
    address = server.address
    layout = specs_lib.specs_of(config, agent, train_step).replay_layout
    fill(address, layout, _ITEMS.value)
    prioritized = priorities.prioritized_training(config.replay, address)
    dataset = replay_input.replay_dataset(
        address, layout, config.agent.batch_size,
        importance=prioritized and prioritized.importance)
    iterators = {'ours': learner_metrics.TimedIterator(iter(dataset))}
    learner = tfa_learner.Learner(
        tempfile.mkdtemp(), train_step, agent, summary_interval=0,
        **(prioritized.learner_kwargs if prioritized else {}))
    batch, _ = next(iter(dataset))  # One fixed batch.
    experience = batch if prioritized else {'experience': batch}
    train = tfa_common.function(agent.train)
    iterations = config.train.push_every_steps
    for iterator in iterators.values():  # Warm up.
      reverb_steps_per_sec(learner, iterator, iterations, 2.0)
    memory_steps_per_sec(train, experience, 2.0)
    def measure_one(key, _):
      if key == _IN_MEMORY:
        return memory_steps_per_sec(train, experience, _SECONDS.value)
      return reverb_steps_per_sec(learner, iterators[key], iterations,
                                  _SECONDS.value)
    runs = alternate([*iterators, _IN_MEMORY], _ROUNDS.value, measure_one)
  in_memory = runs.pop(_IN_MEMORY)
  medians = {key: (statistics.median(r for r, _ in rates),
                   statistics.median(w for _, w in rates))
             for key, rates in runs.items()}
  return medians, statistics.median(in_memory)


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  rows = []
  for name in _EXPERIMENTS.value:
    on_reverb, limit = measure(name)
    rows.append((name, experiments.load(name).agent.batch_size, on_reverb,
                 limit))
    print(f'{name}: {on_reverb}, in memory {limit:.1f}/s', flush=True)
  def cells(name, batch, on_reverb, limit):
    rate, wait = on_reverb['ours']
    yield from (f'{rate:.1f} ({100 * wait:.0f}%)', f'{rate / limit:.2f}')
  print_table(('experiment', 'batch', 'in-memory limit',
               'on Reverb (data wait)', '/ limit'),
              ((row[0], row[1], f'{row[3]:.1f}', *cells(*row))
               for row in rows))


if __name__ == '__main__':
  app.run(main)
