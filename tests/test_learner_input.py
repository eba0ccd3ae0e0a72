"""The learner in-process: its input as a strategy sees it (static shapes
for TPUs, the global batch split over replicas), the TPU address checks,
and a progress log that outlives the server."""
import socket

from absl import logging
import pytest
import reverb
import tensorflow as tf

from common import agents
from common import config as cfg
from common import envs
from common import records
from common import run_dir
from common import specs as specs_lib
from learner import replay_input
from learner import strategy
from learner import train
from reverb_server.server import ReplayServer
from reverb_server.server import ServerSettings
from tests.helpers import unused_port


@pytest.mark.parametrize('agent,env,suite', [
    ('dqn', 'CartPole-v0', 'gym'),
    ('sac', 'MinitaurBulletEnv-v0', 'pybullet')])
def test_distributed_batches_have_static_shapes(agent, env, suite, tmp_path):
  """TPUs compile one program per shape: the batch dimension must be known
  (drop_remainder), as must every other."""
  config = cfg.ExperimentConfig(env=cfg.EnvConfig(name=env, suite=suite),
                                agent=cfg.AgentConfig(agent))
  py_env = envs.load_env(config.env)
  agent_, train_step = agents.make_agent(config, py_env)
  py_env.close()
  layout = specs_lib.specs_of(config, agent_, train_step).replay_layout
  port = unused_port()
  server = ReplayServer(config, ServerSettings(
      port=port, checkpoint_dir=str(tmp_path / 'checkpoints')))
  batches = replay_input.distributed_replay(
      tf.distribute.get_strategy(), f'localhost:{port}', layout,
      replay_input.per_replica_batch(config.agent.batch_size, 1))
  server.stop()
  for spec in tf.nest.flatten(batches.element_spec):
    assert spec.shape.is_fully_defined(), spec
    assert spec.shape[0] == config.agent.batch_size, spec


def test_the_global_batch_splits_evenly_or_not_at_all():
  assert replay_input.per_replica_batch(64, 2) == 32
  assert replay_input.per_replica_batch(64, 1) == 64
  with pytest.raises(cfg.ConfigError,
                     match='batch_size 64 does not split evenly over 3'):
    replay_input.per_replica_batch(64, 3)


def test_a_remote_tpu_that_answers_is_warned_about(monkeypatch):
  """A TPU Node's host lacks Reverb's ops: the learner says so up front."""
  warnings = []
  monkeypatch.setattr(logging, 'warning',
                      lambda message, *args: warnings.append(message % args))
  with socket.create_server(('127.0.0.1', 0)) as listening:
    address = f'grpc://127.0.0.1:{listening.getsockname()[1]}'
    resolver = strategy._tpu_resolver(address, connect_timeout_s=5)  # pylint: disable=protected-access
  assert resolver.master() == address
  assert len(warnings) == 1 and 'run the learner on a Cloud TPU VM' in (
      warnings[0]), warnings


def test_an_unreachable_tpu_is_one_error_within_the_timeout():
  with socket.create_server(('127.0.0.1', 0)) as closed:
    port = closed.getsockname()[1]
  with pytest.raises(strategy.TPUUnreachableError,
                     match=f'no TPU answered at grpc://127.0.0.1:{port}'):
    strategy._tpu_resolver(f'grpc://127.0.0.1:{port}', connect_timeout_s=1)  # pylint: disable=protected-access


@pytest.mark.parametrize('error', [
    RuntimeError('Socket closed'),  # The server went away mid-call.
    reverb.errors.DeadlineExceededError('no answer')])
def test_the_progress_log_outlives_a_server_that_goes_away(error, tmp_path):
  class Summaries:
    def write(self, step):
      raise error

  class Learner:
    train_summary_writer = tf.summary.create_noop_writer()

  writer = records.RecordWriter(str(tmp_path), records.LEARNER)
  train._log_progress(Learner(), Summaries(), writer, 300, 9.4,  # pylint: disable=protected-access
                      {'iterations': 3})
  [progress] = records.read(run_dir.records_path(str(tmp_path),
                                                 records.LEARNER))
  assert progress.event == records.PROGRESS
  assert progress.values == {'train_step': 300, 'loss': 9.4, 'iterations': 3}
