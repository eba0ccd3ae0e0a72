"""Configs: the tutorials' defaults, the shipped flagfiles, bad values."""
import dataclasses
import glob
import os

from absl import flags
import pytest

from benchmarks import targets
from common import cli
from common import config as cfg
from common import envs
from common import ports
from common import run_dir
from common import settings
from tests.helpers import CARTPOLE_FLAGS
from tests.helpers import MINITAUR_FLAGS


def _parse(*args) -> cfg.ExperimentConfig:
  return cli.parse_experiment(list(args))


def test_cartpole_flagfile_is_the_dqn_tutorial():
  config = _parse(f'--flagfile={CARTPOLE_FLAGS}')
  assert config.env == cfg.EnvConfig('CartPole-v0', 'auto')
  assert envs.resolve_suite(config.env) == 'gym'
  assert config.agent == cfg.AgentConfig('dqn')
  assert config.agent.fc_layer_params == (100, 50)
  assert config.agent.batch_size == 64 and config.agent.learning_rate == 1e-3
  # One train step per env step, as the tutorial's loop does.
  assert config.replay.samples_per_insert == 64
  assert config.replay.initial_collect_steps == 100


def test_minitaur_flagfile_is_the_sac_tutorial():
  config = _parse(f'--flagfile={MINITAUR_FLAGS}')
  assert envs.resolve_suite(config.env) == 'pybullet'
  assert config.agent == cfg.AgentConfig('sac')
  assert config.agent.critic_fc_layer_params == (256, 256)
  assert config.agent.target_update_tau == 0.005
  assert config.replay.samples_per_insert == 256
  assert config.replay.capacity == 10000


def test_every_shipped_flagfile_parses_and_states_its_target():
  names = sorted(os.path.basename(path)[:-len('.flags')] for path in
                 glob.glob(os.path.join(os.path.dirname(CARTPOLE_FLAGS),
                                        '*.flags')))
  shipped = [name for name in names if not name.endswith('_smoke')]
  assert shipped == sorted(targets.SHIPPED)
  for name in shipped:
    config = _parse(f'--flagfile={targets.flagfile_path(name)}')
    target = targets.read_target(name)
    assert target is not None, f'{name}.flags states no target line'
    assert 0 < target.train_steps <= config.train.max_train_steps, name


def test_flags_override_the_flagfile():
  config = _parse(f'--flagfile={CARTPOLE_FLAGS}', '--batch_size=32',
                  '--fc_layer_params=64')
  assert config.agent.batch_size == 32
  assert config.agent.fc_layer_params == (64,)
  assert config.replay.samples_per_insert == 32


@pytest.mark.parametrize('args, message', [
    (['--batch_size=0'], 'batch_size must be > 0'),
    (['--gamma=1.5'], 'gamma must be in [0, 1]'),
    (['--fc_layer_params=100,x'], 'comma-separated integers'),
    (['--fc_layer_params=100,-5'], 'positive layer sizes'),
    (['--replay_capacity=10', '--initial_collect_steps=100'],
     'must fit in the replay capacity'),
    (['--max_train_steps=0'], 'max_train_steps must be > 0'),
    (['--eval_every_steps=-1'], 'eval_every_steps must be >= 0'),
    (['--rate_limiter_slack_steps=0'], 'rate_limiter_slack_steps must be > 0'),
])
def test_bad_values_are_rejected_with_the_reason(args, message):
  with pytest.raises(cfg.ConfigError, match=message.replace('[', r'\[')):
    _parse(f'--flagfile={CARTPOLE_FLAGS}', *args)


@pytest.mark.parametrize('flag', ['learning_rate', 'reward_scale_factor',
                                  'entropy_regularization'])
def test_no_float_flag_takes_nan(flag):
  # nan passes a flag's bounds, and a check only if it compares as we hope.
  with pytest.raises(flags.IllegalFlagValueError,
                     match=f'flag --{flag}=nan: must be a number, not nan'):
    _parse(f'--flagfile={CARTPOLE_FLAGS}', f'--{flag}=nan')


@pytest.mark.parametrize('value', [float('nan'), float('inf'), float('-inf')])
def test_stop_at_return_must_be_finite(value):
  from deploy.graph import LaunchSettings  # pylint: disable=g-import-not-at-top
  with pytest.raises(cfg.ConfigError,
                     match=f'--stop_at_return must be a finite number, got '
                           f'{value}'):
    LaunchSettings('x.flags', 100, root_dir='/tmp/x', stop_at_return=value)
  assert LaunchSettings('x.flags', 100, root_dir='/tmp/x',
                        stop_at_return=-200.5).stop_at_return == -200.5


@pytest.mark.parametrize('address, host, port', [
    ('localhost:8000', 'localhost', 8000),
    ('reverb_server:8000', 'reverb_server', 8000),  # A compose service.
    ('reverb-server.rl.svc:1', 'reverb-server.rl.svc', 1),  # A k8s service.
    ('10.0.0.7:65535', '10.0.0.7', 65535),
    ('[::1]:8000', '::1', 8000),
])
def test_reverb_addresses_are_host_and_port(address, host, port):
  assert ports.parse_address(address) == (host, port)
  assert cfg.ReverbClientSettings(address).reverb_address == address


