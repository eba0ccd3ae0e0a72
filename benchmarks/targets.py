"""The return each shipped experiment states it reaches, read from the
comment line in its flagfile:
    # Target: eval return >= R within N train steps.
"""
import dataclasses
import os
import re
from typing import Optional

from benchmarks.experiments import PROJECT_ROOT

SHIPPED = ('cartpole_dqn', 'acrobot_dqn', 'pendulum_sac', 'halfcheetah_sac',
           'minitaur_sac')
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
