"""Frozen dataclasses that describe one experiment, with their validation.

Every process builds the same `ExperimentConfig` from the same flagfile; the
library takes these objects and never reads flags.
"""
import dataclasses
from typing import Optional, Tuple

from common.errors import UserError

AGENT_KINDS = ('dqn', 'sac')
ENV_SUITES = ('auto', 'gym', 'pybullet')
RATE_LIMITERS = ('sample_to_insert', 'min_size')
STRATEGIES = ('default', 'mirrored', 'tpu')

# Each replay item is a pair of consecutive steps, as in the tutorials.
SEQUENCE_LENGTH = 2
REPLAY_TABLE = 'uniform_table'


class ConfigError(UserError, ValueError):
  """A configuration value is out of range or inconsistent."""


def _check(condition: bool, message: str) -> None:
  if not condition:
    raise ConfigError(message)


def _check_positive(owner, *names: str) -> None:
  for name in names:
    value = getattr(owner, name)
    _check(value > 0, f'{name} must be > 0, got {value}')


@dataclasses.dataclass(frozen=True)
class EnvConfig:
  """Which environment to load, and from which TF-Agents suite."""
  name: str = 'CartPole-v0'
  suite: str = 'auto'  # 'auto' picks pybullet for *Bullet* names, else gym.

  def __post_init__(self):
    _check(bool(self.name), 'env name must not be empty')
    _check(self.suite in ENV_SUITES,
           f'env suite must be one of {ENV_SUITES}, got {self.suite!r}')

  @property
  def resolved_suite(self) -> str:
    if self.suite != 'auto':
      return self.suite
    return 'pybullet' if 'Bullet' in self.name else 'gym'


@dataclasses.dataclass(frozen=True)
class AgentConfig:
  """Agent hyperparameters; `agent_defaults(kind)` gives the tutorials' values."""
  kind: str
  fc_layer_params: Tuple[int, ...]  # DQN: Q network; SAC: actor network.
  critic_fc_layer_params: Tuple[int, ...]  # SAC only.
  learning_rate: float  # DQN: Adam; SAC: actor, critic and alpha Adams.
  batch_size: int
  gamma: float
  target_update_tau: float
  target_update_period: int
  epsilon_greedy: float  # DQN collect policy only.
  reward_scale_factor: float = 1.0

  def __post_init__(self):
    _check(self.kind in AGENT_KINDS,
           f'agent must be one of {AGENT_KINDS}, got {self.kind!r}')
    _check(len(self.fc_layer_params) > 0 and
           all(units > 0 for units in self.fc_layer_params),
           f'fc_layer_params must be positive layer sizes, '
           f'got {self.fc_layer_params}')
    _check(all(units > 0 for units in self.critic_fc_layer_params),
           f'critic_fc_layer_params must be positive layer sizes, '
           f'got {self.critic_fc_layer_params}')
    _check_positive(self, 'learning_rate', 'batch_size', 'target_update_period')
    _check(0.0 <= self.gamma <= 1.0, f'gamma must be in [0, 1], got {self.gamma}')
    _check(0.0 < self.target_update_tau <= 1.0,
           f'target_update_tau must be in (0, 1], got {self.target_update_tau}')
    _check(0.0 <= self.epsilon_greedy <= 1.0,
           f'epsilon_greedy must be in [0, 1], got {self.epsilon_greedy}')


def agent_defaults(kind: str) -> AgentConfig:
  """The DQN CartPole and SAC Minitaur tutorials' hyperparameters."""
  if kind == 'dqn':
    return AgentConfig(kind='dqn', fc_layer_params=(100, 50),
                       critic_fc_layer_params=(), learning_rate=1e-3,
                       batch_size=64, gamma=1.0, target_update_tau=1.0,
                       target_update_period=1, epsilon_greedy=0.1)
  if kind == 'sac':
    return AgentConfig(kind='sac', fc_layer_params=(256, 256),
                       critic_fc_layer_params=(256, 256), learning_rate=3e-4,
                       batch_size=256, gamma=0.99, target_update_tau=0.005,
                       target_update_period=1, epsilon_greedy=0.0)
  raise ConfigError(f'agent must be one of {AGENT_KINDS}, got {kind!r}')


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
  """The replay table and its rate limiter.

  `sample_to_insert` keeps the learner at `samples_per_insert` sampled items
  per inserted item (default: the batch size, i.e. one train step per env step
  as in the tutorials), allowing `slack_steps` env steps of drift either way.
  Actors collect with a random policy until the table holds `min_size`
  items (the tutorials' initial collection); the learner samples from then on.
  The server checkpoints the tables every `checkpoint_every_s` (and on
  SIGTERM): a server that is killed loses at most what came after.
  """
  capacity: int
  min_size: int
  rate_limiter: str = 'sample_to_insert'
  samples_per_insert: float = 64.0
  slack_steps: int = 1000
  checkpoint_every_s: float = 300.0

  def __post_init__(self):
    _check_positive(self, 'capacity', 'min_size', 'samples_per_insert',
                    'slack_steps', 'checkpoint_every_s')
    _check(self.rate_limiter in RATE_LIMITERS,
           f'rate_limiter must be one of {RATE_LIMITERS}, '
           f'got {self.rate_limiter!r}')
    _check(self.min_size <= self.capacity,
           f'initial collection ({self.min_size} items) must fit in the '
           f'replay capacity ({self.capacity})')

  @property
  def error_buffer(self) -> float:
    return self.slack_steps * self.samples_per_insert


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How long to train and how often processes sync, save and evaluate."""
  max_train_steps: int = 20000
  push_every_steps: int = 100
  pull_every_steps: int = 100
  envs_per_actor: int = 1
  checkpoint_every_steps: int = 5000
  policy_save_every_steps: int = 5000
  eval_every_steps: int = 1000
  eval_episodes: int = 10
  log_every_steps: int = 1000

  def __post_init__(self):
    _check_positive(self, 'max_train_steps',
                    'push_every_steps', 'pull_every_steps', 'envs_per_actor',
                    'checkpoint_every_steps', 'policy_save_every_steps',
                    'eval_episodes', 'log_every_steps')
    _check(self.eval_every_steps >= 0,
           f'eval_every_steps must be >= 0 (0: every new weights version), '
           f'got {self.eval_every_steps}')


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """Everything every process must agree on."""
  env: EnvConfig
  agent: AgentConfig
  replay: ReplayConfig
  train: TrainConfig
  seed: int = 0

  def __post_init__(self):
    _check(self.agent.batch_size <= self.replay.capacity,
           f'batch_size ({self.agent.batch_size}) must not exceed the replay '
           f'capacity ({self.replay.capacity})')


@dataclasses.dataclass(frozen=True)
class StrategyConfig:
  """The learner's tf.distribute strategy."""
  kind: str = 'default'
  tpu_address: Optional[str] = None

  def __post_init__(self):
    _check(self.kind in STRATEGIES,
           f'strategy must be one of {STRATEGIES}, got {self.kind!r}')
    _check(self.kind != 'tpu' or bool(self.tpu_address),
           '--strategy=tpu needs --tpu=<address or name>')
