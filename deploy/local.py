"""The whole topology as processes on this host: server, learner, actors, eval.

Each child is `python -m <binary>` with the experiment's flagfile; its output
goes to <root_dir>/logs/<name>.log. The launcher prints progress, stops the
children in a safe order, and fails loudly (naming the child and its log)
when one dies.

Start order: a child's start-up is mostly importing TensorFlow and
TF-Agents, 1.5-2 s of CPU each, so on a small host each process started
early slows down the first train step. The server, the learner and the first collect actor start at
once; the other collect actors when the learner has pushed its first weights
(its own start-up is done); eval and TensorBoard when it has trained its
first step. The launcher reads these milestones in the learner's log, and
imports no TensorFlow itself until training runs (its Reverb client, for the
progress lines, comes then).
"""
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional

from absl import logging

from common import shutdown
from common.paths import record_start
from common.paths import returns_csv_path
from deploy import progress
from learner import PUSHED_WEIGHTS_LOG
from learner import TRAINING_LOG

_LOG_TAIL_LINES = 8
_STOP_TIMEOUT_S = 90.0
_FINISH_TIMEOUT_S = 120.0
_TENSORBOARD = 'tensorboard'
# Not workers: they run until stopped.
_SERVICES = ('reverb_server', _TENSORBOARD)


@dataclasses.dataclass(frozen=True)
class LaunchSettings:
  flagfile: str  # The experiment, as every child reads it.
  root_dir: str
  max_train_steps: int  # From the experiment: when actors may finish.
  actors: int = 2
  port: int = 0  # 0: pick a free port.
  eval: bool = True
  strategy: str = 'default'
  progress_every_s: float = 5.0
  stop_at_return: Optional[float] = None
  startup_timeout_s: float = 120.0
  tensorboard_port: int = 0  # 0: no TensorBoard.
  # Children waiting for a learner milestone start anyway this long after
  # the launch.
  staged_start_timeout_s: float = 30.0


class ChildFailed(RuntimeError):
  """A child process exited when it should not have."""

  def __init__(self, message: str, exit_code: int = 1):
    super().__init__(message)
    self.exit_code = exit_code


@dataclasses.dataclass
class Child:
  name: str
  command: List[str]
  log_path: str
  # The learner's log line it waits for (None: starts at launch).
  after: Optional[str] = None
  process: Optional[subprocess.Popen] = None
  log_start: int = 0  # Where this start's output begins in the log.

  def start(self, env: Dict[str, str]) -> None:
    with open(self.log_path, 'ab') as log:
      self.log_start = log.tell()  # The log is appended to on a relaunch.
      # A session of its own: Ctrl-C reaches the launcher only, which then
      # stops the children in order.
      self.process = subprocess.Popen(
          self.command, stdout=log, stderr=subprocess.STDOUT, env=env,
          start_new_session=True)

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


class LogWatch:
  """Which of some lines a child has logged since it started, read as its
  log grows."""

  def __init__(self, child: Child, texts: List[str]):
    self._child = child
    self._waiting = set(texts)
    self._seen = set()
    self._offset = None
    self._partial = b''

  def seen(self, text: str) -> bool:
    """Whether a line containing `text` (one of the texts) was logged."""
    self._read()
    return text in self._seen

  def _read(self) -> None:
    if not self._waiting or not self._child.started:
      return
    if self._offset is None:
      self._offset = self._child.log_start
    with open(self._child.log_path, 'rb') as f:
      f.seek(self._offset)
      data = f.read()
    self._offset += len(data)
    *lines, self._partial = (self._partial + data).split(b'\n')
    for line in lines:
      for text in list(self._waiting):
        if text.encode() in line:
          self._waiting.discard(text)
          self._seen.add(text)


class ServerView:
  """The launcher's Reverb client, made on first use: importing Reverb
  imports TensorFlow, which the launcher puts off until training runs."""

  def __init__(self, port: int):
    self._address = f'localhost:{port}'
    self._client = None

  @property
  def ready(self) -> bool:
    return self._client is not None

  def client(self):
    """The client, made on the first call."""
    if self._client is None:
      import reverb  # pylint: disable=g-import-not-at-top
      self._client = reverb.Client(self._address)
    return self._client


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def build_children(settings: LaunchSettings, port: int) -> Dict[str, Child]:
  """The processes of the topology, in start order."""
  logs = os.path.join(settings.root_dir, 'logs')
  os.makedirs(logs, exist_ok=True)
  base = [sys.executable, '-m']
  experiment = f'--flagfile={settings.flagfile}'
  # The server starts with the learner and the first actor: they wait for it.
  address = [f'--reverb_address=localhost:{port}',
             f'--connect_timeout_s={settings.startup_timeout_s}']
  root = f'--root_dir={settings.root_dir}'
  checkpoints = os.path.join(settings.root_dir, 'reverb_checkpoints')
  commands = {'reverb_server': ['reverb_server', experiment, f'--port={port}',
                                f'--checkpoint_dir={checkpoints}'],
              'learner': ['learner', experiment, *address, root,
                          f'--strategy={settings.strategy}']}
  after = {}
  for task in range(settings.actors):
    commands[f'actor_{task}'] = ['actor', experiment, *address, root,
                                 f'--task={task}']
    if task:
      after[f'actor_{task}'] = PUSHED_WEIGHTS_LOG
  if settings.eval:
    commands['eval'] = ['actor', experiment, *address, root, '--mode=eval']
    after['eval'] = TRAINING_LOG
  if settings.tensorboard_port:
    commands[_TENSORBOARD] = [
        'tensorboard.main', f'--logdir={settings.root_dir}', '--host=localhost',
        f'--port={settings.tensorboard_port}']
    after[_TENSORBOARD] = TRAINING_LOG
  return {name: Child(name, base + command,
                      os.path.join(logs, f'{name}.log'), after.get(name))
          for name, command in commands.items()}


