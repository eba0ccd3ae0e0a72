"""The collect loop: the algorithm's collector (its builder's) fed with the
latest weights before each round."""
import time

from absl import logging
import tensorflow as tf

from actor import runtime as runtime_lib
from actor.episode_stats import EpisodeStats
from actor.fast_policy import FastPyPolicy
from actor.replay_writer import StopCollection
from algorithms.base import CollectParts
from common import run_dir
from common import shutdown
from common import specs as specs_lib
from common import tables
from common.config import ExperimentConfig


def run_collect(config: ExperimentConfig, settings: runtime_lib.ActorSettings,
                stop: shutdown.Shutdown) -> int:
  """Collects into the replay table until the learner is done; env steps."""
  num_envs = config.train.envs_per_actor
  rt = runtime_lib.start_runtime(config, settings,
                                 seed=config.seed + settings.task, stop=stop,
                                 num_envs=num_envs)
  runtime_lib.stop_when_learner_done(stop, settings.reverb_address,
                                     config.train.max_train_steps)
  should_stop = lambda: stop.requested
  layout = specs_lib.specs_of(config, rt.agent, rt.train_step).replay_layout
  writer = config.builder.make_writer(config, rt.client, layout, should_stop,
                                      lambda: rt.weights.version, num_envs)
  random_stats, stats = EpisodeStats(num_envs), EpisodeStats(num_envs)
  collector = config.builder.make_collector(CollectParts(
      config=config, address=settings.reverb_address, client=rt.client,
      env=rt.env, policy=FastPyPolicy(rt.agent.collect_policy, rt.env.batched),
      train_step=rt.train_step, writer=writer, stats=stats,
      random_stats=random_stats,
      summary_dir=(run_dir.actor_summary_dir(settings.root_dir, settings.task)
                   if settings.root_dir else None),
      should_stop=should_stop))
  flush_timeout_s = 2.0
  try:
    collector.warm_up()
    _collect_with_policy(config, settings, rt, collector, stats, stop)
  except StopCollection as stopped:
    if stopped.server_blocked:
      flush_timeout_s = 0  # The server is not taking items: do not wait.
  except InterruptedError:  # Stopped in a call the server did not answer.
    flush_timeout_s = 0
  finally:
    writer.close(flush_timeout_s)
  steps = random_stats.env_steps + stats.env_steps
  logging.info('Actor %d done: %d env steps, %d items written, last policy '
               'version %d (%s)', settings.task, steps, writer.items_written,
               rt.weights.version, stop.reason or 'max_train_steps reached')
  return steps


def _collect_with_policy(config, settings, rt, collector, stats, stop) -> None:
  """Rounds of the collector until the learner is done or a stop: before
  each, the collector's wait (e.g. for a request) and a weights pull; the
  Actor/* scalars every log_every_s."""
  report = _Report(settings.task, rt.client, collector.summary_writer, stats)
  version = rt.weights.version
  try:
    while not stop.requested:
      collector.wait_for_round()
      version = rt.weights.pull()
      if version >= config.train.max_train_steps:
        break
      collector.run_round()
      if report.seconds_since_last() >= settings.log_every_s:
        report.write(version)
  finally:
    # When stopping, the server may be stopping too: do not ask it.
    report.write(version, ask_server=not stop.requested)
    collector.summary_writer.flush()


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
    learner_step = ((ask_server and tables.learner_train_step(self._client))
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
