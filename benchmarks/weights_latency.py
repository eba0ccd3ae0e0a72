"""Weight push + pull latency through Reverb on localhost, for DQN CartPole
and SAC Minitaur: how long new weights take to reach an actor, ignoring the
actor's pull interval.

    .venv/bin/python -m benchmarks.weights_latency \
        [--experiments=cartpole_dqn,minitaur_sac] [--repetitions=200]

The production path: the learner's WeightsSync.push() of its policy
variables + train_step to a Reverb server process over gRPC, then an
actor's WeightsSync.pull() into the variables of a second agent of the same
config. Each repetition times one push and the pull after it; the table
gives median and p90 of both and of their sum. One checked round trip of
random weights comes first, so the benchmark cannot time a no-op.
"""
import dataclasses
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np
import tensorflow as tf

from benchmarks import experiments
from benchmarks.measure import define_experiments
from benchmarks.table import print_table
from common import agents
from common import envs
from common.weights import WeightsSync
from common import specs as specs_lib

_EXPERIMENTS = define_experiments(['cartpole_dqn', 'minitaur_sac'])
_REPETITIONS = flags.DEFINE_integer(
    'repetitions', 200, 'Timed push + pull pairs per experiment.')
_WARM_UP = 5  # Untimed push + pull pairs (the first pull traces a function).
_SAC_TARGET_MS = 10.0  # The target for SAC push + pull on localhost.


def variables_of(config):
  """The variables nest (policy variables + train_step) of a new agent."""
  env = envs.load_env(config.env)
  agent, train_step = agents.make_agent(config, env)
  env.close()
  return specs_lib.variables_nest(agent, train_step)


def check_round_trip(learner: WeightsSync, learner_variables,
                     actor: WeightsSync, actor_variables) -> None:
  """Pushes random learner weights; raises unless the actor pulls them."""
  for variable in tf.nest.flatten(learner_variables):
    if variable.dtype.is_floating:
      variable.assign(np.random.uniform(-1, 1, variable.shape))
    else:
      variable.assign(np.random.randint(1, 1000, variable.shape))
  learner.push()
  version = actor.pull()
  pushed = [v.numpy() for v in tf.nest.flatten(learner_variables)]
  pulled = [v.numpy() for v in tf.nest.flatten(actor_variables)]
  if version != learner.version or not all(
      np.array_equal(a, b) for a, b in zip(pushed, pulled)):
    raise AssertionError('the pulled weights differ from the pushed ones')


@dataclasses.dataclass
class Row:
  experiment: str
  agent: str
  tensors: int
  kilobytes: float
  push_ms: np.ndarray  # [median, p90]
  pull_ms: np.ndarray
  total_ms: np.ndarray


def measure(name: str) -> Row:
  config = experiments.load(name)
  learner_variables = variables_of(config)
  actor_variables = variables_of(config)
  with experiments.server_process(name) as server:
    address = server.address
    learner = WeightsSync(address, learner_variables)
    actor = WeightsSync(address, actor_variables)
    check_round_trip(learner, learner_variables, actor, actor_variables)
    push_s, pull_s = [], []
    for repetition in range(_WARM_UP + _REPETITIONS.value):
      # A new version each time: a pull of the version held assigns nothing.
      learner_variables[specs_lib.TRAIN_STEP_KEY].assign_add(1)
      start = time.perf_counter()
      learner.push()
      pushed = time.perf_counter()
      actor.pull()
      pulled = time.perf_counter()
      if repetition >= _WARM_UP:
        push_s.append(pushed - start)
        pull_s.append(pulled - pushed)
  push_s, pull_s = np.array(push_s), np.array(pull_s)
  percentiles = lambda seconds: 1000 * np.percentile(seconds, [50, 90])
  flat = tf.nest.flatten(learner_variables)
  return Row(name, config.agent.kind, len(flat),
             sum(v.numpy().nbytes for v in flat) / 1024,
             percentiles(push_s), percentiles(pull_s),
             percentiles(push_s + pull_s))


def sac_verdict(rows) -> str:
  sac = [row for row in rows if row.agent == 'sac']
  if not sac:
    return 'SAC target not checked: no SAC experiment in --experiments.'
  worst = max(row.total_ms[0] for row in sac)
  met = 'met' if worst < _SAC_TARGET_MS else 'NOT met'
  return (f'SAC target (push + pull median < {_SAC_TARGET_MS:g} ms on '
          f'localhost): {met} ({worst:.1f} ms).')


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  rows = []
  for name in _EXPERIMENTS.value:
    row = measure(name)
    rows.append(row)
    print(f'{name}: push {row.push_ms[0]:.2f} ms, pull {row.pull_ms[0]:.2f} '
          f'ms, push + pull {row.total_ms[0]:.2f} ms (medians)', flush=True)
  print(f'\n{_REPETITIONS.value} repetitions; ms as median (p90); tensors '
        'are the policy variables + train_step.')
  print_table(('experiment', 'tensors', 'weights KB', 'push ms', 'pull ms',
               'push + pull ms'),
              ((row.experiment, row.tensors, f'{row.kilobytes:.1f}',
                *(f'{ms[0]:.2f} ({ms[1]:.2f})'
                  for ms in (row.push_ms, row.pull_ms, row.total_ms)))
               for row in rows))
  print('\n' + sac_verdict(rows))


if __name__ == '__main__':
  app.run(main)
