"""Frozen dataclasses that describe one experiment, with their validation.

Every process builds the same `ExperimentConfig` from the same flagfile; the
library takes these objects and never reads flags.
"""
import dataclasses
from typing import Optional, Tuple

import algorithms
from common import ports
from common.errors import ConfigError
from common.settings import setting

AGENT_KINDS = algorithms.KINDS
ENV_SUITES = ('auto', 'gym', 'pybullet', 'gymnasium')
RATE_LIMITERS = ('sample_to_insert', 'min_size')
SAMPLERS = ('uniform', 'prioritized')
TD_LOSSES = ('squared', 'huber')
STRATEGIES = ('default', 'mirrored', 'tpu')

# The experience table, whatever its sampler (DQN, SAC) or a queue (PPO).
# It was 'uniform_table' until the builders came: those replay checkpoints
# are refused with a clear error (reverb_server/server.py).
REPLAY_TABLE = 'experience'
OLD_REPLAY_TABLE = 'uniform_table'
# Its columns: each item's steps, packed (common/replay_layout.py); on-policy
# items also carry the version of the weights that collected them.
STEP_COLUMN = 'step'
VERSION_COLUMN = 'policy_version'


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
  name: str = setting('CartPole-v0', flag='env',
                      help='Environment name (gym, pybullet or Gymnasium).')
  suite: str = setting('auto', flag='env_suite', enum=ENV_SUITES,
                       help='Suite to load --env with; auto picks pybullet '
                       'for *Bullet* names, gym for names gym 0.23 '
                       'registers, else gymnasium.')

  def __post_init__(self):
    _check(bool(self.name), 'env name must not be empty')
    _check(self.suite in ENV_SUITES,
           f'env suite must be one of {ENV_SUITES}, got {self.suite!r}')


_TUTORIAL = "the agent's tutorial value"


