"""The builders' collectors in process: what a collect actor's rounds
write."""
import reverb

from actor.episode_stats import EpisodeStats
from actor.fast_policy import FastPyPolicy
from actor.runtime import load_envs
from algorithms.base import CollectParts
from common import agents
from common import config as cfg
from common import specs as specs_lib
from reverb_server.server import ReplayServer
from reverb_server.server import ServerSettings
from tests.helpers import assert_cartpole_step
from tests.helpers import unused_port


class _Recorder:
  """An observer keeping every trajectory."""

  def __init__(self):
    self.trajectories = []

  def __call__(self, trajectory):
    self.trajectories.append(trajectory)


def test_the_policy_continues_from_the_envs_state_after_the_random_steps():
  """The first policy step follows the env's state, not one from before the
  random steps: CartPole's position moves by tau x its velocity."""
  config = cfg.ExperimentConfig(
      replay=cfg.ReplayConfig(capacity=1000, initial_collect_steps=120,
                              rate_limiter='min_size'))
  port = unused_port()
  server = ReplayServer(config, ServerSettings(port=port))
  try:
    address = f'localhost:{port}'
    client = reverb.Client(address)
    env = load_envs(config, seed=3, num_envs=1)
    agent, train_step = agents.make_agent(config, env)
    layout = specs_lib.specs_of(config, agent, train_step).replay_layout
    writer = config.builder.make_writer(config, client, layout, lambda: False,
                                        lambda: 0, 1)
    policy_steps = _Recorder()
    collector = config.builder.make_collector(CollectParts(
        config=config, address=address, client=client, env=env,
        policy=FastPyPolicy(agent.collect_policy, batched=False),
        train_step=train_step, writer=writer, stats=policy_steps,
        random_stats=EpisodeStats(1), summary_dir=None,
        should_stop=lambda: False))
    collector.warm_up()
    assert client.server_info()[cfg.REPLAY_TABLE].current_size >= 120
    collector.run_round()
    first, second = policy_steps.trajectories[:2]
    assert first.is_first() and not first.is_last()
    assert_cartpole_step(first.observation, second.observation)
    writer.close(flush_timeout_s=5)
  finally:
    server.stop()
