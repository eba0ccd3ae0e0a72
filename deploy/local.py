"""The whole topology as processes on this host: server, learner, actors, eval.

Each child is `python -m <binary>` with the experiment's flagfile; its output
goes to <root_dir>/logs/<name>.log. The launcher prints progress, restarts
a child that dies (deploy/restarts.py decides when), stops the children in a
safe order, and fails loudly (naming the child and its log) when one keeps
dying or was given bad input. Children stop when the launcher dies.

Start order: a child's start-up is mostly importing TensorFlow and
TF-Agents, 1.5-2 s of CPU each, so on a small host each process started
early slows down the first train step. The server, the learner and the
first collect actor start at once; the other collect actors when the learner
has pushed its first weights (its own start-up is done); eval and TensorBoard
when it has trained its first step. The launcher reads these milestones in
the learner's log, and imports no TensorFlow itself until training runs (its
Reverb client, for the progress lines, comes then).
"""
import dataclasses
import os
import signal
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional

from absl import logging

from common import ports
from common import progress
from common import quiet
from common import run_dir
from common import shutdown
from common.run_dir import record_start
from common.run_dir import returns_csv_path
from deploy.restarts import Restart
from deploy.restarts import RestartHistory
from deploy.restarts import RestartPolicy
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
  restart: RestartPolicy = RestartPolicy()


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
  history: Optional[RestartHistory] = None
  pending_restart: Optional[Restart] = None
  restart_at: Optional[float] = None  # Monotonic time of the next start.
  finished: bool = False  # Exited 0 when it was done.

  def start(self, env: Dict[str, str]) -> None:
    with open(self.log_path, 'ab') as log:
      self.log_start = log.tell()  # The log is appended to on a restart.
      # A session of its own: Ctrl-C reaches the launcher only, which then
      # stops the children in order. If the launcher dies, the children get
      # SIGTERM (stop_with_parent) and stop as on Ctrl-C.
      self.process = subprocess.Popen(
          self.command, stdout=log, stderr=subprocess.STDOUT, env=env,
          start_new_session=True, preexec_fn=shutdown.stop_with_parent())

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
    self.port = port
    self._client = None

  @property
  def ready(self) -> bool:
    return self._client is not None

  def client(self):
    """The client, made on the first call."""
    if self._client is None:
      quiet.import_tensorflow()  # Reverb imports it.
      import reverb  # pylint: disable=g-import-not-at-top
      self._client = reverb.Client(f'localhost:{self.port}')
    return self._client

  def answers(self) -> bool:
    """Whether the server's port takes connections (no Reverb call: a call
    to a server that is away would block for its timeout)."""
    return ports.listening('localhost', self.port)

  def read(self, read_fn: Callable, default=None):
    """`read_fn(client)`, or `default` while the server is away (restarting)."""
    if not self.answers():
      return default
    try:
      return read_fn(self.client())
    except Exception:  # pylint: disable=broad-except
      return default  # It went away during the call.


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
                      os.path.join(logs, f'{name}.log'), after.get(name),
                      history=RestartHistory(settings.restart))
          for name, command in commands.items()}


def _child_env() -> Dict[str, str]:
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
  port = settings.port or ports.free_port()
  children = build_children(settings, port)
  env = _child_env()
  print(f'{_start_plan(children)}; logs in {settings.root_dir}/logs',
        flush=True)
  server = ServerView(port)
  try:
    for child in children.values():
      if child.after is None:
        child.start(env)
    _wait_for_server(children['reverb_server'], server,
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
    _print_final(server, settings.root_dir)
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
        f'  video         {sys.executable} -m report.video '
        f'--flagfile={settings.flagfile} --root_dir={root} '
        f'--out={os.path.join(root, "video.mp4")}\n'
        f'  TensorBoard   tensorboard --logdir {root}\n'
        f'  logs          {os.path.join(root, "logs")}', flush=True)


def _wait_for_server(server: Child, view: ServerView,
                     timeout_s: float) -> None:
  """Until the server's port takes connections (no Reverb client here)."""
  deadline = time.monotonic() + timeout_s
  while not view.answers():
    if server.returncode is not None:
      _fail_on_bad_input(server)
      raise ChildFailed(_exit_report(server, 'before it answered'))
    if time.monotonic() > deadline:
      raise ChildFailed(
          f'reverb_server did not answer on port {view.port} within '
          f'{timeout_s:.0f}s; its log: {server.log_path}\n'
          f'{server.log_tail()}')
    time.sleep(0.1)


def _exit_report(child: Child, what: str) -> str:
  return (f'{child.name} exited with code {child.returncode} {what}; its log: '
          f'{child.log_path}\n{child.log_tail()}')


def _fail_on_bad_input(child: Child) -> None:
  """Bad input (exit 2 with one error line) is never restarted: the child's
  error line becomes the launcher's."""
  error = child.error_line() if child.returncode == 2 else None
  if error:
    raise ChildFailed(f'{child.name}: {error} (its log: {child.log_path})',
                      exit_code=2)


