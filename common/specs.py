"""Derives the data specs and the policy-variable signature.

Every process calls into this one module with the same ExperimentConfig, so
nobody has to wait for another process (or a SavedModel on disk) to learn the
shapes it must read or write.
"""
import dataclasses
import functools

import tensorflow as tf
from tf_agents.experimental.distributed import reverb_variable_container
from tf_agents.typing import types

from common import agents
from common import envs
from common.config import ExperimentConfig
from common.replay_layout import ReplayLayout

VARIABLES_TABLE = reverb_variable_container.DEFAULT_TABLE
POLICY_KEY = reverb_variable_container.POLICY_KEY
TRAIN_STEP_KEY = reverb_variable_container.TRAIN_STEP_KEY


@dataclasses.dataclass(frozen=True)
class ExperimentSpecs:
  """The shapes every process derives from the config: of a step, of a
  replay item (`replay_layout`) and of the weights (`variables_signature`)."""
  time_step_spec: types.TimeStep
  action_spec: types.NestedTensorSpec
  collect_data_spec: types.NestedTensorSpec
  variables_signature: types.NestedTensorSpec
  sequence_length: int  # Steps per replay item (the builder's item_length).
  versioned_items: bool  # Items carry their policy version (PPO).

  @functools.cached_property
  def replay_layout(self) -> ReplayLayout:
    """How actors store collect data and the learner reads it back."""
    return ReplayLayout(self.collect_data_spec, self.sequence_length,
                        policy_version=self.versioned_items)

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
  builder = config.builder
  signature = tf.nest.map_structure(
      lambda v: tf.TensorSpec(v.shape, v.dtype),
      variables_nest(agent, train_step))
  return ExperimentSpecs(
      time_step_spec=agent.time_step_spec,
      action_spec=agent.action_spec,
      collect_data_spec=agent.collect_data_spec,
      variables_signature=signature,
      sequence_length=builder.item_length(config),
      versioned_items=builder.versioned_items)


def derive_specs(config: ExperimentConfig) -> ExperimentSpecs:
  """Builds the env and agent of `config` just to read their specs."""
  env = envs.load_env(config.env, seed=config.seed)
  agent, train_step = agents.make_agent(config, env)
  env.close()
  return specs_of(config, agent, train_step)
