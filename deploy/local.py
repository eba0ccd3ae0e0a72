"""The whole topology as processes on this host: server, learner, actors, eval.

Each child is `python -m <binary>` with the experiment's flagfile; its output
goes to <root_dir>/logs/<name>.log. The launcher prints progress, stops the
children in a safe order, and fails loudly (naming the child and its log)
when one dies.
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

from actor.evaluate import returns_csv_path
from common import reverb_io
from common import shutdown
from deploy import progress
from report import plots

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


class ChildFailed(RuntimeError):
  """A child process exited when it should not have."""


@dataclasses.dataclass
class Child:
  name: str
  command: List[str]
  log_path: str
  process: Optional[subprocess.Popen] = None

  def start(self, env: Dict[str, str]) -> None:
    with open(self.log_path, 'ab') as log:
      # A session of its own: Ctrl-C reaches the launcher only, which then
      # stops the children in order.
      self.process = subprocess.Popen(
          self.command, stdout=log, stderr=subprocess.STDOUT, env=env,
          start_new_session=True)

  @property
  def returncode(self) -> Optional[int]:
    return self.process.poll()

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
  # Everything starts at once: the others wait for the server meanwhile.
  address = [f'--reverb_address=localhost:{port}',
             f'--connect_timeout_s={settings.startup_timeout_s}']
  root = f'--root_dir={settings.root_dir}'
  checkpoints = os.path.join(settings.root_dir, 'reverb_checkpoints')
  commands = {'reverb_server': ['reverb_server', experiment, f'--port={port}',
                                f'--checkpoint_dir={checkpoints}'],
              'learner': ['learner', experiment, *address, root,
                          f'--strategy={settings.strategy}']}
  for task in range(settings.actors):
    commands[f'actor_{task}'] = ['actor', experiment, *address, root,
                                 f'--task={task}']
  if settings.eval:
    commands['eval'] = ['actor', experiment, *address, root, '--mode=eval']
  if settings.tensorboard_port:
    commands[_TENSORBOARD] = [
        'tensorboard.main', f'--logdir={settings.root_dir}', '--host=localhost',
        f'--port={settings.tensorboard_port}']
  return {name: Child(name, base + command,
                      os.path.join(logs, f'{name}.log'))
          for name, command in commands.items()}


def _child_env() -> Dict[str, str]:
  env = dict(os.environ)
  project_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env['PYTHONPATH'] = os.pathsep.join(
      p for p in (project_root, env.get('PYTHONPATH')) if p)
  env.setdefault('PYTHONUNBUFFERED', '1')
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  return env


def run_local(settings: LaunchSettings, stop: shutdown.Shutdown) -> int:
  """Runs the topology to the end; returns the launcher's exit code."""
  start = time.monotonic()
  port = settings.port or free_port()
  children = build_children(settings, port)
  env = _child_env()
  print(f'Starting {len(children)} processes; logs in '
        f'{settings.root_dir}/logs', flush=True)
  try:
    for child in children.values():
      child.start(env)
    client = _wait_for_server(children['reverb_server'], port,
                              settings.startup_timeout_s)
    for child in children.values():
      print(f'  {child.name:<14} pid {child.process.pid:<8} {child.log_path}',
            flush=True)
    print(f'Status: {sys.executable} -m report.status '
          f'--reverb_address=localhost:{port} '
          f'--root_dir={settings.root_dir}', flush=True)
    if settings.tensorboard_port:
      print(f'TensorBoard: http://localhost:{settings.tensorboard_port}',
            flush=True)
    outcome = _supervise(settings, children, client, stop, start)
    _print_final(client, settings.root_dir)
  except ChildFailed as e:
    print(f'error (launcher): {e}', file=sys.stderr, flush=True)
    _stop_all(children)
    return 1
  _stop_all(children)
  _print_results(settings)
  return outcome


def _print_results(settings: LaunchSettings) -> None:
  """Writes the return plot; says where plot, video, TensorBoard, logs are."""
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


def _wait_for_server(server: Child, port: int, timeout_s: float):
  deadline = time.monotonic() + timeout_s
  while True:
    _check_alive(server)
    try:
      return reverb_io.connect(f'localhost:{port}', timeout_s=2)
    except reverb_io.ReverbConnectionError:
      if time.monotonic() > deadline:
        raise ChildFailed(
            f'reverb_server did not answer on port {port} within '
            f'{timeout_s:.0f}s; its log: {server.log_path}\n'
            f'{server.log_tail()}') from None


def _check_alive(child: Child, finished_ok: bool = False) -> None:
  code = child.returncode
  if code is None or (code == 0 and finished_ok):
    return
  when = ' before training finished' if code == 0 else ''
  raise ChildFailed(f'{child.name} exited with code {code}{when}; its log: '
                    f'{child.log_path}\n{child.log_tail()}')


def _supervise(settings, children, client, stop, start) -> int:
  """Watches the children and prints progress until the job ends."""
  csv_path = returns_csv_path(settings.root_dir)
  previous = None
  next_progress = start + settings.progress_every_s
  learner_done_at = None
  while True:
    if learner_done_at is None and children['learner'].returncode == 0:
      learner_done_at = time.monotonic()
      print('Learner finished; waiting for the actors and eval to finish',
            flush=True)
    for name, child in children.items():
      finished_ok = (name not in _SERVICES and child.returncode == 0 and (
          learner_done_at is not None or _training_over(client, settings)))
      _check_alive(child, finished_ok)
    if learner_done_at is not None:
      others = [c for n, c in children.items()
                if n not in (*_SERVICES, 'learner')]
      if all(c.returncode is not None for c in others):
        return 0
      if time.monotonic() - learner_done_at > _FINISH_TIMEOUT_S:
        print('Some actors did not finish after the learner: stopping them',
              flush=True)
        return 0
    if stop.requested:
      print(f'Stopping all processes ({stop.reason})', flush=True)
      return 130 if 'SIGINT' in stop.reason else 143
    if learner_done_at is None and time.monotonic() >= next_progress:
      snapshot = progress.take_snapshot(client, csv_path)
      print(progress.progress_line(start, previous, snapshot), flush=True)
      previous = snapshot
      next_progress += settings.progress_every_s
    if settings.stop_at_return is not None and _reached_return(
        csv_path, settings.stop_at_return, start):
      return 0
    stop.wait(0.5)


def _training_over(client, settings) -> bool:
  """Whether the learner pushed its last weights (it may still be saving).

  Actors and eval stop then, possibly before the learner process exits.
  """
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
    if child.process is None:
      continue
    if name == _TENSORBOARD:
      child.process.kill()  # Nothing to save; it is slow on SIGTERM.
    child.terminate()
    if name in ('learner', 'reverb_server'):
      child.wait(_STOP_TIMEOUT_S)
  for child in children.values():
    if child.process is not None:
      child.wait(_STOP_TIMEOUT_S)