def _is_done(child: Child, learner_done: bool, server: ServerView,
             settings: LaunchSettings) -> bool:
  """Whether an exit 0 is the child finishing: workers finish when training
  is over, the server and TensorBoard never do."""
  if child.name in _SERVICES or child.returncode != 0:
    return False
  return learner_done or server.read(
      lambda client: _training_over(client, settings), default=False)


def _handle_exits(children: Dict[str, Child], learner_done: bool,
                  server: ServerView, settings: LaunchSettings,
                  env: Dict[str, str]) -> None:
  """Restarts the children due, and schedules the restart of those that
  exited unexpectedly; raises ChildFailed for bad input or past the cap."""
  now = time.monotonic()
  for child in children.values():
    if child.restart_at is not None:
      if now >= child.restart_at:
        code = child.returncode
        child.start(env)
        child.restart_at = None
        print(f'{child.name} restarted ({child.pending_restart.count}/'
              f'{settings.restart.max_restarts}): exit {code}, pid '
              f'{child.process.pid}, log {child.log_path}', flush=True)
      continue
    if child.finished or child.returncode is None:
      continue
    if _is_done(child, learner_done, server, settings):
      child.finished = True
      continue
    _fail_on_bad_input(child)
    restart = child.history.on_exit(now)
    if restart is None:
      what = ('before training finished' if child.returncode == 0 else
              'unexpectedly')
      if settings.restart.mode != 'no':
        what += (f', past {settings.restart.max_restarts} restarts within '
                 f'{settings.restart.window_s:.0f}s')
      raise ChildFailed(_exit_report(child, what))
    child.pending_restart = restart
    child.restart_at = now + restart.backoff_s
    print(f'{child.name} exited with code {child.returncode}: restarting in '
          f'{restart.backoff_s:.0f}s', flush=True)


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
  """Starts the later children, restarts those that die, prints progress
  until the job ends."""
  csv_path = returns_csv_path(settings.root_dir)
  learner = children['learner']
  learner_log = LogWatch(learner, [PUSHED_WEIGHTS_LOG, TRAINING_LOG])
  previous = None
  rate = progress.StepRate()
  next_progress = start + settings.progress_every_s
  learner_done_at = first_step_at = None
  while True:
    if first_step_at is None and learner_log.seen(TRAINING_LOG):
      first_step_at = time.monotonic()
      print(f'First train step {first_step_at - start:.1f}s after launch',
            flush=True)
    if (learner_done_at is None and learner.restart_at is None and
        learner.returncode == 0):
      learner_done_at = time.monotonic()
      learner.finished = True
      print('Learner finished; waiting for the actors and eval to finish',
            flush=True)
    # Eval starts even when the learner has finished: it evaluates the last
    # weights.
    _start_due(children, learner_log, env, start, settings,
               learner_done_at is not None)
    _handle_exits(children, learner_done_at is not None, server, settings,
                  env)
    if learner_done_at is not None:
      others = [c for n, c in children.items()
                if n not in (*_SERVICES, 'learner')]
      if all(c.finished or not c.started for c in others):
        return 0
      if time.monotonic() - learner_done_at > _FINISH_TIMEOUT_S:
        print('Some actors did not finish after the learner: stopping them',
              flush=True)
        return 0
    if stop.requested:
      print(f'Stopping all processes ({stop.reason})', flush=True)
      return 130 if 'SIGINT' in stop.reason else 143
    now = time.monotonic()
    if (learner_done_at is None and first_step_at is not None and
        now >= next_progress):
      snapshot = server.read(
          lambda client: progress.take_snapshot(client, csv_path))
      if snapshot is not None:
        rate.add(snapshot.time, snapshot.train_step)
        restarts = sum(c.history.total for c in children.values())
        print(progress.progress_line(
            start, previous, snapshot,
            eta_s=rate.eta_s(settings.max_train_steps), restarts=restarts),
              flush=True)
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
  for row in run_dir.read_eval_returns(csv_path):
    if float(row['average_return']) >= target:
      print(f'Eval return {float(row["average_return"]):.1f} >= {target} at '
            f'train step {row["train_step"]}, {time.monotonic() - start:.0f}s '
            f'after launch: stopping', flush=True)
      return True
  return False


def _print_final(server: ServerView, root_dir: str) -> None:
  snapshot = server.read(
      lambda client: progress.take_snapshot(client, returns_csv_path(root_dir)))
  returns = [float(r['average_return'])
             for r in run_dir.read_eval_returns(returns_csv_path(root_dir))]
  best = f'{max(returns):.1f}' if returns else '-'
  if snapshot is None:
    print(f'Finished (the Reverb server did not answer): best eval return '
          f'{best}', flush=True)
    return
  last = ('-' if snapshot.eval_return is None else
          f'{snapshot.eval_return:.1f} @ {snapshot.eval_step}')
  print(f'Finished: train_step {snapshot.train_step}, env steps '
        f'{snapshot.inserts}, replay {snapshot.replay_size}, last eval return '
        f'{last}, best {best}', flush=True)


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
