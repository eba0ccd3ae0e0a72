"""Videos of a run's greedy policy playing its env, as MP4 (and GIF).

The learner's PolicySavedModelTrigger writes the greedy SavedModel once, when
training starts, and later weights only as policy checkpoints; so the newest
checkpoint is restored into that SavedModel before recording.
"""
import contextlib
import dataclasses
import itertools
import math
import os
from typing import Iterator, List, Optional, Tuple

from absl import logging
import imageio
import numpy as np
from PIL import Image
import tensorflow as tf
from tf_agents.environments import py_environment
from tf_agents.policies import py_policy
from tf_agents.policies import py_tf_eager_policy
from tf_agents.policies import random_py_policy

from common import envs
from common import run_dir
from common.config import ConfigError
from common.config import ExperimentConfig
from common.errors import UserError

WITH_RANDOM = ('none', 'after', 'side_by_side')
# The GIF keeps every 2nd frame, shrunk to at most this width, to stay small.
GIF_FRAME_STEP = 2
GIF_MAX_WIDTH = 320


class NoPolicyError(UserError, ValueError):
  """The run has no saved greedy policy."""


class PolicyMismatchError(UserError, ValueError):
  """The saved policy does not fit the configured env."""


@dataclasses.dataclass(frozen=True)
class VideoSettings:
  """What to record from the run in `root_dir`, and where to write it."""
  root_dir: str
  out_path: str  # The MP4; the GIF goes next to it, as .gif.
  episodes: int = 3
  max_steps_per_episode: int = 1000
  with_random: str = 'none'  # Or random-policy episodes: WITH_RANDOM.
  fps: int = 30
  gif: bool = False
  seed: int = 0
  still_path: Optional[str] = None  # A PNG of the frame 1 s in.

  def __post_init__(self):
    for name in ('episodes', 'max_steps_per_episode', 'fps'):
      if getattr(self, name) < 1:
        raise ConfigError(f'{name} must be >= 1, got {getattr(self, name)}')
    if self.with_random not in WITH_RANDOM:
      raise ConfigError(f'with_random must be one of {WITH_RANDOM}, '
                        f'got {self.with_random!r}')
    if not self.out_path.endswith('.mp4'):
      raise ConfigError(f'the video is an MP4: its path must end in .mp4, '
                        f'got {self.out_path!r}')

  @property
  def gif_path(self) -> Optional[str]:
    return self.out_path[:-len('.mp4')] + '.gif' if self.gif else None


@dataclasses.dataclass(frozen=True)
class VideoResult:
  """What was written, and what the episodes were."""
  frames: int
  width: int
  height: int
  gif_frames: int  # Frames given to the GIF writer (0: no GIF).
  train_step: int  # Of the recorded weights.
  weights_path: str  # The policy checkpoint or, without one, the SavedModel.
  greedy_episode_steps: List[int]
  random_episode_steps: List[int]


def record_video(config: ExperimentConfig, settings: VideoSettings
                 ) -> VideoResult:
  """Records the greedy policy's episodes (and random ones) to the MP4/GIF."""
  policy, weights_path = load_greedy_policy(settings.root_dir)
  run_dir.ensure_writable_dir(os.path.dirname(os.path.abspath(
      settings.out_path)), flag='--out')
  # gym's CartPole renders through a pygame display, even for rgb_array.
  os.environ.setdefault('SDL_VIDEODRIVER', 'dummy')
  os.environ.setdefault('SDL_AUDIODRIVER', 'dummy')
  max_steps = settings.max_steps_per_episode
  with contextlib.ExitStack() as closing:
    greedy_player = _Player(_open_env(config, settings.seed, closing), policy,
                            max_steps)
    _check_policy_fits_env(policy, greedy_player.env, config.env.name,
                           settings.root_dir)
    random_player = None
    if settings.with_random != 'none':
      # Seeded alike, random episodes start where the greedy ones do.
      env = _open_env(config, settings.seed, closing)
      random_player = _Player(env, random_py_policy.RandomPyPolicy(
          env.time_step_spec(), env.action_spec(), seed=settings.seed),
                              max_steps)
    frames, height, width, gif_frames = _write(
        _all_frames(settings, greedy_player, random_player), settings)
  return VideoResult(
      frames=frames, width=width, height=height, gif_frames=gif_frames,
      train_step=int(policy.get_train_step()), weights_path=weights_path,
      greedy_episode_steps=greedy_player.episode_steps,
      random_episode_steps=(random_player.episode_steps if random_player
                            else []))


