"""A learner's measurement on a Reverb table filled in advance: random
transitions, packed as actors pack them, so sampling never waits for
actors (benchmarks.learner_throughput, benchmarks.replicas)."""
import time

import numpy as np
import reverb
import tensorflow as tf
from tf_agents.specs import tensor_spec

from common.config import REPLAY_TABLE
from common.replay_layout import ReplayLayout
from common.replay_layout import STEP_COLUMN


def fill(address: str, layout: ReplayLayout, items: int) -> None:
  """Random transitions of the collect data spec (floats in [-1, 1]:
  unbounded specs would sample values that overflow the loss), packed."""
  def bounded(tensor):
    value = tensor.numpy()
    if np.issubdtype(value.dtype, np.floating):
      return np.random.uniform(-1, 1, value.shape).astype(value.dtype)
    return value
  steps = [layout.pack(tf.nest.map_structure(
      bounded, tensor_spec.sample_spec_nest(layout.data_spec, outer_dims=())))
           for _ in range(500)]
  length = layout.sequence_length
  with reverb.Client(address).trajectory_writer(
      num_keep_alive_refs=length) as w:
    for i in range(items + length - 1):
      w.append({STEP_COLUMN: steps[i % len(steps)]})
      if i >= length - 1:
        w.create_item(REPLAY_TABLE, 1.0,
                      {STEP_COLUMN: w.history[STEP_COLUMN][-length:]})
      if i % 1000 == 0:
        w.flush()


def reverb_steps_per_sec(learner, iterator, iterations: int, seconds: float):
  """The learner's train steps/s over `seconds` of `iterations` per call,
  and the fraction of that time it waited for data."""
  waited = float(iterator.waited_s.numpy())
  first, start = learner.train_step_numpy, time.monotonic()
  while time.monotonic() - start < seconds:
    learner.run(iterations=iterations, iterator=iterator)
  elapsed = time.monotonic() - start
  return ((learner.train_step_numpy - first) / elapsed,
          (float(iterator.waited_s.numpy()) - waited) / elapsed)
