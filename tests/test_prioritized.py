"""Prioritized replay and n-step returns: the importance weights and beta's
schedule by hand, one real train step's loss and priorities against a hand
computation, priorities through a server's checkpoint and restart, updates
that outlive their items (all in-process), and real processes whose
training rewrites the priorities on the server."""
import dataclasses
import functools
import os
import re
import time
import types

import numpy as np
import pytest
import reverb
import tensorflow as tf
from tf_agents.train import learner as tfa_learner
from tf_agents.trajectories import trajectory

from actor.fast_policy import FastPyPolicy
from algorithms.base import LearnerParts
from algorithms.experience_replay import replay_table
from common import agents
from common import cli
from common import config as cfg
from common import envs
from common import specs as specs_lib
from common import tables
from common.config import REPLAY_TABLE
from common.tables import table_differences
from learner import priorities
from learner import replay_input
from reverb_server.server import ReplayServer
from reverb_server.server import ServerSettings
from tests.helpers import PROJECT_ROOT
from tests.helpers import replay_items_by_key
from tests.helpers import start_training
from tests.helpers import stop_processes

PER_FLAGS = os.path.join(PROJECT_ROOT, 'configs', 'cartpole_dqn_per.flags')


def test_importance_weights_match_a_hand_computation():
  # 10 items; sampled with probabilities 0.1, 0.2, 0.05 and beta 0.5:
  # (10 * p) ** -0.5 = 1, 0.7071, 1.4142; over the largest (1.4142):
  weights = priorities.importance_weights(
      tf.constant([0.1, 0.2, 0.05], tf.float64),
      tf.constant([10, 10, 10], tf.int64), tf.constant(0.5))
  np.testing.assert_allclose(weights.numpy(), [2 ** -0.5, 0.5, 1.0],
                             rtol=1e-6)
  # beta 0: no correction.
  np.testing.assert_allclose(priorities.importance_weights(
      tf.constant([0.1, 0.2], tf.float64), tf.constant([10, 10], tf.int64),
      tf.constant(0.0)).numpy(), [1.0, 1.0])


def test_importance_exponent_anneals_linearly_to_one():
  replay = cfg.ReplayConfig(importance_exponent=0.4,
                            importance_anneal_steps=1000)
  assert [replay.importance_exponent_at(s) for s in (0, 500, 1000, 5000)] == (
      pytest.approx([0.4, 0.7, 1.0, 1.0]))
  constant = cfg.ReplayConfig(importance_exponent=0.4)
  assert constant.importance_exponent_at(10 ** 6) == 0.4
  exponent = priorities.ImportanceExponent(replay)
  assert exponent.variable.numpy() == pytest.approx(0.4)
  exponent(500)  # As the Learner calls its triggers.
  assert exponent.variable.numpy() == pytest.approx(0.7)
  exponent(1000)
  assert exponent.variable.numpy() == pytest.approx(1.0)


@pytest.mark.parametrize('args, message', [
    (dict(agent=cfg.AgentConfig('sac'),
          replay=cfg.ReplayConfig(sampler='prioritized')),
     '--replay_sampler=prioritized needs --agent=dqn'),
])
def test_prioritized_replay_needs_dqn(args, message):
  with pytest.raises(cfg.ConfigError, match=message):
    cfg.ExperimentConfig(**args)


def test_n_step_needs_dqn():
  with pytest.raises(cfg.ConfigError, match='n_step 3 needs --agent=dqn'):
    cfg.ExperimentConfig(agent=cfg.AgentConfig('sac', n_step=3))


