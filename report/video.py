"""python -m report.video --flagfile=<root_dir>/experiment.flags \
     --root_dir=<root_dir> --out=<path.mp4> [--episodes=3] [--max_steps=1000] \
     [--with_random=none|after|side_by_side] [--gif] [--fps=30] [--seed=0] \
     [--still=<frame.png>]

Records the run's greedy policy (its newest policy checkpoint) playing the
env. Pass the run's own flagfile: the launcher writes it to
<root_dir>/experiment.flags. --seed seeds the env and the random policy.
"""
from common import quiet
quiet.import_tensorflow()  # Without its start-up messages.

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import flags

from common import cli
from report import video_lib

cli.define_experiment_flags()
_ROOT_DIR = flags.DEFINE_string(
    'root_dir', None, 'The run\'s root_dir; its learner saved the policy in '
    '<root_dir>/policies.', required=True)
_OUT = flags.DEFINE_string(
    'out', None, 'MP4 to write; --gif writes the .gif next to it.',
    required=True)
_EPISODES = flags.DEFINE_integer('episodes', 3, 'Greedy-policy episodes.')
_MAX_STEPS = flags.DEFINE_integer(
    'max_steps', 1000, 'Cut each episode after this many steps.')
_WITH_RANDOM = flags.DEFINE_enum(
    'with_random', 'none', video_lib.WITH_RANDOM,
    'Also as many random-policy episodes: after the greedy ones, or side by '
    'side with them (the random one on the right).')
_GIF = flags.DEFINE_bool(
    'gif', False, f'Also a GIF: one frame in {video_lib.GIF_FRAME_STEP}, at '
    f'most {video_lib.GIF_MAX_WIDTH} pixels wide.')
_FPS = flags.DEFINE_integer('fps', 30, 'MP4 frames per second.')
_STILL = flags.DEFINE_string(
    'still', None, 'Also a PNG of the frame one second in (for a README).')


def main():
  config = cli.experiment_config()
  settings = video_lib.VideoSettings(
      root_dir=_ROOT_DIR.value, out_path=_OUT.value,
      episodes=_EPISODES.value, max_steps_per_episode=_MAX_STEPS.value,
      with_random=_WITH_RANDOM.value, fps=_FPS.value, gif=_GIF.value,
      seed=config.seed, still_path=_STILL.value)
  result = video_lib.record_video(config, settings)
  print(f'Greedy policy at train step {result.train_step}, weights from '
        f'{result.weights_path}')
  print('Episode steps: greedy ' + _steps(result.greedy_episode_steps) + (
      '; random ' + _steps(result.random_episode_steps)
      if result.random_episode_steps else ''))
  print(f'Wrote {settings.out_path}: {result.frames} frames, '
        f'{result.width}x{result.height} at {settings.fps} fps')
  if settings.gif:
    print(f'Wrote {settings.gif_path}: {result.gif_frames} frames of '
          f'{video_lib.gif_frame_ms(settings.fps)} ms')
  if settings.still_path:
    print(f'Wrote {settings.still_path}')


def _steps(counts) -> str:
  return ', '.join(str(count) for count in counts)


if __name__ == '__main__':
  cli.run('video', main)
