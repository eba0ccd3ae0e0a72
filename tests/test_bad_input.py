"""Bad input: one clear error line and a non-zero exit, never a hang."""
import re
import signal
import socket
import time

import pytest

from tests.helpers import CARTPOLE_FLAGS
from tests.helpers import log_time
from tests.helpers import run_module
from tests.helpers import start_module
from tests.helpers import unused_port

pytestmark = pytest.mark.slow  # Real processes.

_TIMEOUT_S = 60
# A process's exit after its error line: TensorFlow's teardown.
_TEARDOWN_S = 3.0


def _error_lines(result):
  return [l for l in result.stderr.splitlines() if l.startswith('error (')]


@pytest.mark.parametrize('module, args, message', [
    ('reverb_server', ['--env=NoSuchEnv-v0'],
     "EnvError: unknown env 'NoSuchEnv-v0' in the gym or gymnasium suite"),
    ('reverb_server', ['--env=Pendulum-v1'],
     'AgentSpecError: DQN needs a discrete action space, but Pendulum-v1 has '
     'continuous actions'),
    ('learner', ['--env=MountainCarContinuous-v0', '--root_dir=/nonexistent'],
     'AgentSpecError: DQN needs a discrete action space'),
    ('actor', ['--agent=sac', '--env=CartPole-v0'],
     'AgentSpecError: SAC needs a continuous action space'),
    ('actor', ['--mode=eval'],
     'ConfigError: the eval actor needs --root_dir for its results'),
    ('learner', ['--strategy=tpu', '--tpu=grpc://127.0.0.1:1',
                 '--connect_timeout_s=3', '--root_dir=/tmp/unused'],
     'TPUUnreachableError: no TPU answered at grpc://127.0.0.1:1 within 3s'),
    ('learner', ['--strategy=tpu', '--tpu=no-such-tpu', '--root_dir=/tmp/unused'],
     'TPUUnreachableError: cannot resolve --tpu=no-such-tpu'),
    ('learner', ['--cpu_replicas=2', '--root_dir=/tmp/unused'],
     'ConfigError: --cpu_replicas needs --strategy=mirrored'),
    ('learner', ['--strategy=mirrored', '--cpu_replicas=3',
                 '--root_dir=/tmp/unused'],
     'ConfigError: batch_size 64 does not split evenly over 3 replicas'),
    ('deploy.launch_local', ['--batch_size=0', '--root_dir=/nonexistent'],
     'ConfigError: batch_size must be > 0, got 0'),
    ('reverb_server', ['--port=99999'],
     'flag --port=99999: 99999 is not an integer in the range [0, 65535]'),
])
def test_bad_experiment_is_one_error_line(module, args, message):
  result = run_module(module, [f'--flagfile={CARTPOLE_FLAGS}', *args],
                      _TIMEOUT_S)
  assert result.returncode == 2, result.stderr[-2000:]
  errors = _error_lines(result)
  assert len(errors) == 1, result.stderr[-2000:]
  assert message in errors[0]


def test_a_tpu_lookup_nobody_answers_gives_up_after_the_timeout():
  """The metadata server that resolves a TPU name accepts the connection
  and never answers (a network that drops the lookup): the learner says so
  after --connect_timeout_s instead of waiting forever."""
  with socket.socket() as silent:
    silent.bind(('127.0.0.1', 0))
    silent.listen(8)  # Connections complete in the backlog; nothing reads.
    host = f'127.0.0.1:{silent.getsockname()[1]}'
    start = time.monotonic()
    result = run_module('learner', [
        f'--flagfile={CARTPOLE_FLAGS}', '--strategy=tpu',
        '--tpu=no-such-tpu', '--connect_timeout_s=3',
        '--root_dir=/tmp/unused'], _TIMEOUT_S,
                        env={'GCE_METADATA_HOST': host})
    seconds = time.monotonic() - start
  assert result.returncode == 2, result.stderr[-2000:]
  errors = _error_lines(result)
  assert len(errors) == 1, result.stderr[-2000:]
  assert 'TPUUnreachableError: cannot resolve --tpu=no-such-tpu' in errors[0]
  assert 'timed out' in errors[0], errors[0]
  print(f'gave up after {seconds:.1f}s')


