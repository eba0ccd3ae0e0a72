"""PPO's advantages with truncation bootstrapped.

TF-Agents 0.19's PPO zeroes the discount at every LAST step, so an episode
cut by a time limit (HalfCheetah's 1000 steps) is learned as if it ended
there. Here the env's discount decides: 0 at a termination, 1 at a
truncation, where the LAST observation's value bootstraps.
"""
import tensorflow as tf
from tf_agents.agents.ppo import ppo_clip_agent


def generalized_advantages(rewards: tf.Tensor, values: tf.Tensor,
                           discounts: tf.Tensor, episode_ends: tf.Tensor,
                           gamma: float, lambda_: float) -> tf.Tensor:
  """GAE of [batch, T] transitions.

  values: [batch, T + 1], each step's value and the last next step's;
  discounts: the env's discount of each transition's next step;
  episode_ends: True where that next step is LAST.
    delta_t = r_t + gamma d_t V_{t+1} - V_t
    A_t = delta_t + gamma lambda d_t (1 - end_t) A_{t+1}
  so a truncation bootstraps from its LAST observation and no sum crosses
  an episode's end.
  """
  bootstrap = gamma * discounts
  deltas = rewards + bootstrap * values[:, 1:] - values[:, :-1]
  carry = lambda_ * bootstrap * (1.0 - tf.cast(episode_ends, tf.float32))

  def step(next_advantage, transition):
    delta, weight = transition
    return delta + weight * next_advantage

  advantages = tf.scan(step, (tf.transpose(deltas), tf.transpose(carry)),
                       initializer=tf.zeros_like(deltas[:, 0]), reverse=True)
  return tf.stop_gradient(tf.transpose(advantages))


class PPOClipAgent(ppo_clip_agent.PPOClipAgent):
  """TF-Agents' clipped PPO with GAE and TD(lambda) returns from
  `generalized_advantages`. Its last transition bootstraps from the last
  step's value (TF-Agents' uses the step before's)."""

  def compute_return_and_advantage(self, next_time_steps, value_preds):
    rewards = next_time_steps.reward
    if self._reward_normalizer:
      rewards = self._reward_normalizer.normalize(
          rewards, center_mean=False, clip_value=self._reward_norm_clipping)
    advantages = generalized_advantages(
        rewards, value_preds, next_time_steps.discount,
        next_time_steps.is_last(), self._discount_factor, self._lambda)
    return advantages + value_preds[:, :-1], advantages
