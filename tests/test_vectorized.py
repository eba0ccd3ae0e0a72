"""A collect actor with several envs: items never mix envs or episodes,
with 2-step items and with n-step ones (padded at an episode's end)."""
import dataclasses

import numpy as np
import pytest
import reverb
from tf_agents.policies import random_py_policy
from tf_agents.train import actor as tfa_actor
from tf_agents.train.utils import train_utils

from actor.replay_writer import ReplayWriter
from actor.runtime import load_envs
from common import config as cfg
from common import specs as specs_lib
from common.config import REPLAY_TABLE
from reverb_server.server import ReplayServer
from reverb_server.server import ServerSettings
from tests.helpers import assert_cartpole_step
from tests.helpers import unused_port

_NUM_ENVS = 3
_STEPS = 600


class _StepTypes:
  """An observer counting the batched steps' step types."""

  def __init__(self):
    self.counts = np.zeros(3, np.int64)

  def __call__(self, trajectory):
    self.counts += np.bincount(np.reshape(trajectory.step_type, -1),
                               minlength=3)


@pytest.mark.parametrize('n_step', [1, 3])
def test_batched_envs_write_consecutive_steps_of_one_env_per_item(n_step):
  config = cfg.ExperimentConfig(
      env=cfg.EnvConfig('CartPole-v0'), agent=cfg.AgentConfig(
          'dqn', n_step=n_step),
      replay=cfg.ReplayConfig(capacity=10_000, initial_collect_steps=1,
                              rate_limiter='min_size', samples_per_insert=64),
      train=dataclasses.replace(cfg.TrainConfig(), envs_per_actor=_NUM_ENVS))
  port = unused_port()
  server = ReplayServer(config, ServerSettings(port=port))
  try:
    client = reverb.Client(f'localhost:{port}')
    env = load_envs(config, seed=1, num_envs=_NUM_ENVS)
    assert env.batch_size == _NUM_ENVS
    layout = specs_lib.derive_specs(config).replay_layout
    writer = ReplayWriter(client, layout, lambda: False, num_envs=_NUM_ENVS)
    step_types = _StepTypes()
    tfa_actor.Actor(
        env, random_py_policy.RandomPyPolicy(
            env.time_step_spec(), env.action_spec(), outer_dims=(_NUM_ENVS,),
            seed=1),
        train_utils.create_train_step(), steps_per_run=_STEPS,
        observers=[writer, step_types]).run()
    writer.close(flush_timeout_s=10)
    size = client.server_info()[REPLAY_TABLE].current_size
    items = [layout.unpack_numpy(sample.data[0]) for sample in client.sample(
        REPLAY_TABLE, num_samples=size, emit_timesteps=False)]
  finally:
    server.stop()
  # Every step but an episode's closing LAST one starts an item, except the
  # last few of each env's unfinished episode.
  starts = step_types.counts.sum() - step_types.counts[2]
  assert size == writer.items_written
  assert starts - _NUM_ENVS * n_step <= size <= starts, step_types.counts
  length = n_step + 1
  padded = 0
  for trajectory in items:
    step_type, observation = trajectory.step_type, trajectory.observation
    assert observation.shape == (length, 4)
    assert step_type[0] != 2  # A LAST step closes an episode: no transition.
    for k in range(length - 1):
      if step_type[k] == 2:
        # Past the episode's end: copies of its LAST step, nothing of the
        # next episode.
        padded += 1
        for field in (step_type, observation, trajectory.reward):
          np.testing.assert_array_equal(field[k + 1], field[k])
        continue
      # Consecutive steps of one env's episode: the cart moved as
      # CartPole's physics moves it.
      assert trajectory.next_step_type[k] == step_type[k + 1]
      assert_cartpole_step(observation[k], observation[k + 1])
  assert (padded > 0) == (n_step > 1)
