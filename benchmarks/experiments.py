"""The benchmarks' experiments: a configs/ flagfile with an unblocking
replay table (MinSize limiter, room for every insert)."""
import os
from typing import Tuple

from absl import flags
import portpicker

from common import cli
from common.config import ExperimentConfig
from reverb_server.server import ReplayServer
from reverb_server.server import ServerSettings

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(name: str, *overrides: str) -> ExperimentConfig:
  """configs/<name>.flags with `overrides` (more --flag=value)."""
  fv = flags.FlagValues()
  cli.define_experiment_flags(fv)
  fv(['benchmark',
      f'--flagfile={os.path.join(PROJECT_ROOT, "configs", name)}.flags',
      '--rate_limiter=min_size', '--initial_collect_steps=1',
      '--replay_capacity=1000000', *overrides])
  return cli.experiment_config(fv)


def start_server(config: ExperimentConfig) -> Tuple[ReplayServer, str]:
  """The experiment's tables on a free local port; the server, its address."""
  port = portpicker.pick_unused_port()
  return ReplayServer(config, ServerSettings(port=port)), f'localhost:{port}'
