"""How one step of experience is stored in the replay table: one byte column.

Reverb's client decodes every column of a sampled item as a chunk of its
own, and that per-column work, not the bytes, is most of the learner's
sampling cost: a sequence-length-2 CartPole item cost ~48 us of client CPU
as the Trajectory's 6 columns and ~14 us as one column (Minitaur: 67 vs 17;
BENCHMARKS.md). So actors store each step as a single uint8 vector, the raw
bytes of every Trajectory field in `tf.nest.flatten` order, and the learner
unpacks a sampled batch with bitcasts inside its input pipeline: exact for
every numeric dtype and bool. Bytes are in the host's native order (every
machine TF and Reverb ship for is little-endian).
"""
import dataclasses
from typing import Tuple

import numpy as np
import tensorflow as tf
import tree

from common.config import STEP_COLUMN
from common.config import VERSION_COLUMN
from common.errors import UserError



class LayoutError(UserError, ValueError):
  """A collect data spec that cannot be stored as bytes."""


@dataclasses.dataclass(frozen=True)
class _Field:
  dtype: np.dtype
  shape: Tuple[int, ...]
  offset: int  # In bytes, within the step's vector.
  size: int  # Elements (packing reads it every step: not derived each time).
  nbytes: int


class ReplayLayout:
  """Packs steps of `data_spec` into byte vectors and unpacks them again;
  an item is `sequence_length` consecutive steps (2: a transition, as in the
  tutorials; n + 1 for n-step returns; PPO's sequences), and with
  `policy_version` the version of the weights that collected them."""

  def __init__(self, data_spec, sequence_length: int = 2,
               policy_version: bool = False):
    self.data_spec = data_spec
    self.sequence_length = sequence_length
    self.policy_version = policy_version
    fields, offset = [], 0
    for path, spec in tree.flatten_with_path(data_spec):
      name = '/'.join(map(str, path))
      dtype = np.dtype(spec.dtype.as_numpy_dtype)
      if not (spec.dtype.is_numpy_compatible and
              (np.issubdtype(dtype, np.number) or dtype == np.bool_)):
        raise LayoutError(f'replay field {name} has dtype {spec.dtype.name}: '
                          f'only numbers and bools can be stored')
      if not spec.shape.is_fully_defined():
        raise LayoutError(f'replay field {name} has shape {spec.shape}: '
                          f'stored fields need a fixed shape')
      shape = tuple(spec.shape.as_list())
      size = int(np.prod(shape, dtype=np.int64))
      field = _Field(dtype, shape, offset, size, size * dtype.itemsize)
      fields.append(field)
      offset += field.nbytes
    self._fields = tuple(fields)
    self.step_bytes = offset

  @property
  def signature(self) -> dict:
    """The replay table's signature: sequence_length packed steps (and the
    policy version)."""
    signature = {STEP_COLUMN: tf.TensorSpec(
        [self.sequence_length, self.step_bytes], tf.uint8)}
    if self.policy_version:
      signature[VERSION_COLUMN] = tf.TensorSpec([], tf.int64)
    return signature

  def pack(self, step) -> np.ndarray:
    """A step (a nest like data_spec, numpy leaves, with any batch dims in
    front) as bytes: [*batch dims, step_bytes] uint8."""
    leaves = tree.flatten(step)
    if len(leaves) != len(self._fields):
      raise LayoutError(f'a step with {len(leaves)} fields does not fit the '
                        f'collect data spec\'s {len(self._fields)}')
    first = np.asarray(leaves[0])
    batch_dims = first.shape[:first.ndim - len(self._fields[0].shape)]
    return np.concatenate(
        [np.ascontiguousarray(leaf, dtype=field.dtype)
         .reshape(batch_dims + (field.size,)).view(np.uint8)
         for leaf, field in zip(leaves, self._fields)], axis=-1)

  def unpack(self, packed: tf.Tensor):
    """[*outer dims, step_bytes] uint8 -> a nest like data_spec, every leaf
    [*outer dims, *its shape]."""
    outer = packed.shape[:-1].as_list()
    if None in outer:
      outer = tf.unstack(tf.shape(packed)[:-1])
    leaves = []
    for field in self._fields:
      raw = packed[..., field.offset:field.offset + field.nbytes]
      dtype = tf.as_dtype(field.dtype)
      if dtype == tf.bool:
        value = tf.not_equal(raw, 0)
      elif dtype == tf.uint8:
        value = raw
      else:
        itemsize = field.dtype.itemsize
        value = tf.bitcast(tf.reshape(raw, [*outer, field.size, itemsize])
                           if itemsize > 1 else raw, dtype)
      leaves.append(tf.reshape(value, [*outer, *field.shape]))
    return tf.nest.pack_sequence_as(self.data_spec, leaves)

  def unpack_numpy(self, packed: np.ndarray):
    """As `unpack`, on numpy arrays (e.g. items read with a client)."""
    packed = np.ascontiguousarray(packed, dtype=np.uint8)
    outer = packed.shape[:-1]
    leaves = [packed[..., f.offset:f.offset + f.nbytes].copy()
              .view(f.dtype).reshape(outer + f.shape) for f in self._fields]
    return tf.nest.pack_sequence_as(self.data_spec, leaves)
