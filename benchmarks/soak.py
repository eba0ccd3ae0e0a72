"""A long run under the launcher, watched: each process's memory and the
train rate over time, the run dir's growth, and how long the stop takes.

    .venv/bin/python -m benchmarks.soak --experiment=cartpole_dqn \
        --minutes=60 [--actors=2] [--root_dir=/tmp/soak]

Every --sample_every_s it reads each child's RSS (/proc) and the size of
each part of the run dir; the rates come from the learner's progress
records. It prints:
  - per process, the RSS after --warmup_minutes and at the end, and the
    slope of a least-squares line through the samples after warm-up
    (MB/h; a restarted process: its last run's samples);
  - the train steps/s (and env steps/s written) of the last
    --window_minutes over the first window after warm-up and after the
    replay table reached its largest size;
  - per part of the run dir, its size at the end and its slope after
    warm-up;
  - the seconds from the job's SIGTERM to the launcher's exit, and any
    child left.
The samples are in <root_dir>/soak.csv (seconds, name, pid, MB).
"""
import csv
import os
import signal
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

from absl import app
from absl import flags

from benchmarks import measure
from benchmarks.table import print_table
from benchmarks.targets import flagfile_path
from common import records

_EXPERIMENT = flags.DEFINE_string(
    'experiment', None, 'configs/<name>.flags, or the path of a flagfile.')
_MINUTES = flags.DEFINE_float('minutes', 60, 'Length of the run.')
_ACTORS = flags.DEFINE_integer('actors', 2, 'Collect actors.')
_WARMUP_MINUTES = flags.DEFINE_float(
    'warmup_minutes', 5, 'Samples before this are left out of the slopes.')
_WINDOW_MINUTES = flags.DEFINE_float(
    'window_minutes', 10, 'Length of the early and the late rate windows.')
_SAMPLE_EVERY_S = flags.DEFINE_float('sample_every_s', 30,
                                     'Seconds between samples.')
_ROOT_DIR = measure.define_root_dir('/tmp/soak')

Sample = Tuple[float, str, int, float]  # (seconds, name, pid, MB)


def flagfile() -> str:
  name = _EXPERIMENT.value
  return name if name.endswith('.flags') else flagfile_path(name)


def rss_mb(pid: int) -> Optional[float]:
  """The resident set of process `pid` in MB, or None if it is gone."""
  try:
    with open(f'/proc/{pid}/status') as f:
      for line in f:
        if line.startswith('VmRSS:'):
          return int(line.split()[1]) / 1024
  except OSError:
    pass
  return None


def dir_mb(path: str) -> float:
  """Bytes of the files under `path`, in MB."""
  total = 0
  for parent, _, files in os.walk(path):
    for name in files:
      try:
        total += os.lstat(os.path.join(parent, name)).st_size
      except OSError:
        pass  # Deleted (a pruned checkpoint) while walking.
  return total / 2**20


def run_dir_parts(root_dir: str) -> Dict[str, float]:
  """MB of each top-level entry of the run dir (files together)."""
  parts = {'files': 0.0}
  for entry in os.scandir(root_dir):
    if entry.is_dir(follow_symlinks=False):
      parts[entry.name + '/'] = dir_mb(entry.path)
    else:
      parts['files'] += entry.stat(follow_symlinks=False).st_size / 2**20
  return parts


def slope_per_hour(points: Sequence[Tuple[float, float]]) -> Optional[float]:
  """Least-squares slope of (seconds, value) points, per hour."""
  if len(points) < 3:
    return None
  n = len(points)
  mean_t = sum(t for t, _ in points) / n
  mean_v = sum(v for _, v in points) / n
  spread = sum((t - mean_t) ** 2 for t, _ in points)
  if not spread:
    return None
  return 3600 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def window_rates(progress: List[records.Record], start: float,
                 end: float) -> Optional[Tuple[float, float]]:
  """(train steps/s, env steps/s written) between epoch times start and end,
  from the learner's progress records in it; None with fewer than two."""
  inside = [r for r in progress if start <= r.time <= end]
  if len(inside) < 2:
    return None
  first, last = inside[0], inside[-1]
  train = (last['train_step'] - first['train_step']) / (last.time - first.time)
  inserts = [r['Reverb/inserts_per_sec'] for r in inside[1:]]
  return train, sum(inserts) / len(inserts)


def table_full_time(progress: List[records.Record]) -> Optional[float]:
  """When the replay table first held its largest size of the run."""
  if not progress:
    return None
  largest = max(r['Reverb/table_size'] for r in progress)
  return next(r.time for r in progress if r['Reverb/table_size'] >= largest)


