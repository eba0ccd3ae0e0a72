"""The learner loop: sample from Reverb, train, push weights, checkpoint.

What differs between algorithms is the builder's training driver
(algorithms/base.py Training); the milestones (weights pushed, first train
step, progress, finished) are records for programs (common/records.py).
"""
import dataclasses
import functools
import threading
from typing import Optional

from absl import logging
import reverb
import tensorflow as tf
from tf_agents.train import interval_trigger
from tf_agents.train import learner as tfa_learner
from tf_agents.train import triggers
from tf_agents.utils import common as tfa_common

from algorithms.base import LearnerParts
from algorithms.base import TrainingStopped
from common import agents
from common import connection
from common import envs
from common import records as records_lib
from common import reverb_calls
from common import run_dir
from common import shutdown
from common import specs as specs_lib
from common import tables
from common.config import ExperimentConfig
from common.config import ReverbClientSettings
from common.config import StrategySettings
from common.learner_status import StatusPublisher
from common.settings import setting
from common.weights import WeightsSync
from learner import metrics as learner_metrics
from learner import replay_input
from learner.strategy import make_strategy


class _PolicySaves(triggers.PolicySavedModelTrigger):
  """TF-Agents' policy saves, keeping only the newest policy checkpoints
  (its own keeps every one: a run's policies/ would grow forever)."""

  def __init__(self, root_dir: str, *args, **kwargs):
    super().__init__(run_dir.policies_dir(root_dir), *args, **kwargs)
    self._root_dir = root_dir

  def _save_fn(self) -> None:
    super()._save_fn()
    run_dir.prune_policy_checkpoints(self._root_dir)


@dataclasses.dataclass(frozen=True)
class LearnerSettings(ReverbClientSettings):
  """Where this learner runs; the experiment itself is in ExperimentConfig."""
  root_dir: Optional[str] = setting(
      help='Checkpoints, policies and summaries go here.', required=True)
  stall_log_s: float = setting(
      30.0, help='Log the replay table\'s numbers when no train step happened '
      'for this long.')
  strategy: StrategySettings = StrategySettings()
  sampling: replay_input.InputSettings = replay_input.InputSettings()


def run_learner(config: ExperimentConfig, settings: LearnerSettings,
                stop: shutdown.Shutdown) -> int:
  """Trains until max_train_steps or a stop request; returns the train_step."""
  run_dir.ensure_writable_dir(settings.root_dir)
  env = envs.load_env(config.env, seed=config.seed)
  strategy = make_strategy(settings.strategy, settings.connect_timeout_s)
  config.builder.check_strategy(config, strategy)
  # The agent's initial weights: Keras initializers draw their seeds from
  # Keras' own generator, which tf.random.set_seed alone leaves unseeded.
  tf.keras.utils.set_random_seed(config.seed)
  with strategy.scope():
    agent, train_step = agents.make_agent(config, env)
  env.close()
  specs = specs_lib.specs_of(config, agent, train_step)
  connection.connect(settings.reverb_address, settings.connect_timeout_s,
                     expected=tables.experiment_tables(config, specs),
                     should_stop=lambda: stop.requested)
  connection.ServerWatch(settings.reverb_address, stop)
  status = StatusPublisher(settings.reverb_address)
  records = records_lib.RecordWriter(settings.root_dir, records_lib.LEARNER,
                                     publish=status.publish)

  weights = WeightsSync(
      settings.reverb_address,
      specs_lib.variables_nest(agent, train_step), lambda: stop.requested)
  # The Learner restores its last checkpoint; the saving is ours (below),
  # so that the final save has a handle of its own.
  training = config.builder.make_training(LearnerParts(
      config=config, address=settings.reverb_address,
      sampling=settings.sampling, strategy=strategy, agent=agent, specs=specs,
      weights=weights,
      make_learner=functools.partial(
          tfa_learner.Learner, settings.root_dir, train_step, agent,
          checkpoint_interval=0,
          summary_interval=config.train.log_every_steps, strategy=strategy),
      should_stop=lambda: stop.requested))
  learner = training.learner
  with strategy.scope():
    checkpointer = tfa_common.Checkpointer(
        run_dir.checkpoints_dir(settings.root_dir),
        max_to_keep=run_dir.CHECKPOINTS_KEPT, agent=agent,
        train_step=train_step)
  save_checkpoint = interval_trigger.IntervalTrigger(
      config.train.checkpoint_every_steps,
      lambda: checkpointer.save(train_step), start=int(train_step.numpy()))
  learner.triggers.append(save_checkpoint)
  weights.push()
  records.write(records_lib.WEIGHTS_PUSHED, train_step=weights.version)
  logging.info('Pushed weights version %d; training to step %d',
               weights.version, config.train.max_train_steps)
  _watch_for_stalls(settings.reverb_address, train_step, stop,
                    settings.stall_log_s)
  start_step = int(train_step.numpy())
  summaries = learner_metrics.LearnerSummaries(
      reverb.Client(settings.reverb_address), training.waited_s, start_step)
  _first_train_step(config, training, weights, stop, records)
  # Writing the SavedModels (unless an earlier run on this root_dir did) costs
  # about a second of CPU: after the first train step, not before it.
  save_policies = _PolicySaves(
      settings.root_dir, agent, train_step,
      interval=config.train.policy_save_every_steps, start=start_step)
  learner.triggers.append(save_policies)
  last_log_step = _train_loop(config, training, weights, summaries, stop,
                              records, last_log_step=start_step)
  step = int(train_step.numpy())
  if step != last_log_step:  # Stopped early: the counters as they end.
    with learner.train_summary_writer.as_default():
      training.log_progress(step)
  save_checkpoint(step, force_trigger=True)
  # The SavedModels are written; this only adds a policy checkpoint, quick
  # enough for a stop too.
  save_policies(step, force_trigger=True)
  learner.train_summary_writer.flush()
  reason = stop.reason or 'max_train_steps reached'
  records.write(records_lib.FINISHED, train_step=step, reason=reason,
                **training.counters())
  # When stopping, the server may be stopping too: do not wait long.
  status.flush(timeout_s=2.0 if stop.requested else 10.0)
  logging.info('Learner finished at train_step %d (%s)', step, reason)
  return step