@dataclasses.dataclass(frozen=True)
class AgentConfig:
  """Agent hyperparameters; each one left unset (None) takes the value the
  agent `kind`'s builder gives (algorithms/: the DQN CartPole and SAC
  Minitaur tutorials', TF-Agents' PPO examples')."""
  kind: str = setting('dqn', flag='agent', enum=AGENT_KINDS,
                      help='Agent kind.')
  fc_layer_params: Optional[Tuple[int, ...]] = setting(
      help='DQN Q-network / SAC and PPO actor layer sizes.', unset=_TUTORIAL)
  critic_fc_layer_params: Optional[Tuple[int, ...]] = setting(
      help='SAC critic / PPO value network layer sizes.', unset=_TUTORIAL)
  learning_rate: Optional[float] = setting(
      help='Adam learning rate (SAC: actor, critic and alpha).',
      unset=_TUTORIAL)
  batch_size: Optional[int] = setting(
      help='Train batch size (PPO: the minibatch, in env steps).',
      unset=_TUTORIAL)
  gamma: Optional[float] = setting(help='Discount.', unset=_TUTORIAL)
  target_update_tau: Optional[float] = setting(
      help='Target network update rate.', unset=_TUTORIAL)
  target_update_period: Optional[int] = setting(
      help='Target network update period.', unset=_TUTORIAL)
  epsilon_greedy: Optional[float] = setting(
      help='DQN collect-policy exploration.', unset=_TUTORIAL)
  reward_scale_factor: Optional[float] = setting(help='Reward scale.',
                                                 unset=_TUTORIAL)
  n_step: int = setting(
      1, lower_bound=1, help='DQN: n-step returns; each replay item holds '
      'n_step + 1 consecutive steps of one episode.')
  td_loss: str = setting(
      'squared', enum=TD_LOSSES, help='DQN: the loss of a TD error: squared '
      '(the DQN tutorial) or huber (Nature DQN, the RL Baselines3 Zoo).')

  def __post_init__(self):
    for name, value in algorithms.get(self.kind).defaults.items():
      if getattr(self, name) is None:
        object.__setattr__(self, name, value)
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
    _check(self.n_step >= 1, f'n_step must be >= 1, got {self.n_step}')
    _check(self.td_loss in TD_LOSSES,
           f'td_loss must be one of {TD_LOSSES}, got {self.td_loss!r}')


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
  """The replay table and its rate limiter.

  `sample_to_insert` keeps the learner at `samples_per_insert` sampled items
  per inserted item (unset: the batch size, i.e. one train step per env step
  as in the tutorials; ExperimentConfig fills it in), allowing
  `rate_limiter_slack_steps` env steps of drift either way. Actors collect
  with a random policy until the table holds `initial_collect_steps` items (the tutorials' initial collection); the
  learner samples from then on. The server checkpoints the tables every
  `checkpoint_every_s` (and on SIGTERM): a server that is killed loses at
  most what came after.
  """
  capacity: int = setting(100000, flag='replay_capacity',
                          help='Replay table max size (items).')
  initial_collect_steps: int = setting(
      100,
      help='Random-policy steps the actors collect (together) before the '
      'learner samples.')
  rate_limiter: str = setting(
      'sample_to_insert', enum=RATE_LIMITERS,
      help='sample_to_insert: keep the ratio of train steps to env steps; '
      'min_size: no ratio, only the initial collection.')
  samples_per_insert: Optional[float] = setting(
      help='Sampled items per inserted item.',
      unset='the batch size, i.e. one train step per env step as in the '
      'tutorials')
  rate_limiter_slack_steps: int = setting(
      1000,
      help='Env steps collection may run ahead of or behind that ratio.')
  sampler: str = setting(
      'uniform', flag='replay_sampler', enum=SAMPLERS,
      help='uniform, or prioritized by TD error (DQN; Schaul et al. 2016).')
  priority_exponent: float = setting(
      0.6, lower_bound=0.0, help='Prioritized: alpha, items are sampled in '
      'proportion to priority ** alpha.')
  importance_exponent: float = setting(
      0.4, lower_bound=0.0, upper_bound=1.0,
      help='Prioritized: beta, the loss weights (N * P(item)) ** -beta, '
      'divided by the batch maximum.')
  importance_anneal_steps: int = setting(
      0, lower_bound=0, help='Prioritized: beta rises linearly to 1 over '
      'this many train steps (0: it stays at importance_exponent).')
  initial_priority: float = setting(
      1.0, help='Prioritized: the priority actors give new items (the '
      'learner then sets |TD error|).')
  checkpoint_every_s: float = setting(
      300.0, flag='replay_checkpoint_every_s',
      help='The Reverb server checkpoints its tables this often (seconds; '
      'and on SIGTERM): a server that is killed loses at most the items '
      'inserted since.')

  def __post_init__(self):
    _check_positive(self, 'capacity', 'initial_collect_steps',
                    'rate_limiter_slack_steps', 'checkpoint_every_s')
    if self.samples_per_insert is not None:
      _check_positive(self, 'samples_per_insert')
    _check(self.rate_limiter in RATE_LIMITERS,
           f'rate_limiter must be one of {RATE_LIMITERS}, '
           f'got {self.rate_limiter!r}')
    _check(self.sampler in SAMPLERS,
           f'replay_sampler must be one of {SAMPLERS}, got {self.sampler!r}')
    _check_positive(self, 'initial_priority')
    _check(self.priority_exponent >= 0 and
           0 <= self.importance_exponent <= 1 and
           self.importance_anneal_steps >= 0,
           'priority_exponent must be >= 0, importance_exponent in [0, 1] and '
           'importance_anneal_steps >= 0')
    _check(self.initial_collect_steps <= self.capacity,
           f'initial collection ({self.initial_collect_steps} items) must fit '
           f'in the replay capacity ({self.capacity})')

  def importance_exponent_at(self, train_step: int) -> float:
    """beta at `train_step`: importance_exponent, annealed linearly to 1."""
    if not self.importance_anneal_steps:
      return self.importance_exponent
    done = min(1.0, train_step / self.importance_anneal_steps)
    return self.importance_exponent + (1 - self.importance_exponent) * done

  @property
  def error_buffer(self) -> float:
    return self.rate_limiter_slack_steps * self.samples_per_insert


