"""python -m report.plot --root_dir=/tmp/run [--root_dir=/tmp/run2 ...] \
     [--out=returns.png]"""
from absl import flags

from common import cli
from common.config import ConfigError
from report import plot_lib

_ROOT_DIRS = flags.DEFINE_multi_string(
    'root_dir', None, 'A run\'s root_dir; repeat the flag to overlay runs.',
    required=True)
_LABELS = flags.DEFINE_list(
    'labels', None, 'One legend label per --root_dir (default: dir names).')
_OUT = flags.DEFINE_string(
    'out', None, 'PNG to write (default: <first root_dir>/returns.png).')
_TITLE = flags.DEFINE_string('title', 'Average eval return', 'Plot title.')


def main():
  labels = _LABELS.value or [''] * len(_ROOT_DIRS.value)
  if len(labels) != len(_ROOT_DIRS.value):
    raise ConfigError(
        f'--labels has {len(labels)} names for {len(_ROOT_DIRS.value)} '
        f'--root_dir: give one per run')
  runs = [plot_lib.read_run(root_dir, label)
          for root_dir, label in zip(_ROOT_DIRS.value, labels)]
  out = _OUT.value or f'{_ROOT_DIRS.value[0]}/returns.png'
  points = plot_lib.plot_returns(runs, out, _TITLE.value)
  print(f'Wrote {out}: {points} evaluations of {len(runs)} run(s)')


if __name__ == '__main__':
  cli.run('plot', main)
