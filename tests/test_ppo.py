"""PPO over a Reverb queue: the config's checks, the queue's order, the
learner's staleness rule, and a real learner's exact iterations."""
import contextlib
import os
import re
import signal
import threading
import time

from absl import flags
import numpy as np
import pytest
import reverb
import tensorflow as tf
from tf_agents.environments import batched_py_environment
from tf_agents.environments import suite_gym
from tf_agents.trajectories import trajectory

from actor.episode_stats import EpisodeStats
from actor.fast_policy import FastPyPolicy
from algorithms import ppo
from algorithms import ppo_training
from algorithms.collect_requests import CollectRequests
from algorithms.ppo_collection import SequenceRounds
from algorithms.ppo_collection import SequenceWriter
from algorithms.ppo_collection import tables as ppo_tables
from benchmarks.targets import flagfile_path
from common import agents
from common import cli
from common import envs
from common import records
from common import run_dir
from common import specs as specs_lib
from common.config import REPLAY_TABLE
from common.connection import connect
from common.errors import ConfigError
from common.learner_status import STATUS_TABLE
from common.learner_status import read_status
from common.queue_reader import QueueReader
from common.tables import experiment_tables
from common.tables import learner_train_step
from common.tables import variables_table
from common.weights import WeightsSync
from tests.helpers import assert_cartpole_step
from tests.helpers import scalar_values
from tests.helpers import start_module
from tests.helpers import stop_processes
from tests.helpers import unused_port

PPO_FLAGS = flagfile_path('cartpole_ppo')
# 4 items of 64 steps per iteration; 2 epochs of 4 minibatches: 8 train
# steps per iteration.
_SMALL = ['--ppo_steps_per_iteration=256', '--ppo_sequence_length=64',
          '--batch_size=64', '--num_epochs=2', '--envs_per_actor=1']


def _config(*args):
  return cli.parse_experiment([f'--flagfile={PPO_FLAGS}', *_SMALL, *args])


def test_policy_lag_counts_iterations_and_flags_unknown_versions():
  # 8 train steps per iteration; the learner is at step 32.
  assert ppo_training.policy_lag(32, 32, 8) == 0
  assert ppo_training.policy_lag(24, 32, 8) == 1
  assert ppo_training.policy_lag(0, 32, 8) == 4
  assert ppo_training.policy_lag(40, 32, 8) < 0  # Pushed by a lost future.


@pytest.mark.parametrize('args, message', [
    (['--ppo_steps_per_iteration=200'], 'multiple of ppo_sequence_length'),
    (['--ppo_steps_per_iteration=320', '--ppo_sequence_length=64',
      '--batch_size=128'], 'multiple of batch_size'),
    (['--max_train_steps=100'], 'multiple of the train steps per iteration'),
    (['--replay_sampler=prioritized'], 'needs --agent=dqn'),
    (['--ppo_sequence_length=1'], 'ppo_sequence_length'),
    (['--envs_per_actor=3'], 'multiple of ppo_sequence_length x '
     'envs_per_actor'),
])
def test_bad_ppo_settings_are_one_clear_error(args, message):
  with pytest.raises((ConfigError, flags.Error), match=re.escape(message)):
    _config(*args)


def test_ppo_takes_discrete_and_continuous_actions():
  for env_name in ('CartPole-v0', 'Pendulum-v1'):
    config = _config(f'--env={env_name}')
    specs = specs_lib.derive_specs(config)
    assert set(specs.collect_data_spec.policy_info) == {
        'dist_params', 'value_prediction'}
    assert specs.replay_signature['policy_version'].dtype == tf.int64
    assert specs.replay_signature['step'].shape[0] == 64


def test_synchronous_ppo_requests_whole_rounds_and_asynchronous_none():
  # 4 items per iteration: 2 rounds of 2 envs; with lag 1, no requests.
  assert ppo.rounds_per_iteration(_config('--envs_per_actor=2')) == 2
  assert ppo.rounds_per_iteration(
      _config('--envs_per_actor=3', '--max_policy_lag=1')) == 0
  assert [table.name for table in experiment_tables(
      _config('--max_policy_lag=1'),
      specs_lib.derive_specs(_config('--max_policy_lag=1')))] == [
          REPLAY_TABLE, specs_lib.VARIABLES_TABLE, STATUS_TABLE]  # No
  # requests table.


