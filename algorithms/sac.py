"""SAC (the TF-Agents Minitaur tutorial's)."""
# pylint: disable=g-import-not-at-top  (factories import what they build)
from algorithms.base import AgentSpecError
from algorithms.off_policy import OffPolicyBuilder


class SAC(OffPolicyBuilder):
  name = 'sac'
  defaults = dict(fc_layer_params=(256, 256), critic_fc_layer_params=(256, 256),
                  learning_rate=3e-4, batch_size=256, gamma=0.99,
                  target_update_tau=0.005, target_update_period=1,
                  epsilon_greedy=0.0, reward_scale_factor=1.0)

  def item_length(self, config) -> int:
    return 2  # A transition.

  def check_action_spec(self, action_spec, env_name: str) -> None:
    if action_spec.dtype.is_integer:
      raise AgentSpecError(
          f'SAC needs a continuous action space, but {env_name} has discrete '
          f'actions; use --agent=dqn')

  def make_agent(self, config, time_step_spec, action_spec, train_step):
    import tensorflow as tf
    from tf_agents.agents.ddpg import critic_network
    from tf_agents.agents.sac import sac_agent
    from tf_agents.agents.sac import tanh_normal_projection_network
    from tf_agents.networks import actor_distribution_network

    agent = config.agent
    observation_spec = time_step_spec.observation
    critic_net = critic_network.CriticNetwork(
        (observation_spec, action_spec),
        observation_fc_layer_params=None,
        action_fc_layer_params=None,
        joint_fc_layer_params=agent.critic_fc_layer_params,
        kernel_initializer='glorot_uniform',
        last_kernel_initializer='glorot_uniform')
    actor_net = actor_distribution_network.ActorDistributionNetwork(
        observation_spec, action_spec,
        fc_layer_params=agent.fc_layer_params,
        continuous_projection_net=(
            tanh_normal_projection_network.TanhNormalProjectionNetwork))
    adam = lambda: tf.keras.optimizers.Adam(learning_rate=agent.learning_rate)
    return sac_agent.SacAgent(
        time_step_spec, action_spec,
        actor_network=actor_net, critic_network=critic_net,
        actor_optimizer=adam(), critic_optimizer=adam(), alpha_optimizer=adam(),
        target_update_tau=agent.target_update_tau,
        target_update_period=agent.target_update_period,
        td_errors_loss_fn=tf.math.squared_difference,
        gamma=agent.gamma,
        reward_scale_factor=agent.reward_scale_factor,
        train_step_counter=train_step)
