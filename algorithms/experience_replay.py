"""DQN's and SAC's parts: the replay table, the collection (random steps
until the table holds the initial collection, then the collect policy in
rounds of pull_every_steps) and the training driver (batches sampled from
the table, prioritized for DQN when asked)."""
from typing import Dict

from absl import logging
import reverb
from tf_agents.policies import random_py_policy
from tf_agents.train import actor as tfa_actor

from algorithms.base import CollectParts
from algorithms.base import LearnerParts
from common import tables
from common.config import REPLAY_TABLE
from common.config import ReplayConfig
from common.config import TrainConfig
from common.specs import ExperimentSpecs
from learner import metrics as learner_metrics
from learner import priorities
from learner import replay_input

_RANDOM_STEPS_PER_CHECK = 50


def replay_table(config: ReplayConfig, specs: ExperimentSpecs) -> reverb.Table:
  """The experience table: uniform or prioritized sampling, FIFO removal,
  rate limited."""
  if config.rate_limiter == 'sample_to_insert':
    limiter = reverb.rate_limiters.SampleToInsertRatio(
        samples_per_insert=config.samples_per_insert,
        min_size_to_sample=config.initial_collect_steps,
        error_buffer=config.error_buffer)
  else:
    limiter = reverb.rate_limiters.MinSize(config.initial_collect_steps)
  return reverb.Table(
      name=REPLAY_TABLE,
      sampler=(reverb.selectors.Prioritized(config.priority_exponent)
               if config.sampler == 'prioritized'
               else reverb.selectors.Uniform()),
      remover=reverb.selectors.Fifo(),
      max_size=config.capacity,
      rate_limiter=limiter,
      signature=specs.replay_signature)


def _num_envs(env) -> int:
  return env.batch_size if env.batched else 1


class ReplayCollector:
  """Random steps until the table holds `initial_collect_steps` items (all
  actors together), then rounds of `pull_every_steps` steps of each env with the
  agent's collect policy (TF-Agents' Actor); no waiting between rounds."""

  def __init__(self, parts: CollectParts):
    self._parts = parts
    self._actor = None

  @property
  def summary_writer(self):
    return self._policy_actor().summary_writer

  def _policy_actor(self) -> tfa_actor.Actor:
    """Made at first use, after the random steps: it resets the envs, so
    its first step follows none of theirs."""
    if self._actor is None:
      parts = self._parts
      self._actor = tfa_actor.Actor(
          parts.env, parts.policy, parts.train_step,
          steps_per_run=(parts.config.train.pull_every_steps *
                         _num_envs(parts.env)),
          observers=[parts.writer, parts.stats],
          summary_dir=parts.summary_dir)
    return self._actor

  def warm_up(self) -> None:
    parts = self._parts
    env = parts.env
    random_actor = tfa_actor.Actor(
        env,
        random_py_policy.RandomPyPolicy(
            env.time_step_spec(), env.action_spec(),
            outer_dims=(env.batch_size,) if env.batched else None),
        parts.train_step, steps_per_run=_RANDOM_STEPS_PER_CHECK,
        observers=[parts.writer, parts.random_stats])
    target = parts.config.replay.initial_collect_steps
    while not parts.should_stop():
      if tables.table_size(parts.client) >= target:
        break
      random_actor.run()
      parts.writer.end_episode()  # Flushes, so the table size is current.
    parts.writer.end_episode()  # No item spans both policies.
    logging.info('Initial random collection done: %d env steps here',
                 parts.random_stats.env_steps)

  def wait_for_round(self) -> None:
    pass  # The rate limiter holds the writer back instead.

  def run_round(self) -> None:
    self._policy_actor().run()


def steps_to_next_push(step: int, train: TrainConfig) -> int:
  """Train steps from `step` to the next push: pushes land on multiples of
  push_every_steps (after the first step too), and on max_train_steps."""
  return min(train.push_every_steps - step % train.push_every_steps,
             train.max_train_steps - step)


class ReplayTraining:
  """Train steps on batches sampled from the replay table."""

  def __init__(self, learner, experience: learner_metrics.TimedIterator,
               train: TrainConfig, prioritized):
    self.learner = learner
    self._experience = experience
    self._train = train
    self._prioritized = prioritized

  def run_first(self):
    return self.learner.run(iterations=1, iterator=self._experience)

  def run_to_next_push(self):
    steps = steps_to_next_push(self.learner.train_step_numpy, self._train)
    return self.learner.run(iterations=steps, iterator=self._experience)

  def waited_s(self) -> float:
    return float(self._experience.waited_s.numpy())

  def counters(self) -> Dict[str, float]:
    return self._prioritized.counters() if self._prioritized else {}

  def log_progress(self, step: int) -> None:
    if self._prioritized:
      logging.info('train_step=%d %s', step, self._prioritized.describe())


def make_replay_training(parts: LearnerParts) -> ReplayTraining:
  config = parts.config
  prioritized = priorities.prioritized_training(config.replay, parts.address)
  replicas = parts.strategy.num_replicas_in_sync
  per_replica_batch = replay_input.per_replica_batch(config.agent.batch_size,
                                                     replicas)
  logging.info('Learner on %d replica(s) x %d = global batch %d', replicas,
               per_replica_batch, config.agent.batch_size)
  experience = learner_metrics.TimedIterator(
      replay_input.distributed_replay(
          parts.strategy, parts.address, parts.specs.replay_layout,
          per_replica_batch, parts.sampling,
          prioritized and prioritized.importance))
  learner = parts.make_learner(
      **(prioritized.learner_kwargs if prioritized else {}))
  if prioritized:  # beta follows the (restored) train_step.
    prioritized.importance(learner.train_step_numpy)
    learner.triggers.append(prioritized.importance)
  return ReplayTraining(learner, experience, config.train, prioritized)
