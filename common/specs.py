"""Derives data specs, the policy-variable signature and Reverb tables.

Every process calls into this one module with the same ExperimentConfig, so
nobody has to wait for another process (or a SavedModel on disk) to learn the
shapes it must read or write.
"""
import dataclasses
import functools
from typing import List

import reverb
import tensorflow as tf
from tf_agents.experimental.distributed import reverb_variable_container
from tf_agents.typing import types

from common import agents
from common import envs
from common.config import ExperimentConfig
from common.config import ReplayConfig
from common.config import REPLAY_TABLE
from common.replay_layout import ReplayLayout

VARIABLES_TABLE = reverb_variable_container.DEFAULT_TABLE
# Synchronous PPO: the learner's requests for collect rounds, each holding
# the weights version it asks for (common/collect_requests.py).
REQUESTS_TABLE = 'collect_requests'
REQUEST_SIGNATURE = tf.TensorSpec([], tf.int64)
POLICY_KEY = reverb_variable_container.POLICY_KEY
TRAIN_STEP_KEY = reverb_variable_container.TRAIN_STEP_KEY


@dataclasses.dataclass(frozen=True)
class ExperimentSpecs:
  time_step_spec: types.TimeStep
  action_spec: types.NestedTensorSpec
  collect_data_spec: types.NestedTensorSpec
  variables_signature: types.NestedTensorSpec
  sequence_length: int  # Steps per replay item (ExperimentConfig.item_length).
  on_policy: bool  # Items carry their policy version, in a queue (PPO).
  queue_size: int  # On-policy: items the queue holds, one iteration's.
  rounds_per_iteration: int  # Synchronous PPO: rounds requested (else 0).

  @functools.cached_property
  def replay_layout(self) -> ReplayLayout:
    """How actors store collect data and the learner reads it back."""
    return ReplayLayout(self.collect_data_spec, self.sequence_length,
                        policy_version=self.on_policy)

  @property
  def replay_signature(self) -> types.NestedTensorSpec:
    """One replay item: sequence_length steps, each packed in one column."""
    return self.replay_layout.signature


def variables_nest(agent, train_step: tf.Variable) -> dict:
  """What the learner pushes and actors pull: policy weights and train_step."""
  return {POLICY_KEY: agent.collect_policy.variables(),
          TRAIN_STEP_KEY: train_step}


def specs_of(config: ExperimentConfig, agent,
             train_step: tf.Variable) -> ExperimentSpecs:
  """The specs of `config`'s already built agent."""
  signature = tf.nest.map_structure(
      lambda v: tf.TensorSpec(v.shape, v.dtype),
      variables_nest(agent, train_step))
  return ExperimentSpecs(
      time_step_spec=agent.time_step_spec,
      action_spec=agent.action_spec,
      collect_data_spec=agent.collect_data_spec,
      variables_signature=signature,
      sequence_length=config.item_length,
      on_policy=config.on_policy,
      queue_size=config.ppo.items_per_iteration,
      rounds_per_iteration=config.rounds_per_iteration)


def derive_specs(config: ExperimentConfig) -> ExperimentSpecs:
  """Builds the env and agent of `config` just to read their specs."""
  env = envs.load_env(config.env, seed=config.seed)
  agent, train_step = agents.make_agent(config, env)
  env.close()
  return specs_of(config, agent, train_step)


def tables(config: ExperimentConfig,
           specs: ExperimentSpecs) -> List[reverb.Table]:
  """Every table the experiment's server holds."""
  served = [replay_table(config.replay, specs), variables_table(specs)]
  if specs.rounds_per_iteration:
    served.append(requests_table(specs))
  return served


def replay_table(config: ReplayConfig,
                 specs: ExperimentSpecs) -> reverb.Table:
  """The experience table: uniform or prioritized sampling, FIFO removal,
  rate limited; on-policy, a queue of one iteration's items (each sampled
  once, in order; actors wait while it is full)."""
  if specs.on_policy:
    return reverb.Table.queue(REPLAY_TABLE, max_size=specs.queue_size,
                              signature=specs.replay_signature)
  if config.rate_limiter == 'sample_to_insert':
    limiter = reverb.rate_limiters.SampleToInsertRatio(
        samples_per_insert=config.samples_per_insert,
        min_size_to_sample=config.min_size,
        error_buffer=config.error_buffer)
  else:
    limiter = reverb.rate_limiters.MinSize(config.min_size)
  return reverb.Table(
      name=REPLAY_TABLE,
      sampler=(reverb.selectors.Prioritized(config.priority_exponent)
               if config.sampler == 'prioritized'
               else reverb.selectors.Uniform()),
      remover=reverb.selectors.Fifo(),
      max_size=config.capacity,
      rate_limiter=limiter,
      signature=specs.replay_signature)


def variables_table(specs: ExperimentSpecs) -> reverb.Table:
  """The variable container: one item, the latest policy weights."""
  return reverb.Table(
      name=VARIABLES_TABLE,
      sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      rate_limiter=reverb.rate_limiters.MinSize(1),
      max_size=1,
      max_times_sampled=0,
      signature=specs.variables_signature)


def requests_table(specs: ExperimentSpecs) -> reverb.Table:
  """Synchronous PPO's collect requests: a queue of at most one
  iteration's rounds, each taken by one actor."""
  return reverb.Table.queue(REQUESTS_TABLE,
                            max_size=specs.rounds_per_iteration,
                            signature=REQUEST_SIGNATURE)
