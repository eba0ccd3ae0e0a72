"""Faults with real processes: an actor or the learner killed (-9), the
Reverb server restarted, a learner starved of data; for DQN and for PPO
(whose queue is checkpointed and restored like any table: the learner drops
what a restart made stale)."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from benchmarks.targets import flagfile_path
from common import records
from common import run_dir
from common.connection import connect
from common.tables import learner_train_step
from tests.helpers import CARTPOLE_FLAGS
from tests.helpers import PROJECT_ROOT
from tests.helpers import child_env
from tests.helpers import log_time
from tests.helpers import start_module
from tests.helpers import stop_processes
from tests.helpers import unused_port

pytestmark = pytest.mark.slow  # Real processes.

_FLAGS = [f'--flagfile={CARTPOLE_FLAGS}', '--max_train_steps=1000000',
          '--initial_collect_steps=200', '--rate_limiter_slack_steps=100',
          '--push_every_steps=50', '--pull_every_steps=50',
          '--checkpoint_every_steps=300', '--policy_save_every_steps=100000',
          '--log_every_steps=100']
# 4 sequences of 64 steps an iteration, 4 epochs of 4 minibatches: 16 train
# steps. One env per actor,
# so that both actors fill the queue.
_PPO_FLAGS = [f'--flagfile={flagfile_path("cartpole_ppo")}',
              '--max_train_steps=1000000', '--ppo_steps_per_iteration=256',
              '--ppo_sequence_length=64', '--batch_size=64', '--envs_per_actor=1',
              '--checkpoint_every_steps=300', '--policy_save_every_steps=100000',
              '--log_every_steps=96']
_EXPERIMENTS = {'dqn': _FLAGS, 'ppo': _PPO_FLAGS}
# A stop of the whole job, tried this many times; each process must exit
# within this (the forced exit comes at 20 s).
_WHOLE_JOB_STOPS = 6
_PROMPT_EXIT_S = 8.0


class Job:
  """A Reverb server, a learner and collect actors, each a real process."""

  def __init__(self, root_dir, experiment='dqn', more_flags=()):
    self.root_dir = root_dir
    self.experiment = experiment
    self.flags = [*_EXPERIMENTS[experiment], *more_flags]
    self.address = f'localhost:{unused_port()}'
    self.processes = {}
    self.killed = set()  # Processes this test killed: exit -9 is expected.
    os.makedirs(os.path.join(root_dir, 'logs'), exist_ok=True)
    self.start_server()
    self.client = connect(self.address, timeout_s=120)

  def start_server(self):
    self.start('reverb_server', 'reverb_server', [
        f'--port={self.address.split(":")[1]}',
        f'--checkpoint_dir={os.path.join(self.root_dir, "reverb_checkpoints")}',
        '--replay_checkpoint_every_s=5'])

  def log_path(self, name):
    return os.path.join(self.root_dir, 'logs', f'{name}.log')

  def start(self, name, module, args):
    self.processes[name] = start_module(module, [*self.flags, *args],
                                        self.log_path(name))

  def start_learner(self):
    self.start('learner', 'learner', [f'--reverb_address={self.address}',
                                      f'--root_dir={self.root_dir}'])

  def start_actor(self, task):
    self.start(f'actor_{task}', 'actor', [
        f'--reverb_address={self.address}', f'--task={task}',
        f'--root_dir={self.root_dir}', '--log_every_s=1'])

  def kill(self, name):
    self.processes[name].send_signal(signal.SIGKILL)
    self.processes[name].wait()
    self.killed.add(self.processes[name])

  def train_step(self):
    return learner_train_step(self.client) or 0

  def wait_for(self, condition, what, timeout_s=240):
    deadline = time.monotonic() + timeout_s
    while not condition():
      for name, process in self.processes.items():
        assert process.poll() is None or process in self.killed, (
            f'{name} exited with {process.poll()} while waiting for {what}; '
            f'log: {open(self.log_path(name)).read()[-3000:]}')
      assert time.monotonic() < deadline, f'timed out waiting for {what}'
      time.sleep(0.5)

  def stop(self):
    stop_processes(list(self.processes.values()))


@pytest.fixture(params=sorted(_EXPERIMENTS))
def job(tmp_path, request):
  job = Job(str(tmp_path), request.param)
  job.start_learner()
  job.start_actor(0)
  job.start_actor(1)
  yield job
  job.stop()


def _actor_progress(log_path):
  with open(log_path, errors='replace') as f:
    return [int(s) for s in re.findall(r'task=\d+ env_steps=(\d+)', f.read())]


_RELAUNCHED_STEPS = 256


def _killed_actor_training_continues_and_relaunch_rejoins(job):
  job.wait_for(lambda: job.train_step() >= 300, 'train_step 300')
  job.kill('actor_1')
  killed_at = job.train_step()
  job.wait_for(lambda: job.train_step() >= killed_at + 300,
               'training to continue with one actor')
  os.rename(job.log_path('actor_1'), job.log_path('actor_1_killed'))
  relaunched = time.monotonic()
  job.start_actor(1)
  job.wait_for(lambda: os.path.exists(job.log_path('actor_1')) and any(
      steps > 0 for steps in _actor_progress(job.log_path('actor_1'))),
               'the relaunched actor to collect')
  print(f'relaunched actor collecting after '
        f'{time.monotonic() - relaunched:.1f}s')
  # It rejoined with the learner's current weights, not the initial ones.
  versions = re.findall(r'Got weights version (\d+)',
                        open(job.log_path('actor_1')).read())
  assert versions and int(versions[0]) >= killed_at, versions
  # Its own items reach the server: its writer waits for each PPO sequence
  # to be taken and holds at most 8 DQN items per env untaken, so it cannot
  # step on far ahead of its inserts.
  job.wait_for(lambda: max(_actor_progress(job.log_path('actor_1')),
                           default=0) >= _RELAUNCHED_STEPS,
               f'{_RELAUNCHED_STEPS} env steps of the relaunched actor')


def _last_checkpoint_step(root_dir):
  """The step of the checkpoint a relaunched learner restores: the one its
  CheckpointManager recorded in the `checkpoint` state file (atomically
  rewritten), not the newest ckpt-N.index, which appears a moment before it
  is recorded."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  latest = tf.train.latest_checkpoint(
      os.path.join(root_dir, 'train', 'checkpoints'))
  return int(re.search(r'ckpt-(\d+)$', latest).group(1)) if latest else 0


