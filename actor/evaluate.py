"""The eval loop: greedy-policy episodes on new weights, to TensorBoard + CSV."""
import csv
import os
import time
from typing import Optional

from absl import logging
from tf_agents.train import actor as tfa_actor

from actor import runtime as runtime_lib
from actor.fast_policy import FastPyPolicy
from common import run_dir
from common import shutdown
from common.config import ConfigError
from common.config import ExperimentConfig

CSV_FIELDS = ('train_step', 'wall_time', 'average_return',
              'average_episode_length')
# Eval envs are seeded apart from the collect actors' (seed + task).
EVAL_SEED_OFFSET = 100000
_POLL_S = 1.0


class _StopEvaluation(Exception):
  """Raised from an episode's observer to stop mid-evaluation."""


def run_eval(config: ExperimentConfig, settings: runtime_lib.ActorSettings,
             stop: shutdown.Shutdown) -> None:
  """Evaluates every eval_every_steps train steps and at max_train_steps."""
  if not settings.root_dir:
    raise ConfigError('the eval actor needs --root_dir for its results')
  rt = runtime_lib.start_runtime(
      config, settings, seed=config.seed + EVAL_SEED_OFFSET, stop=stop)
  eval_dir = run_dir.eval_dir(settings.root_dir)
  metrics = tfa_actor.eval_metrics(config.train.eval_episodes)

  def stop_mid_episode(unused_trajectory):
    if stop.requested:
      raise _StopEvaluation()

  eval_actor = tfa_actor.Actor(
      rt.env,
      FastPyPolicy(rt.agent.policy, batched=False),
      rt.train_step, episodes_per_run=config.train.eval_episodes,
      observers=[stop_mid_episode], metrics=metrics, summary_dir=eval_dir,
      summary_interval=0, name='eval')
  last_evaluated = None
  max_steps = config.train.max_train_steps
  try:
    while not stop.requested:
      version = rt.weights.pull()
      if eval_due(version, last_evaluated, config.train.eval_every_steps,
                  max_steps):
        _evaluate(eval_actor, metrics, version, run_dir.returns_csv_path(
            settings.root_dir))
        last_evaluated = version
      if version >= max_steps:
        break
      stop.wait(_POLL_S)
  except _StopEvaluation:
    pass  # Stopped mid-evaluation: that evaluation is not recorded.
  logging.info('Eval actor done (%s)', stop.reason or 'final step evaluated')


def eval_due(version: int, last_evaluated: Optional[int], every: int,
             max_steps: int) -> bool:
  """Whether to evaluate weights `version`: the first weights seen, then
  every `every` train steps (0: every new version), and the last."""
  if last_evaluated is None:
    return True
  if version == last_evaluated:
    return False
  return version >= max_steps or version >= last_evaluated + every


def _evaluate(eval_actor, metrics, version, csv_path) -> None:
  for metric in metrics:
    metric.reset()
  eval_actor.reset()
  start = time.monotonic()
  eval_actor.run()
  eval_actor.write_metric_summaries()
  eval_actor.summary_writer.flush()
  results = {m.name: float(m.result()) for m in metrics}
  append_result(csv_path, version, results)
  logging.info('eval train_step=%d average_return=%.2f '
               'average_episode_length=%.1f (%.1fs)', version,
               results['AverageReturn'], results['AverageEpisodeLength'],
               time.monotonic() - start)


def append_result(path: str, train_step: int, results: dict) -> None:
  """One row of the returns CSV from eval metrics' {name: value}."""
  row = {'train_step': train_step, 'wall_time': round(time.time(), 3),
         'average_return': results['AverageReturn'],
         'average_episode_length': results['AverageEpisodeLength']}
  new_file = not os.path.exists(path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'a', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
    if new_file:
      writer.writeheader()
    writer.writerow(row)
