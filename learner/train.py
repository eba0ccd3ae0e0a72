"""The learner loop: sample from Reverb, train, push weights, checkpoint."""
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

from common import agents
from common import envs
from common import ports
from common import reverb_io
from common import run_dir
from common import shutdown
from common import specs as specs_lib
from common.settings import setting
from common.collect_requests import CollectRequests
from common.config import ExperimentConfig
from common.config import ReverbClientSettings
from common.config import StrategyConfig
from common.config import TrainConfig
from common.errors import UserError
from learner import metrics as learner_metrics
from learner import on_policy
from learner import priorities
from learner import PUSHED_WEIGHTS_LOG
from learner import replay_input
from learner import TRAINING_LOG

_CHECKPOINTS_KEPT = 3  # As TF-Agents' Learner keeps.


@dataclasses.dataclass(frozen=True)
class LearnerSettings(ReverbClientSettings):
  """Where this learner runs; the experiment itself is in ExperimentConfig."""
  root_dir: Optional[str] = setting(
      help='Checkpoints, policies and summaries go here.', required=True)
  stall_log_s: float = setting(
      30.0, help='Log the replay table\'s numbers when no train step happened '
      'for this long.')
  strategy: StrategyConfig = StrategyConfig()
  sampling: replay_input.InputSettings = replay_input.InputSettings()


class TPUUnreachableError(UserError, ConnectionError):
  """--tpu names no TPU this host can reach."""


def make_strategy(config: StrategyConfig,
                  connect_timeout_s: float) -> tf.distribute.Strategy:
  """default: one device; mirrored: all local GPUs; tpu: the named TPU."""
  if config.kind == 'mirrored' and config.cpu_replicas:
    # Before TensorFlow initialises its devices, as the learner's first step.
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * config.cpu_replicas)
    return tf.distribute.MirroredStrategy(
        [f'/cpu:{i}' for i in range(config.cpu_replicas)])
  if config.kind == 'mirrored':
    if not tf.config.list_physical_devices('GPU'):
      logging.warning('--strategy=mirrored found no GPU: it trains on the '
                      'CPU, as one replica')
    return tf.distribute.MirroredStrategy()
  if config.kind == 'tpu':
    resolver = _tpu_resolver(config.tpu_address, connect_timeout_s)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  return tf.distribute.get_strategy()


def _tpu_resolver(tpu: str, connect_timeout_s: float):
  """The TPU's cluster resolver, once its address answers: connecting to a
  TPU that is not there would wait forever."""
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
  except Exception as e:  # pylint: disable=broad-except
    raise TPUUnreachableError(
        f'cannot resolve --tpu={tpu} ({type(e).__name__}: {e}): on a Cloud '
        f'TPU VM pass --tpu=local') from e
  address = resolver.master().replace('grpc://', '')
  host, _, port = address.rpartition(':')
  if host and port.isdigit() and not ports.wait_until_listening(
      host, int(port), connect_timeout_s, poll_s=0.5):
    raise TPUUnreachableError(
        f'no TPU answered at {resolver.master()} within '
        f'{connect_timeout_s:.0f}s: check --tpu and that this host can reach '
        f'the TPU worker (its port is 8470)')
  if resolver.master().startswith('grpc://'):
    logging.warning(
        'TPU worker %s is a remote TPU (a TPU Node): its host has no Reverb '
        'ops, so sampling is likely to fail there (google-deepmind/reverb#29);'
        ' run the learner on a Cloud TPU VM with --tpu=local', resolver.master())
  return resolver