def test_each_request_goes_to_one_actor_and_a_new_issue_replaces_the_rest():
  config = _config('--envs_per_actor=2')
  specs = specs_lib.derive_specs(config)
  server = reverb.Server(experiment_tables(config, specs))
  stop = []
  address = f'localhost:{server.port}'
  learner = CollectRequests(address, lambda: bool(stop))
  actors = [CollectRequests(address, lambda: bool(stop)) for _ in range(2)]
  try:
    assert learner.issue(2, version=8)
    assert learner.untaken() == 2
    assert [actor.take() for actor in actors] == [8, 8]
    assert learner.untaken() == 0
    # A third take waits: in a thread, until the next issue.
    taken = []
    waiting = threading.Thread(target=lambda: taken.append(actors[0].take()),
                               daemon=True)
    waiting.start()
    time.sleep(1.0)
    assert not taken
    assert learner.issue(2, version=16)
    waiting.join(timeout=10)
    assert taken == [16]
    assert learner.untaken() == 1
    assert learner.issue(2, version=24)  # Replaces the one left.
    assert [actor.take() for actor in actors] == [24, 24]
    # Waiting for a request ends with a stop.
    stop.append(True)
    started = time.monotonic()
    with pytest.raises(InterruptedError):
      actors[1].take()
    assert time.monotonic() - started < 5
  finally:
    server.stop()


def test_the_table_is_a_queue_of_one_iteration():
  config = _config()
  table = ppo_tables(config, specs_lib.derive_specs(config))[0].info
  assert table.max_size == config.ppo.items_per_iteration == 4
  assert table.max_times_sampled == 1
  assert 'fifo' in str(table.sampler_options).lower()


class _TwoReplicas:
  num_replicas_in_sync = 2


def test_more_than_one_replica_is_refused():
  with pytest.raises(ConfigError, match='trains on one replica'):
    ppo.PPO().check_strategy(_config(), _TwoReplicas())


class _Reader:
  def __init__(self, versions):
    self.versions = list(versions)

  def take(self):
    packed = np.full([2, 3], len(self.versions), np.uint8)
    return {'step': tf.constant(packed),
            'policy_version': tf.constant(self.versions.pop(0), tf.int64)}


class _Learner:
  train_step_numpy = 16


def test_items_beyond_the_lag_bound_are_dropped_and_counted():
  # 2 items per iteration, 8 train steps each; the learner is at 16.
  config = _config('--ppo_steps_per_iteration=128', '--num_epochs=4',
                   '--max_policy_lag=1')
  reader = _Reader([0, 8, 24, 16, 0, 8])
  iterations = ppo_training.PPOTraining(config, None, _Learner(), reader,
                                        None, weights=None)
  items = iterations._take_fresh_items()  # pylint: disable=protected-access
  # Version 0 is 2 iterations old, 24 is from a step this learner never
  # pushed: both dropped; 8 (lag 1) and 16 (lag 0) kept, in order.
  assert [int(item[0, 0]) for item in items] == [5, 3]
  assert iterations.stale_items_dropped == 2
  assert reader.versions == [0, 8]  # Nothing taken beyond the iteration.


def _cartpole_sequences(config, layout, count):
  """`count` sequences of real CartPole steps from the collect policy."""
  env = envs.load_env(config.env, seed=0)
  agent, _ = agents.make_agent(config, env)
  policy = FastPyPolicy(agent.collect_policy, batched=False)
  time_step = env.reset()
  for _ in range(count * layout.sequence_length):
    action_step = policy.action(time_step)
    next_time_step = env.step(action_step.action)
    yield trajectory.from_transition(time_step, action_step, next_time_step)
    time_step = next_time_step


