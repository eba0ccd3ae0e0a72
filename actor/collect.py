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
  collect_actor = tfa_actor.Actor(
      rt.env, policy, rt.train_step,
      steps_per_run=config.train.pull_every_steps,
      observers=[writer, env_steps], metrics=collect_metrics,
      summary_dir=summary_dir,
      summary_interval=config.train.log_every_steps,
      name=f'actor_{settings.task}')
  report = _Report(settings.task, rt.client, collect_actor, env_steps,
                   collect_metrics)
  version = rt.weights.version
  try:
    while not stop.requested:
      collect_actor.run()
      version = rt.weights.pull()
      if report.seconds_since_last() >= settings.log_every_s:
        report.write(version)
      if version >= config.train.max_train_steps:
        break
  finally:
    report.write(version)
    collect_actor.summary_writer.flush()


class _Report:
  """Logs and summarizes the actor's Actor/* scalars."""

  def __init__(self, task, client, collect_actor, env_steps, collect_metrics):
    self._task = task
    self._client = client
    self._writer = collect_actor.summary_writer
    self._env_steps = env_steps
    self._metrics = {m.name: m for m in collect_metrics}
    self._last_steps = int(env_steps.result())
    self._last_time = time.monotonic()

  def seconds_since_last(self) -> float:
    return time.monotonic() - self._last_time

  def write(self, version: int) -> None:
    steps, now = int(self._env_steps.result()), time.monotonic()
    learner_step = reverb_io.learner_train_step(self._client) or version
    values = {
        'Actor/env_steps_per_sec':
            (steps - self._last_steps) / max(now - self._last_time, 1e-6),
        'Actor/episodes': float(self._metrics['NumberOfEpisodes'].result()),
        'Actor/average_return': float(self._metrics['AverageReturn'].result()),
        'Actor/policy_version': version,
        'Actor/policy_lag': max(learner_step - version, 0)}
    logging.info('task=%d env_steps=%d env_steps/s=%.1f episodes=%d '
                 'average_return=%.1f policy_version=%d policy_lag=%d',
                 self._task, steps, values['Actor/env_steps_per_sec'],
                 values['Actor/episodes'], values['Actor/average_return'],
                 version, values['Actor/policy_lag'])
    with self._writer.as_default():
      for tag, value in values.items():
        tf.summary.scalar(tag, value, step=steps)
    self._last_steps, self._last_time = steps, now
