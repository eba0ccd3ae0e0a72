"""The collect loop: random initial collection, then the agent's collect policy."""
import time
from typing import Optional

from absl import logging
import tensorflow as tf
from tf_agents.policies import random_py_policy
from tf_agents.train import actor as tfa_actor
from tf_agents.trajectories import trajectory

from actor import runtime as runtime_lib
from actor.episode_stats import EpisodeStats
from actor.fast_policy import FastPyPolicy
from actor.replay_writer import ReplayWriter
from actor.replay_writer import SequenceWriter
from actor.replay_writer import StopCollection
from common import reverb_io
from common.collect_requests import CollectRequests
from common import run_dir
from common import shutdown
from common.config import ExperimentConfig
from common import specs as specs_lib

_RANDOM_STEPS_PER_CHECK = 50


def run_collect(config: ExperimentConfig, settings: runtime_lib.ActorSettings,
                stop: shutdown.Shutdown) -> int:
  """Collects into the replay table until the learner is done; env steps."""
  num_envs = config.train.envs_per_actor
  rt = runtime_lib.start_runtime(config, settings,
                                 seed=config.seed + settings.task, stop=stop,
                                 num_envs=num_envs)
  runtime_lib.stop_when_learner_done(stop, settings.reverb_address,
                                     config.train.max_train_steps)
  layout = specs_lib.specs_of(config, rt.agent, rt.train_step).replay_layout
  if config.on_policy:
    writer = SequenceWriter(rt.client, layout, lambda: stop.requested,
                            lambda: rt.weights.version, num_envs)
  else:
    writer = ReplayWriter(rt.client, layout, lambda: stop.requested,
                          num_envs, priority=config.replay.initial_priority)
  random_stats, stats = EpisodeStats(num_envs), EpisodeStats(num_envs)
  flush_timeout_s = 2.0
  try:
    if not config.on_policy:  # PPO learns from its own policy's steps only.
      _collect_random(config, rt, writer, random_stats, stop)
      writer.end_episode()  # No item spans both policies.
    _collect_with_policy(config, settings, rt, writer, stats, stop)
  except StopCollection as stopped:
    if stopped.server_blocked:
      flush_timeout_s = 0  # The server is not taking items: do not wait.
  except InterruptedError:  # Stopped in a pull the server did not answer.
    flush_timeout_s = 0
  finally:
    writer.close(flush_timeout_s)
  steps = random_stats.env_steps + stats.env_steps
  logging.info('Actor %d done: %d env steps, %d items written, last policy '
               'version %d (%s)', settings.task, steps, writer.items_written,
               rt.weights.version, stop.reason or 'max_train_steps reached')
  return steps


def _collect_random(config, rt, writer, stats, stop) -> None:
  """Random steps until the table holds the initial collection (shared)."""
  random_actor = tfa_actor.Actor(
      rt.env,
      random_py_policy.RandomPyPolicy(
          rt.env.time_step_spec(), rt.env.action_spec(),
          outer_dims=(rt.env.batch_size,) if rt.env.batched else None),
      rt.train_step, steps_per_run=_RANDOM_STEPS_PER_CHECK,
      observers=[writer, stats])
  while not stop.requested:
    size = reverb_io.table_size(rt.client)
    if size >= config.replay.min_size:
      break
    random_actor.run()
    writer.end_episode()  # Flushes, so the table size above is current.
  logging.info('Initial random collection done: %d env steps here',
               stats.env_steps)


def _collect_with_policy(config, settings, rt, writer, stats, stop) -> None:
  summary_dir = (run_dir.actor_summary_dir(settings.root_dir, settings.task)
                 if settings.root_dir else None)
  collect_actor = make_collect_actor(
      config, rt.env, FastPyPolicy(rt.agent.collect_policy, rt.env.batched),
      rt.train_step, writer, stats, summary_dir)
  report = _Report(settings.task, rt.client, collect_actor.summary_writer,
                   stats)
  requests = None
  if config.rounds_per_iteration:  # Synchronous PPO: rounds on request.
    requests = CollectRequests(settings.reverb_address,
                               lambda: stop.requested)
  version = rt.weights.version
  try:
    while not stop.requested:
      if requests:
        requests.take()
      elif config.on_policy:
        writer.wait_for_room()
      version = rt.weights.pull()
      if version >= config.train.max_train_steps:
        break
      collect_actor.run()
      if report.seconds_since_last() >= settings.log_every_s:
        report.write(version)
  finally:
    # When stopping, the server may be stopping too: do not ask it.
    report.write(version, ask_server=not stop.requested)
    collect_actor.summary_writer.flush()


def make_collect_actor(config: ExperimentConfig, env, policy, train_step,
                       writer: ReplayWriter, stats: EpisodeStats,
                       summary_dir: Optional[str]):
  """Steps the envs with the writer and the stats as observers, one weights
  pull interval per run(): TF-Agents' Actor for pull_every_steps steps of
  each env; PPO: one sequence of each env (SequenceRounds)."""
  observers = [writer, stats]
  if config.on_policy:
    return SequenceRounds(env, policy, observers, config.ppo.sequence_length,
                          summary_dir)
  return tfa_actor.Actor(
      env, policy, train_step,
      steps_per_run=config.train.pull_every_steps * _num_envs(env),
      observers=observers, summary_dir=summary_dir)


class SequenceRounds:
  """PPO's collection: each run() steps every env exactly `steps` times,
  one sequence of each, so that the actor pulls weights between sequences.

  (TF-Agents' driver counts steps without the LAST -> FIRST ones between
  episodes, so its runs drift off the sequences, and a sequence would be
  collected with two versions of the weights.)
  """

  def __init__(self, env, policy, observers, steps: int,
               summary_dir: Optional[str]):
    self._env = env
    self._policy = policy
    self._observers = observers
    self._steps = steps
    self._time_step = env.reset()
    self.summary_writer = (
        tf.summary.create_file_writer(summary_dir, flush_millis=10000)
        if summary_dir else tf.summary.create_noop_writer())

  def run(self) -> None:
    time_step = self._time_step
    for _ in range(self._steps):
      action_step = self._policy.action(time_step)
      next_time_step = self._env.step(action_step.action)
      step = trajectory.from_transition(time_step, action_step, next_time_step)
      for observer in self._observers:
        observer(step)
      time_step = next_time_step
    self._time_step = time_step


def _num_envs(env) -> int:
  return env.batch_size if env.batched else 1


class _Report:
  """Logs and summarizes the actor's Actor/* scalars."""

  def __init__(self, task, client, summary_writer, stats: EpisodeStats):
    self._task = task
    self._client = client
    self._writer = summary_writer
    self._stats = stats
    self._last_steps = stats.env_steps
    self._last_time = time.monotonic()

  def seconds_since_last(self) -> float:
    return time.monotonic() - self._last_time

  def write(self, version: int, ask_server: bool = True) -> None:
    """Logs and summarizes; the policy lag needs the server (else 0)."""
    steps, now = self._stats.env_steps, time.monotonic()
    learner_step = ((ask_server and reverb_io.learner_train_step(self._client))
                    or version)
    values = {
        'Actor/env_steps_per_sec':
            (steps - self._last_steps) / max(now - self._last_time, 1e-6),
        'Actor/episodes': self._stats.episodes,
        'Actor/average_return': self._stats.average_return,
        'Actor/average_episode_length': self._stats.average_episode_length,
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
