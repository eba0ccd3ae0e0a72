"""deploy.launch_ray on a real multi-node Ray cluster on this machine: each
node its own raylet on its own loopback address (ray.cluster_utils), nodes
removed mid-training as a dead host is."""
import contextlib
import glob
import os
import signal
import subprocess
import time

import pytest

from common import records
from common import run_dir
from common.connection import connect
from common.tables import learner_train_step
from tests.helpers import CARTPOLE_FLAGS
from tests.helpers import run_module
from tests.helpers import start_module

pytestmark = pytest.mark.slow  # Real Ray nodes and processes.

# Token auth on every node, the launcher and this process (Ray reads it
# once, when imported).
os.environ.update(RAY_AUTH_MODE='token', RAY_DEDUP_LOGS='0',
                  RAY_AUTH_TOKEN='test-token-0123456789abcdef0123456789abcd')
cluster_utils = pytest.importorskip('ray.cluster_utils')
_CHECKPOINT_EVERY = 500
_EXPERIMENT = [
    f'--flagfile={CARTPOLE_FLAGS}', '--max_train_steps=12000',
    f'--checkpoint_every_steps={_CHECKPOINT_EVERY}',
    '--policy_save_every_steps=100000', '--eval_every_steps=4000',
    '--eval_episodes=1', '--progress_every_s=2',
    # A quarter of a train step per env step: training goes at the actors'
    # pace, slow enough for the faults below to come before the end.
    '--samples_per_insert=16', '--rate_limiter_slack_steps=200']


@contextlib.contextmanager
def _cluster(*nodes):
  """A head (no resources: eval goes anywhere) and a node per (ip,
  resource); after it, no Ray process is left."""
  cluster = cluster_utils.Cluster(
      initialize_head=True, head_node_args={
          'num_cpus': 0, 'node_ip_address': '127.0.0.2',
          # A dead node is noticed within ~2 s, not Ray's default ~30 s.
          '_system_config': {'health_check_period_ms': 500,
                             'health_check_failure_threshold': 4,
                             'health_check_initial_delay_ms': 0}})
  try:
    for ip, resource in nodes:
      _add_node(cluster, ip, resource)
    cluster.wait_for_nodes()
    yield cluster
  finally:
    cluster.shutdown()
  assert not _ray_processes(), _ray_processes()


@pytest.fixture
def cluster():
  """A node each for the server, the learner and two collectors."""
  with _cluster(('127.0.0.3', 'replay'), ('127.0.0.4', 'learner'),
                ('127.0.0.5', 'collector'), ('127.0.0.6', 'collector')) as c:
    yield c


@pytest.fixture(scope='module')
def small_cluster():
  """A node each for the server, the learner and one collector."""
  with _cluster(('127.0.0.3', 'replay'), ('127.0.0.4', 'learner'),
                ('127.0.0.5', 'collector')) as c:
    yield c


def _add_node(cluster, ip, resource):
  return cluster.add_node(num_cpus=0, node_ip_address=ip,
                          resources={resource: 1})


def _ray_processes():
  ps = subprocess.run(['ps', '-eo', 'pid,args'], capture_output=True,
                      text=True).stdout
  return [line for line in ps.splitlines()
          if 'raylet' in line or 'gcs_server' in line or 'ray::' in line]


def _started(root_dir):
  """The launcher's STARTED records, oldest first."""
  return records.read(run_dir.records_path(root_dir, records.LAUNCHER),
                      records.STARTED)


def _placed(root_dir, process, after=0.0):
  """The newest STARTED record of `process` written after `after`."""
  found = [r for r in _started(root_dir)
           if r['process'] == process and r.time > after]
  return found[-1] if found else None


def _dials(record, address):
  return record is not None and record['reverb_address'] == address


def _wait(condition, timeout_s, what, launcher):
  deadline = time.monotonic() + timeout_s
  while True:
    value = condition()
    if value:
      return value
    assert launcher.poll() is None, f'the launcher exited before {what}'
    assert time.monotonic() < deadline, f'no {what} within {timeout_s}s'
    time.sleep(0.5)


def _node(cluster, ip):
  [node] = [n for n in cluster.list_all_nodes() if n.node_ip_address == ip]
  return node