def test_launcher_repeats_a_childs_bad_input_error(tmp_path):
  # The launcher does not build the env itself: its children say what is
  # wrong, and it repeats that as its one error line.
  result = run_module('deploy.launch_local', [
      f'--flagfile={CARTPOLE_FLAGS}', '--env=NoSuchEnv-v0',
      f'--root_dir={tmp_path}'], _TIMEOUT_S)
  assert result.returncode == 2, result.stderr[-2000:]
  errors = _error_lines(result)
  assert len(errors) == 1, result.stderr[-2000:]
  assert errors[0].startswith('error (launcher): '), errors[0]
  assert "EnvError: unknown env 'NoSuchEnv-v0' in the gym or gymnasium suite" in errors[0]
  assert f'(its log: {tmp_path}/logs/' in errors[0]


@pytest.mark.parametrize('value, message', [
    ('nan', 'flag --stop_at_return=nan: must be a number, not nan'),
    ('inf', 'ConfigError: --stop_at_return must be a finite number, got inf'),
    ('-inf', 'ConfigError: --stop_at_return must be a finite number, got '
             '-inf'),
])
def test_launcher_refuses_a_return_eval_cannot_reach(tmp_path, value, message):
  result = run_module('deploy.launch_local', [
      f'--flagfile={CARTPOLE_FLAGS}', f'--stop_at_return={value}',
      f'--root_dir={tmp_path}'], _TIMEOUT_S)
  assert result.returncode == 2, result.stderr[-2000:]
  errors = _error_lines(result)
  assert len(errors) == 1, result.stderr[-2000:]
  assert errors[0].startswith('error (launcher): '), errors[0]
  assert message in errors[0]
  assert not (tmp_path / 'logs').exists()  # No child started.


def test_malformed_reverb_address_fails_at_once():
  # Not after --connect_timeout_s (30 s): there is nothing to wait for.
  start = time.monotonic()
  result = run_module('actor', [f'--flagfile={CARTPOLE_FLAGS}',
                                '--reverb_address=not_an_address'], _TIMEOUT_S)
  assert result.returncode == 2, result.stderr[-2000:]
  errors = _error_lines(result)
  assert len(errors) == 1, result.stderr[-2000:]
  assert ("error (actor): AddressError: --reverb_address 'not_an_address' is "
          'not host:port') in errors[0]
  assert time.monotonic() - start < 15  # Mostly importing TensorFlow.


@pytest.mark.parametrize('module, args', [
    ('actor', []),
    ('actor', ['--mode=eval', '--root_dir=/tmp/unused']),
    ('learner', ['--root_dir=/tmp/unused']),
])
def test_unreachable_reverb_fails_within_the_connect_timeout(module, args):
  address = f'localhost:{unused_port()}'
  result = run_module(module, [f'--flagfile={CARTPOLE_FLAGS}',
                               f'--reverb_address={address}',
                               '--connect_timeout_s=3', *args], _TIMEOUT_S)
  exited = time.time()
  assert result.returncode == 2, result.stderr[-2000:]
  errors = _error_lines(result)
  assert len(errors) == 1, result.stderr[-2000:]
  assert f'no Reverb server answered at {address} within 3s' in errors[0]
  # Within the 3 s timeout of its own clock, from its first try (importing
  # TensorFlow before it takes as long as the machine makes it), plus the
  # exit's teardown.
  connecting = log_time(result.stderr, 'Connecting to the Reverb server')
  assert exited - connecting < 3 + _TEARDOWN_S, exited - connecting


@pytest.mark.parametrize('flagfile_text, message', [
    ('--env=CartPole-v0\n--no_such_flag=3\n', 'no_such_flag'),
    ('--batch_size=sixty-four\n', 'batch_size'),
    ('--agent=ppo\n', 'agent'),
])
def test_malformed_flagfile_fails(tmp_path, flagfile_text, message):
  flagfile = tmp_path / 'bad.flags'
  flagfile.write_text(flagfile_text)
  result = run_module('reverb_server', [f'--flagfile={flagfile}'], _TIMEOUT_S)
  assert result.returncode == 2, result.stderr[-2000:]
  errors = _error_lines(result)
  assert len(errors) == 1, result.stderr[-2000:]
  assert errors[0].startswith('error (reverb_server): '), errors[0]
  assert message in errors[0]