def test_priorities_are_absolute_td_errors_with_a_floor():
  updater = priorities.PriorityUpdater('localhost:1')  # Never sends here.
  handed_over = []
  updater.add = lambda keys, values: handed_over.append(
      dict(zip(keys.tolist(), values.tolist())))
  sample_info = reverb.SampleInfo(
      key=tf.constant([[7, 7], [8, 8], [9, 9]], tf.uint64), probability=None,
      table_size=None, priority=None, times_sampled=None)
  loss_info = types.SimpleNamespace(extra=types.SimpleNamespace(
      td_error=tf.constant([-2.5, 0.0, 0.25])))
  updater.after_train_step((None, sample_info), loss_info)
  assert handed_over == [
      {7: 2.5, 8: pytest.approx(priorities.MIN_PRIORITY), 9: 0.25}]


def _per_config(*args):
  """The prioritized flagfile, sampling from the first item on."""
  return cli.parse_experiment([
      f'--flagfile={PER_FLAGS}', '--rate_limiter=min_size',
      '--initial_collect_steps=1', *args])


def _write_cartpole_items(config, address, layout, agent, count):
  """At least `count` items of real CartPole steps, through the actors'
  writer (an episode's end adds several at once); how many."""
  client = reverb.Client(address)
  writer = config.builder.make_writer(config, client, layout, lambda: False,
                                      None, num_envs=1)
  env = envs.load_env(config.env, seed=0)
  policy = FastPyPolicy(agent.collect_policy, batched=False)
  time_step = env.reset()
  while writer.items_written < count:
    action_step = policy.action(time_step)
    next_time_step = env.step(action_step.action)
    writer(trajectory.from_transition(time_step, action_step, next_time_step))
    time_step = next_time_step
  writer.close(flush_timeout_s=10)
  env.close()
  return writer.items_written


def test_a_train_step_weights_its_loss_and_sends_each_keys_td_error(
    tmp_path, monkeypatch):
  """One train step of the learner's own prioritized training, against a
  hand computation from the weights before it: its loss is the importance
  weighted mean of the sampled items' TD losses, and the priority each
  sampled key gets on the server is that item's |TD error|."""
  config = _per_config('--batch_size=16', '--importance_exponent=0.7')
  sent = []  # (keys, priorities) as the train step hands them over.
  add = priorities.PriorityUpdater.add
  monkeypatch.setattr(
      priorities.PriorityUpdater, 'add',
      lambda self, keys, values: sent.append((keys, values)) or add(
          self, keys, values))
  env = envs.load_env(config.env, seed=0)
  agent, train_step = agents.make_agent(config, env)
  env.close()
  specs = specs_lib.specs_of(config, agent, train_step)
  server = reverb.Server(tables.experiment_tables(config, specs))
  address = f'localhost:{server.port}'
  client = reverb.Client(address)
  try:
    count = _write_cartpole_items(config, address, specs.replay_layout,
                                  agent, 24)
    items = replay_items_by_key(client, count)
    keys = sorted(items)
    # Priorities 0.1 .. 4.7: sampling probabilities 10x apart.
    set_to = {key: 0.1 + 0.2 * index for index, key in enumerate(keys)}
    client.mutate_priorities(REPLAY_TABLE, updates=set_to)
    before = agent._loss(  # pylint: disable=protected-access
        specs.replay_layout.unpack(tf.constant(np.stack(
            [items[key] for key in keys]))), training=False).extra
    td_error = dict(zip(keys, before.td_error.numpy()))
    td_loss = dict(zip(keys, before.td_loss.numpy()))

    training = config.builder.make_training(LearnerParts(
        config=config, address=address,
        sampling=replay_input.InputSettings(sampling_workers=1),
        strategy=tf.distribute.get_strategy(), agent=agent, specs=specs,
        weights=None, make_learner=functools.partial(
            tfa_learner.Learner, str(tmp_path), train_step, agent,
            checkpoint_interval=0),
        should_stop=lambda: False))
    loss = float(training.run_first().loss)
    assert len(sent) == 1
    batch_keys, batch_priorities = sent[0][0].tolist(), sent[0][1]
    assert len(batch_keys) == 16
    np.testing.assert_allclose(
        batch_priorities,
        [max(abs(td_error[key]), priorities.MIN_PRIORITY)
         for key in batch_keys], rtol=1e-5)
    # Importance weights (N * P(key)) ** -beta over the batch's largest.
    alpha = config.replay.priority_exponent
    total = sum(p ** alpha for p in set_to.values())
    weights = np.array([(count * set_to[key] ** alpha / total) ** -0.7
                        for key in batch_keys])
    weights /= weights.max()
    losses = np.array([td_loss[key] for key in batch_keys])
    assert loss == pytest.approx(np.mean(weights * losses), rel=1e-4)
    assert loss != pytest.approx(np.mean(losses), rel=0.05)
    # On the server: each sampled key's new priority (the others' unchanged).
    deadline = time.monotonic() + 10
    while training._prioritized.updater.items_sent < len(set(batch_keys)):  # pylint: disable=protected-access
      assert time.monotonic() < deadline, 'priorities not sent'
      time.sleep(0.05)
    served = {key: float(sample.info.priority) for key, sample in (
        (int(s.info.key), s) for s in client.sample(
            REPLAY_TABLE, num_samples=2000, emit_timesteps=False))}
    expected = dict(set_to)
    expected.update(zip(batch_keys, batch_priorities.tolist()))
    for key, priority in served.items():
      assert priority == pytest.approx(expected[key], rel=1e-6), key
  finally:
    server.stop()


