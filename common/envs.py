"""Loads environments by name: the TF-Agents gym 0.23 and pybullet suites,
and Gymnasium through common/gymnasium_env.py."""
import importlib.metadata
import re

from absl import logging
import gym
import numpy as np
from tf_agents.environments import py_environment
from tf_agents.environments import suite_gym

from common.config import EnvConfig
from common.errors import UserError

# What a Gymnasium env needs beyond gymnasium: its entry point's module (or
# its namespace) -> the package to install.
_GYMNASIUM_PACKAGES = (('gymnasium.envs.mujoco', 'mujoco'),
                       ('gymnasium.envs.box2d', 'box2d'),
                       ('ALE/', 'ale-py'))


class EnvError(UserError, ValueError):
  """The environment cannot be loaded as configured."""


def resolve_suite(config: EnvConfig) -> str:
  """The suite `config` names; auto: pybullet for *Bullet* names, gym for
  the names gym 0.23 registers, else gymnasium."""
  if config.suite != 'auto':
    return config.suite
  if 'Bullet' in config.name:
    return 'pybullet'
  if config.name in gym.envs.registry.env_specs:
    return 'gym'
  return 'gymnasium'


def load_env(config: EnvConfig, seed: int = 0) -> py_environment.PyEnvironment:
  """Returns the seeded PyEnvironment named by `config`, or raises EnvError."""
  suite = resolve_suite(config)
  if suite == 'gymnasium':
    # auto sends every name gym 0.23 does not know to Gymnasium.
    searched = 'gym or gymnasium' if config.suite == 'auto' else suite
    env = _load_gymnasium(config.name, searched)
  else:
    env = _load_tf_agents_suite(config.name, suite)
  env.seed(seed)
  np.random.seed(seed)
  logging.info('Loaded env %s (suite %s, seed %d)', config.name, suite, seed)
  return env


def _unknown(name: str, suite: str, reason: str) -> EnvError:
  return EnvError(
      f'unknown env {name!r} in the {suite} suite ({reason}); pick a '
      f'registered gym, pybullet or Gymnasium env name, e.g. CartPole-v0, '
      f'MinitaurBulletEnv-v0 or HalfCheetah-v5, or set --env_suite')


def _load_tf_agents_suite(name: str, suite: str):
  if suite == 'pybullet':
    # Importing pybullet_envs registers the *BulletEnv-v0 names with gym.
    import pybullet_envs  # pylint: disable=g-import-not-at-top,unused-import
    from tf_agents.environments import suite_pybullet  # pylint: disable=g-import-not-at-top
    loader = suite_pybullet.load
  else:
    loader = suite_gym.load
  try:
    return loader(name)
  except gym.error.Error as e:
    # Drop gin's "In call to ..." context.
    raise _unknown(name, suite, str(e).splitlines()[0]) from e


def _pinned(package: str) -> str:
  """`package` as this project pins it (e.g. mujoco==3.3.7), if it does."""
  try:
    requirements = importlib.metadata.requires('rl-actor-learner') or []
  except importlib.metadata.PackageNotFoundError:
    requirements = []
  for requirement in requirements:
    if re.match(rf'{re.escape(package)}\s*[=<>!~]', requirement, re.I):
      return requirement.split(';')[0].strip()
  return package


def _missing_package(name: str) -> str:
  """The package a Gymnasium env needs, from its entry point or namespace."""
  import gymnasium  # pylint: disable=g-import-not-at-top
  spec = gymnasium.envs.registry.get(name)
  origin = name if spec is None else str(spec.entry_point)
  for prefix, package in _GYMNASIUM_PACKAGES:
    if origin.startswith(prefix):
      return package
  return ''


def _render_kwargs(gymnasium, name: str) -> dict:
  """render_mode='rgb_array' if the env declares it (imports its module)."""
  spec = gymnasium.spec(name)
  creator = spec.entry_point
  if isinstance(creator, str):
    creator = gymnasium.envs.registration.load_env_creator(creator)
  modes = getattr(creator, 'metadata', {}).get('render_modes', [])
  return {'render_mode': 'rgb_array'} if 'rgb_array' in modes else {}


def _load_gymnasium(name: str, searched: str):
  from common import gymnasium_env  # pylint: disable=g-import-not-at-top
  gymnasium_env.use_headless_rendering()
  import gymnasium  # pylint: disable=g-import-not-at-top
  if name.startswith('ALE/'):
    try:
      import ale_py  # pylint: disable=g-import-not-at-top
      gymnasium.register_envs(ale_py)
    except ImportError:
      pass  # make() fails below, naming the package.
  try:
    env = gymnasium.make(name, **_render_kwargs(gymnasium, name))
  except (gymnasium.error.DependencyNotInstalled,
          gymnasium.error.NamespaceNotFound) as e:
    package = _missing_package(name)
    if not package:
      raise _unknown(name, searched, str(e).splitlines()[0]) from e
    raise EnvError(f'env {name!r} needs the {package} package: pip install '
                   f'{_pinned(package)}') from e
  except gymnasium.error.Error as e:
    raise _unknown(name, searched, str(e).splitlines()[0]) from e
  try:
    return gymnasium_env.GymnasiumEnv(env)
  except TypeError as e:
    env.close()
    raise EnvError(f'env {name!r}: {e}') from e
