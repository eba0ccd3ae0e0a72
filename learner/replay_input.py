"""The learner's input: batches of transitions sampled from the replay table.

TF-Agents' `ReverbReplayBuffer.as_dataset` interleaves up to 32 Reverb
datasets and maps every single item before batching. For small items (a
CartPole transition) that per-item work is most of the cost. Here one
Reverb dataset with several sampling workers is batched first, and the
sample info is broadcast over the time axis once per batch: the DQN learner
trained 2.5x faster on it, SAC 1.6x (benchmarks/learner_throughput.py,
BENCHMARKS.md). Each item is one byte column (common/replay_layout.py),
unpacked into the agent's Trajectory once per batch.
"""
import dataclasses
import os
from typing import Optional

import reverb
import tensorflow as tf

from common.config import REPLAY_TABLE
from common.errors import ConfigError
from common.replay_layout import ReplayLayout
from common.replay_layout import STEP_COLUMN
from common.settings import setting
from learner import priorities


@dataclasses.dataclass(frozen=True)
class InputSettings:
  """How the learner samples.

  in_flight_batches: samples requested per worker, in batches.
  prefetch_batches: ready batches buffered ahead of the train step.
  """
  sampling_workers: int = setting(
      0, lower_bound=0, help='Threads sampling from Reverb for the learner; '
      '0: one per CPU available to it (Reverb\'s advice).')
  in_flight_batches: int = 2
  prefetch_batches: int = 4


def replay_dataset(
    address: str, layout: ReplayLayout, batch_size: int,
    settings: InputSettings = InputSettings(),
    importance: Optional[priorities.ImportanceExponent] = None
) -> tf.data.Dataset:
  """(trajectory [batch, sequence_length, ...],
  sample info [batch, sequence_length]); with `importance` (prioritized
  replay), the first element is agent.train's keyword arguments
  {experience: trajectory, weights: importance weights [batch]}."""
  signature = layout.signature
  dtypes = tf.nest.map_structure(lambda spec: spec.dtype, signature)
  shapes = tf.nest.map_structure(lambda spec: spec.shape, signature)
  samples = reverb.TrajectoryDataset(
      address, REPLAY_TABLE, dtypes, shapes,
      max_in_flight_samples_per_worker=settings.in_flight_batches * batch_size,
      num_workers_per_iterator=(settings.sampling_workers
                                or len(os.sched_getaffinity(0))))

  def experience_and_info(sample: reverb.ReplaySample):
    """The Learner's (experience, info) pair, info repeated along time as
    TF-Agents' own replay dataset gives it."""
    info = tf.nest.map_structure(
        lambda t: tf.repeat(t[:, tf.newaxis], layout.sequence_length, axis=1),
        sample.info)
    experience = layout.unpack(sample.data[STEP_COLUMN])
    if importance is None:
      return experience, info
    weights = priorities.importance_weights(
        sample.info.probability, sample.info.table_size,
        importance.variable)
    return {'experience': experience, 'weights': weights}, info

  return samples.batch(batch_size, drop_remainder=True).map(
      experience_and_info).prefetch(settings.prefetch_batches)


def per_replica_batch(batch_size: int, replicas: int) -> int:
  """--batch_size is the global batch: each replica takes its share."""
  if batch_size % replicas:
    raise ConfigError(f'batch_size {batch_size} does not split evenly over '
                      f'{replicas} replicas: give a multiple of {replicas}')
  return batch_size // replicas


def distributed_replay(
    strategy: tf.distribute.Strategy, address: str, layout: ReplayLayout,
    per_replica_batch: int, settings: InputSettings = InputSettings(),
    importance: Optional[priorities.ImportanceExponent] = None):
  """An iterator over global batches: each replica samples its
  `per_replica_batch` from Reverb on its own dataset (importance weights
  over its own batch, with prioritized replay)."""
  with strategy.scope():
    return iter(strategy.distribute_datasets_from_function(
        lambda _: replay_dataset(address, layout, per_replica_batch,
                                 settings, importance)))
