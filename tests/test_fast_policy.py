"""The actors' lean py policy acts as the TF policy does; weights pulls."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import greedy_policy
from tf_agents.policies import py_tf_eager_policy

from actor.fast_policy import FastPyPolicy
from actor.runtime import load_envs
from common import agents
from common import config as cfg
from common import specs as specs_lib
from common.weights import WeightsSync
from reverb_server.server import ReplayServer
from reverb_server.server import ServerSettings
from tests.helpers import unused_port


def _config(env, kind, num_envs=1):
  return cfg.ExperimentConfig(
      env=cfg.EnvConfig(env), agent=cfg.AgentConfig(kind),
      replay=cfg.ReplayConfig(capacity=1000, initial_collect_steps=10),
      train=dataclasses.replace(cfg.TrainConfig(), envs_per_actor=num_envs))


@pytest.mark.parametrize('env_name,kind', [('CartPole-v0', 'dqn'),
                                           ('Pendulum-v1', 'sac')])
@pytest.mark.parametrize('num_envs', [1, 3])
def test_greedy_actions_equal_the_tf_policys(env_name, kind, num_envs):
  config = _config(env_name, kind, num_envs)
  env = load_envs(config, seed=5, num_envs=num_envs)
  agent, _ = agents.make_agent(config, env)
  greedy = greedy_policy.GreedyPolicy(agent.policy)  # SAC's policy samples.
  fast = FastPyPolicy(greedy, batched=env.batched)
  reference = py_tf_eager_policy.PyTFEagerPolicy(
      greedy, use_tf_function=True, batch_time_steps=not env.batched)
  time_step = env.reset()
  for _ in range(30):
    step = fast.action(time_step)
    want = reference.action(time_step)
    assert step.info == () and step.state == ()
    assert step.action.dtype == env.action_spec().dtype
    assert step.action.shape == np.shape(want.action)
    np.testing.assert_allclose(step.action, want.action, rtol=1e-6)
    time_step = env.step(step.action)


def test_collect_policy_explores():
  """DQN's collect policy is epsilon-greedy: with epsilon 1 every action is
  random, so both actions of CartPole come up."""
  config = _config('CartPole-v0', 'dqn')
  config = dataclasses.replace(config, agent=dataclasses.replace(
      config.agent, epsilon_greedy=1.0))
  env = load_envs(config, seed=1, num_envs=1)
  agent, _ = agents.make_agent(config, env)
  fast = FastPyPolicy(agent.collect_policy, batched=False)
  time_step = env.reset()
  actions = {int(fast.action(time_step).action) for _ in range(100)}
  assert actions == {0, 1}


def test_pull_takes_new_weights_and_their_version():
  config = _config('CartPole-v0', 'dqn')
  port = unused_port()
  server = ReplayServer(config, ServerSettings(port=port))
  try:
    env = load_envs(config, seed=0, num_envs=1)
    learner_agent, learner_step = agents.make_agent(config, env)
    actor_agent, actor_step = agents.make_agent(config, env)
    address = f'localhost:{port}'
    push = WeightsSync(
        address, specs_lib.variables_nest(learner_agent, learner_step))
    pull = WeightsSync(
        address, specs_lib.variables_nest(actor_agent, actor_step))

    def push_random(version):
      learner_step.assign(version)
      for variable in learner_agent.collect_policy.variables():
        variable.assign(tf.random.normal(variable.shape))
      push.push()
      return [v.numpy() for v in learner_agent.collect_policy.variables()]

    def held():
      return [v.numpy() for v in actor_agent.collect_policy.variables()]

    first = push_random(7)
    assert pull.pull() == 7 and int(actor_step.numpy()) == 7
    _assert_all_equal(held(), first)
    push_random(7)  # Same version: the weights held are taken as current.
    assert pull.pull() == 7
    _assert_all_equal(held(), first)
    newer = push_random(8)
    assert pull.pull() == 8 and int(actor_step.numpy()) == 8
    _assert_all_equal(held(), newer)
  finally:
    server.stop()


def _assert_all_equal(got, want):
  assert len(got) == len(want) == 6
  for g, w in zip(got, want):
    np.testing.assert_array_equal(g, w)
