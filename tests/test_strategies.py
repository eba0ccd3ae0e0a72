"""The learner on MirroredStrategy with 2 replicas (2 logical CPU devices,
the code path of a 2-GPU learner), with real processes: DQN trains (SAC:
tests/test_topology.py's Minitaur smoke), the replicas stay identical, the
pushed weights are theirs, a DQN step on 2 replicas is one device's step on
the global batch, summaries are written, and checkpoints restore under the
default strategy and back, weights and all."""
import os
import re
import signal
import time

import numpy as np
import pytest
import tensorflow as tf

from common import agents
from common import cli
from common import envs
from common import specs as specs_lib
from common.connection import connect
from common.specs import VARIABLES_TABLE
from common.weights import WeightsSync
from common.tables import learner_train_step
from tests.helpers import CARTPOLE_FLAGS
from tests.helpers import MINITAUR_FLAGS
from tests.helpers import run_module
from tests.helpers import scalar_values
from tests.helpers import start_module
from tests.helpers import stop_processes
from tests.helpers import unused_port

pytestmark = pytest.mark.slow  # Real processes.

_FLAGS = [f'--flagfile={CARTPOLE_FLAGS}', '--max_train_steps=1000000',
          '--initial_collect_steps=200', '--rate_limiter_slack_steps=100',
          '--checkpoint_every_steps=200', '--policy_save_every_steps=100000',
          '--log_every_steps=100']
_MIRRORED = ['--strategy=mirrored', '--cpu_replicas=2']


def _text(path):
  with open(path, errors='replace') as f:
    return f.read()


def test_two_replica_learner_trains_and_its_checkpoints_move_across_strategies(
    tmp_path):
  root_dir, port = str(tmp_path), unused_port()
  address = f'localhost:{port}'
  processes = []

  def start(name, module, args):
    processes.append(start_module(module, [*_FLAGS, *args],
                                  str(tmp_path / f'{name}.log')))
    return processes[-1]

  def train_step():
    return learner_train_step(client) or 0

  def wait_for(condition, what, timeout_s=240):
    deadline = time.monotonic() + timeout_s
    while not condition():
      assert time.monotonic() < deadline, f'timed out waiting for {what}'
      time.sleep(0.5)

  def run_learner(name, strategy_args, steps):
    """Starts a learner, waits for `steps` more train steps, stops it with
    SIGTERM; returns its log and the step it pushed first (restored)."""
    learner = start(name, 'learner', [f'--reverb_address={address}',
                                      f'--root_dir={root_dir}',
                                      *strategy_args])
    log = str(tmp_path / f'{name}.log')
    wait_for(lambda: 'Pushed weights version' in _text(log), f'{name} push')
    restored = int(re.search(r'Pushed weights version (\d+)',
                             _text(log)).group(1))
    wait_for(lambda: train_step() >= restored + steps, f'{name} training')
    learner.send_signal(signal.SIGTERM)
    assert learner.wait(60) == 0, _text(log)[-3000:]
    return _text(log), restored

  def served_weights():
    return [np.asarray(column) for column in next(client.sample(
        VARIABLES_TABLE, num_samples=1, emit_timesteps=False)).data]

  def restores_the_weights(name, strategy_args, stopped_at):
    """The weights the stopped learner pushed last (at `stopped_at`) are
    those a learner on `strategy_args` restores from its checkpoint: it
    pushes them over zeros, with nothing to train."""
    pushed = served_weights()
    assert int(pushed[-1]) == stopped_at  # train_step, the last column.
    _push_zeros(address)
    assert learner_train_step(client) == 0
    learner = start(name, 'learner', [
        f'--reverb_address={address}', f'--root_dir={root_dir}',
        f'--max_train_steps={stopped_at}', *strategy_args])
    assert learner.wait(120) == 0, _text(tmp_path / f'{name}.log')[-3000:]
    restored = served_weights()
    assert len(restored) == len(pushed)
    for before, after in zip(pushed, restored):
      np.testing.assert_array_equal(before, after)

  try:
    start('server', 'reverb_server', [f'--port={port}'])
    client = connect(address, timeout_s=120)
    start('actor', 'actor', [f'--reverb_address={address}', '--task=0'])
    log, restored = run_learner('mirrored', _MIRRORED, steps=400)
    assert restored == 0
    assert 'Learner on 2 replica(s) x 32 = global batch 64' in log
    # Trained on both replicas: the loss and data-wait summaries.
    assert scalar_values(os.path.join(root_dir, 'train'), 'Losses/total_loss')
    assert scalar_values(os.path.join(root_dir, 'train'),
                         'Learner/data_wait_fraction')
    stopped_at = int(re.search(r'Learner finished at train_step (\d+)',
                               log).group(1))
    # The checkpoint written on stop under mirrored restores under default,
    # weights and all...
    restores_the_weights('default_restore', [], stopped_at)
    log, restored = run_learner('default', [], steps=200)
    assert restored == stopped_at > 0
    assert 'Learner on 1 replica(s) x 64 = global batch 64' in log
    stopped_at = int(re.search(r'Learner finished at train_step (\d+)',
                               log).group(1))
    # ... and the other way round.
    restores_the_weights('mirrored_restore', _MIRRORED, stopped_at)
    _, restored = run_learner('mirrored_again', _MIRRORED, steps=200)
    assert restored == stopped_at
  finally:
    stop_processes(processes)


def _push_zeros(address):
  """Serves weights of zeros, at version 0, as a learner's push does."""
  config = cli.parse_experiment([f'--flagfile={CARTPOLE_FLAGS}'])
  agent, train_step = agents.make_agent(config,
                                        envs.load_env(config.env, seed=0))
  variables = specs_lib.variables_nest(agent, train_step)
  for variable in tf.nest.flatten(variables):
    variable.assign(tf.zeros_like(variable))
  WeightsSync(address, variables).push()


@pytest.mark.parametrize('flagfile, args', [
    (CARTPOLE_FLAGS, []), (MINITAUR_FLAGS, ['--batch_size=32'])])
def test_replicas_stay_identical_and_train_as_one_device_would(
    flagfile, args):
  result = run_module('tests.mirrored_check', [f'--flagfile={flagfile}',
                                               *args], timeout_s=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'replicas identical' in result.stdout, result.stdout
  assert "pulled weights: every replica's values, train_step 3" in (
      result.stdout), result.stdout
  if flagfile == CARTPOLE_FLAGS:  # DQN's train step is deterministic.
    assert 'one device on the global batch: the same losses and weights' in (
        result.stdout), result.stdout
