"""Builds the experiment's agent with its algorithm's builder (algorithms/)."""
from typing import Tuple

import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.environments import py_environment
from tf_agents.specs import tensor_spec
from tf_agents.train.utils import train_utils

from common.config import ExperimentConfig


def build_agent(config: ExperimentConfig, time_step_spec, action_spec,
                train_step: tf.Variable) -> tf_agent.TFAgent:
  """Returns the initialized agent; call it inside the strategy scope."""
  builder = config.builder
  builder.check_action_spec(action_spec, config.env.name)
  agent = builder.make_agent(config, time_step_spec, action_spec, train_step)
  agent.initialize()
  return agent


def make_agent(config: ExperimentConfig, env: py_environment.PyEnvironment
               ) -> Tuple[tf_agent.TFAgent, tf.Variable]:
  """The config's agent for `env` and its new train_step counter.

  Call it inside the strategy scope when there is one.
  """
  time_step_spec, action_spec = tensor_specs(env)
  train_step = train_utils.create_train_step()
  return build_agent(config, time_step_spec, action_spec, train_step), train_step


def tensor_specs(env) -> tuple:
  """(time_step_spec, action_spec) of a PyEnvironment, as tensor specs."""
  return (tensor_spec.from_spec(env.time_step_spec()),
          tensor_spec.from_spec(env.action_spec()))