def test_priorities_survive_a_checkpoint_and_updates_resume_after_a_restart(
    tmp_path):
  """The experiment's server (checkpointing on stop): priorities the
  learner's updater set come back with the restored table, and the
  updater's next updates, after the restart on the same port, arrive."""
  config = _per_config()
  settings = ServerSettings(port=0, checkpoint_dir=str(tmp_path / 'ckpt'),
                            root_dir=str(tmp_path))
  server = ReplayServer(config, settings)
  address = f'localhost:{server.port}'
  client = reverb.Client(address)
  env = envs.load_env(config.env, seed=0)
  agent, _ = agents.make_agent(config, env)
  env.close()
  specs = specs_lib.derive_specs(config)
  count = _write_cartpole_items(config, address, specs.replay_layout, agent,
                                8)
  keys = sorted(replay_items_by_key(client, count))
  updater = priorities.PriorityUpdater(address)

  def send(updates):
    updater.add(np.array(list(updates), np.uint64),
                np.array(list(updates.values()), np.float32))

  def wait_for_calls(calls):
    """Until `calls` calls were sent or dropped."""
    deadline = time.monotonic() + 30
    while updater.calls + updater.dropped < calls:
      assert time.monotonic() < deadline, (
          f'{updater.calls} calls sent, {updater.dropped} dropped: not {calls}')
      time.sleep(0.05)

  def served():
    assert client.server_info()[REPLAY_TABLE].current_size == count
    return {int(s.info.key): float(s.info.priority) for s in client.sample(
        REPLAY_TABLE, num_samples=400, emit_timesteps=False)}

  set_to = {key: 0.5 + index for index, key in enumerate(keys)}
  send(set_to)
  wait_for_calls(1)
  assert served() == pytest.approx(set_to)
  server.stop()  # Checkpoints first.
  # While the server is away: dropped (on a connection not yet seen down),
  # or waiting for the server.
  send({keys[0]: 100.0})
  server = ReplayServer(config, dataclasses.replace(settings,
                                                    port=server.port))
  try:
    wait_for_calls(2)
    restored = dict(set_to)
    if updater.dropped == 0:
      restored[keys[0]] = 100.0
    assert served() == pytest.approx(restored)
    dropped = updater.dropped
    send({keys[1]: 200.0})
    wait_for_calls(3)
    assert updater.dropped == dropped
    assert served() == pytest.approx({**restored, keys[1]: 200.0})
  finally:
    server.stop()


