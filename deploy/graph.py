"""The topology of a local launch as data: which processes run, with what
arguments, and which learner milestone each waits for before it starts.

Start order: a child's start-up is mostly importing TensorFlow and
TF-Agents, 1.5-2 s of CPU each, so on a small host each process started
early slows down the first train step. The server, the learner and the
first collect actor start at once; the other collect actors when the learner
has pushed its first weights (its own start-up is done); eval and TensorBoard
when it has trained its first step.
"""
import dataclasses
import math
import os
from typing import List, Optional

from common import records
from common import run_dir
from common.config import StrategySettings
from common.errors import ConfigError
from common.settings import setting
from deploy.restarts import RestartPolicy

SERVER = 'reverb_server'
LEARNER = 'learner'
EVAL = 'eval'
TENSORBOARD = 'tensorboard'
SERVICES = (SERVER, TENSORBOARD)  # They run until stopped; the others finish.


@dataclasses.dataclass(frozen=True)
class LaunchSettings:
  flagfile: str  # The experiment, as every child reads it.
  max_train_steps: int  # From the experiment: when actors may finish.
  root_dir: Optional[str] = setting(help='Where results and logs go.',
                                    required=True)
  actors: int = setting(2, lower_bound=1, help='Collect actors.')
  port: int = setting(0, lower_bound=0, upper_bound=65535,
                      help='Reverb port (0: a free one).')
  eval: bool = setting(True, help='Run the eval actor.')
  progress_every_s: float = setting(5.0, help='Progress line interval.')
  stop_at_return: Optional[float] = setting(
      help='Stop everything once an eval average return reaches this (e.g. '
      '200 for CartPole-v0).')
  tensorboard_port: int = setting(
      0, lower_bound=0, upper_bound=65535,
      help='Also run TensorBoard on this port (0: do not).')
  startup_timeout_s: float = 120.0
  # Children waiting for a learner milestone start anyway this long after
  # the launch.
  staged_start_timeout_s: float = 30.0
  restart: RestartPolicy = RestartPolicy()
  strategy: StrategySettings = StrategySettings()  # The learner's.

  def __post_init__(self):
    if self.stop_at_return is not None and not math.isfinite(
        self.stop_at_return):
      raise ConfigError(f'--stop_at_return must be a finite number, got '
                        f'{self.stop_at_return}')


# How a process meets the Reverb server.
SERVES = 'serves'  # It is the server: it takes --port.
DIALS = 'dials'  # It dials the server: it takes --reverb_address.


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
  name: str
  module: str  # Run as `python -m <module> <args>`.
  args: List[str]  # All but the server's address (command_args adds it).
  # The learner's milestone it waits for, a records event (None: starts at
  # launch).
  after: Optional[str] = None
  reverb: Optional[str] = None  # SERVES, DIALS or neither.


def actor_name(task: int) -> str:
  return f'actor_{task}'


def process_graph(settings: LaunchSettings) -> List[ProcessSpec]:
  """The processes of the topology, in start order."""
  experiment = f'--flagfile={settings.flagfile}'
  root = f'--root_dir={settings.root_dir}'
  checkpoints = os.path.join(settings.root_dir, run_dir.REVERB_CHECKPOINTS_DIR)
  # The server starts with the learner and the first actor: they wait for it.
  graph = [
      ProcessSpec(SERVER, 'reverb_server', [
          experiment, f'--checkpoint_dir={checkpoints}', root],
                  reverb=SERVES),
      ProcessSpec(LEARNER, 'learner', [
          experiment, root, *_strategy_args(settings.strategy)],
                  reverb=DIALS)]
  for task in range(settings.actors):
    graph.append(ProcessSpec(
        actor_name(task), 'actor', [experiment, root, f'--task={task}'],
        after=records.WEIGHTS_PUSHED if task else None, reverb=DIALS))
  if settings.eval:
    graph.append(ProcessSpec(EVAL, 'actor', [experiment, root, '--mode=eval'],
                             after=records.FIRST_TRAIN_STEP, reverb=DIALS))
  if settings.tensorboard_port:
    graph.append(ProcessSpec(TENSORBOARD, 'tensorboard.main', [
        f'--logdir={settings.root_dir}', '--host=localhost',
        f'--port={settings.tensorboard_port}'],
        after=records.FIRST_TRAIN_STEP))
  return graph


def command_args(spec: ProcessSpec, settings: LaunchSettings, host: str,
                 port: int) -> List[str]:
  """`spec`'s arguments with the server's address: `host:port` (the server
  listens on every interface, on `port`)."""
  if spec.reverb == SERVES:
    return [*spec.args, f'--port={port}']
  if spec.reverb == DIALS:
    return [*spec.args, f'--reverb_address={host}:{port}',
            f'--connect_timeout_s={settings.startup_timeout_s}']
  return list(spec.args)


def _strategy_args(strategy: StrategySettings) -> List[str]:
  args = [f'--strategy={strategy.kind}']
  if strategy.tpu:
    args.append(f'--tpu={strategy.tpu}')
  if strategy.cpu_replicas:
    args.append(f'--cpu_replicas={strategy.cpu_replicas}')
  return args


def start_plan(graph: List[ProcessSpec]) -> str:
  """One line: what starts now and what later."""
  when = {records.WEIGHTS_PUSHED: 'once the learner has pushed weights',
          records.FIRST_TRAIN_STEP: 'once it trains'}
  later = [f'{", ".join(p.name for p in graph if p.after == a)} {text}'
           for a, text in when.items() if any(p.after == a for p in graph)]
  now = ', '.join(p.name for p in graph if p.after is None)
  return '; '.join([f'Starting {now}', *later])
