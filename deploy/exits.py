"""What the launcher does when a child exits: nothing if it was done,
fail with its error line on bad input, else restart it (deploy/restarts.py
says when) or give up."""
import time
from typing import Dict

from common import records
from deploy.children import Child
from deploy.children import ChildFailed
from deploy.graph import LaunchSettings
from deploy.graph import SERVICES
from deploy.watch import ServerView


def exit_report(child: Child, what: str) -> str:
  return (f'{child.name} exited with code {child.returncode} {what}; its log: '
          f'{child.log_path}\n{child.log_tail()}')


def fail_on_bad_input(child: Child) -> None:
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
  if child.name in SERVICES or child.returncode != 0:
    return False
  return learner_done or server.read(
      lambda client: _training_over(client, settings), default=False)


def handle_exits(children: Dict[str, Child], learner_done: bool,
                 server: ServerView, settings: LaunchSettings,
                 env: Dict[str, str],
                 launcher_records: records.RecordWriter) -> None:
  """Restarts the children due (recording each restart), and schedules the
  restart of those that exited unexpectedly; raises ChildFailed for bad
  input or past the cap."""
  now = time.monotonic()
  for child in children.values():
    if child.restart_at is not None:
      if now >= child.restart_at:
        code = child.returncode
        child.start(env)
        child.restart_at = None
        launcher_records.write(records.RESTARTED, process=child.name,
                               count=child.pending_restart.count,
                               exit_code=code)
        record_started(child, launcher_records)
        print(f'{child.name} restarted ({child.pending_restart.count}/'
              f'{settings.restart.max_restarts}): exit {code}, '
              f'{child.where()}', flush=True)
      continue
    moved = child.started and child.moved()
    if moved:
      # Ray placed it again on another node, or the server it dials: start
      # it there, at once (Ray's restart limit applies, not the launcher's).
      child.history.total += 1
      child.start(env)
      launcher_records.write(records.RESTARTED, process=child.name,
                             count=child.history.total, exit_code=None,
                             reason=moved)
      record_started(child, launcher_records)
      print(f'{child.name} restarted: {moved}; {child.where()}', flush=True)
      continue
    if child.finished or child.returncode is None:
      continue
    if _is_done(child, learner_done, server, settings):
      child.finished = True
      continue
    fail_on_bad_input(child)
    restart = child.history.on_exit(now)
    if restart is None:
      what = ('before training finished' if child.returncode == 0 else
              'unexpectedly')
      if settings.restart.mode != 'no':
        what += (f', past {settings.restart.max_restarts} restarts within '
                 f'{settings.restart.window_s:.0f}s')
      raise ChildFailed(exit_report(child, what))
    child.pending_restart = restart
    child.restart_at = now + restart.backoff_s
    print(f'{child.name} exited with code {child.returncode}: restarting in '
          f'{restart.backoff_s:.0f}s', flush=True)


def record_started(child: Child,
                   launcher_records: records.RecordWriter) -> None:
  """The STARTED record of a start, once placed (a Ray child not placed yet
  writes its own when it is)."""
  placement = child.placement()
  if placement:
    launcher_records.write(records.STARTED, process=child.name, **placement)


def _training_over(client, settings) -> bool:
  """Whether the learner pushed its last weights (it may still be saving).

  Actors and eval stop then, possibly before the learner process exits.
  """
  from common import tables  # pylint: disable=g-import-not-at-top
  step = tables.learner_train_step(client)
  return step is not None and step >= settings.max_train_steps
