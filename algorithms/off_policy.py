"""What DQN and SAC share: a replay table sampled in batches, filled first
with random steps, then by the agent's collect policy."""
# pylint: disable=g-import-not-at-top  (factories import what they build)
from algorithms.base import Builder
from algorithms.base import CollectParts
from algorithms.base import LearnerParts
from common.errors import ConfigError


class OffPolicyBuilder(Builder):
  """The base of the builders that learn from a replay table."""

  def check_config(self, config) -> None:
    super().check_config(config)
    if config.agent.batch_size > config.replay.capacity:
      raise ConfigError(
          f'batch_size ({config.agent.batch_size}) must not exceed the '
          f'replay capacity ({config.replay.capacity})')

  def check_strategy(self, config, strategy) -> None:
    """The global batch must split evenly over the replicas."""
    from learner import replay_input
    replay_input.per_replica_batch(config.agent.batch_size,
                                   strategy.num_replicas_in_sync)

  def make_replay_tables(self, config, specs):
    from algorithms import experience_replay
    return [experience_replay.replay_table(config.replay, specs)]

  def make_writer(self, config, client, layout, should_stop, policy_version,
                  num_envs):
    from actor.replay_writer import ReplayWriter
    return ReplayWriter(client, layout, should_stop, num_envs,
                        priority=config.replay.initial_priority,
                        gamma=config.agent.gamma)

  def make_collector(self, parts: CollectParts):
    from algorithms import experience_replay
    return experience_replay.ReplayCollector(parts)

  def make_training(self, parts: LearnerParts):
    from algorithms import experience_replay
    return experience_replay.make_replay_training(parts)
