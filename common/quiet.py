"""A quiet start: TensorFlow imported without its C++ start-up messages (CUDA,
cuDNN, oneDNN, TensorRT, CPU features) and gym without its "unmaintained"
banner, so a user's terminal and logs begin with our own lines.

RL_VERBOSE_START=1 in the environment shows them again.
"""
import os
import re
import sys
import tempfile

VERBOSE_ENV = 'RL_VERBOSE_START'
# TensorFlow's C++ log lines, and the second line of its CPU-feature notice.
_TF_START_LINE = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] |'
    r'^To enable the following instructions:')


def import_tensorflow() -> None:
  """Imports TensorFlow (and hides gym's banner) unless already done.

  What the import writes to stderr is held back; lines other than
  TensorFlow's own start-up messages are passed on, and everything is if the
  import fails.
  """
  if 'tensorflow' in sys.modules:
    return
  verbose = os.environ.get(VERBOSE_ENV) == '1'
  if not verbose:
    _hide_gym_banner()
  sys.stderr.flush()
  saved_stderr = os.dup(2)
  with tempfile.TemporaryFile() as captured:
    if not verbose:
      os.dup2(captured.fileno(), 2)
    try:
      import tensorflow  # pylint: disable=g-import-not-at-top,unused-import
      failed = False
    except BaseException:
      failed = True
      raise
    finally:
      os.dup2(saved_stderr, 2)
      os.close(saved_stderr)
      captured.seek(0)
      lines = captured.read().decode(errors='replace').splitlines()
      kept = [l for l in lines if failed or not _TF_START_LINE.match(l)]
      if kept:
        sys.stderr.write('\n'.join(kept) + '\n')
        sys.stderr.flush()


def _hide_gym_banner() -> None:
  """gym prints the notice gym_notices holds for its version when imported."""
  try:
    from importlib import metadata  # pylint: disable=g-import-not-at-top
    from gym_notices import notices  # pylint: disable=g-import-not-at-top
    notices.notices.pop(metadata.version('gym'), None)
  except Exception:  # pylint: disable=broad-except
    pass  # No gym, or a gym without notices: nothing to hide.
