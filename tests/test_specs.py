"""Specs, tables and agents derived from the experiment config alone."""
import dataclasses

import pytest
import reverb
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.agents.sac import sac_agent
from tf_agents.train.utils import train_utils
from tf_agents.utils import common as tfa_common

from algorithms.base import AgentSpecError
from algorithms.experience_replay import replay_table
from common import agents
from common import config as cfg
from common import envs
from common import specs as specs_lib
from common.connection import connect
from common.tables import TableMismatchError
from common.tables import check_tables
from common.tables import experiment_tables
from common.tables import status_table
from common.tables import variables_table


def _config(env, kind, **agent_changes):
  agent = dataclasses.replace(cfg.AgentConfig(kind), **agent_changes)
  return cfg.ExperimentConfig(
      env=cfg.EnvConfig(env), agent=agent,
      replay=cfg.ReplayConfig(capacity=1000, initial_collect_steps=100,
                              samples_per_insert=float(agent.batch_size)),
      train=cfg.TrainConfig())


def _shapes(nest):
  return tf.nest.map_structure(lambda s: s.shape.as_list(), nest)


def test_cartpole_dqn_specs():
  specs = specs_lib.derive_specs(_config('CartPole-v0', 'dqn'))
  assert _shapes(specs.variables_signature) == {
      'policy_variables': ([4, 100], [100], [100, 50], [50], [50, 2], [2]),
      'train_step': []}
  assert specs.variables_signature['train_step'].dtype == tf.int64
  data = specs.collect_data_spec
  assert data.observation.shape.as_list() == [4]
  assert data.action.shape.as_list() == []
  assert data.action.dtype == tf.int64
  # One byte column per step: step_type, 4 observations, the int64 action,
  # next_step_type, reward, discount.
  assert specs.replay_signature == {
      'step': tf.TensorSpec([2, 4 + 16 + 8 + 4 + 4 + 4], tf.uint8)}


def test_minitaur_sac_specs():
  specs = specs_lib.derive_specs(_config('MinitaurBulletEnv-v0', 'sac'))
  # The actor network only: the critics stay with the learner.
  assert _shapes(specs.variables_signature['policy_variables']) == (
      [28, 256], [256], [256, 256], [256], [256, 16], [16])
  assert specs.collect_data_spec.observation.shape.as_list() == [28]
  assert specs.collect_data_spec.action.shape.as_list() == [8]
  assert specs.replay_signature == {
      'step': tf.TensorSpec([2, 4 + 28 * 4 + 8 * 4 + 4 + 4 + 4], tf.uint8)}


def test_tables_served_as_derived_and_mismatch_is_named():
  config = _config('CartPole-v0', 'dqn')
  specs = specs_lib.derive_specs(config)
  server = reverb.Server([replay_table(config.replay, specs),
                          variables_table(specs), status_table()])
  try:
    client = connect(f'localhost:{server.port}', timeout_s=5)
    info = client.server_info()
    limiter = info[cfg.REPLAY_TABLE].rate_limiter_info
    assert limiter.samples_per_insert == 64
    assert limiter.min_size_to_sample == 100
    assert info[specs_lib.VARIABLES_TABLE].max_size == 1
    check_tables(client, experiment_tables(config, specs))  # Same config.
    other_config = _config('CartPole-v0', 'dqn', fc_layer_params=(100, 64))
    other = experiment_tables(other_config,
                              specs_lib.derive_specs(other_config))
    with pytest.raises(TableMismatchError,
                       match=r'policy_variables/2: server float32\[100, 50\] '
                             r'vs config float32\[100, 64\]'):
      check_tables(client, other)
    fewer_config = _config('CartPole-v0', 'dqn', fc_layer_params=(64,))
    fewer_layers = experiment_tables(fewer_config,
                                     specs_lib.derive_specs(fewer_config))
    with pytest.raises(TableMismatchError,
                       match='server has 7 tensors, config gives 5'):
      check_tables(client, fewer_layers)
  finally:
    server.stop()


def test_min_size_rate_limiter():
  config = _config('CartPole-v0', 'dqn')
  config = dataclasses.replace(config, replay=dataclasses.replace(
      config.replay, rate_limiter='min_size'))
  table = replay_table(config.replay, specs_lib.derive_specs(config))
  assert table.info.rate_limiter_info.min_size_to_sample == 100
  assert table.info.rate_limiter_info.samples_per_insert == 1


def _build(env_name, kind, **agent_changes):
  env = envs.load_env(cfg.EnvConfig(env_name))
  time_step_spec, action_spec = agents.tensor_specs(env)
  config = cfg.ExperimentConfig(
      env=cfg.EnvConfig(env_name),
      agent=dataclasses.replace(cfg.AgentConfig(kind), **agent_changes))
  return agents.build_agent(config, time_step_spec, action_spec,
                            train_utils.create_train_step())


def test_agent_builders():
  assert isinstance(_build('CartPole-v1', 'dqn'), dqn_agent.DqnAgent)
  assert isinstance(_build('Pendulum-v1', 'sac'), sac_agent.SacAgent)


@pytest.mark.parametrize('td_loss, loss_fn', [
    ('squared', tfa_common.element_wise_squared_loss),
    ('huber', tfa_common.element_wise_huber_loss)])
def test_dqn_td_loss(td_loss, loss_fn):
  agent = _build('CartPole-v0', 'dqn', td_loss=td_loss)
  assert agent._td_errors_loss_fn is loss_fn  # pylint: disable=protected-access


def test_dqn_on_continuous_actions_fails_clearly():
  with pytest.raises(AgentSpecError,
                     match='DQN needs a discrete action space, but '
                           'Pendulum-v1 has continuous actions'):
    _build('Pendulum-v1', 'dqn')


def test_sac_on_discrete_actions_fails_clearly():
  with pytest.raises(AgentSpecError,
                     match='SAC needs a continuous action space'):
    _build('CartPole-v0', 'sac')


def test_unknown_env_fails_clearly():
  with pytest.raises(envs.EnvError, match="unknown env 'NoSuchEnv-v0'"):
    envs.load_env(cfg.EnvConfig('NoSuchEnv-v0'))