def _freeze_with_items_ahead_of_its_checkpoint(job):
  """PPO: the learner stopped (SIGSTOP) while the queue holds items of its
  latest weights, newer than its last checkpoint: a learner restored from
  that checkpoint never pushed their version."""
  learner = job.processes['learner']
  deadline = time.monotonic() + 120
  while True:
    learner.send_signal(signal.SIGSTOP)
    # The actors answer the requests it made before it stopped.
    queued = time.monotonic() + 10
    while time.monotonic() < queued and _queue_size(job.client) == 0:
      time.sleep(0.2)
    if _queue_size(job.client) and job.train_step() > _last_checkpoint_step(
        job.root_dir):
      return
    learner.send_signal(signal.SIGCONT)
    assert time.monotonic() < deadline, 'no items ahead of a checkpoint'
    time.sleep(1.0)


def _relaunched_progress(job):
  """The progress records of the learner started last."""
  written = records.read(run_dir.records_path(job.root_dir, records.LEARNER))
  last_start = max(i for i, r in enumerate(written)
                   if r.event == records.WEIGHTS_PUSHED)
  return [r for r in written[last_start:] if r.event == records.PROGRESS]


def _queue_size(client):
  return client.server_info()['experience'].current_size


def _killed_learner_resumes_from_its_checkpoint(job):
  job.wait_for(lambda: _last_checkpoint_step(job.root_dir) >= 600,
               'a checkpoint at step >= 600')
  if job.experiment == 'ppo':
    _freeze_with_items_ahead_of_its_checkpoint(job)
  job.kill('learner')
  lost_from = job.train_step()
  checkpoint = _last_checkpoint_step(job.root_dir)
  os.rename(job.log_path('learner'), job.log_path('learner_killed'))
  relaunched = time.monotonic()
  job.start_learner()
  job.wait_for(lambda: os.path.exists(job.log_path('learner')) and
               'Pushed weights version' in open(job.log_path('learner')).read(),
               'the relaunched learner to push')
  pushed = int(re.search(r'Pushed weights version (\d+)',
                         open(job.log_path('learner')).read()).group(1))
  assert pushed == checkpoint > 0
  job.wait_for(lambda: job.train_step() >= checkpoint + 300,
               'training to continue after the relaunch')
  if job.experiment == 'ppo':
    # The items of the version it never pushed were dropped, not trained on.
    job.wait_for(lambda: _relaunched_progress(job), 'a progress record')
    assert _relaunched_progress(job)[-1]['stale_items_dropped'] > 0, (
        _relaunched_progress(job))
  print(f'learner resumed at {checkpoint} (killed near {lost_from}, '
        f'{lost_from - checkpoint} steps lost); training again '
        f'{time.monotonic() - relaunched:.1f}s after the relaunch')


