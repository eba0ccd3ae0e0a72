"""Loads environments by name through the TF-Agents gym and pybullet suites."""
from absl import logging
import gym
import numpy as np
from tf_agents.environments import py_environment
from tf_agents.environments import suite_gym

from common.config import EnvConfig
from common.errors import UserError


class EnvError(UserError, ValueError):
  """The environment cannot be loaded as configured."""


def load_env(config: EnvConfig, seed: int = 0) -> py_environment.PyEnvironment:
  """Returns the seeded PyEnvironment named by `config`, or raises EnvError."""
  suite = config.resolved_suite
  if suite == 'pybullet':
    # Importing pybullet_envs registers the *BulletEnv-v0 names with gym.
    import pybullet_envs  # pylint: disable=g-import-not-at-top,unused-import
    from tf_agents.environments import suite_pybullet  # pylint: disable=g-import-not-at-top
    loader = suite_pybullet.load
  else:
    loader = suite_gym.load
  try:
    env = loader(config.name)
  except gym.error.Error as e:
    reason = str(e).splitlines()[0]  # Drop gin's "In call to ..." context.
    raise EnvError(
        f'unknown env {config.name!r} in the {suite} suite ({reason}); '
        f'pick a registered gym or pybullet env name, e.g. CartPole-v0 or '
        f'MinitaurBulletEnv-v0, or set --env_suite') from e
  env.seed(seed)
  np.random.seed(seed)
  logging.info('Loaded env %s (suite %s, seed %d)', config.name, suite, seed)
  return env
