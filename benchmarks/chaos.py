"""Chaos run: the CartPole experiment under the launcher while a random child
is killed (kill -9) every 20-40 s, then left to finish.

    .venv/bin/python -m benchmarks.chaos --root_dir=/tmp/chaos \
        [--chaos_s=300] [--max_train_steps=250000] [--seed=0]

Once training runs, kills go round the kinds reverb_server, learner, actor
(a random one) and eval in a random order each round, so every kind is
killed once per round, for --chaos_s seconds from the first kill.
A Reverb client watches the server's counters every 0.25 s. Printed: each
kill with the seconds until training and inserts advanced again, the train
steps lost (a killed learner restores its last checkpoint), the replay items
lost at a server kill (inserts before the kill vs after the restore, also
as seconds of collection, against the experiment's checkpoint period); then
kills and restarts per kind, and whether eval still reached 200.
"""
import dataclasses
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from typing import List, Optional

from absl import app
from absl import flags

from benchmarks import experiments
from benchmarks import measure
from benchmarks.table import print_table
from common import cli
from common import ports
from common import records
from common.tables import learner_train_step
from common import run_dir
from common import shutdown
from common.config import REPLAY_TABLE

_ROOT_DIR = measure.define_root_dir('/tmp/chaos',
                                    'The run goes here (emptied first).')
_CHAOS_S = flags.DEFINE_float('chaos_s', 300, 'Seconds from the first kill '
                              'to the last.')
_MIN_GAP_S = flags.DEFINE_float('min_gap_s', 20, 'Shortest gap between kills.')
_MAX_GAP_S = flags.DEFINE_float('max_gap_s', 40, 'Longest gap between kills.')
_MAX_TRAIN_STEPS = flags.DEFINE_integer(
    'max_train_steps', 250000,
    'The run\'s length: enough to outlast the kills.')
_ACTORS = flags.DEFINE_integer('actors', 2, 'Collect actors.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seeds the experiment and the kills.')
_FINISH_TIMEOUT_S = flags.DEFINE_float(
    'finish_timeout_s', 1200, 'How long the run may take after the kills.')

_FLAGFILE = os.path.join(experiments.PROJECT_ROOT, 'configs',
                         'cartpole_dqn.flags')
_KINDS = ('reverb_server', 'learner', 'actor', 'eval')
_POLL_S = 0.25


@dataclasses.dataclass(frozen=True)
class Observation:
  time: float
  train_step: int
  inserts: int


@dataclasses.dataclass
class Kill:
  child: str
  time: float
  before: Observation
  train_recovered_s: Optional[float] = None
  inserts_recovered_s: Optional[float] = None
  steps_lost: Optional[int] = None
  items_lost: Optional[int] = None

  @property
  def kind(self) -> str:
    return 'actor' if self.child.startswith('actor_') else self.child


class Watcher:
  """Polls the server's train_step and insert count while it answers."""

  def __init__(self, address: str):
    self._address = address
    self.observations: List[Observation] = []
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)
    self._thread.start()

  def _run(self) -> None:
    import reverb  # pylint: disable=g-import-not-at-top
    client = reverb.Client(self._address)
    host, port = self._address.split(':')
    while not self._stop.wait(_POLL_S):
      if not ports.listening(host, int(port)):
        continue
      try:
        table = client.server_info(timeout=2)[REPLAY_TABLE]
        step = learner_train_step(client)
      except Exception:  # pylint: disable=broad-except
        continue  # Went away during the call.
      self.observations.append(Observation(
          time.monotonic(), step or 0,
          table.rate_limiter_info.insert_stats.completed))

  def latest(self) -> Optional[Observation]:
    return self.observations[-1] if self.observations else None

  def stop(self) -> None:
    self._stop.set()
    self._thread.join()