def soak(root_dir: str) -> Tuple[List[Sample], float, float, List[str]]:
  """Runs the job for --minutes, sampling; (samples, launch epoch time,
  seconds from SIGTERM to the launcher's exit, children left)."""
  os.makedirs(root_dir, exist_ok=True)
  command = [sys.executable, '-m', 'deploy.launch_local',
             f'--flagfile={flagfile()}', f'--actors={_ACTORS.value}',
             '--max_train_steps=1000000000', f'--root_dir={root_dir}']
  samples = []
  launched_at = time.time()
  start = time.monotonic()
  end = start + 60 * _MINUTES.value
  with open(os.path.join(root_dir, 'launcher.out'), 'w') as out:
    launcher = subprocess.Popen(command, cwd=measure.PROJECT_ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
    children = {}
    while time.monotonic() < end:
      if launcher.poll() is not None:
        raise RuntimeError(f'the launcher exited ({launcher.returncode}); '
                           f'see {root_dir}/launcher.out')
      now = time.monotonic() - start
      children = measure.children_of(launcher.pid)
      for name, pid in sorted(children.items()):
        mb = rss_mb(pid)
        if mb is not None:
          samples.append((now, name, pid, mb))
      for part, mb in run_dir_parts(root_dir).items():
        samples.append((now, 'disk:' + part, 0, mb))
      time.sleep(max(0.0, min(_SAMPLE_EVERY_S.value,
                              end - time.monotonic())))
    stopped = time.monotonic()
    launcher.send_signal(signal.SIGTERM)
    launcher.wait()
    stop_s = time.monotonic() - stopped
  left = [name for name, pid in children.items()
          if os.path.exists(f'/proc/{pid}')]
  return samples, launched_at, stop_s, left


def memory_rows(samples: List[Sample], warmup_s: float):
  """Per process: RSS at warm-up's end and at the end, slope, runs."""
  for name in sorted({s[1] for s in samples if not s[1].startswith('disk:')}):
    own = [s for s in samples if s[1] == name]
    last_pid = own[-1][2]
    after = [(t, mb) for t, _, pid, mb in own
             if t >= warmup_s and pid == last_pid]
    slope = slope_per_hour(after)
    yield (name, f'{after[0][1]:.0f}' if after else '-', f'{own[-1][3]:.0f}',
           '-' if slope is None else f'{slope:+.1f}',
           len({s[2] for s in own}))


def disk_rows(samples: List[Sample], warmup_s: float):
  for name in sorted({s[1] for s in samples if s[1].startswith('disk:')}):
    own = [(t, mb) for t, n, _, mb in samples if n == name]
    slope = slope_per_hour([p for p in own if p[0] >= warmup_s])
    yield (name[len('disk:'):], f'{own[-1][1]:.1f}',
           '-' if slope is None else f'{slope:+.1f}')


def main(argv):
  del argv
  if not _EXPERIMENT.value:
    raise app.UsageError('--experiment is required')
  root_dir = _ROOT_DIR.value
  if os.path.exists(root_dir) and os.listdir(root_dir):
    raise app.UsageError(f'--root_dir={root_dir} is not empty')
  warmup_s = 60 * _WARMUP_MINUTES.value
  window_s = 60 * _WINDOW_MINUTES.value
  samples, launched_at, stop_s, left = soak(root_dir)
  with open(os.path.join(root_dir, 'soak.csv'), 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(('seconds', 'name', 'pid', 'MB'))
    writer.writerows((f'{t:.1f}', n, pid, f'{mb:.1f}')
                     for t, n, pid, mb in samples)
  print(f'{flagfile()}, {_ACTORS.value} actors, {_MINUTES.value:g} min; '
        f'slopes after {_WARMUP_MINUTES.value:g} min')
  print_table(('process', 'RSS after warm-up (MB)', 'RSS at the end (MB)',
               'slope (MB/h)', 'runs'), memory_rows(samples, warmup_s))

  progress = measure.progress_with(measure.learner_records(root_dir),
                                   'Reverb/table_size')
  full = table_full_time(progress)
  early_start = max(launched_at + warmup_s, full or 0)
  last = progress[-1].time if progress else launched_at
  early = window_rates(progress, early_start, early_start + window_s)
  late = window_rates(progress, last - window_s, last)
  if early and late and early_start + window_s <= last - window_s:
    print_table(('window', 'starts (min)', 'train steps/s',
                 'env steps/s written'),
                [('early', f'{(early_start - launched_at) / 60:.1f}',
                  f'{early[0]:.1f}', f'{early[1]:.0f}'),
                 ('late', f'{(last - window_s - launched_at) / 60:.1f}',
                  f'{late[0]:.1f}', f'{late[1]:.0f}'),
                 ('late / early', '', f'{late[0] / early[0]:.3f}',
                  f'{late[1] / early[1]:.3f}')])
  else:
    print('\nThe rate windows overlap (the table filled at '
          f'{((full or launched_at) - launched_at) / 60:.1f} min): '
          'run longer or shorten --window_minutes.')
  print_table(('run dir part', 'MB at the end', 'slope (MB/h)'),
              disk_rows(samples, warmup_s))
  print(f'\nSIGTERM to the launcher\'s exit: {stop_s:.1f} s; children left: '
        f'{", ".join(left) or "none"}')


if __name__ == '__main__':
  app.run(main)