def run_learner(config: ExperimentConfig, settings: LearnerSettings,
                stop: shutdown.Shutdown) -> int:
  """Trains until max_train_steps or a stop request; returns the train_step."""
  run_dir.ensure_writable_dir(settings.root_dir)
  env = envs.load_env(config.env, seed=config.seed)
  strategy = make_strategy(settings.strategy, settings.connect_timeout_s)
  if config.on_policy:
    on_policy.check_single_replica(strategy)
  per_replica_batch = replay_input.per_replica_batch(
      config.agent.batch_size, strategy.num_replicas_in_sync)
  # The agent's initial weights: Keras initializers draw their seeds from
  # Keras' own generator, which tf.random.set_seed alone leaves unseeded.
  tf.keras.utils.set_random_seed(config.seed)
  with strategy.scope():
    agent, train_step = agents.make_agent(config, env)
  env.close()
  specs = specs_lib.specs_of(config, agent, train_step)
  reverb_io.connect(settings.reverb_address, settings.connect_timeout_s,
                    expected=specs)
  reverb_io.ServerWatch(settings.reverb_address, stop)

  # The Learner restores its last checkpoint; the saving is ours (below),
  # so that the final save has a handle of its own.
  make_learner = functools.partial(
      tfa_learner.Learner, settings.root_dir, train_step, agent,
      checkpoint_interval=0, summary_interval=config.train.log_every_steps,
      strategy=strategy)
  weights = reverb_io.WeightsSync(
      settings.reverb_address,
      specs_lib.variables_nest(agent, train_step), lambda: stop.requested)
  if config.on_policy:
    training = _ppo_training(config, settings, agent, specs, weights,
                             make_learner(), stop)
  else:
    training = _off_policy_training(config, settings, strategy, specs,
                                    per_replica_batch, make_learner)
  learner = training.learner
  with strategy.scope():
    checkpointer = tfa_common.Checkpointer(
        run_dir.checkpoints_dir(settings.root_dir),
        max_to_keep=_CHECKPOINTS_KEPT, agent=agent, train_step=train_step)
  save_checkpoint = interval_trigger.IntervalTrigger(
      config.train.checkpoint_every_steps,
      lambda: checkpointer.save(train_step), start=int(train_step.numpy()))
  learner.triggers.append(save_checkpoint)
  weights.push()
  logging.info('%s %d; training to step %d', PUSHED_WEIGHTS_LOG,
               weights.version, config.train.max_train_steps)
  _watch_for_stalls(settings.reverb_address, train_step, stop,
                    settings.stall_log_s)
  start_step = int(train_step.numpy())
  summaries = learner_metrics.LearnerSummaries(
      reverb.Client(settings.reverb_address), training.waited_s, start_step)
  _first_train_step(config, training, weights, stop)
  # Writing the SavedModels (unless an earlier run on this root_dir did) costs
  # about a second of CPU: after the first train step, not before it.
  save_policies = triggers.PolicySavedModelTrigger(
      run_dir.policies_dir(settings.root_dir), agent, train_step,
      interval=config.train.policy_save_every_steps, start=start_step)
  learner.triggers.append(save_policies)
  last_log_step = _train_loop(config, training, weights, summaries, stop,
                              last_log_step=start_step)
  step = int(train_step.numpy())
  if step != last_log_step:  # Stopped early: the counters as they end.
    with learner.train_summary_writer.as_default():
      training.log_progress(step)
  save_checkpoint(step, force_trigger=True)
  # The SavedModels are written; this only adds a policy checkpoint, quick
  # enough for a stop too.
  save_policies(step, force_trigger=True)
  learner.train_summary_writer.flush()
  logging.info('Learner finished at train_step %d (%s)', step,
               stop.reason or 'max_train_steps reached')
  return step


class _OffPolicyTraining:
  """Train steps on batches sampled from the replay table (PPO's
  counterpart: on_policy.PPOTraining)."""

  def __init__(self, learner, experience: learner_metrics.TimedIterator,
               train: TrainConfig, prioritized):
    self.learner = learner
    self._experience = experience
    self._train = train
    self._prioritized = prioritized

  def run(self, first: bool = False):
    """Train steps up to the next push (one, the first time)."""
    steps = 1 if first else steps_to_next_push(self.learner.train_step_numpy,
                                               self._train)
    return self.learner.run(iterations=steps, iterator=self._experience)

  def waited_s(self) -> float:
    """Seconds train steps waited for a batch so far."""
    return float(self._experience.waited_s.numpy())

  def log_progress(self, step: int) -> None:
    """What is logged besides the common progress line."""
    if self._prioritized:
      logging.info('train_step=%d %s', step, self._prioritized.describe())


