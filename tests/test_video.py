"""report.video on policies saved as the learner saves them (CartPole's
checkpoint holds a hand-made balancing policy, Minitaur's the untrained
one): real envs and rendering, the MP4 and GIF read back."""
import math
import os
import re

import imageio
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
from tf_agents.environments import py_environment
from tf_agents.policies import random_py_policy
from tf_agents.specs import array_spec
from tf_agents.train import learner as tfa_learner
from tf_agents.train import triggers
from tf_agents.trajectories import time_step as ts

from common import agents
from common import cli
from common import envs
from common.config import ConfigError
from report import video_lib
from tests.helpers import CARTPOLE_FLAGS
from tests.helpers import MINITAUR_FLAGS
from tests.helpers import run_module

_TRAIN_STEP = 7  # Of the policy checkpoint the video must restore.
_TIMEOUT_S = 300


def _save_policies(flagfile: str, root_dir: str, change_weights=None) -> None:
  """The learner's policies dir: SavedModels at train step 0, as its
  PolicySavedModelTrigger writes them on start, and a policy checkpoint at
  _TRAIN_STEP, as it writes them every policy_save_every_steps, of the
  weights `change_weights(agent)` sets (default: the same). The weights
  are seeded (config.seed), so every run records the same policy: Keras
  initializers draw their seeds from Keras' own generator, which only
  tf.keras.utils.set_random_seed seeds (tf.random.set_seed does not)."""
  config = cli.parse_experiment([f'--flagfile={flagfile}'])
  tf.keras.utils.set_random_seed(config.seed)
  env = envs.load_env(config.env, seed=config.seed)
  agent, train_step = agents.make_agent(config, env)
  env.close()
  save_policies = triggers.PolicySavedModelTrigger(
      os.path.join(root_dir, tfa_learner.POLICY_SAVED_MODEL_DIR), agent,
      train_step, interval=1000)
  if change_weights:
    change_weights(agent)
  train_step.assign(_TRAIN_STEP)
  save_policies(_TRAIN_STEP, force_trigger=True)


def _balance_the_pole(agent) -> None:
  """CartPole DQN weights whose greedy action is the classic rule "push
  toward the side the pole falls to": right when angle + angular velocity
  > 0. It holds the pole for all 200 steps from any start seeds 0-19 give;
  the untrained network's episodes here last 85 and 42."""
  first, second, out = [layer.get_weights()
                        for layer in agent._q_network.layers]  # pylint: disable=protected-access
  kernel, bias = np.zeros_like(first[0]), np.zeros_like(first[1])
  kernel[2:, 0], kernel[2:, 1] = 1.0, -1.0  # relu(a + a'), relu(-(a + a'))
  weights = [kernel, bias]
  kernel, bias = np.zeros_like(second[0]), np.zeros_like(second[1])
  kernel[0, 0] = kernel[1, 1] = 1.0
  weights += [kernel, bias]
  kernel, bias = np.zeros_like(out[0]), np.zeros_like(out[1])
  kernel[1, 0] = kernel[0, 1] = 1.0  # Q(left) = relu(-(a + a')).
  weights += [kernel, bias]
  for layer, (kernel, bias) in zip(agent._q_network.layers,  # pylint: disable=protected-access
                                   zip(weights[::2], weights[1::2])):
    layer.set_weights([kernel, bias])


@pytest.fixture(scope='module')
def cartpole_run(tmp_path_factory) -> str:
  root_dir = str(tmp_path_factory.mktemp('cartpole'))
  _save_policies(CARTPOLE_FLAGS, root_dir, _balance_the_pole)
  return root_dir


@pytest.fixture(scope='module')
def minitaur_run(tmp_path_factory) -> str:
  root_dir = str(tmp_path_factory.mktemp('minitaur'))
  _save_policies(MINITAUR_FLAGS, root_dir)
  return root_dir


