"""python -m report.status --reverb_address=localhost:8000 [--root_dir=/tmp/run]

Prints one screen on a job; exit code 1 if the Reverb server does not answer.
"""
from common import quiet
quiet.import_tensorflow()  # Without its start-up messages.

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from common import cli
from common.config import ConfigError
from report import status_lib

_REVERB_ADDRESS = flags.DEFINE_string(
    'reverb_address', None, 'host:port of the job\'s Reverb server.')
_ROOT_DIR = flags.DEFINE_string('root_dir', None, 'The job\'s root_dir.')
_INTERVAL_S = flags.DEFINE_float(
    'interval_s', 2, 'Rates are measured over this many seconds.',
    lower_bound=0.1)


def main():
  if not (_REVERB_ADDRESS.value or _ROOT_DIR.value):
    raise ConfigError('give --reverb_address, --root_dir or both')
  lines, answered = status_lib.status_lines(
      _REVERB_ADDRESS.value, _ROOT_DIR.value, _INTERVAL_S.value)
  print('\n'.join(lines), flush=True)
  if not answered:
    cli.exit_now(1)


if __name__ == '__main__':
  cli.run('status', main)