def _off_policy_training(config, settings, strategy, specs, per_replica_batch,
                         make_learner) -> _OffPolicyTraining:
  prioritized = priorities.prioritized_training(config.replay,
                                                settings.reverb_address)
  experience = learner_metrics.TimedIterator(
      replay_input.distributed_replay(
          strategy, settings.reverb_address, specs.replay_layout,
          per_replica_batch, settings.sampling,
          prioritized and prioritized.importance))
  learner = make_learner(
      **(prioritized.learner_kwargs if prioritized else {}))
  if prioritized:  # beta follows the (restored) train_step.
    prioritized.importance(learner.train_step_numpy)
    learner.triggers.append(prioritized.importance)
  return _OffPolicyTraining(learner, experience, config.train, prioritized)


def _ppo_training(config, settings, agent, specs, weights, learner,
                  stop) -> on_policy.PPOTraining:
  should_stop = lambda: stop.requested
  reader = on_policy.QueueReader(settings.reverb_address, specs.replay_layout,
                                 should_stop)
  requests = None
  if config.rounds_per_iteration:
    requests = CollectRequests(settings.reverb_address, should_stop)
  return on_policy.PPOTraining(config, agent, learner, reader,
                               specs.replay_layout, weights, requests)


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
                          reverb_io.describe_replay(client))
        except Exception as e:  # pylint: disable=broad-except
          logging.warning('No train step for %.0fs (at %d), and the Reverb '
                          'server does not answer: %s', every_s, step, e)
      last = step

  threading.Thread(target=watch, daemon=True, name='stall-watch').start()


def _first_train_step(config, training, weights, stop) -> None:
  """One train step (PPO: iteration) and a push, logged: actors act on
  trained weights, and the launcher starts the rest of the job, as soon as
  training runs."""
  if training.learner.train_step_numpy >= config.train.max_train_steps or (
      stop.requested):
    return
  try:
    training.run(first=True)
  except on_policy.QueueStopped:
    return
  weights.push()
  logging.info('%s (train_step %d)', TRAINING_LOG,
               training.learner.train_step_numpy)


def steps_to_next_push(step: int, train: TrainConfig) -> int:
  """Train steps from `step` to the next push: pushes land on multiples of
  push_every_steps (after the first step too), and on max_train_steps."""
  return min(train.push_every_steps - step % train.push_every_steps,
             train.max_train_steps - step)


def _train_loop(config, training, weights, summaries, stop,
                last_log_step: int) -> int:
  """Trains to max_train_steps or a stop; the step last logged."""
  train = config.train
  learner = training.learner
  step = learner.train_step_numpy
  while step < train.max_train_steps and not stop.requested:
    try:
      loss = training.run()
    except on_policy.QueueStopped:
      break
    weights.push()
    step = learner.train_step_numpy
    if step - last_log_step >= train.log_every_steps or (
        step >= train.max_train_steps):
      _log_progress(learner, summaries, step, float(loss.loss))
      with learner.train_summary_writer.as_default():
        training.log_progress(step)
      last_log_step = step
  return last_log_step


def _log_progress(learner, summaries, step, loss) -> None:
  """One log line and the Learner/ and Reverb/ summaries."""
  try:
    with learner.train_summary_writer.as_default():
      values = summaries.write(step)
  except reverb_io.SERVER_AWAY_ERRORS:
    logging.info('train_step=%d loss=%.4f (the Reverb server does not '
                 'answer: no rates this time)', step, loss)
    return
  logging.info(
      'train_step=%d train_steps/s=%.1f loss=%.4f data_wait=%.0f%% '
      'replay: size %d, inserts/s %.0f, samples/s %.0f, samples/insert %.1f',
      step, values['Learner/train_steps_per_sec'], loss,
      100 * values['Learner/data_wait_fraction'], values['Reverb/table_size'],
      values['Reverb/inserts_per_sec'], values['Reverb/samples_per_sec'],
      values['Reverb/samples_per_insert'])
