"""The launcher's children as processes: start, restart, logs, stop order."""
import dataclasses
import os
import signal
import subprocess
import sys
from typing import Dict, List, Optional

from absl import logging

from common import run_dir
from common import shutdown
from deploy.graph import LEARNER
from deploy.graph import LaunchSettings
from deploy.graph import ProcessSpec
from deploy.graph import SERVER
from deploy.graph import TENSORBOARD
from deploy.graph import command_args
from deploy.restarts import Restart
from deploy.restarts import RestartHistory

_LOG_TAIL_LINES = 8
_STOP_TIMEOUT_S = 90.0


def make_children(settings: LaunchSettings, graph: List[ProcessSpec],
                  port: int) -> Dict[str, 'Child']:
  """A Child per process of the graph, by name, in start order; the server
  on `port` of this host."""
  os.makedirs(os.path.join(settings.root_dir, run_dir.LOGS_DIR),
              exist_ok=True)
  return {spec.name: Child(
      spec, command_args(spec, settings, 'localhost', port),
      run_dir.log_path(settings.root_dir, spec.name),
      RestartHistory(settings.restart)) for spec in graph}


class ChildFailed(RuntimeError):
  """A child process exited when it should not have."""

  def __init__(self, message: str, exit_code: int = 1):
    super().__init__(message)
    self.exit_code = exit_code


class GraphProcess:
  """A process of the graph (`spec`), however it runs: the names the
  supervisor reads. Child and deploy.ray_children.RayChild are both."""
  spec: ProcessSpec

  @property
  def name(self) -> str:
    return self.spec.name

  @property
  def after(self) -> Optional[str]:
    """The learner milestone it starts after (None: at launch)."""
    return self.spec.after


@dataclasses.dataclass
class Child(GraphProcess):
  """One process of the graph: its current start, and its restarts."""
  spec: ProcessSpec
  args: List[str]
  log_path: str
  history: Optional[RestartHistory]  # None: a Ray actor's, restarted by Ray.
  process: Optional[subprocess.Popen] = None
  log_start: int = 0  # Where this start's output begins in the log.
  pending_restart: Optional[Restart] = None
  restart_at: Optional[float] = None  # Monotonic time of the next start.
  finished: bool = False  # Exited 0 when it was done.

  def start(self, env: Dict[str, str]) -> None:
    with open(self.log_path, 'ab') as log:
      self.log_start = log.tell()  # The log is appended to on a restart.
      # A session of its own: Ctrl-C reaches the launcher only, which then
      # stops the children in order. If the launcher dies, the children get
      # SIGHUP (stop_with_parent) and stop as on Ctrl-C.
      self.process = subprocess.Popen(
          [sys.executable, '-m', self.spec.module, *self.args],
          stdout=log, stderr=subprocess.STDOUT, env=env,
          start_new_session=True, preexec_fn=shutdown.stop_with_parent())

  def where(self) -> str:
    """Where this start runs, for people."""
    return f'pid {self.process.pid:<8} {self.log_path}'

  def placement(self) -> Dict[str, object]:
    """Where this start runs, for programs (the launcher's records)."""
    return {'node': 'localhost', 'pid': self.process.pid}

  def moved(self) -> Optional[str]:
    """Why the engine wants the process started again elsewhere (a Ray
    child's node died): never here."""
    return None

  @property
  def started(self) -> bool:
    return self.process is not None

  @property
  def returncode(self) -> Optional[int]:
    """None while running or not started yet."""
    return self.process.poll() if self.started else None

  def terminate(self) -> None:
    if self.process.poll() is None:
      self.process.send_signal(signal.SIGTERM)

  def wait(self, timeout_s: float) -> None:
    try:
      self.process.wait(timeout_s)
    except subprocess.TimeoutExpired:
      logging.warning('%s did not stop within %.0fs: killing it', self.name,
                      timeout_s)
      self.process.kill()
      self.process.wait()

  def log_tail(self) -> str:
    with open(self.log_path, errors='replace') as f:
      lines = [l.rstrip() for l in f if l.strip()]
    return '\n'.join('    ' + l for l in lines[-_LOG_TAIL_LINES:])

  def error_line(self) -> Optional[str]:
    """The one error line a binary prints on bad input, without its
    `error (<binary>): ` prefix; None if there is none."""
    with open(self.log_path, 'rb') as f:
      f.seek(self.log_start)
      lines = f.read().decode(errors='replace').splitlines()
    errors = [l.strip() for l in lines if l.startswith('error (')]
    return errors[-1].split('): ', 1)[-1] if errors else None


def child_env() -> Dict[str, str]:
  env = dict(os.environ)
  project_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env['PYTHONPATH'] = os.pathsep.join(
      p for p in (project_root, env.get('PYTHONPATH')) if p)
  env.setdefault('PYTHONUNBUFFERED', '1')
  if sys.version_info < (3, 12):
    # Reverb checks TF's version with distutils, which setuptools' shim
    # serves by importing setuptools: 0.1-0.3 s of CPU per process; the
    # standard library's (gone in Python 3.12) answers in milliseconds.
    env.setdefault('SETUPTOOLS_USE_DISTUTILS', 'stdlib')
  return env


def stop_all(children: Dict[str, Child]) -> None:
  """Learner first (it checkpoints), then actors and eval, then the server."""
  order = ([LEARNER] + [n for n in children if n not in (LEARNER, SERVER)] +
           [SERVER])
  for name in order:
    child = children[name]
    if not child.started:
      continue
    if name == TENSORBOARD:
      child.process.kill()  # Nothing to save.
    child.terminate()
    if name in (LEARNER, SERVER):
      child.wait(_STOP_TIMEOUT_S)
  for child in children.values():
    if child.started:
      child.wait(_STOP_TIMEOUT_S)
