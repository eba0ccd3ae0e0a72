"""The command-line layer shared by the binaries' mains.

Every binary reads the same experiment --flagfile, so every binary defines
the experiment flags with `define_experiment_flags()` and turns them into an
ExperimentConfig with `experiment_config()`. Library code never sees flags.
"""
import gc
import os
import sys
from typing import Callable, List, Optional

from absl import app
from absl import flags
from absl import logging

from common import config as cfg
from common.errors import UserError

_FLAG_DOCS = '(unset: the agent\'s tutorial default)'


def define_experiment_flags(fv: flags.FlagValues = flags.FLAGS) -> List[str]:
  """Defines the flags of an experiment flagfile (call once, from a main).

  Returns their names.
  """
  before = set(fv)

  def define(define_fn, name, default, help_text, **kwargs):
    define_fn(name, default, help=help_text, flag_values=fv, **kwargs)

  define(flags.DEFINE_string, 'env', 'CartPole-v0',
         'Environment name (gym or pybullet).')
  define(flags.DEFINE_enum, 'env_suite', 'auto',
         'TF-Agents suite to load --env with; auto picks pybullet for '
         '*Bullet* names.', enum_values=cfg.ENV_SUITES)
  define(flags.DEFINE_enum, 'agent', 'dqn', 'Agent kind.',
         enum_values=cfg.AGENT_KINDS)
  define(flags.DEFINE_list, 'fc_layer_params', None,
         f'DQN Q-network / SAC actor layer sizes {_FLAG_DOCS}.')
  define(flags.DEFINE_list, 'critic_fc_layer_params', None,
         f'SAC critic layer sizes {_FLAG_DOCS}.')
  define(flags.DEFINE_float, 'learning_rate', None,
         f'Adam learning rate(s) {_FLAG_DOCS}.')
  define(flags.DEFINE_integer, 'batch_size', None,
         f'Train batch size {_FLAG_DOCS}.')
  define(flags.DEFINE_float, 'gamma', None, f'Discount {_FLAG_DOCS}.')
  define(flags.DEFINE_float, 'target_update_tau', None,
         f'Target network update rate {_FLAG_DOCS}.')
  define(flags.DEFINE_integer, 'target_update_period', None,
         f'Target network update period {_FLAG_DOCS}.')
  define(flags.DEFINE_float, 'epsilon_greedy', None,
         f'DQN collect-policy exploration {_FLAG_DOCS}.')
  define(flags.DEFINE_float, 'reward_scale_factor', None,
         f'Reward scale {_FLAG_DOCS}.')
  define(flags.DEFINE_integer, 'replay_capacity', 100000,
         'Replay table max size (items).')
  define(flags.DEFINE_integer, 'initial_collect_steps', 100,
         'Random-policy steps the actors collect (together) before the '
         'learner samples.')
  define(flags.DEFINE_enum, 'rate_limiter', 'sample_to_insert',
         'sample_to_insert: keep the ratio of train steps to env steps; '
         'min_size: no ratio, only the initial collection.',
         enum_values=cfg.RATE_LIMITERS)
  define(flags.DEFINE_float, 'samples_per_insert', None,
         'Sampled items per inserted item (unset: the batch size, i.e. one '
         'train step per env step as in the tutorials).')
  define(flags.DEFINE_integer, 'rate_limiter_slack_steps', 1000,
         'Env steps collection may run ahead of or behind that ratio.')
  define(flags.DEFINE_float, 'replay_checkpoint_every_s', 300,
         'The Reverb server checkpoints its tables this often (seconds; and '
         'on SIGTERM): a server that is killed loses at most the items '
         'inserted since.')
  define(flags.DEFINE_integer, 'max_train_steps', 20000,
         'Training stops at this train step.')
  define(flags.DEFINE_integer, 'push_every_steps', 100,
         'The learner pushes weights every N train steps.')
  define(flags.DEFINE_integer, 'pull_every_steps', 100,
         'Collect actors pull weights every N steps of each of their envs.')
  define(flags.DEFINE_integer, 'envs_per_actor', 1,
         'Environments each collect actor steps in one batch, with one '
         'batched policy call per step.')
  define(flags.DEFINE_integer, 'checkpoint_every_steps', 5000,
         'Learner checkpoint interval (train steps).')
  define(flags.DEFINE_integer, 'policy_save_every_steps', 5000,
         'Policy SavedModel interval (train steps).')
  define(flags.DEFINE_integer, 'eval_every_steps', 1000,
         'Evaluate every N train steps (0: every new weights version).')
  define(flags.DEFINE_integer, 'eval_episodes', 10,
         'Episodes per evaluation.')
  define(flags.DEFINE_integer, 'log_every_steps', 1000,
         'Learner log and summary interval (train steps).')
  define(flags.DEFINE_integer, 'seed', 0,
         'Base seed; each collect actor adds its task id.')
  return sorted(set(fv) - before)


def experiment_config(fv: flags.FlagValues = flags.FLAGS
                      ) -> cfg.ExperimentConfig:
  """Builds the validated ExperimentConfig from parsed flags."""
  defaults = cfg.agent_defaults(fv.agent)
  overrides = {
      'fc_layer_params': _layer_sizes(fv, 'fc_layer_params'),
      'critic_fc_layer_params': _layer_sizes(fv, 'critic_fc_layer_params'),
      'learning_rate': fv.learning_rate,
      'batch_size': fv.batch_size,
      'gamma': fv.gamma,
      'target_update_tau': fv.target_update_tau,
      'target_update_period': fv.target_update_period,
      'epsilon_greedy': fv.epsilon_greedy,
      'reward_scale_factor': fv.reward_scale_factor,
  }
  agent = cfg.AgentConfig(**{
      **defaults.__dict__,
      **{k: v for k, v in overrides.items() if v is not None}})
  samples_per_insert = fv.samples_per_insert or float(agent.batch_size)
  return cfg.ExperimentConfig(
      env=cfg.EnvConfig(name=fv.env, suite=fv.env_suite),
      agent=agent,
      replay=cfg.ReplayConfig(
          capacity=fv.replay_capacity, min_size=fv.initial_collect_steps,
          rate_limiter=fv.rate_limiter, samples_per_insert=samples_per_insert,
          slack_steps=fv.rate_limiter_slack_steps,
          checkpoint_every_s=fv.replay_checkpoint_every_s),
      train=cfg.TrainConfig(
          max_train_steps=fv.max_train_steps,
          push_every_steps=fv.push_every_steps,
          pull_every_steps=fv.pull_every_steps,
          envs_per_actor=fv.envs_per_actor,
          checkpoint_every_steps=fv.checkpoint_every_steps,
          policy_save_every_steps=fv.policy_save_every_steps,
          eval_every_steps=fv.eval_every_steps,
          eval_episodes=fv.eval_episodes,
          log_every_steps=fv.log_every_steps),
      seed=fv.seed)


def _layer_sizes(fv, name) -> Optional[tuple]:
  values = fv[name].value
  if values is None:
    return None
  try:
    return tuple(int(v) for v in values)
  except ValueError as e:
    raise cfg.ConfigError(
        f'--{name} must be comma-separated integers, got {values}') from e


def log_config(config: cfg.ExperimentConfig) -> None:
  """Logs the hyperparameters as a table, one `section.field = value` a line."""
  rows = []
  for section in ('env', 'agent', 'replay', 'train'):
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
