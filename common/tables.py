"""The server's tables as clients see them: checking them against the
experiment, describing them, reading their numbers."""
from typing import List, Optional

import numpy as np
import reverb
from reverb import reverb_types
import tensorflow as tf
import tree

from common.config import ExperimentConfig
from common.config import REPLAY_TABLE
from common.errors import UserError
from common.learner_status import STATUS_SIGNATURE
from common.learner_status import STATUS_TABLE
from common.specs import ExperimentSpecs
from common.specs import TRAIN_STEP_KEY
from common.specs import VARIABLES_TABLE


class TableMismatchError(UserError, ValueError):
  """The server's tables do not match this process's experiment config."""


def experiment_tables(config: ExperimentConfig,
                      specs: ExperimentSpecs) -> List[reverb.Table]:
  """Every table the experiment's server holds: the algorithm's experience
  tables, the variable container and the learner's status."""
  return [*config.builder.make_replay_tables(config, specs),
          variables_table(specs), status_table()]


def variables_table(specs: ExperimentSpecs) -> reverb.Table:
  """The variable container: the latest policy weights."""
  return latest_value_table(VARIABLES_TABLE, specs.variables_signature)


def status_table() -> reverb.Table:
  """The learner's latest milestones (common/learner_status.py)."""
  return latest_value_table(STATUS_TABLE, STATUS_SIGNATURE)


def latest_value_table(name: str, signature) -> reverb.Table:
  """One item, replaced by each insert, sampled any number of times."""
  return reverb.Table(
      name=name,
      sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(),
      rate_limiter=reverb.rate_limiters.MinSize(1),
      max_size=1,
      max_times_sampled=0,
      signature=signature)


def check_tables(client: reverb.Client, expected: List[reverb.Table]) -> None:
  """Raises TableMismatchError unless the server serves tables with the
  names and signatures of `expected`."""
  info = client.server_info()
  for table in expected:
    if table.name not in info:
      raise TableMismatchError(
          f'the Reverb server has no table {table.name!r} (it has '
          f'{sorted(info)}); is it a reverb_server of this project, started '
          f'with the same --flagfile?')
    differences = _signature_differences(info[table.name].signature,
                                         table.info.signature)
    if differences:
      raise TableMismatchError(
          f'table {table.name!r} on the server does not match this experiment '
          f'config: {"; ".join(differences[:5])}. Start every process with '
          f'the same --flagfile')


_LIMITER_FIELDS = ('samples_per_insert', 'min_size_to_sample', 'min_diff',
                   'max_diff')


def table_differences(served: reverb_types.TableInfo,
                      expected: reverb_types.TableInfo) -> List[str]:
  """How a served table's configuration and signature differ from another's."""
  differences = []
  pairs = [('max_size', served.max_size, expected.max_size),
           ('max_times_sampled', served.max_times_sampled,
            expected.max_times_sampled),
           ('sampler', served.sampler_options, expected.sampler_options),
           ('remover', served.remover_options, expected.remover_options)]
  pairs += [(f'rate_limiter.{field}',
             getattr(served.rate_limiter_info, field),
             getattr(expected.rate_limiter_info, field))
            for field in _LIMITER_FIELDS]
  for name, got, want in pairs:
    if got != want:
      differences.append(f'{name}: server {_one_line(got)} vs config '
                         f'{_one_line(want)}')
  return differences + _signature_differences(served.signature,
                                              expected.signature)


def _one_line(value) -> str:
  return ' '.join(str(value).split()) or '{}'


def _signature_differences(served, expected) -> List[str]:
  served_flat = tf.nest.flatten(served)
  expected_flat = tf.nest.flatten(expected)
  paths = _paths(expected)
  if len(served_flat) != len(expected_flat):
    return [f'server has {len(served_flat)} tensors, config gives '
            f'{len(expected_flat)}' + _columns_named(_paths(served), paths)]
  differences = []
  for path, got, want in zip(paths, served_flat, expected_flat):
    if got.shape != want.shape or got.dtype != want.dtype:
      differences.append(
          f'{path}: server {got.dtype.name}{got.shape.as_list()} vs config '
          f'{want.dtype.name}{want.shape.as_list()}')
  return differences


def _paths(signature) -> List[str]:
  return ['/'.join(map(str, path))
          for path, _ in tree.flatten_with_path(signature)]


def _columns_named(served: List[str], expected: List[str]) -> str:
  """Names the top-level columns when they differ (another layout)."""
  tops = [sorted({path.split('/')[0] for path in paths})
          for paths in (served, expected)]
  if tops[0] == tops[1]:
    return ''
  return f' (server columns {tops[0]} vs config {tops[1]})'


def describe_replay(client: reverb.Client) -> str:
  """The numbers that explain a stall: size, inserts, samples, limiter."""
  try:
    table = client.server_info(timeout=5)[REPLAY_TABLE]
  except reverb.errors.DeadlineExceededError:
    return 'the Reverb server does not answer'

  limiter = table.rate_limiter_info
  return (f'table {REPLAY_TABLE!r}: size {table.current_size}/'
          f'{table.max_size}, inserts {limiter.insert_stats.completed}, '
          f'samples {limiter.sample_stats.completed}; rate limiter: sampling '
          f'needs size >= {limiter.min_size_to_sample}, samples_per_insert '
          f'{limiter.samples_per_insert:g}, inserts*spi - samples kept in '
          f'[{limiter.min_diff:g}, {limiter.max_diff:g}]')


def table_size(client: reverb.Client, table: str = REPLAY_TABLE) -> int:
  """The table's item count; waits for the server if it is away."""
  return client.server_info()[table].current_size


def learner_train_step(client: reverb.Client) -> Optional[int]:
  """The train_step of the latest pushed weights, or None before version 0."""
  info = client.server_info()[VARIABLES_TABLE]
  if info.current_size == 0:
    return None
  sample = next(client.sample(VARIABLES_TABLE, num_samples=1,
                              emit_timesteps=False))
  values = tf.nest.pack_sequence_as(info.signature, sample.data)
  return int(np.asarray(values[TRAIN_STEP_KEY]).reshape(-1)[0])
