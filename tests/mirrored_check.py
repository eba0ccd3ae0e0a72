"""python -m tests.mirrored_check --flagfile=<experiment>

Trains the experiment's agent for a few steps under MirroredStrategy on 2
logical CPU devices, each replica on different random experience, then
checks that every variable holds the same values on both replicas and that
the weights the learner pushes through WeightsSync to a real server, as an
actor pulls them into a one-device agent, are those values. For DQN (deterministic
train steps), the same steps on one device over the global batch (both
replicas' experience) must give the same weights. Prints one line per
check; exits non-zero on a mismatch. A separate process: the logical
devices must be set before TensorFlow initialises its devices.
"""
from common import cli
from common import quiet
quiet.import_tensorflow()

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import reverb
import tensorflow as tf
from tf_agents.specs import tensor_spec

from common import agents
from common import envs
from common import specs as specs_lib
from common import tables
from common.config import StrategySettings
from common.weights import WeightsSync
from learner.strategy import make_strategy

cli.define_experiment_flags()
_TRAIN_STEPS = 3


def main():
  config = cli.experiment_config()
  strategy = make_strategy(StrategySettings('mirrored', cpu_replicas=2), 1)
  # Seeded weights, as the learner's: the same check every run (unseeded,
  # a CI run had one weight of 100 off by 1.3e-6, see below).
  tf.keras.utils.set_random_seed(config.seed)
  env = envs.load_env(config.env, seed=config.seed)
  with strategy.scope():
    agent, train_step = agents.make_agent(config, env)
  one_device, one_device_step = agents.make_agent(config, env)
  for source, target in zip(agent.variables, one_device.variables):
    target.assign(source.values[0])
  per_replica = config.agent.batch_size // strategy.num_replicas_in_sync

  def random_steps(seed):
    """Random steps (floats standard normal: the specs' own bounds reach
    3e38)."""
    sample = tensor_spec.sample_spec_nest(
        agent.collect_data_spec, outer_dims=(per_replica, 2), seed=seed)
    return tf.nest.map_structure(
        lambda t: tf.random.stateless_normal(t.shape, [seed, 0], dtype=t.dtype)
        if t.dtype.is_floating else t, sample)

  # Drawn once: other ones on each replica and step, the same for both runs.
  experience = [[random_steps(1 + replica + 10 * step) for replica in (0, 1)]
                for step in range(_TRAIN_STEPS)]
  losses = []  # (replicas' loss summed as the Learner does, one device's)
  for replicas in experience:
    per_replica_loss = strategy.run(agent.train, args=(
        strategy.experimental_distribute_values_from_function(
            lambda context, r=replicas: r[context.replica_id_in_sync_group]),))
    losses.append((
        strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_loss.loss,
                        axis=None).numpy(),
        one_device.train(tf.nest.map_structure(
            lambda *parts: tf.concat(parts, axis=0), *replicas)).loss.numpy()))
  variables = agent.variables if hasattr(agent, 'variables') else []
  checked = 0
  for variable in tf.nest.flatten(agent.collect_policy.variables()) + list(
      variables):
    copies = [v.numpy() for v in variable.values]
    assert len(copies) == 2, variable.name
    assert all(np.array_equal(copies[0], c) for c in copies[1:]), (
        f'{variable.name} differs between replicas')
    checked += 1
  print(f'replicas identical: {checked} variables after {_TRAIN_STEPS} '
        f'train steps on different data', flush=True)
  pushed = _push_and_pull(config, env, agent, train_step)
  for value, variable in zip(
      tf.nest.flatten(pushed),
      tf.nest.flatten(specs_lib.variables_nest(agent, train_step))):
    for replica in variable.values:
      np.testing.assert_array_equal(value, replica.numpy(),
                                    err_msg=variable.name)
  assert int(pushed[specs_lib.TRAIN_STEP_KEY]) == _TRAIN_STEPS
  print('pulled weights: every replica\'s values, train_step '
        f'{int(pushed[specs_lib.TRAIN_STEP_KEY])}', flush=True)
  if config.agent.kind == 'dqn':
    largest = 0.0
    for value, single in zip(tf.nest.flatten(pushed), tf.nest.flatten(
        specs_lib.variables_nest(one_device, one_device_step))):
      largest = max(largest, float(np.max(np.abs(value - single.numpy()))))
      # The replicas' summed gradients differ from one device's in the
      # float32 rounding of another summation order; Adam divides each by
      # its own running scale, which magnifies the difference where a
      # gradient is near 0 (an absolute 1e-6 was exceeded once).
      np.testing.assert_allclose(value, single.numpy(), rtol=1e-4, atol=1e-5,
                                 err_msg=single.name)
    # The weights alone would not show a loss scaled per replica: Adam's
    # steps barely depend on the gradient's scale. The losses do.
    np.testing.assert_allclose(*zip(*losses), rtol=1e-4)
    print(f'one device on the global batch: the same losses and weights '
          f'after {_TRAIN_STEPS} train steps (largest difference '
          f'{largest:.1e})', flush=True)


def _push_and_pull(config, env, agent, train_step):
  """The learner's push of `agent`'s mirrored variables through WeightsSync
  to a real server, pulled as an actor does into a new one-device agent:
  the pulled values."""
  specs = specs_lib.specs_of(config, agent, train_step)
  server = reverb.Server([tables.variables_table(specs)])
  address = f'localhost:{server.port}'
  try:
    WeightsSync(address, specs_lib.variables_nest(agent, train_step)).push()
    actor_agent, actor_step = agents.make_agent(config, env)
    pulled = specs_lib.variables_nest(actor_agent, actor_step)
    WeightsSync(address, pulled).pull()
    return tf.nest.map_structure(lambda v: v.numpy(), pulled)
  finally:
    server.stop()


if __name__ == '__main__':
  cli.run('mirrored_check', main)
