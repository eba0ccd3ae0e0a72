"""The TF-Agents tutorials' training loop, in one process: the benchmarks'
one baseline, for DQN and SAC alike.

Written from the TF-Agents Actor-Learner tutorial loop (the SAC Minitaur
tutorial; the DQN example dqn_train_eval.py is the same loop): an in-process
Reverb table (uniform, FIFO, MinSize(1) limiter), TF-Agents' replay dataset
of 2-step items with prefetch(50), a random-policy Actor for the initial
steps, then an Actor that collects 1 step and a Learner that trains 1 step
per iteration, and a greedy eval Actor. The agent comes from our agent
builder with the experiment's config, seeded as our learner seeds it.
"""
import os
from typing import Optional

# pylint: disable=g-import-not-at-top
import reverb
import tensorflow as tf
from tf_agents.metrics import py_metrics
from tf_agents.policies import py_tf_eager_policy
from tf_agents.policies import random_py_policy
from tf_agents.replay_buffers import reverb_replay_buffer
from tf_agents.replay_buffers import reverb_utils
from tf_agents.train import actor
from tf_agents.train import learner
from tf_agents.train import triggers

from actor.evaluate import EVAL_SEED_OFFSET
from actor.evaluate import append_result
from common import agents
from common import envs
from common.config import ExperimentConfig
from common.run_dir import returns_csv_path
# pylint: enable=g-import-not-at-top

_TABLE = 'uniform_table'


class TutorialLoop:
  """The tutorial's objects, built from `config`; results under root_dir."""

  def __init__(self, config: ExperimentConfig, root_dir: str,
               policy_save_every_steps: Optional[int] = None):
    tf.keras.utils.set_random_seed(config.seed)
    self.root_dir = root_dir
    self.collect_env = envs.load_env(config.env, seed=config.seed)
    self.eval_env = envs.load_env(config.env,
                                  seed=config.seed + EVAL_SEED_OFFSET)
    self.agent, self.train_step = agents.make_agent(config, self.collect_env)
    table = reverb.Table(
        _TABLE, max_size=config.replay.capacity,
        sampler=reverb.selectors.Uniform(), remover=reverb.selectors.Fifo(),
        rate_limiter=reverb.rate_limiters.MinSize(1))
    self.server = reverb.Server([table])
    replay = reverb_replay_buffer.ReverbReplayBuffer(
        self.agent.collect_data_spec, sequence_length=2, table_name=_TABLE,
        local_server=self.server)
    dataset = replay.as_dataset(sample_batch_size=config.agent.batch_size,
                                num_steps=2).prefetch(50)
    self.observer = reverb_utils.ReverbAddTrajectoryObserver(
        replay.py_client, _TABLE, sequence_length=2, stride_length=1)
    self.env_steps = py_metrics.EnvironmentSteps()
    self.collect_actor = actor.Actor(
        self.collect_env,
        py_tf_eager_policy.PyTFEagerPolicy(self.agent.collect_policy,
                                           use_tf_function=True),
        self.train_step, steps_per_run=1, metrics=actor.collect_metrics(10),
        summary_dir=os.path.join(root_dir, learner.TRAIN_DIR),
        observers=[self.observer, self.env_steps])
    self.eval_episodes = config.train.eval_episodes
    self.eval_actor = actor.Actor(
        self.eval_env,
        py_tf_eager_policy.PyTFEagerPolicy(self.agent.policy,
                                           use_tf_function=True),
        self.train_step, episodes_per_run=self.eval_episodes,
        metrics=actor.eval_metrics(self.eval_episodes),
        summary_dir=os.path.join(root_dir, 'eval'))
    learning_triggers = []
    if policy_save_every_steps:
      learning_triggers.append(triggers.PolicySavedModelTrigger(
          os.path.join(root_dir, learner.POLICY_SAVED_MODEL_DIR), self.agent,
          self.train_step, interval=policy_save_every_steps))
    self.learner = learner.Learner(root_dir, self.train_step, self.agent,
                                   lambda: dataset, triggers=learning_triggers)

  def collect_initial(self, steps: int) -> None:
    """`steps` random-policy steps into the table."""
    actor.Actor(self.collect_env, random_py_policy.RandomPyPolicy(
        self.collect_env.time_step_spec(), self.collect_env.action_spec()),
                self.train_step, steps_per_run=steps,
                observers=[self.observer]).run()

  def iteration(self) -> int:
    """Collect 1 step, train 1 step; the train step reached."""
    self.collect_actor.run()
    self.learner.run(iterations=1)
    return self.learner.train_step_numpy

  def evaluate(self) -> float:
    """eval_episodes greedy episodes; appends a row to the run's returns
    CSV (the eval actor's format) and returns the average return."""
    self.eval_actor.run()
    results = {m.name: float(m.result()) for m in self.eval_actor.metrics}
    self.eval_actor.write_metric_summaries()
    append_result(returns_csv_path(self.root_dir),
                  self.learner.train_step_numpy, results)
    return results['AverageReturn']

  def close(self) -> None:
    self.observer.close()
    self.server.stop()