@dataclasses.dataclass(frozen=True)
class PPOConfig:
  """PPO (--agent=ppo): on-policy iterations over a queue of sequences.

  Actors collect in rounds of `sequence_length` steps of each env, each
  env's a queue item (episodes may end and start inside it), and pull
  weights before each round. The learner takes exactly
  `steps_per_iteration` env steps of items collected at most
  `max_policy_lag` iterations ago, trains `num_epochs` passes over them in
  minibatches of the agent's batch_size steps, and pushes the new weights:
  one iteration. Older items are dropped and counted. Synchronous (lag 0),
  the learner requests each iteration's rounds and actors collect only
  those (algorithms/collect_requests.py).
  """
  steps_per_iteration: int = setting(
      2048, flag='ppo_steps_per_iteration', lower_bound=1,
      help='PPO: env steps the learner trains on per iteration, exactly.')
  sequence_length: int = setting(
      64, flag='ppo_sequence_length', lower_bound=2,
      help='PPO: steps per queue item; actors pull weights before each round '
      'of one item per env.')
  max_policy_lag: int = setting(
      0, lower_bound=0, help='PPO: items collected with weights more than '
      'this many iterations old are dropped (0: synchronous PPO, the actors '
      'collecting only the rounds the learner requests).')
  num_epochs: int = setting(
      10, lower_bound=1, help='PPO: passes over each iteration\'s data.')
  importance_ratio_clipping: float = setting(
      0.2, lower_bound=0.0, help='PPO: the clipping epsilon of the '
      'probability ratio.')
  entropy_regularization: float = setting(
      0.0, lower_bound=0.0, help='PPO: entropy bonus coefficient.')
  gae_lambda: float = setting(
      0.95, lower_bound=0.0, upper_bound=1.0,
      help='PPO: lambda of generalized advantage estimation.')
  normalize_observations: bool = setting(
      True, help='PPO: normalize observations by running statistics.')
  normalize_rewards: bool = setting(
      True, help='PPO: normalize rewards by running statistics.')
  stall_s: float = setting(
      10.0, flag='ppo_stall_s', help='PPO: an iteration that got no fresh item '
      'for this long (or 3x its longest wait for one so far) has stalled: '
      'the learner pushes its weights again if the server holds others and '
      'requests the missing rounds again.')

  def __post_init__(self):
    _check_positive(self, 'steps_per_iteration', 'num_epochs', 'stall_s')
    _check(self.sequence_length >= 2,
           f'ppo_sequence_length must be >= 2, got {self.sequence_length}')
    _check(self.steps_per_iteration % self.sequence_length == 0,
           f'ppo_steps_per_iteration ({self.steps_per_iteration}) must be a '
           f'multiple of ppo_sequence_length ({self.sequence_length})')
    _check(self.max_policy_lag >= 0,
           f'max_policy_lag must be >= 0, got {self.max_policy_lag}')
    _check(0.0 <= self.gae_lambda <= 1.0,
           f'gae_lambda must be in [0, 1], got {self.gae_lambda}')

  @property
  def items_per_iteration(self) -> int:
    return self.steps_per_iteration // self.sequence_length

  @property
  def synchronous(self) -> bool:
    """Every item is trained on by the iteration that asked for it: the
    learner requests exactly the sequences an iteration needs."""
    return self.max_policy_lag == 0

  def train_steps_per_iteration(self, batch_size: int) -> int:
    """One train step per minibatch of each epoch."""
    return self.num_epochs * self.steps_per_iteration // batch_size


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How long to train and how often processes sync, save and evaluate."""
  max_train_steps: int = setting(20000,
                                 help='Training stops at this train step.')
  push_every_steps: int = setting(
      100, help='The learner pushes weights every N train steps (PPO: '
      'after every iteration).')
  pull_every_steps: int = setting(
      100, help='Collect actors pull weights every N steps of each of their '
      'envs (PPO: after every sequence).')
  envs_per_actor: int = setting(
      1, help='Environments each collect actor steps in one batch, with one '
      'batched policy call per step.')
  checkpoint_every_steps: int = setting(
      5000, help='Learner checkpoint interval (train steps).')
  policy_save_every_steps: int = setting(
      5000, help='Policy SavedModel interval (train steps).')
  eval_every_steps: int = setting(
      1000, help='Evaluate every N train steps (0: every new weights '
      'version).')
  eval_episodes: int = setting(10, help='Episodes per evaluation.')
  log_every_steps: int = setting(
      1000, help='Learner log and summary interval (train steps).')

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
  env: EnvConfig = EnvConfig()
  agent: AgentConfig = AgentConfig()
  replay: ReplayConfig = ReplayConfig()
  train: TrainConfig = TrainConfig()
  ppo: PPOConfig = PPOConfig()
  seed: int = setting(0, help='Base seed; each collect actor adds its task '
                      'id.')

  def __post_init__(self):
    if self.replay.samples_per_insert is None:
      object.__setattr__(self, 'replay', dataclasses.replace(
          self.replay, samples_per_insert=float(self.agent.batch_size)))
    self.builder.check_config(self)

  @property
  def builder(self) -> algorithms.Builder:
    """The agent kind's builder: what the processes ask for everything
    that differs between algorithms."""
    return algorithms.get(self.agent.kind)


@dataclasses.dataclass(frozen=True)
class StrategySettings:
  """The learner's tf.distribute strategy (a setting of the learner
  process, not of the experiment)."""
  kind: str = setting(
      'default', flag='strategy', enum=STRATEGIES,
      help='default: CPU or one GPU; mirrored: all local GPUs; tpu: see --tpu.')
  tpu: Optional[str] = setting(
      help='TPU name or grpc:// address.')
  cpu_replicas: int = setting(
      0, lower_bound=0,
      help='For testing and CPU hosts: with --strategy=mirrored, split the '
      'CPU into this many logical devices and train one replica on each (0: '
      'mirrored uses every local GPU).')

  def __post_init__(self):
    _check(self.kind in STRATEGIES,
           f'strategy must be one of {STRATEGIES}, got {self.kind!r}')
    _check(self.kind != 'tpu' or bool(self.tpu),
           '--strategy=tpu needs --tpu=<address or name>')
    _check(self.cpu_replicas == 0 or self.kind == 'mirrored',
           '--cpu_replicas needs --strategy=mirrored')


@dataclasses.dataclass(frozen=True)
class ReverbClientSettings:
  """How a process reaches the Reverb server (learner and actors)."""
  reverb_address: str = setting('localhost:8000',
                                help='host:port of the Reverb server.')
  connect_timeout_s: float = setting(
      30.0, help='Give up if Reverb does not answer by then.')

  def __post_init__(self):
    ports.parse_address(self.reverb_address)  # At once, not after a timeout.
