"""The packed replay layout: exact round trips, and old checkpoints refused."""
import numpy as np
import pytest
import reverb
import tensorflow as tf
from tf_agents.specs import tensor_spec

from common import config as cfg
from common import records
from common import run_dir
from common import specs as specs_lib
from common.replay_layout import LayoutError
from common.replay_layout import ReplayLayout
from common.tables import variables_table
from reverb_server.server import CheckpointMismatchError
from reverb_server.server import ReplayServer
from reverb_server.server import ServerSettings
from tests.helpers import unused_port

_SPEC = {
    'action': tf.TensorSpec([2], tf.int64),
    'done': tf.TensorSpec([], tf.bool),
    'info': (),
    'observation': {'pixels': tf.TensorSpec([3, 2], tf.uint8),
                    'position': tf.TensorSpec([4], tf.float64)},
    'reward': tf.TensorSpec([], tf.float32),
    'step_type': tf.TensorSpec([], tf.int32),
    'tiny': tf.TensorSpec([], tf.int8),
}


def _random_steps(outer_dims, seed):
  rng = np.random.default_rng(seed)
  def draw(spec):
    dtype = spec.dtype.as_numpy_dtype
    shape = tuple(outer_dims) + tuple(spec.shape.as_list())
    if dtype == np.bool_:
      return rng.integers(0, 2, shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
      info = np.iinfo(dtype)
      return rng.integers(info.min, info.max, shape, dtype=dtype,
                          endpoint=True)
    return np.asarray(rng.standard_normal(shape) * 1e6, dtype=dtype)
  return tf.nest.map_structure(draw, _SPEC)


def _assert_nests_equal(got, want):
  tf.nest.assert_same_structure(got, want)
  for g, w in zip(tf.nest.flatten(got), tf.nest.flatten(want)):
    g = np.asarray(g)
    assert g.dtype == w.dtype and g.shape == w.shape
    np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize('outer_dims', [(), (5,), (3, 2)])
def test_pack_unpack_is_exact_for_every_dtype(outer_dims):
  layout = ReplayLayout(_SPEC)
  assert layout.step_bytes == 2 * 8 + 1 + 6 + 4 * 8 + 4 + 4 + 1
  steps = _random_steps(outer_dims, seed=len(outer_dims))
  packed = layout.pack(steps)
  assert packed.dtype == np.uint8
  assert packed.shape == outer_dims + (layout.step_bytes,)
  _assert_nests_equal(layout.unpack_numpy(packed), steps)
  _assert_nests_equal(
      tf.nest.map_structure(lambda t: t.numpy(),
                            layout.unpack(tf.constant(packed))), steps)


def test_unpack_in_a_graph_with_an_unknown_batch():
  layout = ReplayLayout(_SPEC)
  steps = _random_steps((4, 2), seed=7)
  unpack = tf.function(layout.unpack, input_signature=[
      tf.TensorSpec([None, 2, layout.step_bytes], tf.uint8)])
  _assert_nests_equal(
      tf.nest.map_structure(lambda t: t.numpy(),
                            unpack(tf.constant(layout.pack(steps)))), steps)


def test_a_step_of_another_spec_is_refused():
  with pytest.raises(LayoutError, match='a step with 1 fields does not fit'):
    ReplayLayout(_SPEC).pack({'reward': np.float32(1)})


def test_strings_cannot_be_stored():
  with pytest.raises(LayoutError, match='replay field name has dtype string'):
    ReplayLayout({'name': tf.TensorSpec([], tf.string)})


def test_checkpoint_of_the_column_per_field_layout_is_refused(tmp_path):
  """A checkpoint written before the packed layout names both layouts."""
  config = cfg.ExperimentConfig(
      env=cfg.EnvConfig('CartPole-v0'), agent=cfg.AgentConfig('dqn'),
      replay=cfg.ReplayConfig(capacity=1000, initial_collect_steps=10),
      train=cfg.TrainConfig())
  specs = specs_lib.derive_specs(config)
  old_replay = reverb.Table(
      name=cfg.REPLAY_TABLE, sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(), max_size=config.replay.capacity,
      rate_limiter=reverb.rate_limiters.SampleToInsertRatio(
          samples_per_insert=config.replay.samples_per_insert,
          min_size_to_sample=config.replay.initial_collect_steps,
          error_buffer=config.replay.error_buffer),
      signature=tensor_spec.add_outer_dim(specs.collect_data_spec))
  checkpoints = str(tmp_path / 'checkpoints')
  old = reverb.Server(
      [old_replay, variables_table(specs)], port=unused_port(),
      checkpointer=reverb.checkpointers.DefaultCheckpointer(checkpoints))
  old.localhost_client().checkpoint()
  old.stop()
  with pytest.raises(
      CheckpointMismatchError,
      match=r"experience.server has 6 tensors, config gives 1 \(server "
            r"columns \['action', 'discount', 'next_step_type', "
            r"'observation', 'reward', 'step_type'\] vs config \['step'\]\)"):
    ReplayServer(config, ServerSettings(port=unused_port(),
                                        checkpoint_dir=checkpoints))



def test_checkpoint_of_the_old_table_name_is_refused_clearly(tmp_path):
  """Before the builders, the experience table was 'uniform_table'."""
  config = cfg.ExperimentConfig(
      replay=cfg.ReplayConfig(capacity=1000, initial_collect_steps=10))
  specs = specs_lib.derive_specs(config)
  old_name = reverb.Table(
      name=cfg.OLD_REPLAY_TABLE, sampler=reverb.selectors.Uniform(),
      remover=reverb.selectors.Fifo(), max_size=config.replay.capacity,
      rate_limiter=reverb.rate_limiters.MinSize(1),
      signature=specs.replay_signature)
  checkpoints = str(tmp_path / 'checkpoints')
  old = reverb.Server(
      [old_name, variables_table(specs)], port=unused_port(),
      checkpointer=reverb.checkpointers.DefaultCheckpointer(checkpoints))
  old.localhost_client().checkpoint()
  old.stop()
  with pytest.raises(CheckpointMismatchError,
                     match="'uniform_table' is now 'experience'"):
    ReplayServer(config, ServerSettings(port=unused_port(),
                                        checkpoint_dir=checkpoints))


def test_each_checkpoint_of_the_server_is_recorded(tmp_path):
  config = cfg.ExperimentConfig(
      replay=cfg.ReplayConfig(capacity=1000, initial_collect_steps=10))
  server = ReplayServer(config, ServerSettings(
      port=unused_port(), checkpoint_dir=str(tmp_path / 'checkpoints'),
      root_dir=str(tmp_path)))
  server.checkpoint(periodic=True)
  server.stop()  # Checkpoints once more.
  checkpoints = records.read(
      run_dir.records_path(str(tmp_path), records.REVERB_SERVER),
      records.CHECKPOINTED)
  assert [r['periodic'] for r in checkpoints] == [True, False]
  assert all(r['seconds'] > 0 for r in checkpoints)