def _record(flagfile, root_dir, out, *args) -> str:
  """Runs the binary; its stdout."""
  result = run_module('report.video', [
      f'--flagfile={flagfile}', f'--root_dir={root_dir}', f'--out={out}',
      *args], _TIMEOUT_S)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (f'Greedy policy at train step {_TRAIN_STEP}, weights from '
          f'{root_dir}/policies/checkpoints/policy_checkpoint_') in (
              result.stdout), result.stdout
  return result.stdout


def _episode_steps(output: str, policy: str) -> list:
  steps = re.search(rf'{policy} ([\d, ]+)', output).group(1)
  return [int(count) for count in steps.split(', ')]


def _reported_frames(output: str, path: str) -> int:
  return int(re.search(rf'Wrote {re.escape(path)}: (\d+) frames',
                       output).group(1))


def _read_mp4(path: str):
  """(frame count, (width, height), fps, first frame) of the MP4."""
  with imageio.get_reader(path, format='FFMPEG') as reader:
    meta = reader.get_meta_data()
    return (reader.count_frames(), meta['size'], meta['fps'],
            reader.get_data(0))


def _has_content(image: np.ndarray) -> bool:
  return len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 1


@pytest.mark.slow
def test_cartpole_side_by_side_mp4_and_gif(cartpole_run, tmp_path):
  out = str(tmp_path / 'cartpole.mp4')
  output = _record(CARTPOLE_FLAGS, cartpole_run, out, '--episodes=2',
                   '--with_random=side_by_side', '--gif',
                   f'--still={tmp_path / "still.png"}')
  greedy = _episode_steps(output, 'greedy')
  random = _episode_steps(output, 'random')
  # The checkpoint's weights act (the step-0 SavedModel's: 85 and 42).
  assert greedy == [200, 200], output
  assert len(random) == 2 and all(1 <= s < 200 for s in random), output
  # One frame per state, the shorter episode of a pair holding its last one.
  frames = sum(max(pair) + 1 for pair in zip(greedy, random))
  assert _reported_frames(output, out) == frames

  count, size, fps, first = _read_mp4(out)
  assert (count, size, fps) == (frames, (2 * 600, 400), 30)
  assert _has_content(first[:, :600]) and _has_content(first[:, 600:])

  gif_path = str(tmp_path / 'cartpole.gif')
  assert f'Wrote {gif_path}: {math.ceil(frames / 2)} frames' in output
  with Image.open(gif_path) as gif:
    assert gif.size == (300, 100)
    durations = []
    for index in range(gif.n_frames):
      gif.seek(index)
      durations.append(gif.info['duration'])
  # Pillow merges identical consecutive frames; the duration stays.
  assert sum(durations) == math.ceil(frames / 2) * video_lib.gif_frame_ms(30)

  with Image.open(tmp_path / 'still.png') as still:
    assert still.size == (2 * 600, 400)


@pytest.mark.slow
def test_minitaur_episodes_cut_at_max_steps(minitaur_run, tmp_path):
  out = str(tmp_path / 'minitaur.mp4')
  output = _record(MINITAUR_FLAGS, minitaur_run, out, '--episodes=2',
                   '--max_steps=20')
  # An untrained Minitaur may fall (the env ends the episode) before the cut
  # at 20 steps: whatever the weights, each episode has 1 to 20 steps (the
  # test below pins which) and one frame per state, its first included.
  steps = _episode_steps(output, 'greedy')
  print('greedy episode steps:', steps)
  assert len(steps) == 2 and all(1 <= s <= 20 for s in steps), output
  frames = sum(s + 1 for s in steps)
  assert _reported_frames(output, out) == frames, output

  count, size, _, first = _read_mp4(out)
  assert (count, size) == (frames, (960, 720))
  assert _has_content(first)


