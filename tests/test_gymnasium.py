"""The Gymnasium adapter's contract (common/gymnasium_env.py), on real
MuJoCo and Box2D tasks and on a tiny env whose episode ends are known."""
import subprocess
import sys

import gymnasium
import numpy as np
import pytest
from tf_agents.environments import utils as env_utils
from tf_agents.trajectories import time_step as ts

from common import envs
from common.config import EnvConfig
from tests.helpers import PROJECT_ROOT


class _Countdown(gymnasium.Env):
  """Observation [steps left, 0.5] (float64); action 1 terminates, 0 goes
  on; the TimeLimit it is registered with truncates at 4 steps."""
  observation_space = gymnasium.spaces.Box(-200.0, 200.0, (2,), np.float64)
  action_space = gymnasium.spaces.Discrete(2)

  def reset(self, *, seed=None, options=None):
    super().reset(seed=seed)
    self._left = 10.0 + float(self.np_random.integers(100))
    return np.array([self._left, 0.5]), {}

  def step(self, action):
    self._left -= 1
    return np.array([self._left, 0.5]), 2.5, action == 1, False, {}


gymnasium.register('test/Countdown-v0', entry_point=_Countdown,
                   max_episode_steps=4)


class _DictObservations(_Countdown):
  observation_space = gymnasium.spaces.Dict(
      {'left': gymnasium.spaces.Box(-200.0, 200.0, (1,))})


gymnasium.register('test/DictObservations-v0', entry_point=_DictObservations)


def _load(name, seed=0):
  return envs.load_env(EnvConfig(name, 'gymnasium'), seed=seed)


def _run(env, actions):
  """The time steps of env.reset() then one step per action."""
  steps = [env.reset()]
  steps += [env.step(np.asarray(action, env.action_spec().dtype))
            for action in actions]
  return steps


def test_auto_picks_gymnasium_for_names_only_gymnasium_registers():
  assert envs.resolve_suite(EnvConfig('HalfCheetah-v5')) == 'gymnasium'
  assert envs.resolve_suite(EnvConfig('LunarLander-v3')) == 'gymnasium'
  assert envs.resolve_suite(EnvConfig('ALE/Pong-v5')) == 'gymnasium'
  # gym 0.23 registers these too: auto keeps what ran before.
  assert envs.resolve_suite(EnvConfig('CartPole-v0')) == 'gym'
  assert envs.resolve_suite(EnvConfig('Pendulum-v1')) == 'gym'
  assert envs.resolve_suite(EnvConfig('MinitaurBulletEnv-v0')) == 'pybullet'


@pytest.mark.parametrize('name', ['HalfCheetah-v5', 'Hopper-v5',
                                  'LunarLander-v3', 'test/Countdown-v0'])
def test_validate_py_environment(name):
  env_utils.validate_py_environment(_load(name), episodes=2)


def test_specs_are_float32_observations_and_int64_discrete_actions():
  env = _load('test/Countdown-v0')
  assert env.observation_spec().dtype == np.float32
  assert env.observation_spec().shape == (2,)
  assert env.action_spec().dtype == np.int64 and env.action_spec().shape == ()
  assert (env.action_spec().minimum, env.action_spec().maximum) == (0, 1)
  first = env.reset()
  assert first.observation.dtype == np.float32
  assert first.reward.dtype == np.float32
  lander = _load('LunarLander-v3')
  assert lander.action_spec().dtype == np.int64
  assert (lander.action_spec().minimum, lander.action_spec().maximum) == (0, 3)
  cheetah = _load('HalfCheetah-v5')
  assert cheetah.observation_spec().shape == (17,)
  assert cheetah.observation_spec().dtype == np.float32
  assert cheetah.action_spec().shape == (6,)