def _child_env() -> Dict[str, str]:
  env = dict(os.environ)
  project_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env['PYTHONPATH'] = os.pathsep.join(
      p for p in (project_root, env.get('PYTHONPATH')) if p)
  env.setdefault('PYTHONUNBUFFERED', '1')
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  if sys.version_info < (3, 12):
    # Reverb checks TF's version with distutils, which setuptools' shim
    # serves by importing setuptools: 0.1-0.3 s of CPU per process; the
    # standard library's (gone in Python 3.12) answers in milliseconds.
    env.setdefault('SETUPTOOLS_USE_DISTUTILS', 'stdlib')
  return env


def _start_plan(children: Dict[str, Child]) -> str:
  when = {PUSHED_WEIGHTS_LOG: 'once the learner has pushed weights',
          TRAINING_LOG: 'once it trains'}
  later = [f'{", ".join(c.name for c in children.values() if c.after == a)} '
           f'{text}' for a, text in when.items()
           if any(c.after == a for c in children.values())]
  now = ', '.join(c.name for c in children.values() if c.after is None)
  return '; '.join([f'Starting {now}', *later])


def run_local(settings: LaunchSettings, stop: shutdown.Shutdown) -> int:
  """Runs the topology to the end; returns the launcher's exit code."""
  start = time.monotonic()
  record_start(settings.root_dir)
  port = settings.port or free_port()
  children = build_children(settings, port)
  env = _child_env()
  print(f'{_start_plan(children)}; logs in {settings.root_dir}/logs',
        flush=True)
  server = ServerView(port)
  try:
    for child in children.values():
      if child.after is None:
        child.start(env)
    _wait_for_server(children['reverb_server'], port,
                     settings.startup_timeout_s)
    for child in children.values():
      if child.started:
        _print_started(child)
    print(f'Status: {sys.executable} -m report.status '
          f'--reverb_address=localhost:{port} '
          f'--root_dir={settings.root_dir}', flush=True)
    if settings.tensorboard_port:
      print(f'TensorBoard: http://localhost:{settings.tensorboard_port} (once '
            f'training runs)', flush=True)
    outcome = _supervise(settings, children, server, env, stop, start)
    _print_final(server.client(), settings.root_dir)
  except ChildFailed as e:
    print(f'error (launcher): {e}', file=sys.stderr, flush=True)
    _stop_all(children)
    return e.exit_code
  _stop_all(children)
  _print_results(settings)
  return outcome


def _print_started(child: Child) -> None:
  print(f'  {child.name:<14} pid {child.process.pid:<8} {child.log_path}',
        flush=True)


def _print_results(settings: LaunchSettings) -> None:
  """Writes the return plot; says where plot, video, TensorBoard, logs are."""
  from report import plots  # pylint: disable=g-import-not-at-top
  root = settings.root_dir
  plot = os.path.join(root, 'returns.png')
  try:
    plots.plot_returns([plots.read_run(root)], plot)
  except plots.NoResultsError:
    plot = '- (no evaluations)'
  print(f'Results in {root}:\n'
        f'  eval returns  {returns_csv_path(root)}\n'
        f'  plot          {plot}\n'
        f'  video         {sys.executable} -m report.video --flagfile={settings.flagfile} '
        f'--root_dir={root} --out={os.path.join(root, "video.mp4")}\n'
        f'  TensorBoard   tensorboard --logdir {root}\n'
        f'  logs          {os.path.join(root, "logs")}', flush=True)


def _wait_for_server(server: Child, port: int, timeout_s: float) -> None:
  """Until the server's port takes connections (no Reverb client here)."""
  deadline = time.monotonic() + timeout_s
  while True:
    _check_alive(server)
    try:
      with socket.create_connection(('localhost', port), timeout=1):
        return
    except OSError:
      if time.monotonic() > deadline:
        raise ChildFailed(
            f'reverb_server did not answer on port {port} within '
            f'{timeout_s:.0f}s; its log: {server.log_path}\n'
            f'{server.log_tail()}') from None
      time.sleep(0.1)


