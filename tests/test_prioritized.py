"""Prioritized replay and n-step returns: the importance weights and beta's
schedule by hand (in-process), priority updates that outlive their items,
and real processes whose training rewrites the priorities on the server."""
import os
import re
import time

import numpy as np
import pytest
import reverb
import tensorflow as tf

from algorithms.experience_replay import replay_table
from common import config as cfg
from common import specs as specs_lib
from common.config import REPLAY_TABLE
from common.tables import table_differences
from learner import priorities
from tests.helpers import PROJECT_ROOT
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
  assert min(updated) >= priorities.MIN_PRIORITY
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
