"""What a finished local run prints: its last numbers, and where its
results are (writing the return plot on the way)."""
import os
import sys
from typing import Optional

from common import run_dir
from common.progress import Snapshot
from report import plot_lib


def print_final(snapshot: Optional[Snapshot], root_dir: str) -> None:
  """The last train step, env steps, replay size and eval returns."""
  returns = [float(r['average_return']) for r in
             run_dir.read_eval_returns(run_dir.returns_csv_path(root_dir))]
  best = f'{max(returns):.1f}' if returns else '-'
  if snapshot is None:
    print(f'Finished (the Reverb server did not answer): best eval return '
          f'{best}', flush=True)
    return
  last = ('-' if snapshot.eval_return is None else
          f'{snapshot.eval_return:.1f} @ {snapshot.eval_step}')
  print(f'Finished: train_step {snapshot.train_step}, env steps '
        f'{snapshot.env_steps}, replay {snapshot.replay_size}, last eval return '
        f'{last}, best {best}', flush=True)


def print_results(root_dir: str, flagfile: str) -> None:
  """Writes the return plot; says where plot, video, TensorBoard, logs are."""
  plot = os.path.join(root_dir, run_dir.RETURNS_PNG)
  try:
    plot_lib.plot_returns([plot_lib.read_run(root_dir)], plot)
  except plot_lib.NoResultsError:
    plot = '- (no evaluations)'
  print(f'Results in {root_dir}:\n'
        f'  eval returns  {run_dir.returns_csv_path(root_dir)}\n'
        f'  plot          {plot}\n'
        f'  video         {sys.executable} -m report.video '
        f'--flagfile={flagfile} --root_dir={root_dir} '
        f'--out={os.path.join(root_dir, "video.mp4")}\n'
        f'  TensorBoard   tensorboard --logdir {root_dir}\n'
        f'  logs          {os.path.join(root_dir, run_dir.LOGS_DIR)}',
        flush=True)