def test_missing_flagfile_fails(tmp_path):
  result = run_module('learner', [f'--flagfile={tmp_path}/none.flags',
                                  f'--root_dir={tmp_path}'], _TIMEOUT_S)
  assert result.returncode != 0
  assert 'none.flags' in result.stderr


def test_occupied_port_is_named(tmp_path):
  with socket.socket() as holder:
    holder.bind(('0.0.0.0', 0))
    holder.listen()
    port = holder.getsockname()[1]
    result = run_module('reverb_server', [f'--flagfile={CARTPOLE_FLAGS}',
                                          f'--port={port}'], _TIMEOUT_S)
  assert result.returncode == 2, result.stderr[-2000:]
  assert f'PortInUseError: port {port} is already in use' in result.stderr


@pytest.mark.parametrize('module, args', [
    ('learner', []),
    ('actor', ['--mode=eval']),
    ('deploy.launch_local', []),
])
def test_unwritable_root_dir_is_named(module, args):
  # A directory below a regular file cannot be created, even by root.
  root_dir = '/etc/hostname/results'
  result = run_module(module, [f'--flagfile={CARTPOLE_FLAGS}',
                               f'--root_dir={root_dir}', *args], _TIMEOUT_S)
  assert result.returncode == 2, result.stderr[-2000:]
  errors = _error_lines(result)
  assert len(errors) == 1, result.stderr[-2000:]
  assert f'RootDirError: cannot write to --root_dir {root_dir}' in errors[0]


def _serve(tmp_path, name, args):
  """A reverb_server process, once it listens; stop it with SIGTERM."""
  log_path = tmp_path / f'{name}.log'
  server = start_module('reverb_server',
                        [f'--flagfile={CARTPOLE_FLAGS}', *args], log_path)
  deadline = time.monotonic() + _TIMEOUT_S
  while 'Reverb server listening' not in log_path.read_text():
    assert server.poll() is None, log_path.read_text()[-2000:]
    assert time.monotonic() < deadline, 'the server did not start'
    time.sleep(0.5)
  return server


def test_port_zero_serves_on_a_free_port_and_says_which(tmp_path):
  server = _serve(tmp_path, 'server', ['--port=0'])
  try:
    log = (tmp_path / 'server.log').read_text()
    port = int(re.search(r'Reverb server listening on port (\d+)', log)[1])
    assert port > 0
    with socket.create_connection(('localhost', port), timeout=5):
      pass
    assert 'open on every network interface' in log
    assert 'no authentication' in log
  finally:
    server.send_signal(signal.SIGTERM)
    server.wait(30)


def test_config_unlike_the_servers_names_the_difference(tmp_path):
  port = unused_port()
  server = _serve(tmp_path, 'server', [f'--port={port}'])
  try:
    result = run_module('actor', [
        f'--flagfile={CARTPOLE_FLAGS}', f'--reverb_address=localhost:{port}',
        '--fc_layer_params=100,40'], _TIMEOUT_S)
  finally:
    server.send_signal(signal.SIGTERM)
    server.wait(30)
  assert result.returncode == 2, result.stderr[-2000:]
  errors = _error_lines(result)
  assert len(errors) == 1, result.stderr[-2000:]
  assert ("TableMismatchError: table 'variables' on the server does not match "
          'this experiment config: policy_variables/2: server float32[100, '
          '50] vs config float32[100, 40]') in errors[0]


def test_checkpoint_of_another_experiment_is_refused(tmp_path):
  checkpoints = f'--checkpoint_dir={tmp_path}/checkpoints'
  server = _serve(tmp_path, 'first', [f'--port={unused_port()}', checkpoints])
  server.send_signal(signal.SIGTERM)  # Writes a checkpoint.
  assert server.wait(30) == 0
  result = run_module('reverb_server', [
      f'--flagfile={CARTPOLE_FLAGS}', f'--port={unused_port()}', checkpoints,
      '--replay_capacity=5000'], _TIMEOUT_S)
  assert result.returncode == 2, result.stderr[-2000:]
  errors = _error_lines(result)
  assert len(errors) == 1, result.stderr[-2000:]
  assert ('CheckpointMismatchError: the checkpoint in --checkpoint_dir '
          f'{tmp_path}/checkpoints holds tables of another experiment config: '
          'experience.max_size: server 100000 vs config 5000') in errors[0]
