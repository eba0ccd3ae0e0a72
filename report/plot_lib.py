"""Average eval return vs train step and vs wall time, as a PNG."""
import dataclasses
import os
from typing import List, Sequence

import matplotlib
matplotlib.use('Agg')  # Headless: no display needed.
# pylint: disable=g-import-not-at-top,wrong-import-position
from matplotlib import pyplot as plt

from common.errors import UserError
from common.run_dir import read_eval_returns
from common.run_dir import read_start
from common.run_dir import returns_csv_path


class NoResultsError(UserError, ValueError):
  """A run has no eval results to plot."""


@dataclasses.dataclass(frozen=True)
class RunReturns:
  """One run's evaluations, in the order the eval actor wrote them."""
  label: str
  train_steps: List[int]
  seconds: List[float]  # Since the run started (else its first evaluation).
  returns: List[float]
  since_start: bool  # False: the run's start time was not recorded.


def read_run(root_dir: str, label: str = '') -> RunReturns:
  """The eval results of the run in `root_dir`."""
  path = returns_csv_path(root_dir)
  rows = read_eval_returns(path)
  if not rows:
    raise NoResultsError(
        f'no eval results in {path}: the eval actor writes them (the '
        f'launcher runs it unless --noeval); pass the root_dir of such a run')
  started = read_start(root_dir)
  start = float(rows[0]['wall_time']) if started is None else started
  return RunReturns(
      label=label or os.path.basename(os.path.normpath(root_dir)),
      train_steps=[int(r['train_step']) for r in rows],
      seconds=[float(r['wall_time']) - start for r in rows],
      returns=[float(r['average_return']) for r in rows],
      since_start=started is not None)


def plot_returns(runs: Sequence[RunReturns], out_path: str,
                 title: str = 'Average eval return') -> int:
  """Draws every run on two panels (by train step, by wall time); returns
  the number of points on the train-step panel."""
  figure, (by_step, by_time) = plt.subplots(1, 2, figsize=(10, 4),
                                            sharey=True)
  for run in runs:
    by_step.plot(run.train_steps, run.returns, marker='.', label=run.label)
    by_time.plot(run.seconds, run.returns, marker='.', label=run.label)
  by_step.set_xlabel('train step')
  by_step.set_ylabel('average return')
  by_time.set_xlabel('seconds since the run started'
                     if all(run.since_start for run in runs)
                     else 'seconds since the first evaluation')
  for axes in (by_step, by_time):
    axes.grid(alpha=0.3)
  if len(runs) > 1:
    by_step.legend()
  figure.suptitle(title)
  figure.tight_layout()
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  figure.savefig(out_path, dpi=80)
  points = sum(len(line.get_xdata()) for line in by_step.get_lines())
  plt.close(figure)
  return points
