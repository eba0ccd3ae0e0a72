"""What both launchers (deploy.launch_local, deploy.launch_ray) take: the
experiment's flags and the launch's, and the LaunchSettings made of them."""
import os
from typing import List

from absl import flags

from common import cli
from common import run_dir
from common import settings
from common.config import StrategySettings
from deploy import restarts
from deploy.graph import LaunchSettings


def define_flags(module_name: str) -> List[str]:
  """Defines the flags in the launcher `module_name`; the experiment's
  names."""
  names = cli.define_experiment_flags()
  for launch_settings in (LaunchSettings, restarts.RestartPolicy,
                          StrategySettings):
    settings.define_flags(launch_settings, module_name=module_name)
  return names


def launch_settings(experiment_flags: List[str]) -> LaunchSettings:
  """The launch the flags ask for. The experiment, as parsed here
  (flagfile + overrides), is saved under --root_dir as the flagfile every
  child reads, and kept as the run's record.

  Only the flags are checked here: a bad env or agent is reported by the
  children, which build them anyway (a launcher imports no TensorFlow before
  they start), and repeated by the launcher as one error line.
  """
  config = cli.experiment_config()
  root_dir = run_dir.ensure_writable_dir(flags.FLAGS.root_dir)
  flagfile = os.path.join(root_dir, run_dir.EXPERIMENT_FLAGS)
  with open(flagfile, 'w') as f:
    for name in experiment_flags:
      if flags.FLAGS[name].value is not None:
        f.write(flags.FLAGS[name].serialize() + '\n')
  cli.log_config(config)
  return settings.from_flags(
      LaunchSettings, flagfile=flagfile, root_dir=root_dir,
      max_train_steps=config.train.max_train_steps,
      restart=settings.from_flags(restarts.RestartPolicy),
      strategy=settings.from_flags(StrategySettings))