def analyse(kill: Kill, after: List[Observation]) -> None:
  """Fills in the kill's recovery and losses from the observations between
  it and the next kill."""
  low_step = low_inserts = None
  for obs in after:
    if kill.train_recovered_s is None and low_step is not None and (
        obs.train_step > low_step):
      kill.train_recovered_s = obs.time - kill.time
      # A restarted learner pushes the step it restored first (the lowest
      # seen); otherwise the learner kept its state.
      reached = low_step if kill.kind == 'learner' else obs.train_step
      kill.steps_lost = max(kill.before.train_step - reached, 0)
    if kill.inserts_recovered_s is None and low_inserts is not None and (
        obs.inserts > low_inserts):
      kill.inserts_recovered_s = obs.time - kill.time
    if kill.kind == 'reverb_server' and kill.items_lost is None:
      # The first answer after the restart: the restored counts.
      kill.items_lost = max(kill.before.inserts - obs.inserts, 0)
    low_step = obs.train_step if low_step is None else min(low_step,
                                                           obs.train_step)
    low_inserts = obs.inserts if low_inserts is None else min(low_inserts,
                                                              obs.inserts)


def _rate(observations: List[Observation], until: float) -> float:
  """Inserts per second in the 10 s before `until`."""
  window = [o for o in observations if until - 10 <= o.time < until]
  if len(window) < 2 or window[-1].time <= window[0].time:
    return 0.0
  return (window[-1].inserts - window[0].inserts) / (
      window[-1].time - window[0].time)


def _seconds(value: Optional[float]) -> str:
  return '-' if value is None else f'{value:.1f}'


def main(argv):
  del argv
  root_dir = _ROOT_DIR.value
  if os.path.exists(root_dir):
    subprocess.run(['rm', '-rf', root_dir], check=True)
  config = cli.parse_experiment([f'--flagfile={_FLAGFILE}'])
  port = ports.free_port()
  command = [sys.executable, '-m', 'deploy.launch_local',
             f'--flagfile={_FLAGFILE}', f'--root_dir={root_dir}',
             f'--max_train_steps={_MAX_TRAIN_STEPS.value}',
             f'--seed={_SEED.value}', f'--actors={_ACTORS.value}',
             f'--port={port}', '--progress_every_s=10']
  print(' '.join(command), flush=True)
  os.makedirs(root_dir)
  with open(os.path.join(root_dir, 'launcher.out'), 'w') as out:
    launcher = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                cwd=experiments.PROJECT_ROOT,
                                preexec_fn=shutdown.stop_with_parent())
  launched = time.monotonic()
  watcher = Watcher(f'localhost:{port}')
  rng = random.Random(_SEED.value)
  kills: List[Kill] = []
  while launcher.poll() is None and not (
      watcher.latest() and watcher.latest().train_step > 0):
    time.sleep(0.5)
  round_ = []
  next_kill = time.monotonic() + rng.uniform(_MIN_GAP_S.value,
                                             _MAX_GAP_S.value)
  chaos_end = next_kill + _CHAOS_S.value
  while launcher.poll() is None and time.monotonic() < chaos_end:
    if time.monotonic() < next_kill:
      time.sleep(0.2)
      continue
    if not round_:
      round_ = rng.sample(_KINDS, len(_KINDS))
    kind = round_.pop()
    live = measure.children_of(launcher.pid)
    names = sorted(n for n in live if n == kind or (
        kind == 'actor' and n.startswith('actor_')))
    if not names:
      round_.insert(0, kind)  # Restarting: kill it later in the round.
      next_kill = time.monotonic() + 1
      continue
    name = rng.choice(names)
    before = watcher.latest()
    os.kill(live[name], 9)
    kills.append(Kill(name, time.monotonic(), before))
    print(f'[{time.monotonic() - launched:5.0f}s] killed {name} (pid '
          f'{live[name]}) at train_step {before.train_step}', flush=True)
    next_kill = time.monotonic() + rng.uniform(_MIN_GAP_S.value,
                                               _MAX_GAP_S.value)
  chaos_over = time.monotonic()
  print(f'[{chaos_over - launched:5.0f}s] kills over; waiting for the run to '
        f'finish', flush=True)
  try:
    code = launcher.wait(_FINISH_TIMEOUT_S.value)
  except subprocess.TimeoutExpired:
    launcher.terminate()
    code = f'{launcher.wait()} (did not finish in time: stopped)'
  watcher.stop()
  _report(root_dir, config, kills, watcher.observations, launched,
          chaos_over, code)


