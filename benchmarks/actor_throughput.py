"""Collect actor env steps/s vs the limit: the raw loop of env.step plus
batched policy inference, for 1 and B envs per actor.

    .venv/bin/python -m benchmarks.actor_throughput [--envs=1,8,32] \
        [--experiments=cartpole_dqn,minitaur_sac] [--seconds=5] [--rounds=3]

The actor is the production path (actor/collect.py's policy, the
experiment's builder's writer and collector, with its metrics, and a weights
pull after each round of --pull_every_steps steps of each env) writing to a
Reverb server process with a MinSize rate limiter, so the limiter never
holds it. Raw loop and actor alternate for --rounds rounds on the same envs;
the table gives medians.
"""
import dataclasses
import time

from absl import app
from absl import flags
from absl import logging

from actor.episode_stats import EpisodeStats
from actor.fast_policy import FastPyPolicy
from benchmarks import experiments
from benchmarks.measure import alternate
from benchmarks.measure import define_experiments
from benchmarks.measure import define_rounds
from benchmarks.measure import define_seconds
from benchmarks.measure import medians
from benchmarks.table import print_table
from actor.runtime import load_envs
from algorithms.base import CollectParts
from common import agents
from common.connection import connect
from common.weights import WeightsSync
from common import specs as specs_lib

_ENVS = flags.DEFINE_list('envs', ['1', '8', '32'], 'Envs per actor.')
_EXPERIMENTS = define_experiments(['cartpole_dqn', 'minitaur_sac'])
_SECONDS = define_seconds(5)
_ROUNDS = define_rounds(3)


def raw_steps_per_sec(env, policy, seconds: float) -> float:
  """env.step(policy.action(time_step)) as fast as it goes."""
  time_step = env.reset()
  steps, start = 0, time.monotonic()
  while time.monotonic() - start < seconds:
    time_step = env.step(policy.action(time_step).action)
    steps += env.batch_size if env.batched else 1
  return steps / (time.monotonic() - start)


def actor_steps_per_sec(collector, weights, stats, seconds: float) -> float:
  """The collect loop: a collector round (pull_every_steps per env), then a
  pull."""
  first, start = stats.env_steps, time.monotonic()
  while time.monotonic() - start < seconds:
    collector.run_round()
    weights.pull()
  return (stats.env_steps - first) / (time.monotonic() - start)


def measure(name: str, num_envs: int):
  config = experiments.load(name)
  env = load_envs(config, seed=0, num_envs=num_envs)
  agent, train_step = agents.make_agent(config, env)
  policy = FastPyPolicy(agent.collect_policy, env.batched)
  with experiments.server_process(name) as server:
    address = server.address
    weights = WeightsSync(
        address, specs_lib.variables_nest(agent, train_step))
    weights.push()
    stats = EpisodeStats(num_envs)
    layout = specs_lib.specs_of(config, agent, train_step).replay_layout
    client = connect(address, timeout_s=30)
    writer = config.builder.make_writer(config, client, layout, lambda: False,
                                        lambda: weights.version, num_envs)
    collector = config.builder.make_collector(CollectParts(
        config=config, address=address, client=client, env=env,
        policy=policy, train_step=train_step, writer=writer, stats=stats,
        random_stats=EpisodeStats(num_envs), summary_dir=None,
        should_stop=lambda: False))
    raw_steps_per_sec(env, policy, 1.0)  # Warm up (tf.function traces).
    actor_steps_per_sec(collector, weights, stats, 1.0)
    loops = {
        'raw': lambda: raw_steps_per_sec(env, policy, _SECONDS.value),
        'actor': lambda: actor_steps_per_sec(collector, weights, stats,
                                             _SECONDS.value)}
    rates = medians(alternate(
        list(loops), _ROUNDS.value, lambda loop, _: loops[loop]()))
    writer.close(flush_timeout_s=10)
  env.close()
  return rates['raw'], rates['actor']


@dataclasses.dataclass
class Row:
  experiment: str
  envs: int
  raw: float
  actor: float


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  rows = []
  for name in _EXPERIMENTS.value:
    for num_envs in map(int, _ENVS.value):
      raw, ours = measure(name, num_envs)
      rows.append(Row(name, num_envs, raw, ours))
      print(f'{name} envs={num_envs}: raw {raw:.0f}/s, actor {ours:.0f}/s',
            flush=True)
  def cells(row):
    single = next((r.actor for r in rows if r.experiment == row.experiment
                   and r.envs == 1), None)
    return (row.experiment, row.envs, f'{row.raw:.0f}', f'{row.actor:.0f}',
            f'{row.actor / row.raw:.2f}',
            f'{row.actor / single:.2f}' if single else '-')
  print_table(('experiment', 'envs per actor', 'raw env+policy steps/s',
               'actor env steps/s', 'actor / raw', 'actor / 1-env actor'),
              map(cells, rows))


if __name__ == '__main__':
  app.run(main)
