"""The graph's processes on a Ray cluster: one Ray actor per process, placed
by resources, each running our binary on its node as the local launcher runs
it (same arguments, start-up, checkpoints and signals).

A node that dies takes its processes with it; Ray starts their actors again
on nodes with the resource (`max_restarts`), and the launcher starts the
process in the new actor (exits.handle_exits). Every call to an actor is
bounded or asynchronous: the launcher never waits on a node that is gone.
"""
import dataclasses
import os
import time
from typing import Dict, List, Optional, Tuple
import uuid

import ray
from ray.util import scheduling_strategies

from common import ports
from common import records
from common import run_dir
from common.errors import UserError
from common.settings import setting
from deploy.children import Child
from deploy.children import ChildFailed
from deploy.children import GraphProcess
from deploy.children import child_env
from deploy.graph import EVAL
from deploy.graph import LEARNER
from deploy.graph import LaunchSettings
from deploy.graph import ProcessSpec
from deploy.graph import SERVER
from deploy.graph import SERVES
from deploy.graph import TENSORBOARD
from deploy.graph import command_args
from deploy.restarts import RestartHistory

_CALL_TIMEOUT_S = 30.0  # A call to a live actor answers in milliseconds.
# An actor reported dead this long is one Ray gave up on (past
# max_restarts), not one being placed again.
_DEAD_FOR_S = 60.0


@dataclasses.dataclass(frozen=True)
class RayPlacement:
  """Which node each process may run on: custom resources of the nodes."""
  address: str = setting(
      'auto', help="The Ray cluster's address (host:port of its head; auto: "
      'the cluster this host belongs to).')
  replay_resource: str = setting(
      'replay', help='The Reverb server runs on a node with this resource.')
  learner_resource: str = setting(
      'learner', help='The learner runs on a node with this resource.')
  collector_resource: str = setting(
      'collector', help='Each collect actor takes one unit of this resource '
      '(a node offering 4 runs up to 4).')
  learner_gpus: float = setting(
      0.0, lower_bound=0.0, help="GPUs the learner takes (for its strategy's "
      'replicas); the processes without GPUs see none.')


class PlacementError(UserError, RuntimeError):
  """The cluster cannot place the graph's processes."""


def check_resources(placement: RayPlacement, actors: int,
                    tpu: bool = False) -> Optional[str]:
  """Raises PlacementError when no node can take the server or the learner
  (with its GPUs, or a TPU when `tpu`); a warning when some collect actors
  must wait for nodes, else None."""
  total = ray.cluster_resources()
  needs = [(SERVER, placement.replay_resource, 1.0),
           (LEARNER, placement.learner_resource, 1.0),
           ('the collect actors', placement.collector_resource, 1.0)]
  if placement.learner_gpus:
    needs.append((LEARNER, 'GPU', placement.learner_gpus))
  if tpu:
    needs.append((LEARNER, 'TPU', 1.0))
  for process, resource, amount in needs:
    if total.get(resource, 0.0) >= amount:
      continue
    if resource in ('GPU', 'TPU'):
      raise PlacementError(
          f'the Ray cluster has {total.get(resource, 0):g} {resource}s, the '
          f'learner asks for {amount:g}' + (' (--learner_gpus)'
                                            if resource == 'GPU' else ''))
    raise PlacementError(
        f'no node of the Ray cluster offers {amount:g} {resource!r} (for '
        f'{process}); it offers {_describe(total)}. Start a node with '
        f'`ray start ... --resources=\'{{"{resource}": 1}}\'`')
  capacity = int(total.get(placement.collector_resource, 0.0))
  if actors > capacity:
    return (f'{actors - capacity} of {actors} collect actors wait for a node '
            f'with {placement.collector_resource!r} (the cluster offers '
            f'{capacity})')
  return None


def _describe(resources: Dict[str, float]) -> str:
  shown = {name: amount for name, amount in sorted(resources.items())
           if not name.startswith(('node:', 'memory', 'object_store'))}
  return ', '.join(f'{name} {amount:g}' for name, amount in shown.items())


class _NodeGone(Exception):
  """The actor's node went during a call."""


class ProcessHost:
  """A Ray actor that runs one process of the graph on its node."""

  def __init__(self, name: str, log_path: str):
    # A new one each time Ray (re)places the actor: the launcher tells a
    # restart on another node from a process that still runs.
    self._incarnation = uuid.uuid4().hex
    self._name = name
    self._log_path = log_path
    self._child: Optional[Child] = None

  def free_port(self) -> int:
    return ports.free_port()

  def start(self, module: str, args: List[str],
            env_vars: Dict[str, str]) -> dict:
    """Starts the process (stopping the one before, if it still runs)."""
    if self._child and self._child.returncode is None:
      self._child.terminate()
      self._child.wait(_CALL_TIMEOUT_S)
    os.makedirs(os.path.dirname(self._log_path), exist_ok=True)
    env = child_env()
    env.update(env_vars)
    self._child = Child(ProcessSpec(self._name, module, []), args,
                        self._log_path, history=None)
    self._child.start(env)
    return self.status()

  def status(self) -> dict:
    child = self._child
    return {'incarnation': self._incarnation,
            'node': ray.util.get_node_ip_address(),
            'pid': child.process.pid if child else None,
            'returncode': child.returncode if child else None}

  def terminate(self) -> None:
    if self._child:
      self._child.terminate()

  def wait(self, timeout_s: float) -> Optional[int]:
    if self._child:
      self._child.wait(timeout_s)
      return self._child.returncode
    return None

  def log_tail(self) -> str:
    return self._child.log_tail() if self._child else ''

  def error_line(self) -> Optional[str]:
    return self._child.error_line() if self._child else None

  def eval_rows(self, root_dir: str) -> List[dict]:
    return run_dir.read_eval_returns(run_dir.returns_csv_path(root_dir))


