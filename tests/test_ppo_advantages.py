"""PPO's advantages bootstrap at a truncation and stop at a termination
(algorithms/ppo_advantages.py), through the agent's own preprocessing."""
import dataclasses

import numpy as np
import tensorflow as tf
from tf_agents.trajectories import trajectory

from algorithms import ppo_advantages
from common import agents
from common import config as cfg
from common import envs

# One env's steps: FIRST, MID, LAST (cut by a time limit: discount 1),
# FIRST, LAST (terminated: discount 0), FIRST. Transition t goes from step
# t to t + 1 and carries the next step's reward and discount.
_STEP_TYPES = [0, 1, 2, 0, 2, 0]
_NEXT_STEP_TYPES = [1, 2, 0, 2, 0, 1]
_REWARDS = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]
_DISCOUNTS = [1.0, 1.0, 1.0, 0.0, 1.0, 1.0]
_VALUES = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
_GAMMA = _LAMBDA = 0.5
# By hand, delta_t = r + gamma d V' - V and A_t = delta_t + gamma lambda d
# (1 - end) A_{t+1}:
#   delta = [1 + 1 - 1, 1 + 1.5 - 2, 0 + 2 - 3, 1 + 0 - 4, 0 + 3 - 5]
#         = [1, 0.5, -1, -3, -2]
#   A_4 = -2; A_3 = -3 (its episode ends); A_2 = -1 + 0.25 A_3 = -1.75 (the
#   boundary transition, masked from the loss); A_1 = 0.5 (truncation: the
#   LAST step's value bootstraps, and the sum stops); A_0 = 1 + 0.25 A_1.
_ADVANTAGES = [1.125, 0.5, -1.75, -3.0, -2.0]


def test_generalized_advantages_by_hand():
  ends = [t == 2 for t in _NEXT_STEP_TYPES[:5]]
  advantages = ppo_advantages.generalized_advantages(
      tf.constant([_REWARDS[:5]]), tf.constant([_VALUES]),
      tf.constant([_DISCOUNTS[:5]]), tf.constant([ends]), _GAMMA, _LAMBDA)
  np.testing.assert_allclose(advantages.numpy(), [_ADVANTAGES])


def _ppo_agent():
  config = cfg.ExperimentConfig(
      env=cfg.EnvConfig('CartPole-v0'),
      agent=dataclasses.replace(cfg.AgentConfig('ppo'), gamma=_GAMMA),
      ppo=dataclasses.replace(cfg.PPOConfig(), gae_lambda=_LAMBDA,
                              normalize_rewards=False),
      train=cfg.TrainConfig(max_train_steps=320))
  agent, _ = agents.make_agent(config, envs.load_env(config.env))
  return agent


def test_the_learner_preprocessing_bootstraps_a_truncation():
  agent = _ppo_agent()
  batch = lambda values, dtype: tf.constant([values], dtype)
  experience = trajectory.Trajectory(
      step_type=batch(_STEP_TYPES, tf.int32),
      observation=tf.zeros([1, 6, 4]),
      action=batch([0] * 6, tf.int64),
      policy_info={'dist_params': {'logits': tf.zeros([1, 6, 2])},
                   'value_prediction': batch(_VALUES, tf.float32)},
      next_step_type=batch(_NEXT_STEP_TYPES, tf.int32),
      reward=batch(_REWARDS, tf.float32),
      discount=batch(_DISCOUNTS, tf.float32))
  info = agent.preprocess_sequence(experience).policy_info
  # The last step has no next one: 0, and masked as TF-Agents does.
  np.testing.assert_allclose(info['advantage'].numpy(), [_ADVANTAGES + [0]])
  np.testing.assert_allclose(
      info['return'].numpy(),
      [list(np.add(_ADVANTAGES, _VALUES[:5])) + [0]])