def _check_alive(child: Child, finished_ok: bool = False) -> None:
  code = child.returncode
  if code is None or (code == 0 and finished_ok):
    return
  error = child.error_line() if code == 2 else None
  if error:  # Bad input: the child's one error line is the launcher's.
    raise ChildFailed(f'{child.name}: {error} (its log: {child.log_path})',
                      exit_code=2)
  when = ' before training finished' if code == 0 else ''
  raise ChildFailed(f'{child.name} exited with code {code}{when}; its log: '
                    f'{child.log_path}\n{child.log_tail()}')


def _start_due(children, learner_log, env, launched_at, settings,
               learner_done) -> bool:
  """Starts the children whose learner milestone came; whether training
  runs (or the wait for it timed out)."""
  timed_out = not learner_done and (
      time.monotonic() - launched_at >= settings.staged_start_timeout_s)
  for child in children.values():
    if child.started or (learner_done and child.name != 'eval'):
      continue
    if timed_out or learner_log.seen(child.after):
      child.start(env)
      _print_started(child)
  return timed_out or learner_log.seen(TRAINING_LOG)


def _supervise(settings, children, server, env, stop, start) -> int:
  """Starts the later children, watches them all and prints progress until
  the job ends."""
  csv_path = returns_csv_path(settings.root_dir)
  learner_log = LogWatch(children['learner'],
                         [PUSHED_WEIGHTS_LOG, TRAINING_LOG])
  previous = None
  next_progress = start + settings.progress_every_s
  learner_done_at = first_step_at = None
  while True:
    if first_step_at is None and learner_log.seen(TRAINING_LOG):
      first_step_at = time.monotonic()
      print(f'First train step {first_step_at - start:.1f}s after launch',
            flush=True)
    if learner_done_at is None and children['learner'].returncode == 0:
      learner_done_at = time.monotonic()
      print('Learner finished; waiting for the actors and eval to finish',
            flush=True)
    # Eval starts even when the learner has finished: it evaluates the last
    # weights.
    if _start_due(children, learner_log, env, start, settings,
                  learner_done_at is not None):
      server.client()  # For the progress lines.
    for name, child in children.items():
      finished_ok = (name not in _SERVICES and child.returncode == 0 and (
          learner_done_at is not None or _training_over(server.client(),
                                                        settings)))
      _check_alive(child, finished_ok)
    if learner_done_at is not None:
      others = [c for n, c in children.items()
                if n not in (*_SERVICES, 'learner')]
      if all(c.returncode is not None or not c.started for c in others):
        return 0
      if time.monotonic() - learner_done_at > _FINISH_TIMEOUT_S:
        print('Some actors did not finish after the learner: stopping them',
              flush=True)
        return 0
    if stop.requested:
      print(f'Stopping all processes ({stop.reason})', flush=True)
      return 130 if 'SIGINT' in stop.reason else 143
    now = time.monotonic()
    if learner_done_at is None and server.ready and now >= next_progress:
      snapshot = progress.take_snapshot(server.client(), csv_path)
      print(progress.progress_line(start, previous, snapshot), flush=True)
      previous = snapshot
      while next_progress <= now:
        next_progress += settings.progress_every_s
    if settings.stop_at_return is not None and _reached_return(
        csv_path, settings.stop_at_return, start):
      return 0
    stop.wait(0.5)


def _training_over(client, settings) -> bool:
  """Whether the learner pushed its last weights (it may still be saving).

  Actors and eval stop then, possibly before the learner process exits.
  """
  from common import reverb_io  # pylint: disable=g-import-not-at-top
  step = reverb_io.learner_train_step(client)
  return step is not None and step >= settings.max_train_steps


def _reached_return(csv_path, target, start) -> bool:
  for row in progress.read_eval_returns(csv_path):
    if float(row['average_return']) >= target:
      print(f'Eval return {float(row["average_return"]):.1f} >= {target} at '
            f'train step {row["train_step"]}, {time.monotonic() - start:.0f}s '
            f'after launch: stopping', flush=True)
      return True
  return False


def _print_final(client, root_dir) -> None:
  snapshot = progress.take_snapshot(client, returns_csv_path(root_dir))
  returns = [float(r['average_return'])
             for r in progress.read_eval_returns(returns_csv_path(root_dir))]
  best = f'{max(returns):.1f}' if returns else '-'
  print(f'Finished: train_step {snapshot.train_step}, env steps '
        f'{snapshot.inserts}, replay {snapshot.replay_size}, last eval return '
        f'{snapshot.eval_return} @ {snapshot.eval_step}, best {best}',
        flush=True)


def _stop_all(children: Dict[str, Child]) -> None:
  """Learner first (it checkpoints), then actors and eval, then the server."""
  order = (['learner'] +
           [n for n in children if n not in ('learner', 'reverb_server')] +
           ['reverb_server'])
  for name in order:
    child = children[name]
    if not child.started:
      continue
    if name == _TENSORBOARD:
      child.process.kill()  # Nothing to save; it is slow on SIGTERM.
    child.terminate()
    if name in ('learner', 'reverb_server'):
      child.wait(_STOP_TIMEOUT_S)
  for child in children.values():
    if child.started:
      child.wait(_STOP_TIMEOUT_S)
