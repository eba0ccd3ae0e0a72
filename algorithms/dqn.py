"""DQN (the TF-Agents CartPole tutorial's), with n-step returns and
prioritized replay."""
# pylint: disable=g-import-not-at-top  (factories import what they build)
from algorithms.base import AgentSpecError
from algorithms.off_policy import OffPolicyBuilder


class DQN(OffPolicyBuilder):
  name = 'dqn'
  defaults = dict(fc_layer_params=(100, 50), critic_fc_layer_params=(),
                  learning_rate=1e-3, batch_size=64, gamma=1.0,
                  target_update_tau=1.0, target_update_period=1,
                  epsilon_greedy=0.1, reward_scale_factor=1.0)
  prioritized_replay = True
  n_step_returns = True

  def item_length(self, config) -> int:
    """n-step returns need n + 1 consecutive steps."""
    return config.agent.n_step + 1

  def check_action_spec(self, action_spec, env_name: str) -> None:
    if not action_spec.dtype.is_integer:
      raise AgentSpecError(
          f'DQN needs a discrete action space, but {env_name} has continuous '
          f'actions {action_spec.shape}; use --agent=sac')
    if action_spec.shape.rank != 0:
      raise AgentSpecError(
          f'DQN needs a single discrete action, but {env_name} has action '
          f'shape {action_spec.shape}')

  def make_agent(self, config, time_step_spec, action_spec, train_step):
    import tensorflow as tf
    from tf_agents.agents.dqn import dqn_agent
    from tf_agents.networks import sequential
    from tf_agents.utils import common as tfa_common

    agent = config.agent
    td_losses = {'squared': tfa_common.element_wise_squared_loss,
                 'huber': tfa_common.element_wise_huber_loss}
    num_actions = int(action_spec.maximum - action_spec.minimum + 1)
    hidden = [tf.keras.layers.Dense(
        units, activation=tf.keras.activations.relu,
        kernel_initializer=tf.keras.initializers.VarianceScaling(
            scale=2.0, mode='fan_in', distribution='truncated_normal'))
              for units in agent.fc_layer_params]
    q_values = tf.keras.layers.Dense(
        num_actions, activation=None,
        kernel_initializer=tf.keras.initializers.RandomUniform(
            minval=-0.03, maxval=0.03),
        bias_initializer=tf.keras.initializers.Constant(-0.2))
    return dqn_agent.DqnAgent(
        time_step_spec, action_spec,
        q_network=sequential.Sequential(hidden + [q_values]),
        optimizer=tf.keras.optimizers.Adam(learning_rate=agent.learning_rate),
        epsilon_greedy=agent.epsilon_greedy,
        td_errors_loss_fn=td_losses[agent.td_loss],
        gamma=agent.gamma,
        target_update_tau=agent.target_update_tau,
        target_update_period=agent.target_update_period,
        reward_scale_factor=agent.reward_scale_factor,
        n_step_update=agent.n_step,
        train_step_counter=train_step)
