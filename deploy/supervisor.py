"""Runs the topology of deploy/graph.py and supervises it: on this host, or
(through deploy/ray_children.py) on a Ray cluster.

The launcher prints progress, restarts a child that dies (deploy/restarts.py
decides when), stops the children in a safe order, and fails loudly (naming
the child and its log) when one keeps dying or was given bad input. It reads
the learner's start-up milestones in its records (common/records.py) to
start the later children,
and imports no TensorFlow itself until training runs (its Reverb client,
for the progress lines, comes then). Children stop when the launcher dies.
"""
import dataclasses
import os
import sys
import time
from typing import Any, Callable, Dict, List, Tuple

from common import ports
from common import progress
from common import records
from common import run_dir
from common import shutdown
from deploy import children as children_lib
from deploy import exits
from deploy.children import Child
from deploy.children import ChildFailed
from deploy.children import GraphProcess
from deploy.children import child_env
from deploy.children import make_children
from deploy.graph import EVAL
from deploy.graph import LEARNER
from deploy.graph import LaunchSettings
from deploy.graph import SERVER
from deploy.graph import SERVICES
from deploy.graph import process_graph
from deploy.graph import start_plan
from deploy.watch import LearnerMilestones
from deploy.watch import ProgressLines
from deploy.watch import ServerView
from deploy.watch import reached_return

_FINISH_TIMEOUT_S = 120.0


@dataclasses.dataclass
class Processes:
  """The graph's processes as one engine runs them: this host's (below) or
  a Ray cluster's (deploy/ray_children.py)."""
  children: Dict[str, GraphProcess]  # Child or RayChild, by name, in
  # start order.
  server_address: Callable[[], Tuple[str, int]]  # Once the server started.
  milestones: Any  # `reached(event)`: the learner's, of this launch.
  eval_rows: Callable[[], List[dict]]  # The eval results so far.
  env: Dict[str, str]  # The children's environment.


def run_local(settings: LaunchSettings, stop: shutdown.Shutdown) -> int:
  """Runs the topology on this host to the end; the launcher's exit code."""
  port = settings.port or ports.free_port()
  # Before any child starts: milestones of earlier launches do not count.
  milestones = LearnerMilestones(settings.root_dir)
  children = make_children(settings, process_graph(settings), port)
  csv_path = run_dir.returns_csv_path(settings.root_dir)
  return run(settings, stop, Processes(
      children, lambda: ('localhost', port), milestones,
      lambda: run_dir.read_eval_returns(csv_path), child_env()))


def run(settings: LaunchSettings, stop: shutdown.Shutdown,
        processes: Processes) -> int:
  """Runs the processes to the end; returns the launcher's exit code."""
  start = time.monotonic()
  run_dir.record_start(settings.root_dir)
  children = processes.children
  launcher_records = records.RecordWriter(settings.root_dir, records.LAUNCHER)
  print(f'{start_plan([c.spec for c in children.values()])}; logs in '
        f'{os.path.join(settings.root_dir, run_dir.LOGS_DIR)}', flush=True)
  server = ServerView(processes.server_address)
  try:
    for child in children.values():
      if child.after is None:
        child.start(processes.env)
    _wait_for_server(children[SERVER], server, settings.startup_timeout_s)
    for child in children.values():
      if child.started:
        _print_started(child, launcher_records)
    host, port = processes.server_address()
    print(f'Status: {sys.executable} -m report.status '
          f'--reverb_address={host}:{port} '
          f'--root_dir={settings.root_dir}', flush=True)
    if settings.tensorboard_port:
      print(f'TensorBoard: http://localhost:{settings.tensorboard_port} (once '
            f'training runs)', flush=True)
    outcome = _supervise(settings, processes, server, stop, start,
                         launcher_records)
    final = server.read(lambda client: progress.take_snapshot(
        client, processes.eval_rows()))
  except ChildFailed as e:
    print(f'error (launcher): {e}', file=sys.stderr, flush=True)
    children_lib.stop_all(children)
    return e.exit_code
  children_lib.stop_all(children)
  # Imported at the end: matplotlib takes a while.
  from report import summary  # pylint: disable=g-import-not-at-top
  summary.print_final(final, settings.root_dir)
  summary.print_results(settings.root_dir, settings.flagfile)
  return outcome


def _print_started(child: Child,
                   launcher_records: records.RecordWriter) -> None:
  print(f'  {child.name:<14} {child.where()}', flush=True)
  exits.record_started(child, launcher_records)


def _wait_for_server(server: Child, view: ServerView,
                     timeout_s: float) -> None:
  """Until the server's port takes connections (no Reverb client here)."""
  def check_alive():
    if server.returncode is not None:
      exits.fail_on_bad_input(server)
      raise ChildFailed(exits.exit_report(server, 'before it answered'))

  host, port = view.address()
  if not ports.wait_until_listening(host, port, timeout_s,
                                    between_tries=check_alive):
    raise ChildFailed(
        f'reverb_server did not answer on {host}:{port} within '
        f'{timeout_s:.0f}s; its log: {server.log_path}\n{server.log_tail()}')


def _start_due(children, milestones, env, launched_at, settings,
               learner_done, launcher_records) -> None:
  """Starts the children whose learner milestone came (or all, once the
  wait for it timed out)."""
  timed_out = not learner_done and (
      time.monotonic() - launched_at >= settings.staged_start_timeout_s)
  for child in children.values():
    if child.started or (learner_done and child.name != EVAL):
      continue
    if timed_out or milestones.reached(child.after):
      child.start(env)
      _print_started(child, launcher_records)


def _supervise(settings, processes, server, stop, start,
               launcher_records) -> int:
  """Starts the later children, restarts those that die, prints progress
  until the job ends."""
  children, milestones = processes.children, processes.milestones
  learner = children[LEARNER]
  progress_lines = ProgressLines(start, settings, processes.eval_rows)
  learner_done_at = first_step_at = None
  while True:
    if first_step_at is None and milestones.reached(records.FIRST_TRAIN_STEP):
      first_step_at = time.monotonic()
      print(f'First train step {first_step_at - start:.1f}s after launch',
            flush=True)
      progress_lines.start(server)
    if (learner_done_at is None and learner.restart_at is None and
        learner.returncode == 0):
      learner_done_at = time.monotonic()
      learner.finished = True
      print('Learner finished; waiting for the actors and eval to finish',
            flush=True)
    # Eval starts even when the learner has finished: it evaluates the last
    # weights.
    _start_due(children, milestones, processes.env, start, settings,
               learner_done_at is not None, launcher_records)
    exits.handle_exits(children, learner_done_at is not None, server,
                       settings, processes.env, launcher_records)
    if learner_done_at is not None:
      others = [c for n, c in children.items()
                if n not in (*SERVICES, LEARNER)]
      if all(c.finished or not c.started for c in others):
        return 0
      if time.monotonic() - learner_done_at > _FINISH_TIMEOUT_S:
        print('Some actors did not finish after the learner: stopping them',
              flush=True)
        return 0
    if stop.requested:
      print(f'Stopping all processes ({stop.reason})', flush=True)
      return 128 + stop.signal_number if stop.signal_number else 1
    if learner_done_at is None and first_step_at is not None:
      progress_lines.print_when_due(
          server, sum(c.history.total for c in children.values()))
    if settings.stop_at_return is not None and reached_return(
        processes.eval_rows(), settings.stop_at_return, start):
      return 0
    stop.wait(0.5)
