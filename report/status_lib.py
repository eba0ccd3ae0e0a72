"""One screen on a job: is the server up, are data and train steps moving."""
import glob
import os
import re
import time
from typing import List, Optional, Tuple

import reverb

from common import progress
from common import run_dir
from common import tables
from common.reverb_calls import SERVER_AWAY_ERRORS


def status_lines(address: Optional[str], root_dir: Optional[str],
                 interval_s: float = 2.0) -> Tuple[List[str], bool]:
  """Two looks at the job `interval_s` apart, as lines with the rates
  between them; and whether the server (if given) answered."""
  lines, answered = [], True
  if address:
    client = reverb.Client(address)
    try:
      client.server_info(timeout=5)
      lines += _server_lines(client, address, interval_s)
    except SERVER_AWAY_ERRORS as e:
      lines.append(f'Reverb server {address}: NOT ANSWERING ({e})')
      answered = False
  if root_dir:
    lines += _root_dir_lines(root_dir)
  return lines, answered


def _server_lines(client, address, interval_s) -> List[str]:
  first = progress.take_snapshot(client)
  time.sleep(interval_s)
  last = progress.take_snapshot(client)
  seconds = last.time - first.time
  step = '- (no weights pushed yet)' if last.train_step is None else (
      f'{last.train_step} '
      f'({((last.train_step or 0) - (first.train_step or 0)) / seconds:.1f}'
      f' steps/s)')
  return [f'Reverb server {address}: answering',
          f'  learner train_step {step}',
          f'  replay inserts {last.inserts} '
          f'({(last.inserts - first.inserts) / seconds:.1f}/s)',
          f'  {tables.describe_replay(client)}']


def _root_dir_lines(root_dir) -> List[str]:
  lines = [f'Run {root_dir}:']
  rows = run_dir.read_eval_returns(run_dir.returns_csv_path(root_dir))
  if rows:
    last = rows[-1]
    best = max(float(r['average_return']) for r in rows)
    lines.append(
        f'  last eval return {float(last["average_return"]):.1f} at train '
        f'step {last["train_step"]}, {_ago(float(last["wall_time"]))}; best '
        f'{best:.1f} over {len(rows)} evaluations')
  else:
    lines.append('  no evaluations yet')
  checkpoints = glob.glob(os.path.join(run_dir.checkpoints_dir(root_dir),
                                       'ckpt-*.index'))
  if checkpoints:
    latest = max(checkpoints, key=os.path.getmtime)
    step = re.search(r'ckpt-(\d+)', latest).group(1)
    lines.append(f'  learner checkpoint at step {step}, '
                 f'{_ago(os.path.getmtime(latest))}')
  return lines


def _ago(timestamp: float) -> str:
  return f'{max(time.time() - timestamp, 0):.0f}s ago'
