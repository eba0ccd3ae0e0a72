"""n-step DQN targets at an episode's end, from items the actors' writer
stores: a terminal step ends the return, a time limit bootstraps with
gamma ** (transitions left), with several envs ending on the same batched
step (forced by the envs, not left to chance)."""
import numpy as np
import reverb
import tensorflow as tf
from tf_agents.environments import batched_py_environment
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import policy_step
from tf_agents.trajectories import time_step as ts
from tf_agents.trajectories import trajectory

from algorithms.experience_replay import replay_table
from common import agents
from common import config as cfg
from common import specs as specs_lib
from common.config import REPLAY_TABLE
from tests.helpers import replay_items_by_key

_N_STEP = 3
_GAMMA = 0.9
_BATCHED_STEPS = 14


class _Episodes(py_environment.PyEnvironment):
  """Episodes of `length` transitions ending by termination or by a time
  limit (truncation). Observation [env id, t]; the reward of the
  transition into t is t + 10 * env id."""

  def __init__(self, env_id: int, length: int, truncated: bool):
    super().__init__(handle_auto_reset=True)
    self.env_id, self.length, self.truncated = env_id, length, truncated
    self._t = 0

  def observation_spec(self):
    return array_spec.ArraySpec((2,), np.float32)

  def action_spec(self):
    return array_spec.BoundedArraySpec((), np.int64, 0, 1)

  def _observation(self):
    return np.array([self.env_id, self._t], np.float32)

  def _reset(self):
    self._t = 0
    return ts.restart(self._observation())

  def _step(self, action):
    self._t += 1
    reward = np.float32(self.reward(self._t))
    if self._t < self.length:
      return ts.transition(self._observation(), reward)
    if self.truncated:
      return ts.truncation(self._observation(), reward)
    return ts.termination(self._observation(), reward)

  def reward(self, t: int) -> float:
    return t + 10 * self.env_id

  def target(self, t: int):
    """(n-step discounted reward, bootstrap factor, bootstrap state's t)
    of the item starting at t."""
    transitions = min(_N_STEP, self.length - t)
    reward = sum(_GAMMA ** i * self.reward(t + 1 + i)
                 for i in range(transitions))
    ends = t + transitions == self.length
    bootstrap = 0.0 if ends and not self.truncated else _GAMMA ** transitions
    return reward, bootstrap, t + transitions


def test_n_step_targets_at_terminal_and_truncated_ends_on_one_batched_step():
  # Envs 0 and 1 end on the same batched steps (5 and 11), one terminal, one
  # cut by a time limit; env 2 ends (cut) on step 4 and 9.
  envs = [_Episodes(0, 5, truncated=False), _Episodes(1, 5, truncated=True),
          _Episodes(2, 4, truncated=True)]
  env = batched_py_environment.BatchedPyEnvironment(envs,
                                                    multithreading=False)
  config = cfg.ExperimentConfig(
      agent=cfg.AgentConfig('dqn', n_step=_N_STEP, gamma=_GAMMA),
      replay=cfg.ReplayConfig(capacity=1000, initial_collect_steps=1,
                              rate_limiter='min_size'))
  agent, train_step = agents.make_agent(config, env)
  specs = specs_lib.specs_of(config, agent, train_step)
  server = reverb.Server([replay_table(config.replay, specs)])
  try:
    client = reverb.Client(f'localhost:{server.port}')
    writer = config.builder.make_writer(config, client, specs.replay_layout,
                                        lambda: False, None, len(envs))
    time_step = env.reset()
    action = policy_step.PolicyStep(np.zeros(len(envs), np.int64), (), ())
    for _ in range(_BATCHED_STEPS):
      next_time_step = env.step(action.action)
      writer(trajectory.from_transition(time_step, action, next_time_step))
      time_step = next_time_step
    writer.close(flush_timeout_s=10)
    by_key = replay_items_by_key(
        client, client.server_info()[REPLAY_TABLE].current_size)
  finally:
    server.stop()
  items = {}  # (env id, start t) -> packed item; ends of episodes repeat.
  starts = []
  for item in by_key.values():
    observation = specs.replay_layout.unpack_numpy(item).observation
    starts.append(tuple(int(v) for v in observation[0]))
    items[starts[-1]] = item
  # Every transition of each finished episode starts an item (envs 0 and 1:
  # 2 episodes of 5; env 2: 2 of 4, and 1 of 4 needing one more step).
  expected_starts = sorted(
      [(0, t) for t in range(5)] * 2 + [(1, t) for t in range(5)] * 2 +
      [(2, t) for t in range(4)] * 2 + [(2, 0)])
  assert len(set(starts)) == len(items)
  assert sorted(starts) == expected_starts, sorted(starts)

  keys = sorted(items)
  _, _, next_time_steps = agent._as_transition(  # pylint: disable=protected-access
      specs.replay_layout.unpack(tf.constant(np.stack(
          [items[key] for key in keys]))))
  for index, (env_id, t) in enumerate(keys):
    reward, bootstrap, next_t = envs[env_id].target(t)
    where = f'env {env_id} item at t={t}'
    np.testing.assert_allclose(next_time_steps.reward[index], reward,
                               rtol=1e-6, err_msg=where)
    # DQN's target: reward + gamma * discount * max Q(next observation).
    np.testing.assert_allclose(
        _GAMMA * next_time_steps.discount[index], bootstrap, rtol=1e-6,
        atol=1e-7, err_msg=where)
    np.testing.assert_array_equal(next_time_steps.observation[index],
                                  [env_id, next_t], err_msg=where)