class RayChild(GraphProcess):
  """One process of the graph in a ProcessHost actor, as deploy/children's
  Child is one on this host (the same interface, for the supervisor)."""

  def __init__(self, spec: ProcessSpec, settings: LaunchSettings,
               options: dict, server: Optional['RayChild'], waits_for: str,
               launcher_records: records.RecordWriter):
    self.spec = spec
    self.log_path = run_dir.log_path(settings.root_dir, spec.name)
    self.history = RestartHistory(settings.restart)
    self.pending_restart = None
    self.restart_at: Optional[float] = None
    self.finished = False
    self._settings = settings
    self._options = options
    self._server = server  # None: this is the server.
    self._waits_for = waits_for  # Said while no node takes it.
    self._records = launcher_records
    self._host = None
    self._starting = None  # The start call, until it answers.
    self._status: Optional[dict] = None  # Of the current start.
    self._latest: Optional[dict] = None  # The newest status read.
    self._polling = None
    self._port: Optional[int] = None  # The server's.
    self._dialed: Optional[str] = None  # The address this start dials.
    self._rows: List[dict] = []
    self._reading_rows = None
    self._dead_since: Optional[float] = None

  def start(self, env: Dict[str, str]) -> None:
    """Starts the process in the actor; the server's start waits for it to
    run (the others dial its address), the others' do not (their node may
    not exist yet)."""
    del env  # Each node makes its own (deploy.children.child_env).
    if self._host is None:
      self._host = ray.remote(ProcessHost).options(**self._options).remote(
          self.name, self.log_path)
    if self.spec.reverb == SERVES:
      self._start_server()
      return
    host, self._port = self._server.address()
    if self.spec.reverb is not None:
      self._dialed = f'{host}:{self._port}'
    args = command_args(self.spec, self._settings, host, self._port)
    env_vars = {} if self.spec.name == LEARNER and self._options.get(
        'num_gpus') else {'CUDA_VISIBLE_DEVICES': ''}
    self._status = self._latest = None
    self._polling = None
    self._starting = self._host.start.remote(self.spec.module, args,
                                             env_vars)

  def _start_server(self) -> None:
    """The server's start, waited for: the others dial its port. If its node
    is going, Ray places the actor again and moved() says so."""
    self._status = self._latest = self._polling = self._starting = None
    try:
      self._port = self._get(self._host.free_port.remote(),
                             self._settings.startup_timeout_s)
      args = command_args(self.spec, self._settings, None, self._port)
      self._status = self._latest = self._get(
          self._host.start.remote(self.spec.module, args,
                                  {'CUDA_VISIBLE_DEVICES': ''}),
          self._settings.startup_timeout_s)
    except _NodeGone:
      pass

  def address(self) -> Tuple[str, int]:
    """The server's node and port (this child is the server)."""
    status = self._status or {}
    return status.get('node'), self._port

  @property
  def started(self) -> bool:
    return self._host is not None

  @property
  def returncode(self) -> Optional[int]:
    """None while running, not placed yet, or its node is being replaced."""
    status = self._poll()
    if (status is None or self._status is None or
        status['incarnation'] != self._status['incarnation']):
      return None
    return status['returncode']

  def moved(self) -> Optional[str]:
    """Why the process must start again where it now belongs, if it must:
    Ray placed its actor again (its node died, maybe during the start), or
    the server it dials did."""
    status = self._poll()
    if self._starting is not None or status is None:
      return None
    if (self._status is None or
        status['incarnation'] != self._status['incarnation']):
      return 'its node was lost'
    if self._dialed and self._server.address()[0] is not None:
      server = '%s:%d' % self._server.address()
      if server != self._dialed:
        return f'the server moved to {server}'
    return None

  def terminate(self) -> None:
    if self._host is not None:
      self._host.terminate.remote()

  def wait(self, timeout_s: float) -> None:
    """Until the process exits (it is killed after `timeout_s`), then ends
    the actor."""
    if self._host is None:
      return
    try:
      if self._status is not None:
        self._get(self._host.wait.remote(timeout_s), timeout_s + 10)
    except (ChildFailed, _NodeGone):
      pass  # Its node is gone: so is the process.
    ray.kill(self._host, no_restart=True)
    self._host = None

  def log_tail(self) -> str:
    try:
      return self._get(self._host.log_tail.remote(), _CALL_TIMEOUT_S)
    except (ChildFailed, _NodeGone) as e:
      return f'    (no log: {e})'

  def error_line(self) -> Optional[str]:
    try:
      return self._get(self._host.error_line.remote(), _CALL_TIMEOUT_S)
    except (ChildFailed, _NodeGone):
      return None

  def where(self) -> str:
    if self._status is None:
      return f'placing on {self._waits_for}; log {self.log_path}'
    return (f'node {self._status["node"]:<12} pid {self._status["pid"]:<8} '
            f'{self.log_path}')

  def placement(self) -> Dict[str, object]:
    """Where the process runs; {} until Ray placed it (its STARTED record
    is written then)."""
    if self._status is None:
      return {}
    placement = {'node': self._status['node'], 'pid': self._status['pid']}
    if self.spec.reverb == SERVES:
      placement['port'] = self._port
    elif self.spec.reverb is not None:
      placement['reverb_address'] = self._dialed
    return placement

  def eval_rows(self) -> List[dict]:
    """The eval results as its node last had them (read in the background)."""
    if self._host is None or self._status is None:
      return self._rows
    if self._reading_rows is None:
      self._reading_rows = self._host.eval_rows.remote(
          self._settings.root_dir)
    if ray.wait([self._reading_rows], timeout=0)[0]:
      try:
        self._rows = ray.get(self._reading_rows)
      except ray.exceptions.RayError:
        pass  # Its node is gone; the rows come back with the next one.
      self._reading_rows = None
    return self._rows

  def _poll(self) -> Optional[dict]:
    """The newest status (None before a start): never waits (a status call
    goes out in the background); raises ChildFailed once Ray gave up on the
    actor."""
    if self._host is None:
      return None
    if self._starting is not None:
      if not ray.wait([self._starting], timeout=0)[0]:
        return None  # Not placed yet.
      self._status = self._latest = self._result(self._starting)
      self._starting = None
      if self._status is not None:
        print(f'  {self.name:<14} {self.where()}', flush=True)
        self._records.write(records.STARTED, process=self.name,
                            **self.placement())
      return self._latest
    if self._polling is None:
      self._polling = self._host.status.remote()
    if ray.wait([self._polling], timeout=0)[0]:
      self._latest = self._result(self._polling)
      self._polling = None
    return self._latest

  def _result(self, ref) -> Optional[dict]:
    try:
      status = ray.get(ref)
    except ray.exceptions.ActorDiedError as e:
      now = time.monotonic()
      self._dead_since = self._dead_since or now
      if now - self._dead_since > _DEAD_FOR_S:
        raise ChildFailed(
            f'{self.name}: its Ray actor is dead, past its restarts '
            f'({str(e).splitlines()[0]}); its log: {self.log_path}') from e
      return None
    except ray.exceptions.RayError:
      return None  # Its node is gone; Ray is placing the actor again.
    self._dead_since = None
    return status

  def _get(self, ref, timeout_s: float):
    """The call's answer; ChildFailed when there is none in time, _NodeGone
    when the actor's node went."""
    try:
      return ray.get(ref, timeout=timeout_s)
    except ray.exceptions.GetTimeoutError as e:
      raise ChildFailed(f'{self.name}: no answer from its Ray actor within '
                        f'{timeout_s:.0f}s ({self._waits_for})') from e
    except ray.exceptions.RayError as e:
      raise _NodeGone(str(e).splitlines()[0]) from e


