"""The return each shipped experiment states it reaches, read from the
comment line in its flagfile:
    # Target: eval return >= R within N train steps.
"""
import dataclasses
import os
import re
from typing import Optional, Tuple

from benchmarks.experiments import PROJECT_ROOT
from common import run_dir

SHIPPED = ('cartpole_dqn', 'cartpole_dqn_per', 'acrobot_dqn', 'pendulum_sac',
           'halfcheetah_sac', 'minitaur_sac', 'cartpole_ppo', 'pendulum_ppo',
           'halfcheetah_v5_sac', 'hopper_v5_sac', 'lunarlander_dqn',
           'hopper_v5_ppo')
TARGET_LINE = re.compile(
    r'^# Target: eval return >= (-?[\d.]+) within (\d+) train steps\.$',
    re.MULTILINE)


@dataclasses.dataclass(frozen=True)
class Target:
  average_return: float
  train_steps: int


def flagfile_path(name: str) -> str:
  return os.path.join(PROJECT_ROOT, 'configs', f'{name}.flags')


def read_target(name: str) -> Optional[Target]:
  """The target configs/<name>.flags states, if it states one."""
  with open(flagfile_path(name)) as f:
    match = TARGET_LINE.search(f.read())
  return match and Target(float(match.group(1)), int(match.group(2)))


def first_reached(root: str, target: Target) -> Optional[Tuple[int, float]]:
  """The run in `root`'s first evaluation at or above the target return
  within its train steps: (train step, seconds after launch)."""
  rows = run_dir.read_eval_returns(run_dir.returns_csv_path(root))
  reached = next((r for r in rows
                  if float(r['average_return']) >= target.average_return
                  and int(r['train_step']) <= target.train_steps), None)
  if reached is None:
    return None
  return (int(reached['train_step']),
          float(reached['wall_time']) - run_dir.read_start(root))
