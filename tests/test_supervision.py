"""The launcher as a supervisor, with real processes: it restarts a killed
actor, learner and Reverb server and the job finishes; it gives up on a
child that keeps dying; nothing outlives it, however it ends."""
import os
import re
import signal
import time

import pytest
import tensorflow as tf

from common import run_dir
from tests.helpers import CARTPOLE_FLAGS
from tests.helpers import LauncherRun
from tests.helpers import alive

pytestmark = pytest.mark.slow  # Real processes.

_CARTPOLE = [f'--flagfile={CARTPOLE_FLAGS}', '--initial_collect_steps=200',
             '--eval_every_steps=1000', '--eval_episodes=2',
             '--log_every_steps=500', '--policy_save_every_steps=100000',
             '--progress_every_s=2', '--actors=2']
# Children get SIGHUP when the launcher dies and stop within 20 s, as the
# README says: a learner sampling from the server that stopped with it
# waits for its forced exit at 20 s (measured: 20.2 s after the kill). Then
# the kernel frees the dead process's memory (GBs of TensorFlow's address
# space) and its new parent reaps it: 5 s for that.
_ORPHAN_TIMEOUT_S = 25


class _Log:
  """A child's log from an offset: what its current start wrote."""

  def __init__(self, path):
    self.path = path
    self.offset = os.path.getsize(path)

  def text(self):
    with open(self.path, errors='replace') as f:
      f.seek(self.offset)
      return f.read()

  def wait_for(self, pattern, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while not re.search(pattern, self.text()):
      assert time.monotonic() < deadline, (
          f'no {pattern!r} in {self.path} within {timeout_s}s:\n'
          f'{self.text()[-3000:]}')
      time.sleep(0.2)
    return re.findall(pattern, self.text())


def _log(root_dir, name):
  return _Log(os.path.join(root_dir, 'logs', f'{name}.log'))


def _kill(run, root_dir, name):
  """kill -9 of a child; returns its log from where its next start begins."""
  os.kill(run.pids[name], signal.SIGKILL)
  while alive(run.pids[name]):
    time.sleep(0.05)
  return _log(root_dir, name)


def _latest_checkpoint_step(root_dir):
  """The train step of the learner's newest complete checkpoint."""
  path = tf.train.latest_checkpoint(run_dir.checkpoints_dir(root_dir))
  return int(path.rsplit('-', 1)[1])


def _still_alive(pids, timeout_s):
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    if not any(alive(pid) for pid in pids.values()):
      return []
    time.sleep(0.5)
  return [name for name, pid in pids.items() if alive(pid)]


def test_killed_actor_learner_and_server_restart_and_the_job_finishes(
    tmp_path):
  root_dir = str(tmp_path / 'run')
  run = LauncherRun([*_CARTPOLE, '--max_train_steps=30000',
                     '--checkpoint_every_steps=500',
                     '--replay_checkpoint_every_s=3', f'--root_dir={root_dir}'])
  try:
    run.wait_for(r'train_step [1-9]')
    actor = _kill(run, root_dir, 'actor_1')
    run.wait_for(r'actor_1 restarted \(1/5\): exit -9')
    # It rejoins with the learner's current weights, not the initial ones.
    assert int(actor.wait_for(r'Got weights version (\d+)')[0]) > 0

    _log(root_dir, 'learner').wait_for(r'Saved checkpoint')
    resumed = _kill(run, root_dir, 'learner')
    latest = _latest_checkpoint_step(root_dir)  # The learner is dead now.
    run.wait_for(r'learner restarted \(1/5\): exit -9')
    # Pushed first: the weights of the newest checkpoint at the kill.
    assert int(resumed.wait_for(r'Pushed weights version (\d+)')[0]) == (
        latest) >= 500
    resumed.wait_for('First train step done')

    server = _log(root_dir, 'reverb_server')
    checkpointed = server.wait_for(
        r"Checkpointed \(every 3s\)[^\n]*'experience' size (\d+)/")
    restarted = _kill(run, root_dir, 'reverb_server')
    run.wait_for(r'reverb_server restarted \(1/5\): exit -9')
    restored = restarted.wait_for(
        r"Reverb server listening[^\n]*'experience' size (\d+)/")
    code = run.finish(timeout_s=400)
  finally:
    run.process.kill()
  # Restored at least what its last periodic checkpoint before the kill held.
  assert int(restored[0]) >= int(checkpointed[-1]) > 0
  assert code == 0, run.output[-5000:]
  assert 'Finished: train_step 30000' in run.output, run.output[-5000:]
  assert re.search(r'\| restarts 3$', run.output, re.M), run.output[-5000:]


def test_child_that_keeps_dying_makes_the_launcher_give_up(tmp_path):
  # A learner checkpoint that cannot be read: the learner dies at start,
  # every time.
  checkpoints = tmp_path / 'run' / 'train' / 'checkpoints'
  checkpoints.mkdir(parents=True)
  (checkpoints / 'checkpoint').write_text(
      'model_checkpoint_path: "ckpt-500"\n')
  (checkpoints / 'ckpt-500.index').write_bytes(b'not a checkpoint' * 20)
  start = time.monotonic()
  run = LauncherRun([*_CARTPOLE, '--max_restarts=2',
                     f'--root_dir={tmp_path / "run"}'])
  code = run.finish(timeout_s=300)
  assert code == 1, run.output[-5000:]
  assert 'learner restarted (2/2): exit 1' in run.output
  assert ('error (launcher): learner exited with code 1 unexpectedly, past 2 '
          'restarts within 600s; its log: ') in run.output
  assert 'not an sstable' in run.output  # The log's last lines.
  print(f'gave up after {time.monotonic() - start:.0f}s')
  assert not _still_alive(run.pids, _ORPHAN_TIMEOUT_S)


def test_killed_launcher_leaves_no_child(tmp_path):
  root_dir = str(tmp_path / 'run')
  run = LauncherRun([*_CARTPOLE, '--max_train_steps=1000000',
                     f'--root_dir={root_dir}'])
  try:
    run.wait_for(r'train_step [1-9]')
    run.wait_for(r'^\s+eval\s+pid')
    server = _log(root_dir, 'reverb_server')
    run.process.kill()
    left = _still_alive(run.pids, _ORPHAN_TIMEOUT_S)
  finally:
    run.process.kill()
  assert len(run.pids) == 5, run.pids
  assert not left, f'{left} outlived the launcher'
  # The server stopped as on SIGTERM: it checkpointed first.
  assert 'Checkpointed (on shutdown)' in server.text()


def test_without_restarts_the_launcher_fails_loudly_when_a_child_dies(
    tmp_path):
  run = LauncherRun([*_CARTPOLE, '--max_train_steps=1000000',
                     '--restart=no', f'--root_dir={tmp_path / "run"}'])
  try:
    run.wait_for(r'train_step [1-9]')
    os.kill(run.pids['actor_1'], signal.SIGKILL)
    code = run.finish(timeout_s=180)
  finally:
    run.process.kill()
  assert code == 1
  assert ('error (launcher): actor_1 exited with code -9 unexpectedly; its '
          f'log: {tmp_path}/run/logs/actor_1.log') in run.output
  assert not _still_alive(run.pids, _ORPHAN_TIMEOUT_S)


def test_launcher_stops_every_child_on_sigterm(tmp_path):
  # No periodic learner checkpoint: the one found is the stop's.
  run = LauncherRun([*_CARTPOLE, '--max_train_steps=1000000',
                     '--checkpoint_every_steps=1000000',
                     f'--root_dir={tmp_path / "run"}'])
  try:
    run.wait_for(r'train_step [1-9]')
    run.wait_for(r'^\s+eval\s+pid')
    run.process.send_signal(signal.SIGTERM)
    start = time.monotonic()
    code = run.finish(timeout_s=180)
  finally:
    run.process.kill()
  assert code == 143, run.output[-5000:]
  assert 'Stopping all processes (received SIGTERM)' in run.output
  assert time.monotonic() - start < 120
  assert len(run.pids) == 5, run.pids
  assert not _still_alive(run.pids, 1)
  # The learner saved its checkpoint on its way out.
  checkpoints = os.listdir(tmp_path / 'run' / 'train' / 'checkpoints')
  assert any(name.endswith('.index') for name in checkpoints), checkpoints