def _our_processes(root_dir):
  ps = subprocess.run(['ps', '-eo', 'pid,args'], capture_output=True,
                      text=True).stdout
  return [line for line in ps.splitlines() if root_dir in line]


def _summary_events(summary_dir, tag):
  """(wall time, step, value) of every `tag` event under `summary_dir`."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  events = []
  for path in glob.glob(os.path.join(summary_dir, 'events.out.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          events.append((event.wall_time, event.step,
                         float(tf.make_ndarray(value.tensor))))
  return sorted(events)


def test_placed_by_resources_and_survives_losing_nodes(cluster, tmp_path):
  root_dir = str(tmp_path / 'run')
  launcher = start_module('deploy.launch_ray', [
      *_EXPERIMENT, f'--address={cluster.address}', '--actors=2',
      f'--root_dir={root_dir}'], str(tmp_path / 'launcher.log'))
  try:
    # Placement: each process on the node holding its resource; the
    # collectors dial the server node's address, never localhost.
    _wait(lambda: all(_placed(root_dir, p) for p in (
        'reverb_server', 'learner', 'actor_0', 'actor_1')), 240,
          'placement of the server, learner and actors', launcher)
    server = _placed(root_dir, 'reverb_server')
    assert server['node'] == '127.0.0.3'
    address = f'127.0.0.3:{server["port"]}'
    assert _placed(root_dir, 'learner')['node'] == '127.0.0.4'
    collectors = {_placed(root_dir, f'actor_{task}')['node']: task
                  for task in (0, 1)}
    assert sorted(collectors) == ['127.0.0.5', '127.0.0.6']
    for task in (0, 1):
      actor = _placed(root_dir, f'actor_{task}')
      assert actor['reverb_address'] == address
      with open(f'/proc/{actor["pid"]}/cmdline') as f:
        assert f'--reverb_address={address}' in f.read().split('\0')
      with open(f'/proc/{actor["pid"]}/environ', 'rb') as f:
        # No GPU for processes placed without one (TF would take it).
        assert b'CUDA_VISIBLE_DEVICES=' in f.read().split(b'\0')
    client = connect(address, timeout_s=60)

    def step():
      return learner_train_step(client) or 0

    _wait(lambda: step() >= 1000, 300, 'train step 1000', launcher)

    # Losing a collector node: training goes on with the other collector;
    # the lost actor restarts on a new node with weights at least as new.
    lost_task = collectors['127.0.0.6']
    lost_at, step_at_loss = time.time(), step()
    cluster.remove_node(_node(cluster, '127.0.0.6'), allow_graceful=False)
    _wait(lambda: step() >= step_at_loss + 500, 120,
          'training with one collector', launcher)
    _add_node(cluster, '127.0.0.8', 'collector')
    moved = _wait(lambda: _placed(root_dir, f'actor_{lost_task}', lost_at),
                  120, f'actor_{lost_task} placed again', launcher)
    assert moved['node'] == '127.0.0.8' and moved['reverb_address'] == address
    summaries = run_dir.actor_summary_dir(root_dir, lost_task)

    def resumed():
      return [(step, version) for wall_time, step, version in
              _summary_events(summaries, 'Actor/policy_version')
              if wall_time > moved.time]

    after = _wait(lambda: len(resumed()) >= 2 and resumed(), 120,
                  f'actor_{lost_task} collecting again', launcher)
    assert all(version >= step_at_loss for _, version in after), after
    assert after[-1][0] > after[0][0]  # Its env steps grow: it inserts.

    # Losing the learner node, its process killed at once as a dead host's
    # (no chance to checkpoint): the learner resumes on the spare node from
    # its last checkpoint.
    _add_node(cluster, '127.0.0.7', 'learner')
    learner = _placed(root_dir, 'learner')
    lost_at, step_at_loss = time.time(), step()
    os.kill(learner['pid'], signal.SIGKILL)
    cluster.remove_node(_node(cluster, '127.0.0.4'), allow_graceful=False)
    last_pushed = step()  # Pushed every 10 steps.
    moved = _wait(lambda: _placed(root_dir, 'learner', lost_at), 120,
                  'the learner placed again', launcher)
    assert moved['node'] == '127.0.0.7'

    def resumed_from():
      pushed = [r for r in records.read(
          run_dir.records_path(root_dir, records.LEARNER),
          records.WEIGHTS_PUSHED) if r.time > lost_at]
      return pushed and pushed[0]

    resumed_record = _wait(resumed_from, 180, 'the learner resuming',
                           launcher)
    assert (step_at_loss - _CHECKPOINT_EVERY <=
            resumed_record['train_step'] <= last_pushed + 10)

    # Losing the server's node: the server restarts on the spare replay
    # node from its checkpoint, and everyone dials its new address.
    _add_node(cluster, '127.0.0.9', 'replay')
    lost_at = time.time()
    os.kill(server['pid'], signal.SIGKILL)
    cluster.remove_node(_node(cluster, '127.0.0.3'), allow_graceful=False)
    moved = _wait(lambda: _placed(root_dir, 'reverb_server', lost_at), 120,
                  'the server placed again', launcher)
    assert moved['node'] == '127.0.0.9'
    address = f'127.0.0.9:{moved["port"]}'
    for process in ('learner', 'actor_0', 'actor_1', 'eval'):
      _wait(lambda: _dials(_placed(root_dir, process, lost_at), address),
            120, f'{process} dialing {address}', launcher)

    # The end: exit 0 with every process of ours gone.
    assert launcher.wait(600) == 0
    restarts = records.read(run_dir.records_path(root_dir, records.LAUNCHER),
                            records.RESTARTED)
    assert {r['process'] for r in restarts} == {
        'reverb_server', 'learner', 'actor_0', 'actor_1', 'eval'}
    assert not _our_processes(root_dir), _our_processes(root_dir)
  finally:
    if launcher.poll() is None:
      launcher.send_signal(signal.SIGTERM)
      launcher.wait(120)
    with open(tmp_path / 'launcher.log') as f:
      print(f.read()[-5000:])


def _launch(address, root_dir, *args, timeout_s=120, **env):
  return run_module('deploy.launch_ray', [
      f'--flagfile={CARTPOLE_FLAGS}', f'--address={address}',
      f'--root_dir={root_dir}', *args], timeout_s, env=env)


def _error_line(result):
  assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
  [line] = [l for l in result.stderr.splitlines() if l.startswith('error (')]
  return line


def test_an_unreachable_address_is_one_error_line(tmp_path):
  result = _launch('127.0.0.9:6390', tmp_path)
  assert 'no Ray cluster answers at --address=127.0.0.9:6390' in (
      _error_line(result))


@pytest.mark.parametrize('args, message', [
    (['--learner_resource=big_learner'],
     "no node of the Ray cluster offers 1 'big_learner' (for learner)"),
    (['--learner_gpus=1'], 'the Ray cluster has 0 GPUs, the learner asks '
     'for 1'),
])
def test_resources_nobody_has_are_one_error_line(small_cluster, tmp_path,
                                                 args, message):
  started = time.monotonic()
  assert message in _error_line(_launch(small_cluster.address, tmp_path,
                                        *args))
  assert time.monotonic() - started < 60
  assert not _our_processes(str(tmp_path))


def test_a_driver_without_the_token_is_turned_away(small_cluster, tmp_path):
  result = _launch(small_cluster.address, tmp_path,
                   RAY_AUTH_TOKEN='not-the-token-0123456789abcdef0123456789')
  assert 'RAY_AUTH_TOKEN' in _error_line(result)


def test_collect_actors_past_the_capacity_wait_and_say_so(small_cluster,
                                                          tmp_path):
  root_dir = str(tmp_path / 'run')
  launcher = start_module('deploy.launch_ray', [
      f'--flagfile={CARTPOLE_FLAGS}', f'--address={small_cluster.address}',
      f'--root_dir={root_dir}', '--actors=3'], str(tmp_path / 'launcher.log'))
  try:
    _wait(lambda: _placed(root_dir, 'actor_0'), 240, 'actor_0 placed',
          launcher)
    with open(tmp_path / 'launcher.log') as f:
      assert ("Note: 2 of 3 collect actors wait for a node with 'collector' "
              '(the cluster offers 1)') in f.read()
    launcher.send_signal(signal.SIGTERM)
    assert launcher.wait(120) == 128 + signal.SIGTERM
    assert not _placed(root_dir, 'actor_2')
    assert not _our_processes(root_dir), _our_processes(root_dir)
  finally:
    if launcher.poll() is None:
      launcher.kill()
