"""The command-line layer shared by the binaries' mains.

Every binary reads the same experiment --flagfile, so every binary defines
the experiment flags with `define_experiment_flags()` and turns them into an
ExperimentConfig with `experiment_config()`. Library code never sees flags.
"""
import gc
import os
import sys
from typing import Callable, List

from absl import app
from absl import flags
from absl import logging

from common import config as cfg
from common import settings
from common.errors import UserError

_EXPERIMENT_SECTIONS = (cfg.EnvConfig, cfg.AgentConfig, cfg.ReplayConfig,
                        cfg.TrainConfig, cfg.PPOConfig, cfg.ExperimentConfig)


def define_experiment_flags(fv: flags.FlagValues = flags.FLAGS) -> List[str]:
  """Defines the flags of an experiment flagfile (call once, from a main):
  one per setting of the config dataclasses. Returns their names."""
  return [name for section in _EXPERIMENT_SECTIONS
          for name in settings.define_flags(section, fv)]


def experiment_config(fv: flags.FlagValues = flags.FLAGS
                      ) -> cfg.ExperimentConfig:
  """Builds the validated ExperimentConfig from parsed flags."""
  return settings.from_flags(
      cfg.ExperimentConfig, fv,
      env=settings.from_flags(cfg.EnvConfig, fv),
      agent=settings.from_flags(cfg.AgentConfig, fv),
      replay=settings.from_flags(cfg.ReplayConfig, fv),
      train=settings.from_flags(cfg.TrainConfig, fv),
      ppo=settings.from_flags(cfg.PPOConfig, fv))


def parse_experiment(args: List[str]) -> cfg.ExperimentConfig:
  """The ExperimentConfig of command-line flags (e.g. a --flagfile), read
  apart from this process's own flags."""
  fv = flags.FlagValues()
  define_experiment_flags(fv)
  fv(['experiment', *args])
  return experiment_config(fv)


def log_config(config: cfg.ExperimentConfig) -> None:
  """Logs the hyperparameters as a table, one `section.field = value` a line."""
  rows = []
  sections = ('env', 'agent', config.builder.config_section, 'train')
  for section in sections:
    for field, value in getattr(config, section).__dict__.items():
      rows.append(f'  {section}.{field:<24} {value}')
  rows.append(f'  {"seed":<31} {config.seed}')
  logging.info('Experiment config:\n%s', '\n'.join(rows))


def pause_gc() -> None:
  """Call first thing in a main module: no garbage collection until `run`.

  Importing TensorFlow and TF-Agents allocates millions of objects and no
  garbage to speak of; collecting along the way costs a fifth of the imports'
  CPU (~0.45 s of ~2.1 s per process, which every process pays at start).
  """
  gc.disable()


def run(name: str, main: Callable[[], None]) -> None:
  """app.run with fail-fast handling: a user error (a bad flag included) is
  one line and exit 2.

  Collection resumes (see `pause_gc`), with what the imports made frozen:
  never garbage, so never scanned again.
  """
  gc.freeze()
  gc.enable()
  def wrapped(argv):
    if len(argv) > 1:
      fail(name, f'unexpected arguments {argv[1:]}: every option is a --flag')
    try:
      main()
    except UserError as e:
      fail(name, f'{type(e).__name__}: {e}')
    except InterruptedError as e:  # A stop request during a startup wait.
      logging.info('%s: %s', name, e)
    exit_now(0)

  def parse_flags(argv):
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:
      fail(name, f'{e} (--helpshort lists the flags)')
  app.run(wrapped, flags_parser=parse_flags)


def exit_now(code: int) -> None:
  """Exits without the interpreter's teardown.

  Tearing down TensorFlow, Reverb and gRPC takes seconds, which would make
  every stop (docker compose down, a Ctrl-C) slow. The mains flush what they
  wrote before returning; here only the logs are left to flush.
  """
  logging.flush()
  sys.stdout.flush()
  sys.stderr.flush()
  os._exit(code)  # pylint: disable=protected-access


def fail(name: str, message: str) -> None:
  """Prints one error line naming the process and exits with code 2."""
  sys.stderr.write(f'error ({name}): {message}\n')
  sys.stderr.flush()
  sys.exit(2)