def load_greedy_policy(root_dir: str) -> Tuple[py_policy.PyPolicy, str]:
  """The run's greedy policy with its newest weights, and their source."""
  policies_dir = run_dir.policies_dir(root_dir)
  saved_model_dir = os.path.join(policies_dir, run_dir.GREEDY_POLICY)
  if not os.path.isfile(os.path.join(saved_model_dir, 'saved_model.pb')):
    raise NoPolicyError(
        f'no saved policy at {saved_model_dir}: the learner writes it to '
        f'<root_dir>/{run_dir.POLICIES_DIR}/{run_dir.GREEDY_POLICY} when '
        f'training starts; '
        f'pass the --root_dir of a run whose learner has started')
  policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
      saved_model_dir, load_specs_from_pbtxt=True)
  checkpoints = run_dir.policy_checkpoints(root_dir)
  if not checkpoints:
    return policy, saved_model_dir
  policy.update_from_checkpoint(checkpoints[-1])
  return policy, checkpoints[-1]


def _open_env(config, seed, closing) -> py_environment.PyEnvironment:
  env = envs.load_env(config.env, seed=seed)
  closing.callback(env.close)
  return env


def _check_policy_fits_env(policy, env, env_name, root_dir) -> None:
  shapes = lambda spec: [tuple(s.shape) for s in tf.nest.flatten(spec)]
  for what, policy_spec, env_spec in (
      ('observations', policy.time_step_spec.observation,
       env.observation_spec()),
      ('actions', policy.action_spec, env.action_spec())):
    if shapes(policy_spec) != shapes(env_spec):
      raise PolicyMismatchError(
          f'the policy in {root_dir} has {what} of shape '
          f'{shapes(policy_spec)} but {env_name} has {shapes(env_spec)}: pass '
          f'the flagfile the run was trained with (the local launcher writes '
          f'it to {os.path.join(root_dir, "experiment.flags")})')


class _Player:
  """Plays one policy on its own env, rendering every state."""

  def __init__(self, env: py_environment.PyEnvironment,
               policy: py_policy.PyPolicy, max_steps: int):
    self.env = env
    self.policy = policy
    self.max_steps = max_steps
    self.episode_steps: List[int] = []

  def episode(self) -> Iterator[np.ndarray]:
    """The first state's frame and one per step, until the episode ends or
    max_steps; a `steps`-step episode has steps + 1 frames."""
    time_step = self.env.reset()
    yield self.env.render(mode='rgb_array')
    steps = 0
    while not time_step.is_last() and steps < self.max_steps:
      time_step = self.env.step(self.policy.action(time_step).action)
      steps += 1
      yield self.env.render(mode='rgb_array')
    self.episode_steps.append(steps)
    logging.info('Recorded an episode of %d steps', steps)


def _all_frames(settings: VideoSettings, greedy_player: _Player,
                random_player: Optional[_Player]) -> Iterator[np.ndarray]:
  for _ in range(settings.episodes):
    if settings.with_random == 'side_by_side':
      yield from _side_by_side(greedy_player.episode(),
                               random_player.episode())
    else:
      yield from greedy_player.episode()
  if settings.with_random == 'after':
    for _ in range(settings.episodes):
      yield from random_player.episode()


def _side_by_side(left: Iterator[np.ndarray], right: Iterator[np.ndarray]
                  ) -> Iterator[np.ndarray]:
  """Both episodes in one frame; the shorter one holds its last frame."""
  last_left = last_right = None
  for left_frame, right_frame in itertools.zip_longest(left, right):
    last_left = last_left if left_frame is None else left_frame
    last_right = last_right if right_frame is None else right_frame
    yield np.concatenate([last_left, last_right], axis=1)


def _write(frames: Iterator[np.ndarray], settings: VideoSettings
           ) -> Tuple[int, int, int, int]:
  """Streams the frames to the MP4, and every GIF_FRAME_STEP-th one, shrunk,
  to the GIF; returns the frame count, height, width and GIF frame count."""
  count = height = width = 0
  gif_frames = []
  still = None
  # macro_block_size=2: libx264 needs even sizes, but no resizing to 16s.
  with imageio.get_writer(settings.out_path, format='FFMPEG', mode='I',
                          fps=settings.fps, codec='libx264',
                          macro_block_size=2) as writer:
    for frame in frames:
      if settings.gif and count % GIF_FRAME_STEP == 0:
        gif_frames.append(Image.fromarray(frame).reduce(
            math.ceil(frame.shape[1] / GIF_MAX_WIDTH)))
      writer.append_data(frame)
      if count <= settings.fps:  # The frame 1 s in, or the last one.
        still = frame
      count += 1
      height, width = frame.shape[:2]
  if gif_frames:
    # Pillow merges identical consecutive frames into one longer frame.
    gif_frames[0].save(settings.gif_path, save_all=True,
                       append_images=gif_frames[1:], loop=0,
                       duration=gif_frame_ms(settings.fps))
  if settings.still_path and still is not None:
    Image.fromarray(still).save(settings.still_path)
  return count, height, width, len(gif_frames)


def gif_frame_ms(fps: int) -> int:
  """A GIF frame's duration; GIFs count in hundredths of a second."""
  return 10 * max(1, round(100 * GIF_FRAME_STEP / fps))
