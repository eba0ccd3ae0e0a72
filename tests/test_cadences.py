"""When the learner pushes weights and the eval actor evaluates, in process."""
from actor.evaluate import eval_due
from algorithms.experience_replay import steps_to_next_push
from common import config as cfg


def test_pushes_land_on_multiples_of_the_push_period_and_on_the_last_step():
  train = cfg.TrainConfig(max_train_steps=250, push_every_steps=100)
  # The learner's first train step runs alone, then the loop.
  step, pushes = 1, []
  while step < train.max_train_steps:
    step += steps_to_next_push(step, train)
    pushes.append(step)
  assert pushes == [100, 200, 250]
  assert steps_to_next_push(100, train) == 100
  assert steps_to_next_push(240, train) == 10


def test_eval_takes_the_first_weights_then_every_period_and_the_last():
  evaluated, last = [], None
  for version in (0, 10, 600, 999, 1000, 1000, 1500, 2100, 2500):
    if eval_due(version, last, every=1000, max_steps=2500):
      evaluated.append(version)
      last = version
  assert evaluated == [0, 1000, 2100, 2500]


def test_eval_every_zero_takes_every_new_version():
  assert eval_due(5, last_evaluated=4, every=0, max_steps=100)
  assert not eval_due(4, last_evaluated=4, every=0, max_steps=100)