def _write(config, address, versions, steps=None):
  """One sequence per version, written by the actors' SequenceWriter: of
  `steps` (default: new CartPole sequences)."""
  specs = specs_lib.derive_specs(config)
  client = reverb.Client(address)
  version = iter(versions)
  current = [None]
  writer = SequenceWriter(client, specs.replay_layout, lambda: False,
                          lambda: current[0])
  if steps is None:
    steps = _cartpole_sequences(config, specs.replay_layout, len(versions))
  for index, step in enumerate(steps):
    if index % specs.replay_layout.sequence_length == 0:
      current[0] = next(version)
    writer(step)
  writer.close(flush_timeout_s=10)


def _queue_reader(address, specs, should_stop):
  return QueueReader(address, REPLAY_TABLE, specs.replay_signature,
                     should_stop)


def _next_item(reader):
  """(packed steps, policy version) of the next item."""
  data = reader.take()
  return data['step'].numpy(), int(data['policy_version'].numpy())


def test_the_queue_hands_out_each_item_once_in_order():
  config = _config()
  specs = specs_lib.derive_specs(config)
  server = reverb.Server([ppo_tables(config, specs)[0],
                          variables_table(specs)])
  address = f'localhost:{server.port}'
  try:
    _write(config, address, [3, 1, 4, 1])
    stop = []
    reader = _queue_reader(address, specs, lambda: bool(stop))
    taken = [_next_item(reader) for _ in range(4)]
    assert [version for _, version in taken] == [3, 1, 4, 1]
    assert all(packed.shape == (64, specs.replay_layout.step_bytes)
               for packed, _ in taken)
    info = reverb.Client(address).server_info()[REPLAY_TABLE]
    assert info.current_size == 0
    assert info.rate_limiter_info.sample_stats.completed == 4
    # Empty: the reader waits, and a stop request ends the wait.
    stop.append(True)
    started = time.monotonic()
    with pytest.raises(InterruptedError):
      reader.take()
    assert time.monotonic() - started < 5
  finally:
    server.stop()


@pytest.mark.slow
def test_a_server_killed_after_a_checkpoint_restores_the_same_queue(tmp_path):
  """The queue is checkpointed and restored like any table: the items a
  killed (-9) server checkpointed come back, each once, in order, with
  their versions and steps."""
  config = _config()
  specs = specs_lib.derive_specs(config)
  layout = specs.replay_layout
  steps = list(_cartpole_sequences(config, layout, 4))
  port = unused_port()
  address = f'localhost:{port}'
  start_server = lambda name: start_module('reverb_server', [
      f'--flagfile={PPO_FLAGS}', *_SMALL, f'--port={port}',
      f'--checkpoint_dir={tmp_path / "checkpoints"}',
      '--replay_checkpoint_every_s=3600'], str(tmp_path / f'{name}.log'))
  server = start_server('server')
  try:
    client = connect(address, timeout_s=120)
    _write(config, address, [3, 1, 4, 1], steps)
    assert client.server_info()[REPLAY_TABLE].current_size == 4
    client.checkpoint()
    server.send_signal(signal.SIGKILL)
    server.wait()
    server = start_server('server_restarted')
    client = connect(address, timeout_s=120)
    assert client.server_info()[REPLAY_TABLE].current_size == 4
    reader = _queue_reader(address, specs, lambda: False)
    taken = [_next_item(reader) for _ in range(4)]
    assert [version for _, version in taken] == [3, 1, 4, 1]
    for index, (packed, _) in enumerate(taken):
      written = steps[index * layout.sequence_length:
                      (index + 1) * layout.sequence_length]
      np.testing.assert_array_equal(
          layout.unpack_numpy(packed).observation,
          np.stack([step.observation for step in written]))
    assert client.server_info()[REPLAY_TABLE].current_size == 0
  finally:
    stop_processes([server])