class _FixedLengthEnv(py_environment.PyEnvironment):
  """Episodes the env itself ends after `length` steps; frames number the
  steps taken since reset."""

  def __init__(self, length):
    super().__init__()
    self._length = length
    self._steps = 0

  def observation_spec(self):
    return array_spec.ArraySpec((1,), np.float32)

  def action_spec(self):
    return array_spec.BoundedArraySpec((), np.int32, 0, 1)

  def _reset(self):
    self._steps = 0
    return ts.restart(np.zeros(1, np.float32))

  def _step(self, action):
    if self.current_time_step().is_last():
      return self.reset()
    self._steps += 1
    observation = np.full(1, self._steps, np.float32)
    if self._steps >= self._length:
      return ts.termination(observation, 1.0)
    return ts.transition(observation, 1.0)

  def render(self, mode='rgb_array'):
    return np.full((2, 2, 3), self._steps, np.uint8)


@pytest.mark.parametrize('env_length, max_steps, steps', [
    (5, 20, 5),    # Ended by the env before the cut.
    (20, 20, 20),  # Ended by the env at the cut.
    (50, 20, 20),  # Cut at max_steps.
    (1, 20, 1),
    (50, 1, 1),
])
def test_an_episode_ends_with_the_env_or_at_max_steps(env_length, max_steps,
                                                      steps):
  env = _FixedLengthEnv(env_length)
  policy = random_py_policy.RandomPyPolicy(env.time_step_spec(),
                                           env.action_spec(), seed=0)
  player = video_lib._Player(env, policy, max_steps)  # pylint: disable=protected-access
  for _ in range(2):
    frames = list(player.episode())
    # The first state's frame, then one per step taken.
    assert [int(frame[0, 0, 0]) for frame in frames] == list(range(steps + 1))
  assert player.episode_steps == [steps, steps]


@pytest.mark.slow
def test_a_missing_policy_is_one_error_line(tmp_path):
  root_dir = str(tmp_path / 'never_trained')
  result = run_module('report.video', [
      f'--flagfile={CARTPOLE_FLAGS}', f'--root_dir={root_dir}',
      f'--out={tmp_path}/x.mp4'], _TIMEOUT_S)
  assert result.returncode == 2, result.stderr[-3000:]
  errors = [line for line in result.stderr.splitlines()
            if line.startswith('error')]
  assert errors == [
      f'error (video): NoPolicyError: no saved policy at {root_dir}/policies/'
      f'greedy_policy: the learner writes it to <root_dir>/policies/'
      f'greedy_policy when training starts; pass the --root_dir of a run '
      f'whose learner has started'], result.stderr[-3000:]
  assert 'Traceback' not in result.stderr
  assert not os.path.exists(f'{tmp_path}/x.mp4')


@pytest.mark.slow
def test_another_experiments_flagfile_is_rejected(minitaur_run, tmp_path):
  result = run_module('report.video', [
      f'--flagfile={CARTPOLE_FLAGS}', f'--root_dir={minitaur_run}',
      f'--out={tmp_path}/x.mp4'], _TIMEOUT_S)
  assert result.returncode == 2, result.stderr[-3000:]
  assert (f'error (video): PolicyMismatchError: the policy in {minitaur_run} '
          f'has observations of shape [(28,)] but CartPole-v0 has [(4,)]: '
          f'pass the flagfile the run was trained with (the local launcher '
          f'writes it to {minitaur_run}/experiment.flags)') in result.stderr


@pytest.mark.parametrize('field, value, message', [
    ('episodes', 0, 'episodes must be >= 1, got 0'),
    ('max_steps_per_episode', -1, 'max_steps_per_episode must be >= 1'),
    ('fps', 0, 'fps must be >= 1'),
    ('with_random', 'before', 'with_random must be one of'),
    ('out_path', 'x.avi', 'its path must end in .mp4'),
])
def test_bad_settings_are_rejected_with_the_reason(field, value, message):
  with pytest.raises(ConfigError, match=re.escape(message)):
    video_lib.VideoSettings(**{'root_dir': 'run', 'out_path': 'x.mp4',
                            field: value})
