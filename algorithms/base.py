"""What an algorithm is to the processes: one builder per algorithm.

A builder (as Acme's) says everything that differs between DQN, SAC and
PPO: the hyperparameters an unset AgentConfig field takes, the config
checks, the replay item's length, the agent, the replay tables, the writer
that fills them, the actors' collection loop and the learner's training
driver. The processes ask the builder and never branch on the algorithm.

This module and the builders' top levels import nothing heavy: the launcher
reads the config (defaults, checks) without TensorFlow. The factories
(`make_*`) import what they build when a process calls them.
"""
import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol
from typing import TYPE_CHECKING

from common.errors import ConfigError
from common.errors import UserError

if TYPE_CHECKING:
  # pylint: disable=g-bad-import-order
  import reverb
  import tensorflow as tf
  from tf_agents.agents import tf_agent
  from common.config import ExperimentConfig
  from common.specs import ExperimentSpecs
  from common.replay_layout import ReplayLayout


class AgentSpecError(UserError, ValueError):
  """The agent kind does not fit the environment's action space."""


class TrainingStopped(Exception):
  """The learner was asked to stop while training waited for data."""


class Training(Protocol):
  """The learner's driver: train steps between weight pushes, with
  TF-Agents' Learner (`learner`: its checkpoint restore, summaries and
  triggers)."""
  learner: Any

  def run_first(self):
    """The smallest unit of training (one train step, one PPO iteration);
    its loss info. Raises TrainingStopped."""

  def run_to_next_push(self):
    """Train steps up to the next weights push; the last one's loss info.
    Raises TrainingStopped."""

  def waited_s(self) -> float:
    """Seconds training has waited for data so far."""

  def counters(self) -> Dict[str, float]:
    """The algorithm's own progress numbers (recorded, summarized, logged)."""

  def log_progress(self, step: int) -> None:
    """Summarizes and logs `counters()` (inside the summary writer)."""


class Collector(Protocol):
  """A collect actor's loop body: the builder decides what a round is and
  what happens before the first and between rounds; the actor pulls
  weights before each round."""
  summary_writer: Any

  def warm_up(self) -> None:
    """Before the agent's policy collects (e.g. random initial steps)."""

  def wait_for_round(self) -> None:
    """Until the next round may be collected. Raises InterruptedError when
    stopped meanwhile."""

  def run_round(self) -> None:
    """Steps the envs for one weights pull interval."""


@dataclasses.dataclass
class CollectParts:
  """What a collect actor has built, for its builder's writer and loop."""
  config: 'ExperimentConfig'
  address: str
  client: 'reverb.Client'
  env: Any  # A PyEnvironment (batched with envs_per_actor > 1).
  policy: Any  # The agent's collect policy, as a py policy.
  train_step: 'tf.Variable'
  writer: Any  # The builder's writer.
  stats: Any  # actor.episode_stats.EpisodeStats of the agent's policy.
  random_stats: Any  # Those of random steps (an initial collection).
  summary_dir: Optional[str]
  should_stop: Callable[[], bool]


@dataclasses.dataclass
class LearnerParts:
  """What the learner has built, for its builder's training driver."""
  config: 'ExperimentConfig'
  address: str
  sampling: Any  # learner.replay_input.InputSettings
  strategy: 'tf.distribute.Strategy'
  agent: 'tf_agent.TFAgent'
  specs: 'ExperimentSpecs'
  weights: Any  # common.weights.WeightsSync
  make_learner: Callable[..., Any]  # TF-Agents' Learner, given extra kwargs.
  should_stop: Callable[[], bool]


class Builder:
  """The base of every algorithm's builder; see the module docstring."""
  name: str = ''
  # What an AgentConfig field left unset takes (the tutorial's value).
  defaults: Mapping[str, Any] = {}
  # The config section logged besides env, agent and train.
  config_section: str = 'replay'
  # Items carry the version of the weights that collected them.
  versioned_items: bool = False
  # Options only some algorithms use: --replay_sampler=prioritized, --n_step.
  prioritized_replay: bool = False
  n_step_returns: bool = False

  def check_config(self, config: 'ExperimentConfig') -> None:
    """Raises ConfigError for settings this algorithm cannot run."""
    if config.replay.sampler != 'uniform' and not self.prioritized_replay:
      raise ConfigError(
          f'--replay_sampler={config.replay.sampler} needs --agent=dqn (its '
          f'TD errors set the priorities)')
    if config.agent.n_step != 1 and not self.n_step_returns:
      raise ConfigError(f'n_step {config.agent.n_step} needs --agent=dqn')

  def item_length(self, config: 'ExperimentConfig') -> int:
    """Steps per replay item."""
    raise NotImplementedError

  def check_action_spec(self, action_spec, env_name: str) -> None:
    """Raises AgentSpecError for an action space the agent cannot act in."""

  def make_agent(self, config: 'ExperimentConfig', time_step_spec,
                 action_spec, train_step: 'tf.Variable'
                 ) -> 'tf_agent.TFAgent':
    """The agent, not yet initialized (inside the strategy scope)."""
    raise NotImplementedError

  def make_replay_tables(self, config: 'ExperimentConfig',
                         specs: 'ExperimentSpecs') -> List['reverb.Table']:
    """The experience tables (the variables table is everyone's)."""
    raise NotImplementedError

  def make_writer(self, config: 'ExperimentConfig', client: 'reverb.Client',
                  layout: 'ReplayLayout', should_stop: Callable[[], bool],
                  policy_version: Callable[[], int], num_envs: int):
    """The trajectory observer that writes items (actor.replay_writer)."""
    raise NotImplementedError

  def make_collector(self, parts: CollectParts) -> Collector:
    raise NotImplementedError

  def check_strategy(self, config: 'ExperimentConfig',
                     strategy: 'tf.distribute.Strategy') -> None:
    """Raises ConfigError for a strategy this algorithm cannot train on."""

  def make_training(self, parts: LearnerParts) -> Training:
    raise NotImplementedError