def _inserts(client):
  return client.server_info()[
      'experience'].rate_limiter_info.insert_stats.completed


def _table_sizes(log_text, line_start):
  """The replay table sizes in the server's log lines starting so."""
  return [int(size) for size in re.findall(
      line_start + r"[^\n]*'experience' size (\d+)/", log_text)]


def _log_text(job, name):
  with open(job.log_path(name), errors='replace') as f:
    return f.read()


def _server_restart_restores_replay_and_everyone_reconnects(job):
  job.wait_for(lambda: job.train_step() >= 300, 'train_step 300')
  server = job.processes.pop('reverb_server')
  step_before = job.train_step()
  server.send_signal(signal.SIGTERM)
  stopping = time.monotonic()
  assert server.wait(timeout=70) == 0
  stop_s = time.monotonic() - stopping
  os.rename(job.log_path('reverb_server'), job.log_path('reverb_server_1'))
  checkpointed = _table_sizes(_log_text(job, 'reverb_server_1'),
                              r'Checkpointed \(on shutdown\)')
  # PPO's queue of 4 may be empty at that moment (the learner took it all).
  assert checkpointed and (checkpointed[-1] > 0 or job.experiment == 'ppo')
  for name in ('learner', 'actor_0', 'actor_1'):
    job.wait_for(lambda name=name: 'has not answered for' in _log_text(
        job, name), f'{name} to notice the server is away', timeout_s=60)

  restarting = time.monotonic()
  job.start_server()
  job.wait_for(lambda: 'Reverb server listening' in _log_text(
      job, 'reverb_server'), 'the server to restore', timeout_s=120)
  restored = _table_sizes(_log_text(job, 'reverb_server'),
                          'Reverb server listening')[0]
  # PPO's checkpointed queue may be empty here; test_ppo.py checks that a
  # restored queue holds exactly the items written before the checkpoint.
  assert restored >= checkpointed[-1]
  inserts = _inserts(job.client)
  job.wait_for(lambda: job.train_step() >= step_before + 100,
               'training to continue after the restart')
  trained_s = time.monotonic() - restarting
  job.wait_for(lambda: _inserts(job.client) > inserts + 100,
               'the actors to insert again')
  # While the server is away, ServerWatch's checks back off up to 60s apart
  # (max_backoff_s), each asking for up to 3s.
  for name in ('learner', 'actor_0', 'actor_1'):
    job.wait_for(lambda name=name: 'answers again' in _log_text(job, name),
                 f'{name} to log that the server is back', timeout_s=120)
  print(f'server stopped in {stop_s:.1f}s with {checkpointed[-1]} items '
        f'checkpointed, restored {restored}; training again '
        f'{trained_s:.1f}s after the restart (train_step {step_before} before)')


def test_killed_actor_then_learner_then_a_restarted_server(job):
  """One job through three faults in turn: an actor killed (-9) and
  relaunched, then the learner, then the server stopped and restarted."""
  _killed_actor_training_continues_and_relaunch_rejoins(job)
  _killed_learner_resumes_from_its_checkpoint(job)
  _server_restart_restores_replay_and_everyone_reconnects(job)


def test_learner_starved_of_data_says_why(tmp_path):
  job = Job(str(tmp_path))
  try:
    job.start('learner', 'learner', [f'--reverb_address={job.address}',
                                     f'--root_dir={tmp_path}',
                                     '--stall_log_s=3'])
    expected = ("waiting for data: table 'experience': size 0/100000, "
                'inserts 0, samples 0; rate limiter: sampling needs size >= '
                '200')
    job.wait_for(lambda: expected in open(job.log_path('learner')).read(),
                 'the stall to be explained', timeout_s=120)
    # Blocked inside a Reverb sample, SIGTERM still ends it in bounded time.
    learner = job.processes['learner']
    learner.send_signal(signal.SIGTERM)
    assert learner.wait(timeout=40) == 0
  finally:
    job.stop()