@pytest.mark.parametrize('address, problem', [
    ('not_an_address', 'is not host:port'),
    ('localhost:', 'is not host:port'),
    (':8000', 'is not host:port'),
    ('localhost:8000/x', 'is not host:port'),
    ('localhost:http', 'is not host:port'),
    ('::1:8000', 'is not host:port (an IPv6 host goes in brackets: '
                 '[::1]:8000)'),
    ('localhost:0', 'has port 0, not in 1..65535'),
    ('localhost:65536', 'has port 65536, not in 1..65535'),
    ('300.1.1.1:80', "has host '300.1.1.1', not an IPv4 address"),
    ('[zz]:80', 'has host [zz], not an IPv6 address'),
    ('local host:80', "has host 'local host', not a host name or IP address"),
])
def test_bad_reverb_addresses_are_refused_at_once(address, problem):
  message = f'--reverb_address {address!r} {problem}'
  with pytest.raises(ports.AddressError) as e:
    ports.parse_address(address)
  assert str(e.value) == message
  assert isinstance(e.value, ValueError)
  with pytest.raises(ports.AddressError):
    cfg.ReverbClientSettings(address)


def test_tpu_strategy_needs_an_address():
  with pytest.raises(cfg.ConfigError, match='--tpu'):
    cfg.StrategySettings(kind='tpu')
  assert cfg.StrategySettings(kind='tpu', tpu='grpc://x:8470')


def test_unknown_kinds_are_rejected():
  with pytest.raises(cfg.ConfigError, match='agent must be one of'):
    cfg.AgentConfig('a2c')
  with pytest.raises(cfg.ConfigError, match='env suite must be one of'):
    cfg.EnvConfig('CartPole-v0', suite='atari')
  with pytest.raises(cfg.ConfigError, match='rate_limiter must be one of'):
    cfg.ReplayConfig(capacity=10, initial_collect_steps=1, rate_limiter='fast')


def test_task_ids_from_hostnames():
  from actor.runtime import task_from_hostname  # pylint: disable=g-import-not-at-top
  assert task_from_hostname('actor-3') == 3
  assert task_from_hostname('rl-actor-12') == 12
  # Compose replicas are named by container id: a stable, distinct hash.
  ids = {task_from_hostname(h) for h in ('3f2a9c1b7d0e', '9b1c44e0a2f1')}
  assert len(ids) == 2
  assert task_from_hostname('3f2a9c1b7d0e') == task_from_hostname(
      '3f2a9c1b7d0e')


def test_batch_larger_than_replay_is_rejected():
  with pytest.raises(cfg.ConfigError,
                     match=r'batch_size \(64\) must not exceed the replay '
                           r'capacity \(50\)'):
    _parse(f'--flagfile={CARTPOLE_FLAGS}', '--replay_capacity=50',
           '--initial_collect_steps=10')


def test_experiment_flags_are_the_flagfile_interface():
  names = cli.define_experiment_flags(flags.FlagValues())
  assert sorted(names) == sorted([
      'env', 'env_suite', 'agent', 'fc_layer_params', 'critic_fc_layer_params',
      'learning_rate', 'batch_size', 'gamma', 'target_update_tau',
      'target_update_period', 'epsilon_greedy', 'reward_scale_factor',
      'n_step', 'td_loss', 'replay_capacity', 'initial_collect_steps',
      'rate_limiter',
      'samples_per_insert', 'rate_limiter_slack_steps', 'replay_sampler',
      'priority_exponent', 'importance_exponent', 'importance_anneal_steps',
      'initial_priority',
      'replay_checkpoint_every_s', 'max_train_steps', 'push_every_steps',
      'pull_every_steps', 'envs_per_actor', 'checkpoint_every_steps',
      'policy_save_every_steps', 'eval_every_steps', 'eval_episodes',
      'log_every_steps', 'ppo_steps_per_iteration', 'ppo_sequence_length',
      'max_policy_lag', 'num_epochs', 'importance_ratio_clipping',
      'entropy_regularization', 'gae_lambda', 'normalize_observations',
      'normalize_rewards', 'ppo_stall_s', 'seed'])


def test_process_settings_are_read_from_the_flags_their_fields_make():
  from actor.runtime import ActorSettings  # pylint: disable=g-import-not-at-top
  fv = flags.FlagValues()
  settings.define_flags(ActorSettings, fv)
  fv(['actor', '--reverb_address=server:9', '--task=3'])
  assert settings.from_flags(ActorSettings, fv) == ActorSettings(
      reverb_address='server:9', task=3)
  # One default, the field's: the flag's is the same.
  assert fv['connect_timeout_s'].default == ActorSettings.connect_timeout_s
  with pytest.raises(flags.IllegalFlagValueError, match='task'):
    fv(['actor', '--task=-1'])


def test_run_dir_names_are_tf_agents_learner_names():
  from tf_agents.train import learner  # pylint: disable=g-import-not-at-top
  assert (run_dir.TRAIN_DIR, run_dir.CHECKPOINTS_DIR, run_dir.POLICIES_DIR,
          run_dir.GREEDY_POLICY) == (
              learner.TRAIN_DIR, learner.POLICY_CHECKPOINT_DIR,
              learner.POLICY_SAVED_MODEL_DIR,
              learner.GREEDY_POLICY_SAVED_MODEL_DIR)


def test_every_builder_gives_every_unset_agent_setting_a_value():
  import algorithms  # pylint: disable=g-import-not-at-top
  unset = [field.name for field in dataclasses.fields(cfg.AgentConfig)
           if field.default is None]
  for kind, builder in algorithms.BUILDERS.items():
    assert builder.name == kind
    assert sorted(builder.defaults) == sorted(unset), kind
    agent = cfg.AgentConfig(kind)
    assert all(getattr(agent, name) is not None for name in unset), kind
  with pytest.raises(cfg.ConfigError, match="agent must be one of"):
    cfg.AgentConfig('a2c')
