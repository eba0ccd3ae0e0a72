"""What collect and eval actors share: env, agent, Reverb link, weights."""
import dataclasses
import re
from typing import Optional
import zlib

from absl import logging
import reverb
import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.environments import batched_py_environment
from tf_agents.environments import py_environment

from common import agents
from common import connection
from common import envs
from common import run_dir
from common import shutdown
from common import specs as specs_lib
from common import tables
from common.config import ExperimentConfig
from common.config import ReverbClientSettings
from common.settings import setting
from common.weights import WeightsSync


# Env i of an actor is seeded seed + i * stride: apart from other actors'.
_ENV_SEED_STRIDE = 1_000_003


@dataclasses.dataclass(frozen=True)
class ActorSettings(ReverbClientSettings):
  """Where this actor runs; the experiment itself is in ExperimentConfig."""
  task: int = setting(0, lower_bound=0, help='Actor id: seeds the env (seed '
                      '+ task) and names the summaries.')
  root_dir: Optional[str] = setting(
      help='Summaries (collect) and eval results (eval) go here.')
  weights_timeout_s: float = setting(
      600.0, help='Give up if the learner pushed no weights by then.')
  log_every_s: float = setting(
      10.0, help='Log (and summarize) env steps/s this often.')


@dataclasses.dataclass
class ActorRuntime:
  env: py_environment.PyEnvironment
  agent: tf_agent.TFAgent
  train_step: tf.Variable
  client: reverb.Client
  weights: WeightsSync


def load_envs(config: ExperimentConfig, seed: int,
              num_envs: int) -> py_environment.PyEnvironment:
  """One env, or a BatchedPyEnvironment of `num_envs` seeded apart."""
  if num_envs == 1:
    return envs.load_env(config.env, seed=seed)
  return batched_py_environment.BatchedPyEnvironment(
      [envs.load_env(config.env, seed=seed + _ENV_SEED_STRIDE * index)
       for index in range(num_envs)], multithreading=False)


def task_from_hostname(hostname: str) -> int:
  """A task id unique per replica: the trailing ordinal, else a hash."""
  match = re.search(r'-(\d+)$', hostname)
  if match:
    return int(match.group(1))
  return zlib.crc32(hostname.encode()) % 1_000_000


def start_runtime(config: ExperimentConfig, settings: ActorSettings,
                  seed: int, stop: shutdown.Shutdown,
                  num_envs: int = 1) -> ActorRuntime:
  """Loads the env(s) and agent, checks the server, waits for weights v0.

  With num_envs > 1 the env is a BatchedPyEnvironment of that many, seeded
  apart; the agent sees the specs of one.
  """
  if settings.root_dir:
    run_dir.ensure_writable_dir(settings.root_dir)
  tf.random.set_seed(seed)
  env = load_envs(config, seed, num_envs)
  agent, train_step = agents.make_agent(config, env)
  client = connection.connect(
      settings.reverb_address, settings.connect_timeout_s,
      expected=tables.experiment_tables(
          config, specs_lib.specs_of(config, agent, train_step)),
      should_stop=lambda: stop.requested)
  connection.ServerWatch(settings.reverb_address, stop)
  weights = WeightsSync(
      settings.reverb_address, specs_lib.variables_nest(agent, train_step),
      lambda: stop.requested)
  logging.info('Waiting for weights from the learner (up to %.0fs)',
               settings.weights_timeout_s)
  version = weights.wait_and_pull(settings.weights_timeout_s)
  logging.info('Got weights version %d', version)
  return ActorRuntime(env, agent, train_step, client, weights)


def stop_when_learner_done(stop: shutdown.Shutdown, address: str,
                           max_train_steps: int) -> None:
  """Stops this actor once the learner reached max_train_steps.

  Polled from a thread because the main thread may be blocked in a
  rate-limited insert once the learner stops sampling. The data an actor
  still holds then is of no use, so the grace period is short.
  """
  client = reverb.Client(address)

  def learner_done():
    step = tables.learner_train_step(client)
    if step is not None and step >= max_train_steps:
      return f'the learner reached max_train_steps ({step})'
    return None

  stop.watch(learner_done, every_s=2.0, grace_s=5.0)
