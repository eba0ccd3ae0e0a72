"""EpisodeStats counts what TF-Agents' four py metrics count, on real
CartPole trajectories, single and batched."""
import pytest
from tf_agents.drivers import py_driver
from tf_agents.metrics import py_metrics
from tf_agents.policies import random_py_policy

from actor.episode_stats import EpisodeStats
from actor.runtime import load_envs
from common import config as cfg


@pytest.mark.parametrize('num_envs', [1, 3])
def test_same_counts_as_tf_agents_metrics(num_envs):
  config = cfg.ExperimentConfig(
      env=cfg.EnvConfig('CartPole-v0'), agent=cfg.AgentConfig('dqn'),
      replay=cfg.ReplayConfig(capacity=1000, initial_collect_steps=1),
      train=cfg.TrainConfig())
  env = load_envs(config, seed=7, num_envs=num_envs)
  batch = num_envs if env.batched else None
  theirs = [py_metrics.EnvironmentSteps(), py_metrics.NumberOfEpisodes(),
            py_metrics.AverageReturnMetric(buffer_size=10, batch_size=batch),
            py_metrics.AverageEpisodeLengthMetric(buffer_size=10,
                                                  batch_size=batch)]
  ours = EpisodeStats(num_envs)
  policy = random_py_policy.RandomPyPolicy(
      env.time_step_spec(), env.action_spec(),
      outer_dims=(num_envs,) if env.batched else None, seed=7)
  driver = py_driver.PyDriver(env, policy, [ours, *theirs], max_steps=600)
  driver.run(env.reset())
  steps, episodes, average_return, average_length = (
      float(metric.result()) for metric in theirs)
  assert episodes >= 12  # More than the 10-episode window.
  assert ours.env_steps == steps
  assert ours.episodes == episodes
  assert ours.average_return == pytest.approx(average_return)
  assert ours.average_episode_length == pytest.approx(average_length)
