"""The collect loop: random initial collection, then the agent's collect policy."""
import os
import time

from absl import logging
import tensorflow as tf
from tf_agents.metrics import py_metrics
from tf_agents.policies import py_tf_eager_policy
from tf_agents.policies import random_py_policy
from tf_agents.train import actor as tfa_actor

from actor import runtime as runtime_lib
from actor.replay_writer import ReplayWriter
from actor.replay_writer import StopCollection
from common import reverb_io
from common import shutdown
from common.config import ExperimentConfig

_RANDOM_STEPS_PER_CHECK = 50


def run_collect(config: ExperimentConfig, settings: runtime_lib.ActorSettings,
                stop: shutdown.Shutdown) -> int:
  """Collects into the replay table until the learner is done; env steps."""
  rt = runtime_lib.start_runtime(config, settings,
                                 seed=config.seed + settings.task, stop=stop)
  runtime_lib.stop_when_learner_done(stop, settings.reverb_address,
                                     config.train.max_train_steps)
  writer = ReplayWriter(rt.client, lambda: stop.requested)
  env_steps = py_metrics.EnvironmentSteps()
  flush_timeout_s = 2.0
  try:
    _collect_random(config, rt, writer, env_steps, stop)
    writer.end_episode()  # No item spans both policies.
    _collect_with_policy(config, settings, rt, writer, env_steps, stop)
  except StopCollection as stopped:
    if stopped.server_blocked:
      flush_timeout_s = 0  # The server is not taking items: do not wait.
  finally:
    writer.close(flush_timeout_s)
  steps = int(env_steps.result())
  logging.info('Actor %d done: %d env steps, %d items written, last policy '
               'version %d (%s)', settings.task, steps, writer.items_written,
               rt.weights.version, stop.reason or 'max_train_steps reached')
  return steps


def _collect_random(config, rt, writer, env_steps, stop) -> None:
  """Random steps until the table holds the initial collection (shared)."""
  random_actor = tfa_actor.Actor(
      rt.env,
      random_py_policy.RandomPyPolicy(rt.env.time_step_spec(),
                                      rt.env.action_spec()),
      rt.train_step, steps_per_run=_RANDOM_STEPS_PER_CHECK,
      observers=[writer, env_steps])
  while not stop.requested:
    size = reverb_io.table_size(rt.client)
    if size >= config.replay.min_size:
      break
    random_actor.run()
    writer.end_episode()  # Flushes, so the table size above is current.
  logging.info('Initial random collection done: %d env steps here',
               int(env_steps.result()))


def _collect_with_policy(config, settings, rt, writer, env_steps,
                         stop) -> None:
  policy = py_tf_eager_policy.PyTFEagerPolicy(rt.agent.collect_policy,
                                              use_tf_function=True)
  summary_dir = (os.path.join(settings.root_dir, 'actors',
                              f'task_{settings.task}')
                 if settings.root_dir else None)
  collect_metrics = tfa_actor.collect_metrics(buffer_size=10)
  average_return = next(m for m in collect_metrics
                        if m.name == 'AverageReturn')
  collect_actor = tfa_actor.Actor(
      rt.env, policy, rt.train_step,
      steps_per_run=config.train.pull_every_steps,
      observers=[writer, env_steps], metrics=collect_metrics,
      summary_dir=summary_dir,
      summary_interval=config.train.log_every_steps,
      name=f'actor_{settings.task}')
  last_steps, last_time = int(env_steps.result()), time.monotonic()
  version = rt.weights.version
  try:
    while not stop.requested:
      collect_actor.run()
      version = rt.weights.pull()
      if time.monotonic() - last_time >= settings.log_every_s:
        last_steps, last_time = _report(settings.task, collect_actor,
                                        env_steps, last_steps, last_time,
                                        version, average_return)
      if version >= config.train.max_train_steps:
        break
  finally:
    _report(settings.task, collect_actor, env_steps, last_steps, last_time,
            version, average_return)
    collect_actor.summary_writer.flush()


def _report(task, collect_actor, env_steps, last_steps, last_time, version,
            average_return):
  """Logs and summarizes env steps/s and the policy version; new marks."""
  steps, now = int(env_steps.result()), time.monotonic()
  rate = (steps - last_steps) / max(now - last_time, 1e-6)
  logging.info('task=%d env_steps=%d env_steps/s=%.1f policy_version=%d '
               'average_return=%.1f', task, steps, rate, version,
               average_return.result())
  with collect_actor.summary_writer.as_default():
    tf.summary.scalar('Actor/env_steps_per_sec', rate, step=steps)
    tf.summary.scalar('Actor/policy_version', version, step=steps)
  return steps, now