def _report(root_dir, config, kills, observations, launched, chaos_over,
            code) -> None:
  ends = [k.time for k in kills[1:]] + [float('inf')]
  rows = []
  for kill, end in zip(kills, ends):
    analyse(kill, [o for o in observations if kill.time < o.time < end])
    rate = _rate(observations, kill.time)
    lost_s = (f'{kill.items_lost / rate:.1f}' if kill.items_lost is not None
              and rate else '-')
    rows.append([f'{kill.time - launched:.0f}', kill.child,
                 kill.before.train_step, _seconds(kill.train_recovered_s),
                 _seconds(kill.inserts_recovered_s),
                 '-' if kill.steps_lost is None else kill.steps_lost,
                 '-' if kill.items_lost is None else kill.items_lost, lost_s])
  print(f'\nKills (replay checkpoint every '
        f'{config.replay.checkpoint_every_s:.0f}s, learner checkpoint every '
        f'{config.train.checkpoint_every_steps} train steps):')
  print_table(['t (s)', 'killed', 'train_step', 'train again (s)',
               'inserts again (s)', 'train steps lost', 'items lost',
               'items lost (s of collection)'], rows)

  restarts = [r['process'] for r in
              measure.launcher_records(root_dir, records.RESTARTED)]
  summary = []
  for kind in _KINDS:
    mine = [k for k in kills if k.kind == kind]
    recovered = [k.train_recovered_s for k in mine
                 if k.train_recovered_s is not None]
    summary.append([
        kind, len(mine),
        sum(1 for r in restarts if r == kind or (
            kind == 'actor' and r.startswith('actor_'))),
        _seconds(statistics.median(recovered) if recovered else None),
        _seconds(max(recovered) if recovered else None),
        sum(k.steps_lost or 0 for k in mine)])
  print('\nPer kind:')
  print_table(['kind', 'kills', 'restarts', 'train again, median (s)',
               'max (s)', 'train steps lost'], summary)

  rows = run_dir.read_eval_returns(run_dir.returns_csv_path(root_dir))
  reached = [r for r in rows if float(r['average_return']) >= 200]
  after = [r for r in reached
           if float(r['wall_time']) >= _wall_time(chaos_over)]
  final = observations[-1] if observations else None
  print(f'\nLauncher exit code {code}; last train_step seen '
        f'{final.train_step if final else "-"}; checkpoints of the replay '
        f'took {_checkpoint_times(root_dir)}')
  print(f'Eval: reached 200 first at train step '
        f'{reached[0]["train_step"] if reached else "never"}; '
        f'{len(reached)} of {len(rows)} evaluations at 200, {len(after)} of '
        f'them after the kills; last return '
        f'{rows[-1]["average_return"] if rows else "-"}')


def _wall_time(monotonic_time: float) -> float:
  return time.time() - (time.monotonic() - monotonic_time)


def _checkpoint_times(root_dir: str) -> str:
  """Median and max seconds of the server's periodic checkpoints."""
  times = [r['seconds'] for r in records.read(
      run_dir.records_path(root_dir, records.REVERB_SERVER),
      records.CHECKPOINTED) if r['periodic']]
  if not times:
    return '- (none)'
  return (f'{statistics.median(times):.1f}s median, {max(times):.1f}s max '
          f'({len(times)})')


if __name__ == '__main__':
  app.run(main)
