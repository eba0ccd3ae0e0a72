"""SAC Minitaur train steps/s: the SAC tutorial's loop vs our topology, both
at one train step per env step.

    .venv/bin/python -m benchmarks.sac_minitaur [--seconds=60] [--rounds=2]

The tutorial loop (a child process of this module) is
benchmarks/tutorial.py's: one process, collecting 1 step and training 1
step per iteration. The topology is `deploy.launch_local` with
configs/minitaur_sac.flags and 2 collect actors plus the eval actor, whose
rate limiter keeps the same 1:1 ratio. Both start with --initial_steps
random steps instead of the tutorial's 10000 (this measures speed, not
learning), and both are measured over the same --seconds once
--warmup_seconds of training have passed. The tutorial's own evaluations
(every 10000 iterations) are left out of its loop; the topology's eval
actor runs beside training as it does in production. Fresh processes,
alternating rounds, medians.
"""
import signal
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import portpicker

from benchmarks import experiments
from benchmarks import measure
from benchmarks.experiments import PROJECT_ROOT
from benchmarks.table import print_table

_SECONDS = measure.define_seconds(60)
_WARMUP_SECONDS = flags.DEFINE_float(
    'warmup_seconds', 15, 'Training before the measurement starts.')
_ROUNDS = measure.define_rounds(2)
_ACTORS = flags.DEFINE_integer('actors', 2, 'Topology collect actors.')
_INITIAL_STEPS = flags.DEFINE_integer(
    'initial_steps', 1000, 'Random steps before training, both sides.')
_CHILD = measure.define_child()


def tutorial_loop(seconds: float) -> float:
  """The SAC Minitaur tutorial's loop; its iterations/s."""
  from benchmarks import tutorial  # pylint: disable=g-import-not-at-top
  loop = tutorial.TutorialLoop(experiments.load('minitaur_sac'),
                                   tempfile.mkdtemp())
  loop.collect_initial(_INITIAL_STEPS.value)
  start = time.monotonic()
  measured_from = None
  while True:
    step = loop.iteration()
    now = time.monotonic()
    if measured_from is None and now - start >= _WARMUP_SECONDS.value:
      measured_from, first = now, step
    elif measured_from is not None and now - measured_from >= seconds:
      rate = (step - first) / (now - measured_from)
      break
  loop.close()
  return rate


def run_tutorial() -> float:
  """tutorial_loop in a fresh process."""
  return measure.in_child('benchmarks.sac_minitaur', [_SECONDS.value],
                          [f'--warmup_seconds={_WARMUP_SECONDS.value}',
                           f'--initial_steps={_INITIAL_STEPS.value}'])


def run_topology() -> tuple:
  """(train steps/s, the learner's last recorded data wait)."""
  # pylint: disable=g-import-not-at-top
  from common.connection import connect
  from common.tables import learner_train_step
  # pylint: enable=g-import-not-at-top
  root = tempfile.mkdtemp()
  port = portpicker.pick_unused_port()
  launcher = subprocess.Popen(
      [sys.executable, '-m', 'deploy.launch_local',
       '--flagfile=configs/minitaur_sac.flags', f'--actors={_ACTORS.value}',
       f'--initial_collect_steps={_INITIAL_STEPS.value}',
       '--max_train_steps=10000000', f'--port={port}', f'--root_dir={root}'],
      cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    client = connect(f'localhost:{port}', timeout_s=120)
    while not learner_train_step(client):
      if launcher.poll() is not None:
        raise RuntimeError(f'the launcher exited; logs in {root}/logs')
      time.sleep(0.5)
    time.sleep(_WARMUP_SECONDS.value)
    rate = _push_rate(lambda: learner_train_step(client),
                      _SECONDS.value)
  finally:
    launcher.send_signal(signal.SIGTERM)
    launcher.wait()
  waits = measure.progress_with(measure.learner_records(root),
                                'Learner/data_wait_fraction')
  return rate, (f'{100 * waits[-1]["Learner/data_wait_fraction"]:.0f}%'
                if waits else '-')


def _push_rate(train_step, seconds: float) -> float:
  """Train steps/s between the first and the last weights push seen in
  `seconds` (the server's train_step moves only at a push)."""
  pushes = []
  deadline = time.monotonic() + seconds
  last = train_step()
  while time.monotonic() < deadline:
    time.sleep(0.2)
    step = train_step()
    if step != last:
      pushes.append((time.monotonic(), step))
      last = step
  if len(pushes) < 2:
    raise RuntimeError(f'fewer than 2 weights pushes in {seconds:.0f}s')
  (start, first), (end, final) = pushes[0], pushes[-1]
  return (final - first) / (end - start)


def main(argv):
  del argv
  if measure.run_child(_CHILD, tutorial_loop):
    return
  runs = {'tutorial': run_tutorial, 'topology': run_topology}
  def report(variant, round_index, result):
    if variant == 'tutorial':
      print(f'round {round_index + 1}: tutorial loop {result:.1f} '
            'iterations/s', flush=True)
    else:
      print(f'round {round_index + 1}: topology {result[0]:.1f} train '
            f'steps/s (learner data wait {result[1]})', flush=True)
  results = measure.alternate(list(runs), _ROUNDS.value,
                              lambda variant, _: runs[variant](), report)
  tutorial = results['tutorial']
  topology = [rate for rate, _ in results['topology']]
  waits = [wait for _, wait in results['topology']]
  median = measure.medians({'tutorial': tutorial, 'topology': topology})
  median_tutorial, median_topology = median['tutorial'], median['topology']
  print_table(
      ('variant', 'per round', 'median', 'vs tutorial loop'),
      [('tutorial loop (iterations/s)', ', '.join(f'{r:.1f}' for r in tutorial),
        f'{median_tutorial:.1f}', '1.00'),
       (f'topology, {_ACTORS.value} actors + eval (train steps/s; learner '
        f'data wait {", ".join(waits)})',
        ', '.join(f'{r:.1f}' for r in topology), f'{median_topology:.1f}',
        f'{median_topology / median_tutorial:.2f}')])


if __name__ == '__main__':
  app.run(main)