def test_updates_of_removed_items_are_skipped_not_failed():
  server = reverb.Server([reverb.Table(
      REPLAY_TABLE, reverb.selectors.Prioritized(0.6),
      reverb.selectors.Fifo(), max_size=2,
      rate_limiter=reverb.rate_limiters.MinSize(1))])
  try:
    client = server.localhost_client()
    for value in range(3):  # The first item is removed by the third.
      client.insert(np.float32(value), {REPLAY_TABLE: 1.0})
    keys = sorted({int(s[0].info.key) for s in client.sample(
        REPLAY_TABLE, num_samples=50)})
    assert len(keys) == 2
    updater = priorities.PriorityUpdater(f'localhost:{server.port}')
    removed_key = max(keys) + 12345
    updater.add(np.array([removed_key, keys[0]], np.uint64),
                np.array([3.0, 7.0], np.float32))
    deadline = time.monotonic() + 10
    while updater.calls == 0:
      assert time.monotonic() < deadline, 'no update sent'
      time.sleep(0.05)
    assert updater.dropped == 0 and updater.items_sent == 2
    found = {int(s[0].info.key): float(s[0].info.priority)
             for s in client.sample(REPLAY_TABLE, num_samples=200)}
    assert found[keys[0]] == 7.0 and found[keys[1]] == 1.0
  finally:
    server.stop()


@pytest.mark.slow
def test_training_rewrites_priorities_on_the_server(tmp_path):
  """Server, learner and an actor on the prioritized n-step flagfile: items
  hold n_step + 1 steps, and after training most sampled items carry the
  learner's |TD error| instead of the actors' initial priority."""
  client, processes = start_training(
      str(tmp_path), [f'--flagfile={PER_FLAGS}', '--initial_collect_steps=200',
                      '--max_train_steps=1000000'])
  try:
    deadline = time.monotonic() + 300
    while not (updates := re.search(
        r'train_step=\d+ priorities: (\d+) sent in \d+ calls \(.*\), '
        r'(\d+) dropped', (tmp_path / 'learner.log').read_text())):
      assert all(p.poll() is None for p in processes), (
          tmp_path / 'learner.log').read_text()[-3000:]
      assert time.monotonic() < deadline, 'no 1000 train steps in 300 s'
      time.sleep(0.5)
    samples = list(client.sample(REPLAY_TABLE, num_samples=500,
                                 emit_timesteps=False))
  finally:
    stop_processes(processes)
  config = cfg.ExperimentConfig(
      agent=cfg.AgentConfig(n_step=3),
      replay=cfg.ReplayConfig(sampler='prioritized'))
  assert all(np.shape(s.data[0])[0] == config.agent.n_step + 1
             for s in samples)
  initial = config.replay.initial_priority
  updated = [float(s.info.priority) for s in samples
             if float(s.info.priority) != initial]
  assert len(updated) > len(samples) / 2, (
      f'{len(updated)} of {len(samples)} sampled items have new priorities')
  # Every train step's batch went out while the server was up (a key
  # sampled twice is sent once).
  sent, dropped = map(int, updates.groups())
  assert dropped == 0 and sent > 500, updates.group(0)


def test_a_checkpoint_of_another_n_step_or_sampler_is_told_apart():
  """The restore check compares the served table with the config's: n_step
  changes the items' length, the sampler the table's selector."""
  def table(**replay_and_agent):
    n_step = replay_and_agent.pop('n_step', 1)
    config = cfg.ExperimentConfig(
        agent=cfg.AgentConfig(n_step=n_step),
        replay=cfg.ReplayConfig(**replay_and_agent))
    return replay_table(config.replay, specs_lib.derive_specs(config)).info
  uniform = table()
  assert table_differences(uniform, table()) == []
  n_step = table_differences(uniform, table(n_step=3))
  assert len(n_step) == 1 and 'step: server uint8[2, ' in n_step[0] and (
      'vs config uint8[4, ' in n_step[0]), n_step
  sampler = table_differences(uniform, table(sampler='prioritized'))
  assert len(sampler) == 1 and sampler[0].startswith('sampler: '), sampler