def _watch_for_stalls(address, train_step, stop, every_s) -> None:
  """Logs why, when train_step has not moved for `every_s` seconds."""
  client = reverb.Client(address)

  def watch():
    last = int(train_step.numpy())
    while not stop.wait(every_s):
      step = int(train_step.numpy())
      if step == last:
        try:
          logging.warning('No train step for %.0fs (at %d), waiting for '
                          'data: %s', every_s, step,
                          tables.describe_replay(client))
        except Exception as e:  # pylint: disable=broad-except
          logging.warning('No train step for %.0fs (at %d), and the Reverb '
                          'server does not answer: %s', every_s, step, e)
      last = step

  threading.Thread(target=watch, daemon=True, name='stall-watch').start()


def _first_train_step(config, training, weights, stop, records) -> None:
  """One train step (PPO: iteration) and a push, recorded: actors act on
  trained weights, and the launcher starts the rest of the job, as soon as
  training runs."""
  if training.learner.train_step_numpy >= config.train.max_train_steps or (
      stop.requested):
    return
  try:
    training.run_first()
  except TrainingStopped:
    return
  weights.push()
  step = training.learner.train_step_numpy
  records.write(records_lib.FIRST_TRAIN_STEP, train_step=step)
  logging.info('First train step done (train_step %d)', step)


def _train_loop(config, training, weights, summaries, stop, records,
                last_log_step: int) -> int:
  """Trains to max_train_steps or a stop; the step last logged."""
  train = config.train
  learner = training.learner
  step = learner.train_step_numpy
  while step < train.max_train_steps and not stop.requested:
    try:
      loss = training.run_to_next_push()
    except TrainingStopped:
      break
    weights.push()
    step = learner.train_step_numpy
    if step - last_log_step >= train.log_every_steps or (
        step >= train.max_train_steps):
      _log_progress(learner, summaries, records, step, float(loss.loss),
                    training.counters())
      with learner.train_summary_writer.as_default():
        training.log_progress(step)
      last_log_step = step
  return last_log_step


def _log_progress(learner, summaries, records, step, loss, counters) -> None:
  """One log line, one progress record and the Learner/ and Reverb/
  summaries."""
  try:
    with learner.train_summary_writer.as_default():
      values = summaries.write(step)
  except reverb_calls.SERVER_AWAY_ERRORS:
    records.write(records_lib.PROGRESS, train_step=step, loss=loss,
                  **counters)
    logging.info('train_step=%d loss=%.4f (the Reverb server does not '
                 'answer: no rates this time)', step, loss)
    return
  records.write(records_lib.PROGRESS, train_step=step, loss=loss, **values,
                **counters)
  logging.info(
      'train_step=%d train_steps/s=%.1f loss=%.4f data_wait=%.0f%% '
      'replay: size %d, inserts/s %.0f, samples/s %.0f, samples/insert %.1f',
      step, values['Learner/train_steps_per_sec'], loss,
      100 * values['Learner/data_wait_fraction'], values['Reverb/table_size'],
      values['Reverb/inserts_per_sec'], values['Reverb/samples_per_sec'],
      values['Reverb/samples_per_insert'])
