"""The algorithms, by --agent name: one builder each (algorithms/base.py).

To add one: write algorithms/<name>.py with a `Builder` subclass, and add
it to `_BUILDERS` below.
"""
from algorithms import dqn
from algorithms import ppo
from algorithms import sac
from algorithms.base import Builder
from common.errors import ConfigError

_BUILDERS = (dqn.DQN(), sac.SAC(), ppo.PPO())
BUILDERS = {builder.name: builder for builder in _BUILDERS}
KINDS = tuple(BUILDERS)


def get(kind: str) -> Builder:
  """The builder of --agent `kind`; ConfigError for an unknown one."""
  if kind not in BUILDERS:
    raise ConfigError(f'agent must be one of {KINDS}, got {kind!r}')
  return BUILDERS[kind]
