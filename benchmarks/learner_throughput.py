"""Learner train steps/s on Reverb data vs the same agent.train on one fixed
in-memory batch (the limit), for DQN CartPole and SAC Minitaur.

    .venv/bin/python -m benchmarks.learner_throughput \
        [--experiments=cartpole_dqn,minitaur_sac] [--seconds=10] [--rounds=3]

The Reverb side is the production path (learner/train.py's dataset, the
TF-Agents Learner running --push_every_steps steps per call, the timed
iterator) against a Reverb server in this process whose table holds
--items random transitions under a MinSize limiter, so sampling never
waits for actors. Both sides alternate for --rounds rounds; medians.
"""
import statistics
import tempfile
import time

from absl import app
from absl import flags
from absl import logging
import numpy as np
import reverb
import tensorflow as tf
from tf_agents.specs import tensor_spec
from tf_agents.train import learner as tfa_learner
from tf_agents.utils import common as tfa_common

from benchmarks import experiments
from common import agents
from common import envs
from common.config import REPLAY_TABLE
from learner import metrics as learner_metrics
from learner import train as learner_train

_EXPERIMENTS = flags.DEFINE_list(
    'experiments', ['cartpole_dqn', 'minitaur_sac'], 'configs/<name>.flags.')
_SECONDS = flags.DEFINE_float('seconds', 10, 'Length of one measurement.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Alternating rounds.')
_ITEMS = flags.DEFINE_integer('items', 20000, 'Transitions in the table.')


def fill(address, agent, items: int) -> None:
  """Random transitions of the agent's collect data spec (floats in
  [-1, 1]: unbounded specs would sample values that overflow the loss)."""
  def bounded(tensor):
    value = tensor.numpy()
    if np.issubdtype(value.dtype, np.floating):
      return np.random.uniform(-1, 1, value.shape).astype(value.dtype)
    return value
  steps = [tf.nest.map_structure(bounded, tensor_spec.sample_spec_nest(
      agent.collect_data_spec, outer_dims=())) for _ in range(500)]
  with reverb.Client(address).trajectory_writer(num_keep_alive_refs=2) as w:
    for i in range(items + 1):
      w.append(steps[i % len(steps)])
      if i:
        w.create_item(REPLAY_TABLE, 1.0, tf.nest.map_structure(
            lambda column: column[-2:], w.history))
      if i % 1000 == 0:
        w.flush()


def reverb_steps_per_sec(learner, iterator, iterations, seconds):
  waited = float(iterator.waited_s.numpy())
  first, start = learner.train_step_numpy, time.monotonic()
  while time.monotonic() - start < seconds:
    learner.run(iterations=iterations, iterator=iterator)
  elapsed = time.monotonic() - start
  return ((learner.train_step_numpy - first) / elapsed,
          (float(iterator.waited_s.numpy()) - waited) / elapsed)


def memory_steps_per_sec(train, experience, seconds):
  steps, start = 0, time.monotonic()
  while time.monotonic() - start < seconds:
    train(experience)
    steps += 1
  return steps / (time.monotonic() - start)


def measure(config):
  env = envs.load_env(config.env)
  agent, train_step = agents.make_agent(config, env)
  env.close()
  server, address = experiments.start_server(config)
  fill(address, agent, _ITEMS.value)
  settings = learner_train.LearnerSettings(
      reverb_address=address, root_dir=tempfile.mkdtemp())
  dataset = learner_train._dataset(config, agent, settings)  # pylint: disable=protected-access
  iterator = learner_metrics.TimedIterator(iter(dataset))
  learner = tfa_learner.Learner(settings.root_dir, train_step, agent,
                                summary_interval=0)
  experience, _ = next(iter(dataset))  # One fixed batch.
  train = tfa_common.function(agent.train)
  iterations = config.train.push_every_steps
  reverb_steps_per_sec(learner, iterator, iterations, 2.0)  # Warm up.
  memory_steps_per_sec(train, experience, 2.0)
  on_reverb, waits, in_memory = [], [], []
  for _ in range(_ROUNDS.value):
    rate, wait = reverb_steps_per_sec(learner, iterator, iterations,
                                      _SECONDS.value)
    on_reverb.append(rate)
    waits.append(wait)
    in_memory.append(memory_steps_per_sec(train, experience, _SECONDS.value))
  server.stop()
  return (statistics.median(on_reverb), statistics.median(waits),
          statistics.median(in_memory))


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  rows = []
  for name in _EXPERIMENTS.value:
    config = experiments.load(name)
    rate, wait, limit = measure(config)
    rows.append((name, config.agent.batch_size, rate, wait, limit))
    print(f'{name}: Reverb {rate:.1f}/s (data wait {100 * wait:.0f}%), '
          f'in memory {limit:.1f}/s', flush=True)
  print('\n| experiment | batch | train steps/s on Reverb | data wait | '
        'train steps/s on one in-memory batch | Reverb / in-memory |')
  print('| --- | ---: | ---: | ---: | ---: | ---: |')
  for name, batch, rate, wait, limit in rows:
    print(f'| {name} | {batch} | {rate:.1f} | {100 * wait:.0f}% | '
          f'{limit:.1f} | {rate / limit:.2f} |')


if __name__ == '__main__':
  app.run(main)
