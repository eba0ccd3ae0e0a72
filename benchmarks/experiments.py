"""The benchmarks' experiments: a configs/ flagfile with an unblocking
replay table (MinSize limiter, room for every insert), and its Reverb server
as a separate process, as in production (samples and inserts over gRPC)."""
import contextlib
import os
import subprocess
import sys
from typing import Iterator, List, NamedTuple

from absl import flags
import portpicker

from common import cli
from common import reverb_io
from common.config import ExperimentConfig

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def flag_args(name: str, overrides) -> List[str]:
  """The command-line flags of load(name, *overrides)."""
  return [f'--flagfile={os.path.join(PROJECT_ROOT, "configs", name)}.flags',
          '--rate_limiter=min_size', '--initial_collect_steps=1',
          '--replay_capacity=1000000', *overrides]


def load(name: str, *overrides: str) -> ExperimentConfig:
  """configs/<name>.flags with `overrides` (more --flag=value)."""
  fv = flags.FlagValues()
  cli.define_experiment_flags(fv)
  fv(['benchmark', *flag_args(name, overrides)])
  return cli.experiment_config(fv)


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
    reverb_io.connect(address, timeout_s=60)
    yield ServerProcess(address, server.pid)
  finally:
    server.kill()
    server.wait()
