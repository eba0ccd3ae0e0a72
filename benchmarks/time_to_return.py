"""Wall seconds to the first greedy eval return of 200 on CartPole-v0: the
tutorials' single-process loop vs our topology with 1 and 2 actors.

    .venv/bin/python -m benchmarks.time_to_return [--seeds=1,2,3] \
        [--actors=1,2] [--timeout_s=900]

Every run is a fresh process timed from its launch to the return (the
tutorial loop, a child process of this module, times itself from the launch
time it is given; the topology's first eval result at 200), so imports and
start-up count on both sides. The tutorial loop is the benchmarks' one
baseline (benchmarks/tutorial.py: an in-process Reverb table, the random
initial steps, then per iteration 1 collect step and 1 train step) with
configs/cartpole_dqn.flags, evaluated (10 greedy episodes) every 1000
iterations. The topology is `deploy.launch_local --stop_at_return=200` with the
same flagfile. Medians over the seeds. The seconds to the
first train step come from the same runs: the tutorial loop's after its
random steps, the topology's the learner's first_train_step record.
"""
import math
import subprocess
import sys
import tempfile
import time
from typing import Optional

from absl import app
from absl import flags

from benchmarks import experiments
from benchmarks import measure
from benchmarks.experiments import PROJECT_ROOT
from benchmarks.table import print_table
from common import records
from common import run_dir

_SEEDS = flags.DEFINE_list('seeds', ['1', '2', '3'], 'Seeds per variant.')
_ACTORS = flags.DEFINE_list('actors', ['1', '2'], 'Topology actor counts.')
_TIMEOUT_S = flags.DEFINE_float('timeout_s', 900, 'Per run.')
_CHILD = measure.define_child()

_TARGET = 200.0
_MAX_ITERATIONS = 20000


def tutorial_loop(seed: int, launched: float) -> list:
  """The tutorials' loop (benchmarks/tutorial.py) with configs/cartpole_dqn:
  seconds from `launched` (epoch s) to its first train step and to eval
  reaching _TARGET (inf if never reached, in _MAX_ITERATIONS or
  --timeout_s)."""
  from benchmarks import tutorial  # pylint: disable=g-import-not-at-top
  config = experiments.load('cartpole_dqn', f'--seed={seed}')
  loop = tutorial.TutorialLoop(config, tempfile.mkdtemp())
  loop.collect_initial(config.replay.initial_collect_steps)
  seconds = [math.inf, math.inf]
  for iteration in range(1, _MAX_ITERATIONS + 1):
    loop.iteration()
    if iteration == 1:
      seconds[0] = time.time() - launched
    if iteration % config.train.eval_every_steps == 0:
      if loop.evaluate() >= _TARGET:
        seconds[1] = time.time() - launched
        break
      if time.time() - launched > _TIMEOUT_S.value:
        break
  loop.close()
  return seconds


def _run_tutorial(seed: int) -> list:
  """tutorial_loop in a fresh process, timed from before its launch."""
  return measure.in_child('benchmarks.time_to_return', [seed, time.time()],
                          [f'--timeout_s={_TIMEOUT_S.value}'])


def timed_launch(command, root_dir: str) -> list:
  """Seconds from launching `command` (a launcher job in `root_dir`) to the
  learner's first_train_step record and to the eval actor's first result at
  _TARGET (inf for those never reached); stops it once it has both."""
  launched = time.time()
  seconds = [math.inf, math.inf]
  with subprocess.Popen(command, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, cwd=PROJECT_ROOT) as process:
    try:
      while True:
        exited = process.poll() is not None
        if math.isinf(seconds[0]):
          seconds[0] = _since(launched, _first_train_step_time(root_dir))
        if math.isinf(seconds[1]):
          seconds[1] = _since(launched, _target_time(root_dir))
        if math.isfinite(seconds[1]) or exited or (
            time.time() - launched > _TIMEOUT_S.value):
          return seconds  # Unreached ones: the run ended or timed out.
        time.sleep(0.25)
    finally:
      process.terminate()
      process.wait()


def _first_train_step_time(root_dir: str) -> Optional[float]:
  first = [r for r in measure.learner_records(root_dir)
           if r.event == records.FIRST_TRAIN_STEP]
  return first[0].time if first else None


def _target_time(root_dir: str) -> Optional[float]:
  """When the eval actor wrote its first result at _TARGET (epoch s)."""
  rows = run_dir.read_eval_returns(run_dir.returns_csv_path(root_dir))
  return next((float(r['wall_time']) for r in rows
               if float(r['average_return']) >= _TARGET), None)


def _since(launched: float, at: Optional[float]) -> float:
  return math.inf if at is None else at - launched


def main(argv):
  del argv
  if measure.run_child(_CHILD, tutorial_loop):
    return
  # The tutorial loop times itself; the topology is timed by its records.
  variants = {'tutorial loop': _run_tutorial}
  for actors in map(int, _ACTORS.value):
    variants[f'topology, {actors} actor(s)'] = (
        lambda seed, actors=actors: _run_topology(seed, actors))
  seeds = list(map(int, _SEEDS.value))
  def report(name, seed_index, result):
    print(f'seed {seeds[seed_index]} {name}: first train step '
          f'{_seconds(result[0], 1)}, 200 at {_seconds(result[1])}',
          flush=True)
  runs = measure.alternate(  # Interleaved: noise hits all alike.
      list(variants), len(seeds),
      lambda name, seed_index: variants[name](seeds[seed_index]), report)
  first_steps = measure.medians(
      {name: [r[0] for r in rs] for name, rs in runs.items()})
  results = {name: [r[1] for r in rs] for name, rs in runs.items()}
  medians = measure.medians(results)
  tutorial = medians['tutorial loop']
  print_table(('variant', 'first train step (median)',
               'seconds to eval return 200 (per seed)', 'median',
               'vs tutorial loop'),
              ((name, _seconds(first_steps[name], 1),
                ', '.join(map(_seconds, seconds)),
                _seconds(medians[name]), f'{medians[name] / tutorial:.2f}')
               for name, seconds in results.items()))


def _run_topology(seed: int, actors: int) -> list:
  root_dir = tempfile.mkdtemp()
  return timed_launch(
      [sys.executable, '-m', 'deploy.launch_local',
       '--flagfile=configs/cartpole_dqn.flags', f'--actors={actors}',
       f'--stop_at_return={_TARGET:.0f}', f'--seed={seed}',
       f'--root_dir={root_dir}'], root_dir)


def _seconds(seconds: float, digits: int = 0) -> str:
  return f'{seconds:.{digits}f} s' if math.isfinite(seconds) else 'not reached'


if __name__ == '__main__':
  app.run(main)
