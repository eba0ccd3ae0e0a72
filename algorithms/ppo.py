"""PPO (clipped, as TF-Agents' PPO examples), on-policy over a queue of
sequences: actors collect rounds of one sequence of each env with the
latest weights; the learner trains iterations of exactly
ppo_steps_per_iteration env steps (algorithms/ppo_training.py)."""
# pylint: disable=g-import-not-at-top  (factories import what they build)
from algorithms.base import Builder
from algorithms.base import CollectParts
from algorithms.base import LearnerParts
from common.errors import ConfigError


def rounds_per_iteration(config) -> int:
  """Synchronous PPO: the collect rounds (a sequence of each of an actor's
  envs) the learner requests per iteration; else 0."""
  if not config.ppo.synchronous:
    return 0
  return config.ppo.items_per_iteration // config.train.envs_per_actor


class PPO(Builder):
  name = 'ppo'
  # TF-Agents' PPO examples (schulman17): batch_size is the minibatch, in
  # env steps.
  defaults = dict(fc_layer_params=(64, 64), critic_fc_layer_params=(64, 64),
                  learning_rate=3e-4, batch_size=64, gamma=0.99,
                  target_update_tau=1.0, target_update_period=1,
                  epsilon_greedy=0.0, reward_scale_factor=1.0)
  config_section = 'ppo'
  versioned_items = True

  def check_config(self, config) -> None:
    super().check_config(config)
    ppo, batch_size = config.ppo, config.agent.batch_size
    if ppo.steps_per_iteration % batch_size:
      raise ConfigError(
          f'ppo_steps_per_iteration ({ppo.steps_per_iteration}) must be a '
          f'multiple of batch_size ({batch_size}, the minibatch)')
    steps = ppo.train_steps_per_iteration(batch_size)
    if config.train.max_train_steps % steps:
      raise ConfigError(
          f'with --agent=ppo, max_train_steps ({config.train.max_train_steps})'
          f' must be a multiple of the train steps per iteration ({steps} = '
          f'num_epochs {ppo.num_epochs} x ppo_steps_per_iteration '
          f'{ppo.steps_per_iteration} / batch_size {batch_size})')
    round_steps = ppo.sequence_length * config.train.envs_per_actor
    if ppo.synchronous and ppo.steps_per_iteration % round_steps:
      raise ConfigError(
          f'with --max_policy_lag=0 the learner requests whole actor rounds '
          f'(a sequence of each env): ppo_steps_per_iteration '
          f'({ppo.steps_per_iteration}) must be a multiple of '
          f'ppo_sequence_length x envs_per_actor ({ppo.sequence_length} x '
          f'{config.train.envs_per_actor})')

  def item_length(self, config) -> int:
    return config.ppo.sequence_length

  def make_agent(self, config, time_step_spec, action_spec, train_step):
    """Clipped PPO whose learner computes advantages (GAE, truncations
    bootstrapped: algorithms/ppo_advantages.py) from the value predictions
    the actors' collect policy recorded, and updates the normalizers once
    per iteration (as TF-Agents' PPOLearner does)."""
    import tensorflow as tf
    from algorithms import ppo_advantages
    from tf_agents.networks import actor_distribution_network
    from tf_agents.networks import value_network

    agent, ppo = config.agent, config.ppo
    observation_spec = time_step_spec.observation
    actor_net = actor_distribution_network.ActorDistributionNetwork(
        observation_spec, action_spec, fc_layer_params=agent.fc_layer_params,
        activation_fn=tf.keras.activations.tanh)
    value_net = value_network.ValueNetwork(
        observation_spec, fc_layer_params=agent.critic_fc_layer_params,
        activation_fn=tf.keras.activations.tanh)
    return ppo_advantages.PPOClipAgent(
        time_step_spec, action_spec,
        optimizer=tf.keras.optimizers.Adam(learning_rate=agent.learning_rate),
        actor_net=actor_net, value_net=value_net,
        greedy_eval=True,
        importance_ratio_clipping=ppo.importance_ratio_clipping,
        lambda_value=ppo.gae_lambda,
        discount_factor=agent.gamma,
        entropy_regularization=ppo.entropy_regularization,
        num_epochs=1,  # The learner runs the epochs, over minibatches.
        use_gae=True, use_td_lambda_return=True,
        normalize_rewards=ppo.normalize_rewards,
        normalize_observations=ppo.normalize_observations,
        compute_value_and_advantage_in_train=False,
        update_normalizers_in_train=False,
        train_step_counter=train_step)

  def make_replay_tables(self, config, specs):
    from algorithms import ppo_collection
    return ppo_collection.tables(config, specs)

  def make_writer(self, config, client, layout, should_stop, policy_version,
                  num_envs):
    from algorithms.ppo_collection import SequenceWriter
    return SequenceWriter(client, layout, should_stop, policy_version,
                          num_envs)

  def make_collector(self, parts: CollectParts):
    from algorithms.ppo_collection import PPOCollector
    return PPOCollector(parts)

  def check_strategy(self, config, strategy) -> None:
    if strategy.num_replicas_in_sync > 1:
      raise ConfigError(
          f'--agent=ppo trains on one replica; the strategy has '
          f'{strategy.num_replicas_in_sync} (use --strategy=default, or '
          f'mirrored on one GPU)')

  def make_training(self, parts: LearnerParts):
    from algorithms import ppo_training
    return ppo_training.make_ppo_training(parts)
