"""Gymnasium environments as TF-Agents PyEnvironments.

TF-Agents 0.19 has no Gymnasium suite; this adapter's rules:
- `terminated` ends an episode with discount 0; `truncated` (the env's own
  TimeLimit, e.g. 1000 steps for MuJoCo) ends it with discount 1, so value
  targets bootstrap. No second time limit is added.
- The seed goes through the next reset(seed=...): the same seed gives the
  same episodes.
- float64 observations become float32; Discrete spaces int64 scalars.
- The env is made with render_mode='rgb_array' if it has it (video).
- After a LAST step the next step() resets (TF-Agents' handle_auto_reset).
"""
import os
from typing import Optional

import numpy as np
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts


def use_headless_rendering() -> None:
  """With no display, MuJoCo renders through OSMesa (Debian's libosmesa6)
  unless the user chose a backend; must run before mujoco is imported."""
  if not os.environ.get('DISPLAY') and 'MUJOCO_GL' not in os.environ:
    os.environ['MUJOCO_GL'] = 'osmesa'
    os.environ.setdefault('PYOPENGL_PLATFORM', 'osmesa')


def _float32(dtype: np.dtype) -> np.dtype:
  return np.dtype(np.float32) if dtype == np.float64 else dtype


def _spec_from_space(space, name: str) -> array_spec.BoundedArraySpec:
  """The array spec of a Box or Discrete space, with the adapter's dtypes;
  raises TypeError for other spaces."""
  import gymnasium  # pylint: disable=g-import-not-at-top
  if isinstance(space, gymnasium.spaces.Discrete):
    start = int(space.start)
    return array_spec.BoundedArraySpec(
        (), np.int64, start, start + int(space.n) - 1, name=name)
  if isinstance(space, gymnasium.spaces.Box):
    dtype = _float32(space.dtype)
    return array_spec.BoundedArraySpec(
        space.shape, dtype, space.low.astype(dtype), space.high.astype(dtype),
        name=name)
  raise TypeError(f'the {name} space {space} is not supported (only Box and '
                  f'Discrete)')


class GymnasiumEnv(py_environment.PyEnvironment):
  """One Gymnasium env (made by gymnasium.make, so with its TimeLimit)."""

  def __init__(self, env):
    super().__init__(handle_auto_reset=True)
    self._env = env
    self._observation_spec = _spec_from_space(env.observation_space,
                                             'observation')
    self._action_spec = _spec_from_space(env.action_space, 'action')
    self._discrete_action = self._action_spec.shape == () and np.issubdtype(
        self._action_spec.dtype, np.integer)
    self._seed: Optional[int] = None

  def observation_spec(self):
    return self._observation_spec

  def action_spec(self):
    return self._action_spec

  def seed(self, seed: int) -> None:
    """The next reset starts from `seed` (then the env's RNG goes on)."""
    self._seed = int(seed)
    self._env.action_space.seed(int(seed))

  def _observation(self, observation) -> np.ndarray:
    return np.asarray(observation, dtype=self._observation_spec.dtype)

  def _reset(self):
    observation, _ = self._env.reset(seed=self._seed)
    self._seed = None
    return ts.restart(self._observation(observation))

  def _step(self, action):
    action = int(action) if self._discrete_action else np.asarray(action)
    observation, reward, terminated, truncated, _ = self._env.step(action)
    observation = self._observation(observation)
    reward = np.asarray(reward, dtype=np.float32)
    if terminated:
      return ts.termination(observation, reward)
    if truncated:
      return ts.truncation(observation, reward)
    return ts.transition(observation, reward)

  def render(self, mode: str = 'rgb_array'):
    if mode != 'rgb_array':
      raise ValueError(f'Gymnasium envs render rgb_array only, not {mode!r}')
    frame = self._env.render()
    if frame is None:
      raise ValueError(f'{self._env.spec.id} does not render rgb_array')
    return frame

  def close(self) -> None:
    self._env.close()