def test_a_round_is_one_sequence_of_each_env_whatever_episodes_end_in_it():
  """3 rounds of 2 envs, the weights version changing between rounds as
  an actor's pulls do: each item is one round's (TF-Agents' driver does
  not count the steps between episodes, and its rounds drift off the
  sequences), and the items of an env follow each other step by step."""
  config = _config('--envs_per_actor=2', '--ppo_sequence_length=16',
                   '--ppo_steps_per_iteration=128')
  specs = specs_lib.derive_specs(config)
  server = reverb.Server(experiment_tables(config, specs))
  address = f'localhost:{server.port}'
  try:
    # A 10-step time limit ends episodes inside every 16-step round, whatever
    # the untrained policy does (left to chance, 48 CartPole steps can pass
    # with no episode ending in either env).
    env = batched_py_environment.BatchedPyEnvironment(
        [suite_gym.load('CartPole-v0', max_episode_steps=10)
         for _ in range(2)], multithreading=False)
    agent, _ = agents.make_agent(config, env)
    version = [0]
    writer = SequenceWriter(reverb.Client(address), specs.replay_layout,
                            lambda: False, lambda: version[0], num_envs=2)
    stats = EpisodeStats(2)
    rounds = SequenceRounds(env, FastPyPolicy(agent.collect_policy, True),
                            [writer, stats], 16, summary_dir=None)
    for version[0] in (0, 1, 2):
      rounds.run()
    assert stats.episodes >= 8  # 2 envs x 48 steps, each episode <= 10.
    reader = _queue_reader(address, specs, lambda: False)
    taken = [_next_item(reader) for _ in range(6)]
    assert [v for _, v in taken] == [0, 0, 1, 1, 2, 2]
    for env_index in (0, 1):
      steps = [specs.replay_layout.unpack_numpy(packed)
               for packed, _ in taken[env_index::2]]
      observations = np.concatenate([s.observation for s in steps])
      step_types = np.concatenate([s.step_type for s in steps])
      assert len(observations) == 48
      # Within an episode, across the rounds' boundaries too, each step
      # follows the last as CartPole's physics moves the cart: no step lost
      # or doubled.
      for i in range(47):
        if step_types[i] != 2:
          assert_cartpole_step(observations[i], observations[i + 1],
                               f'env {env_index} step {i}')
  finally:
    server.stop()


@contextlib.contextmanager
def _server_and_learner(tmp_path, *args):
  """A Reverb server and a learner on the small experiment with `args`;
  yields (config, address, client, learner process) once the learner has
  pushed weights version 0."""
  experiment = [f'--flagfile={PPO_FLAGS}', *_SMALL, *args]
  port = unused_port()
  address = f'localhost:{port}'
  processes = [start_module('reverb_server', [*experiment, f'--port={port}'],
                            str(tmp_path / 'server.log'))]
  try:
    client = connect(address, timeout_s=120)
    processes.append(start_module(
        'learner', [*experiment, f'--reverb_address={address}',
                    f'--root_dir={tmp_path}'], str(tmp_path / 'learner.log')))
    _wait_for(lambda: learner_train_step(client) == 0, processes)
    yield cli.parse_experiment(experiment), address, client, processes[1]
  finally:
    stop_processes(processes)


@pytest.mark.slow
def test_learner_trains_exact_iterations_and_drops_stale_items(tmp_path):
  """A real server and learner; the test writes the items, with chosen
  versions. Synchronous PPO (lag 0): after the first iteration, items of
  version 0 are stale."""
  with _server_and_learner(tmp_path, '--max_policy_lag=0',
                           '--max_train_steps=16', '--log_every_steps=8') as (
                               config, address, client, learner):
    _write(config, address, [0] * 4)  # Iteration 1: 4 fresh items.
    _wait_for(lambda: learner_train_step(client) == 8, [learner])
    _write(config, address, [0] * 3 + [8] * 4)  # 3 stale, then iteration 2.
    assert learner.wait(timeout=120) == 0
    log = (tmp_path / 'learner.log').read_text()
    assert ('train_step=16 PPO: 2 iterations, 512 env steps trained (256 '
            'each), 3 stale items dropped') in log, log[-3000:]
    assert 'Learner finished at train_step 16' in log
    # The same counters as records, in the run dir and in Reverb.
    finished = records.read(
        run_dir.records_path(str(tmp_path), records.LEARNER))[-1]
    status = read_status(client)
    for record in (finished.values, status[records.FINISHED]):
      assert (record['train_step'], record['iterations'],
              record['env_steps_trained'], record['stale_items_dropped'],
              record['reason']) == (16, 2, 512, 3, 'max_train_steps reached')
    assert finished.event == records.FINISHED
    assert status[records.WEIGHTS_PUSHED]['train_step'] == 0
    assert status[records.FIRST_TRAIN_STEP]['train_step'] == 8
    summaries = str(tmp_path / 'train')  # Written at the last step.
    assert scalar_values(summaries, 'Learner/stale_items_dropped') == [3]
    assert scalar_values(summaries, 'Learner/env_steps_trained') == [512]
    # Each of the 11 items was handed out once: all taken, none left.
    info = client.server_info()[REPLAY_TABLE]
    assert info.rate_limiter_info.insert_stats.completed == 11
    assert info.rate_limiter_info.sample_stats.completed == 11
    assert info.current_size == 0


