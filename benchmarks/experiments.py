"""The benchmarks' experiments: a configs/ flagfile with an unblocking
replay table (MinSize limiter, room for every insert), and its Reverb server
as a separate process, as in production (samples and inserts over gRPC)."""
import contextlib
import os
import shlex
import subprocess
import sys
import time
from typing import Iterator, List, NamedTuple

import portpicker

from common import cli
from common.connection import connect
from common import run_dir
from common.config import ExperimentConfig

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flag_args(name: str, overrides) -> List[str]:
  """The command-line flags of load(name, *overrides)."""
  return [f'--flagfile={os.path.join(PROJECT_ROOT, "configs", name)}.flags',
          '--rate_limiter=min_size', '--initial_collect_steps=1',
          '--replay_capacity=1000000', *overrides]


def load(name: str, *overrides: str) -> ExperimentConfig:
  """configs/<name>.flags with `overrides` (more --flag=value), its replay
  table made unblocking."""
  return cli.parse_experiment(flag_args(name, overrides))


class ServerProcess(NamedTuple):
  address: str
  pid: int


@contextlib.contextmanager
def server_process(name: str, *overrides: str) -> Iterator[ServerProcess]:
  """`python -m reverb_server` for load(name, *overrides) on a free port;
  yields it once it answers, stops it on exit."""
  port = portpicker.pick_unused_port()
  server = subprocess.Popen(
      [sys.executable, '-m', 'reverb_server', *flag_args(name, overrides),
       f'--port={port}'], cwd=PROJECT_ROOT, stderr=subprocess.DEVNULL)
  try:
    address = f'localhost:{port}'
    connect(address, timeout_s=60)
    yield ServerProcess(address, server.pid)
  finally:
    server.kill()
    server.wait()


def run_to_results(name: str, command: List[str], root_dir: str,
                   record_start: bool = False) -> str:
  """Runs `command`, which writes a run with eval results into root_dir,
  its output in root_dir/<name>.out; a root_dir that already holds results
  is kept and not run again. `record_start` notes the start time for a
  command that does not (the launcher does). Returns root_dir."""
  if os.path.exists(run_dir.returns_csv_path(root_dir)):
    print(f'{name}: reporting the results already in {root_dir}', flush=True)
    return root_dir
  if record_start:
    run_dir.record_start(root_dir)
  os.makedirs(root_dir, exist_ok=True)
  log_path = os.path.join(root_dir, f'{name}.out')
  print(f'{name}: {shlex.join(command)} > {log_path}', flush=True)
  started = time.monotonic()
  with open(log_path, 'w') as log:
    subprocess.run(command, cwd=PROJECT_ROOT, stdout=log,
                   stderr=subprocess.STDOUT, check=True)
  print(f'{name}: done in {time.monotonic() - started:.0f}s', flush=True)
  return root_dir