def test_actor_waiting_for_weights_stops_cleanly_on_sigterm(tmp_path):
  job = Job(str(tmp_path))
  try:
    job.start_actor(0)  # No learner: it waits for weights version 0.
    job.wait_for(lambda: 'Waiting for weights' in open(
        job.log_path('actor_0')).read(), 'the actor to wait', timeout_s=120)
    actor = job.processes['actor_0']
    actor.send_signal(signal.SIGTERM)
    assert actor.wait(timeout=10) == 0
    assert 'stopped while waiting for weights' in open(
        job.log_path('actor_0')).read()
  finally:
    job.stop()


@pytest.mark.parametrize('module', ['actor', 'learner'])
def test_a_stop_while_connecting_ends_the_wait(tmp_path, module):
  """No server at its address: a SIGTERM ends the wait for one (up to
  --connect_timeout_s), within the half second of a poll, not after it."""
  log = str(tmp_path / f'{module}.log')
  process = start_module(module, [
      *_FLAGS, f'--reverb_address=localhost:{unused_port()}',
      '--connect_timeout_s=120', f'--root_dir={tmp_path}'], log)
  try:
    deadline = time.monotonic() + 120
    while 'Connecting to the Reverb server' not in open(log).read():
      assert process.poll() is None, open(log).read()[-3000:]
      assert time.monotonic() < deadline, 'never started connecting'
      time.sleep(0.2)
    signalled = time.time()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    text = open(log).read()
    assert 'stopped while connecting to localhost:' in text, text[-3000:]
    # Its own clock: the stop came before the forced exit at 20 s.
    assert log_time(text, 'stopped while connecting') - signalled < 2.0
  finally:
    stop_processes([process])


def test_whole_job_stopped_at_once_exits_within_seconds(tmp_path):
  # The server, the learner and an actor get SIGTERM (a Ctrl-C of the
  # launcher, docker compose down), at a different point of training each
  # time: all at the same moment, or the server a second before the others,
  # so that the learner, which pushes every train step, is in a push to a
  # server that is gone. Each process exits well before its 20 s forced
  # exit, and the learner ends its run (its finished record).
  for attempt in range(_WHOLE_JOB_STOPS):
    server_lead_s = 1.0 if attempt % 2 else 0.0
    root_dir = str(tmp_path / str(attempt))
    job = Job(root_dir, more_flags=['--push_every_steps=1'])
    try:
      job.start_learner()
      job.start_actor(0)
      job.wait_for(lambda: job.train_step() >= 1, 'the first train step')
      time.sleep(0.2 * attempt)
      job.processes['reverb_server'].send_signal(signal.SIGTERM)
      time.sleep(server_lead_s)
      stopped = time.monotonic()
      for process in job.processes.values():
        if process.poll() is None:
          process.send_signal(signal.SIGTERM)
      for name, process in job.processes.items():
        process.wait(timeout=60)
        print(f'attempt {attempt} (server {server_lead_s}s before): {name} '
              f'exited {time.monotonic() - stopped:.1f}s after its SIGTERM')
        assert time.monotonic() - stopped < _PROMPT_EXIT_S, (
            f'{name} took {time.monotonic() - stopped:.1f}s to exit '
            f'(attempt {attempt}, the server stopped {server_lead_s}s '
            f'before): {open(job.log_path(name)).read()[-3000:]}')
      finished = records.read(
          run_dir.records_path(root_dir, records.LEARNER))[-1]
      assert (finished.event, finished['reason']) == (
          records.FINISHED, 'received SIGTERM'), finished
    finally:
      job.stop()


def test_a_call_left_behind_on_stop_does_not_hold_up_the_exit():
  # A process whose Reverb call never returns (its server is gone) exits
  # once the caller has given up on it: in-process users (the tests) have
  # no forced exit.
  script = '\n'.join([
      'import threading',
      'from common import reverb_calls',
      'calls = reverb_calls.StoppableCalls(lambda: True, poll_s=0.1)',
      'try:',
      '  calls.call(threading.Event().wait)',
      'except InterruptedError:',
      '  print("gave up")',
  ])
  done = subprocess.run([sys.executable, '-c', script], capture_output=True,
                        text=True, timeout=120, env=child_env(),
                        cwd=PROJECT_ROOT)
  assert (done.returncode, done.stdout) == (0, 'gave up\n'), done.stderr