def make_children(settings: LaunchSettings, graph: List[ProcessSpec],
                  placement: RayPlacement) -> Dict[str, RayChild]:
  """A RayChild per process of the graph, by name, in start order."""
  lifetime_restarts = (settings.restart.max_restarts
                       if settings.restart.mode == 'on-failure' else 0)
  base = {'num_cpus': 0, 'max_restarts': lifetime_restarts,
          'max_task_retries': 0}
  here = scheduling_strategies.NodeAffinitySchedulingStrategy(
      ray.get_runtime_context().get_node_id(), soft=False)
  launcher_records = records.RecordWriter(settings.root_dir, records.LAUNCHER)
  children = {}
  for spec in graph:
    if spec.name == SERVER:
      resource = placement.replay_resource
      options = {'resources': {resource: 1}}
    elif spec.name == LEARNER:
      resource = placement.learner_resource
      # A TPU learner goes to a TPU host (Ray's TPU resource).
      tpu = {'TPU': 1} if settings.strategy.kind == 'tpu' else {}
      options = {'resources': {resource: 1, **tpu},
                 'num_gpus': placement.learner_gpus}
    elif spec.name in (EVAL, TENSORBOARD):
      resource = None
      # TensorBoard on the launcher's node: its URL is this host's.
      options = ({'scheduling_strategy': here} if spec.name == TENSORBOARD
                 else {})
    else:
      resource = placement.collector_resource
      options = {'resources': {resource: 1},
                 'scheduling_strategy': 'SPREAD'}
    children[spec.name] = RayChild(
        spec, settings, {**base, **options}, children.get(SERVER),
        f'a node with {resource!r}' if resource else 'a node',
        launcher_records)
  return children