_STALL_S = 15.0
_FORCED_EXIT_S = 20.0  # common/shutdown.py's grace.


@pytest.mark.slow
def test_a_stalled_iteration_pushes_its_weights_and_requests_rounds_again(
    tmp_path):
  """After iteration 1, the server holds weights version 0 again (as if
  restored from an older checkpoint) and every request is taken but none
  answered (as if the actors died): the learner pushes again and requests
  the rounds again, and the answered requests finish the job."""
  # The steps are made beforehand, so that each request is answered within
  # a second or two, far below the stall threshold however loaded the
  # machine: only the one stall the test makes requests rounds again.
  with _server_and_learner(tmp_path, '--max_train_steps=16',
                           f'--ppo_stall_s={_STALL_S}') as (
                               config, address, client, learner):
    specs = specs_lib.derive_specs(config)
    steps = list(_cartpole_sequences(config, specs.replay_layout, 8))
    actor = CollectRequests(address, lambda: False)
    assert [actor.take() for _ in range(4)] == [0] * 4
    _write(config, address, [0] * 4, steps[:len(steps) // 2])
    _wait_for(lambda: learner_train_step(client) == 8, [learner])
    assert [actor.take() for _ in range(4)] == [8] * 4
    env = envs.load_env(config.env, seed=0)
    old_agent, old_step = agents.make_agent(config, env)
    WeightsSync(
        address, specs_lib.variables_nest(old_agent, old_step)).push()
    assert learner_train_step(client) == 0
    _wait_for(lambda: learner_train_step(client) == 8, [learner],
              timeout_s=_STALL_S + 60)
    assert [actor.take() for _ in range(4)] == [8] * 4
    _write(config, address, [8] * 4, steps[len(steps) // 2:])
    assert learner.wait(timeout=120) == 0
    finished = records.read(
        run_dir.records_path(str(tmp_path), records.LEARNER))[-1]
    assert (finished.event, finished['train_step'],
            finished['stale_items_dropped'],
            finished['rounds_requested_again']) == (
                records.FINISHED, 16, 0, 4), finished


@pytest.mark.slow
def test_sigterm_while_waiting_on_the_queue_saves_what_was_trained(tmp_path):
  with _server_and_learner(tmp_path) as (config, address, client, learner):
    _write(config, address, [0] * 4)  # One iteration, then an empty queue.
    _wait_for(lambda: learner_train_step(client) == 8, [learner])
    signalled = time.time()
    learner.send_signal(signal.SIGTERM)
    assert learner.wait(timeout=_FORCED_EXIT_S) == 0
    finished = records.read(
        run_dir.records_path(str(tmp_path), records.LEARNER))[-1]
    assert (finished.event, finished['train_step'], finished['reason']) == (
        records.FINISHED, 8, 'received SIGTERM'), finished
    assert os.path.exists(tmp_path / 'train' / 'checkpoints' / 'ckpt-8.index')
    # As the README says: the wait on the queue ends (a 0.5 s slice), the
    # checkpoint is saved and the learner has finished within 2 s (its own
    # clock), long before the forced exit.
    assert finished.time - signalled <= 2.0, finished.time - signalled


def _wait_for(condition, processes, timeout_s=120):
  deadline = time.monotonic() + timeout_s
  while True:
    try:
      if condition():
        return
    except reverb.errors.DeadlineExceededError:
      pass
    for process in processes:
      assert process.poll() is None, f'{process.args} exited'
    assert time.monotonic() < deadline, 'timed out'
    time.sleep(0.2)