def test_termination_has_discount_0_and_truncation_discount_1():
  env = _load('test/Countdown-v0')
  # Terminated at its 2nd step; then FIRST; then cut by the TimeLimit at 4.
  steps = _run(env, [0, 1, 0, 0, 0, 0, 0, 0])
  types = [int(step.step_type) for step in steps]
  assert types == [0, 1, 2, 0, 1, 1, 1, 2, 0]
  discounts = [float(step.discount) for step in steps]
  assert discounts == [1, 1, 0, 1, 1, 1, 1, 1, 1]
  assert [float(step.reward) for step in steps] == [0, 2.5, 2.5, 0, 2.5, 2.5,
                                                    2.5, 2.5, 0]
  # The LAST step holds the episode's final observation, not the reset's.
  start, last = steps[3].observation[0], steps[7].observation[0]
  assert last == start - 4


def _random_steps(name, seed, num_steps):
  """reset() and `num_steps` steps of uniformly random actions (drawn the
  same for every seed) of env `name` seeded with `seed`."""
  env = _load(name, seed=seed)
  rng = np.random.default_rng(0)
  spec = env.action_spec()
  actions = [rng.integers(spec.minimum, spec.maximum + 1)
             if spec.dtype == np.int64
             else rng.uniform(spec.minimum, spec.maximum)
             for _ in range(num_steps)]
  return _run(env, actions)


def test_halfcheetah_truncates_once_at_1000_with_discount_1():
  steps = _random_steps('HalfCheetah-v5', 1, 1001)
  lasts = [i for i, step in enumerate(steps) if step.is_last()]
  assert lasts == [1000]
  assert float(steps[1000].discount) == 1.0
  assert all(float(step.discount) == 1.0 for step in steps)
  assert steps[1001].step_type == ts.StepType.FIRST


def test_hopper_terminates_early_with_discount_0():
  steps = _random_steps('Hopper-v5', 1, 200)
  lasts = [i for i, step in enumerate(steps) if step.is_last()]
  assert lasts and lasts[0] < 1000
  assert all(float(steps[i].discount) == 0.0 for i in lasts)
  assert all(steps[i + 1].step_type == ts.StepType.FIRST
             for i in lasts if i + 1 < len(steps))


def _episodes(name, seed, num_steps):
  steps = _random_steps(name, seed, num_steps)
  return (np.stack([step.observation for step in steps]),
          [int(step.step_type) for step in steps])


@pytest.mark.parametrize('name', ['Hopper-v5', 'LunarLander-v3',
                                  'test/Countdown-v0'])
def test_the_same_seed_gives_the_same_episodes(name):
  observations, types = _episodes(name, 5, 300)
  assert types.count(0) >= 2  # Across a reset, too.
  again, types_again = _episodes(name, 5, 300)
  np.testing.assert_array_equal(observations, again)
  assert types == types_again
  other, _ = _episodes(name, 6, 300)
  assert not np.array_equal(observations[0], other[0])


def test_halfcheetah_renders_headless():
  env = _load('HalfCheetah-v5')
  env.reset()
  frame = env.render('rgb_array')
  assert frame.dtype == np.uint8 and frame.shape == (480, 480, 3)
  assert frame.std() > 0  # A picture, not a blank.


def test_an_unsupported_space_fails_clearly():
  with pytest.raises(envs.EnvError, match=r"env 'test/DictObservations-v0': "
                     r'the observation space Dict.* is not supported \(only '
                     r'Box and Discrete\)'):
    _load('test/DictObservations-v0')


@pytest.mark.parametrize('name,module,package', [
    ('HalfCheetah-v5', 'mujoco', 'mujoco==3.3.7'),
    ('LunarLander-v3', 'Box2D', 'box2d==2.3.10'),
    ('ALE/Pong-v5', 'ale_py', 'ale-py'),
])
def test_a_missing_package_is_named(name, module, package):
  # A fresh interpreter where `module` cannot be imported.
  code = (f'import sys; sys.modules[{module!r}] = None\n'
          'from common import envs, config\n'
          f'try: envs.load_env(config.EnvConfig({name!r}))\n'
          'except envs.EnvError as e: print(e)\n')
  result = subprocess.run([sys.executable, '-c', code], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
  assert result.stdout.strip().splitlines() == [
      f'env {name!r} needs the {package.split("=")[0]} package: '
      f'pip install {package}'], result.stderr[-2000:]
