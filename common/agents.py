"""Builds the DQN and SAC agents as the TF-Agents tutorials set them up, and
PPO as TF-Agents' PPO examples do."""
from typing import Tuple

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.agents.ddpg import critic_network
from tf_agents.agents.dqn import dqn_agent
from tf_agents.agents.ppo import ppo_clip_agent
from tf_agents.agents.sac import sac_agent
from tf_agents.agents.sac import tanh_normal_projection_network
from tf_agents.environments import py_environment
from tf_agents.networks import actor_distribution_network
from tf_agents.networks import sequential
from tf_agents.networks import value_network
from tf_agents.specs import tensor_spec
from tf_agents.train.utils import train_utils
from tf_agents.typing import types
from tf_agents.utils import common as tfa_common

from common.config import AgentConfig
from common.config import ExperimentConfig
from common.config import PPOConfig
from common.errors import UserError


class AgentSpecError(UserError, ValueError):
  """The agent kind does not fit the environment's action space."""


def check_action_space(agent_kind: str, action_spec: types.TensorSpec,
                       env_name: str) -> None:
  """Raises AgentSpecError unless DQN gets discrete and SAC continuous
  actions (PPO takes either)."""
  discrete = action_spec.dtype.is_integer
  if agent_kind == 'dqn' and not discrete:
    raise AgentSpecError(
        f'DQN needs a discrete action space, but {env_name} has continuous '
        f'actions {action_spec.shape}; use --agent=sac')
  if agent_kind == 'dqn' and action_spec.shape.rank != 0:
    raise AgentSpecError(
        f'DQN needs a single discrete action, but {env_name} has action shape '
        f'{action_spec.shape}')
  if agent_kind == 'sac' and discrete:
    raise AgentSpecError(
        f'SAC needs a continuous action space, but {env_name} has discrete '
        f'actions; use --agent=dqn')


def build_agent(config: AgentConfig, time_step_spec: types.TimeStep,
                action_spec: types.TensorSpec, train_step: tf.Variable,
                env_name: str = 'the env',
                ppo: PPOConfig = PPOConfig()) -> tf_agent.TFAgent:
  """Returns the initialized agent; call it inside the strategy scope."""
  check_action_space(config.kind, action_spec, env_name)
  if config.kind == 'ppo':
    agent = _build_ppo(config, ppo, time_step_spec, action_spec, train_step)
  else:
    builder = _build_dqn if config.kind == 'dqn' else _build_sac
    agent = builder(config, time_step_spec, action_spec, train_step)
  agent.initialize()
  return agent


def _dense(units: int) -> tf.keras.layers.Layer:
  return tf.keras.layers.Dense(
      units, activation=tf.keras.activations.relu,
      kernel_initializer=tf.keras.initializers.VarianceScaling(
          scale=2.0, mode='fan_in', distribution='truncated_normal'))


def _build_dqn(config, time_step_spec, action_spec, train_step):
  num_actions = int(action_spec.maximum - action_spec.minimum + 1)
  q_values = tf.keras.layers.Dense(
      num_actions, activation=None,
      kernel_initializer=tf.keras.initializers.RandomUniform(
          minval=-0.03, maxval=0.03),
      bias_initializer=tf.keras.initializers.Constant(-0.2))
  q_net = sequential.Sequential(
      [_dense(units) for units in config.fc_layer_params] + [q_values])
  return dqn_agent.DqnAgent(
      time_step_spec, action_spec, q_network=q_net,
      optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate),
      epsilon_greedy=config.epsilon_greedy,
      td_errors_loss_fn=tfa_common.element_wise_squared_loss,
      gamma=config.gamma,
      target_update_tau=config.target_update_tau,
      target_update_period=config.target_update_period,
      reward_scale_factor=config.reward_scale_factor,
      n_step_update=config.n_step,
      train_step_counter=train_step)


def _build_sac(config, time_step_spec, action_spec, train_step):
  observation_spec = time_step_spec.observation
  critic_net = critic_network.CriticNetwork(
      (observation_spec, action_spec),
      observation_fc_layer_params=None,
      action_fc_layer_params=None,
      joint_fc_layer_params=config.critic_fc_layer_params,
      kernel_initializer='glorot_uniform',
      last_kernel_initializer='glorot_uniform')
  actor_net = actor_distribution_network.ActorDistributionNetwork(
      observation_spec, action_spec,
      fc_layer_params=config.fc_layer_params,
      continuous_projection_net=(
          tanh_normal_projection_network.TanhNormalProjectionNetwork))
  adam = lambda: tf.keras.optimizers.Adam(learning_rate=config.learning_rate)
  return sac_agent.SacAgent(
      time_step_spec, action_spec,
      actor_network=actor_net, critic_network=critic_net,
      actor_optimizer=adam(), critic_optimizer=adam(), alpha_optimizer=adam(),
      target_update_tau=config.target_update_tau,
      target_update_period=config.target_update_period,
      td_errors_loss_fn=tf.math.squared_difference,
      gamma=config.gamma,
      reward_scale_factor=config.reward_scale_factor,
      train_step_counter=train_step)


def _build_ppo(config, ppo, time_step_spec, action_spec, train_step):
  """Clipped PPO whose learner computes advantages (GAE) from the value
  predictions the actors' collect policy recorded, and updates the
  normalizers once per iteration (as TF-Agents' PPOLearner does)."""
  observation_spec = time_step_spec.observation
  actor_net = actor_distribution_network.ActorDistributionNetwork(
      observation_spec, action_spec, fc_layer_params=config.fc_layer_params,
      activation_fn=tf.keras.activations.tanh)
  value_net = value_network.ValueNetwork(
      observation_spec, fc_layer_params=config.critic_fc_layer_params,
      activation_fn=tf.keras.activations.tanh)
  return ppo_clip_agent.PPOClipAgent(
      time_step_spec, action_spec,
      optimizer=tf.keras.optimizers.Adam(learning_rate=config.learning_rate),
      actor_net=actor_net, value_net=value_net,
      greedy_eval=True,
      importance_ratio_clipping=ppo.importance_ratio_clipping,
      lambda_value=ppo.gae_lambda,
      discount_factor=config.gamma,
      entropy_regularization=ppo.entropy_regularization,
      num_epochs=1,  # The learner runs the epochs, over minibatches.
      use_gae=True, use_td_lambda_return=True,
      normalize_rewards=ppo.normalize_rewards,
      normalize_observations=ppo.normalize_observations,
      compute_value_and_advantage_in_train=False,
      update_normalizers_in_train=False,
      train_step_counter=train_step)


def make_agent(config: ExperimentConfig, env: py_environment.PyEnvironment
               ) -> Tuple[tf_agent.TFAgent, tf.Variable]:
  """The config's agent for `env` and its new train_step counter.

  Call it inside the strategy scope when there is one.
  """
  time_step_spec, action_spec = tensor_specs(env)
  train_step = train_utils.create_train_step()
  agent = build_agent(config.agent, time_step_spec, action_spec, train_step,
                      env_name=config.env.name, ppo=config.ppo)
  return agent, train_step


def tensor_specs(env) -> tuple:
  """(time_step_spec, action_spec) of a PyEnvironment, as tensor specs."""
  return (tensor_spec.from_spec(env.time_step_spec()),
          tensor_spec.from_spec(env.action_spec()))
