"""A collect actor's counts: env steps, episodes, recent returns and lengths.

One observer for what TF-Agents' EnvironmentSteps, NumberOfEpisodes,
AverageReturnMetric and AverageEpisodeLengthMetric compute, with the same
meaning. Those four re-batch the whole trajectory (observation included)
every step and cost a quarter of a CartPole actor's step; this reads only
the step types and the reward.
"""
import collections

import numpy as np
from tf_agents.trajectories import time_step as ts


class EpisodeStats:
  """Call with every trajectory of `num_envs` envs (batched when > 1)."""

  def __init__(self, num_envs: int = 1, window: int = 10):
    self.env_steps = 0
    self.episodes = 0
    self._returns = collections.deque(maxlen=window)
    self._lengths = collections.deque(maxlen=window)
    self._episode_return = np.zeros(num_envs)
    self._episode_length = np.zeros(num_envs, np.int64)

  def __call__(self, trajectory) -> None:
    step_type = np.reshape(trajectory.step_type, -1)
    next_step_type = np.reshape(trajectory.next_step_type, -1)
    moved = step_type != ts.StepType.LAST  # Not the LAST -> FIRST boundary.
    self.env_steps += int(np.count_nonzero(moved))
    self._episode_return += np.reshape(trajectory.reward, -1) * moved
    self._episode_length += moved
    for env in np.flatnonzero(next_step_type == ts.StepType.LAST):
      self.episodes += 1
      self._returns.append(float(self._episode_return[env]))
      self._lengths.append(int(self._episode_length[env]))
      self._episode_return[env] = 0.0
      self._episode_length[env] = 0

  @property
  def average_return(self) -> float:
    """Mean return of the last `window` finished episodes (0 before any)."""
    return float(np.mean(self._returns)) if self._returns else 0.0

  @property
  def average_episode_length(self) -> float:
    return float(np.mean(self._lengths)) if self._lengths else 0.0
