"""docker compose: the shipped files are valid, and the topology really runs.

Needs a Docker engine and Compose v2 (scripts/docker_setup.sh provides both,
and the local base image). Set RL_SKIP_DOCKER_TESTS=1 to skip on purpose.
"""
import glob
import json
import os
import re
import subprocess
import time

import pytest

from tests.helpers import PROJECT_ROOT
from tests.helpers import scalar_values

pytestmark = [pytest.mark.docker, pytest.mark.slow]
# Smoke flagfiles and their max_train_steps.
_SMOKES = {'cartpole_dqn_smoke': 600, 'cartpole_ppo_smoke': 160}
_IMAGE = 'rl-actor-learner:ci'


@pytest.fixture(scope='module')
def docker():
  if os.environ.get('RL_SKIP_DOCKER_TESTS') == '1':
    pytest.skip('RL_SKIP_DOCKER_TESTS=1')
  info = subprocess.run(['docker', 'info'], capture_output=True, text=True)
  assert info.returncode == 0, (
      'no Docker engine answers (run scripts/docker_setup.sh, or set '
      f'RL_SKIP_DOCKER_TESTS=1 to skip): {info.stderr[-500:]}')
  version = subprocess.run(['docker', 'compose', 'version'],
                           capture_output=True, text=True)
  assert 'v2' in version.stdout, f'Compose v2 is needed: {version.stderr}'


def _compose(*args, env=None, timeout_s=900, check=True):
  result = subprocess.run(['docker', 'compose', *args], capture_output=True,
                          text=True, cwd=PROJECT_ROOT, timeout=timeout_s,
                          env={**os.environ, **(env or {})})
  if check:
    assert result.returncode == 0, (
        f'docker compose {" ".join(args)} failed:\n{result.stderr[-3000:]}')
  return result


@pytest.mark.parametrize('overrides', [
    [], ['deploy/compose.gpu.yml'], ['deploy/compose.tpu.yml']])
def test_compose_files_are_valid(docker, overrides):
  files = ['-f', 'docker-compose.yml']
  for override in overrides:
    files += ['-f', override]
  _compose(*files, 'config', '-q')


def _container_states(project, env):
  result = _compose('-p', project, 'ps', '--all', '--format', 'json', env=env)
  lines = [l for l in result.stdout.splitlines() if l.strip()]
  return [json.loads(l) for l in lines]


def _wait_for_learner(project, env, timeout_s):
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    for c in _container_states(project, env):
      if c['Service'] == 'learner' and c['State'] == 'exited':
        return c['ExitCode']
    time.sleep(5)
  logs = _compose('-p', project, 'logs', '--tail=30', env=env, check=False)
  pytest.fail(f'the learner did not finish in {timeout_s}s:\n'
              f'{logs.stdout[-5000:]}')


def _wait_for_exit(project, env, services, timeout_s):
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    states = [c for c in _container_states(project, env)
              if c['Service'] in services]
    if all(c['State'] == 'exited' for c in states):
      return states
    time.sleep(2)
  pytest.fail(f'{services} still running {timeout_s}s after the learner')


@pytest.mark.parametrize('smoke', sorted(_SMOKES))
def test_compose_topology_end_to_end(docker, tmp_path, smoke):
  max_steps = _SMOKES[smoke]
  project = f'rlci{os.getpid()}'
  env = {'EXPERIMENT': smoke, 'IMAGE': _IMAGE,
         'BASE_IMAGE': os.environ.get('RL_BASE_IMAGE', 'rl-base:bookworm')}
  start = time.monotonic()
  _compose('-p', project, 'build', 'reverb_server', env=env, timeout_s=1800)
  built = time.monotonic()
  try:
    _compose('-p', project, 'up', '-d', '--no-build', '--scale', 'actor=2',
             env=env)
    assert _wait_for_learner(project, env, timeout_s=600) == 0
    states = _wait_for_exit(project, env, ['actor', 'eval'], timeout_s=120)
    assert len([s for s in states if s['Service'] == 'actor']) == 2
    assert all(s['ExitCode'] == 0 for s in states), states
    _compose('-p', project, 'stop', 'reverb_server', env=env)  # Checkpoints.
    results = tmp_path / 'results'
    results.mkdir()
    subprocess.run(
        ['docker', 'run', '--rm', '--user', '0', '-v',
         f'{project}_results:/results', '-v', f'{results}:/out', _IMAGE,
         'cp', '-a', '/results/.', '/out/'], check=True, timeout=120)
    logs = _compose('-p', project, 'logs', '--no-color', 'actor',
                    env=env).stdout
  finally:
    down_start = time.monotonic()
    _compose('-p', project, 'down', '-v', '--timeout', '10', env=env,
             check=False)
    print(f'compose test: build {built - start:.0f}s, run '
          f'{down_start - built:.0f}s, down {time.monotonic() - down_start:.1f}s')
  # Two replicas, two distinct task ids, both inserted data.
  tasks = dict(re.findall(r'Task id (\d+), from hostname (\S+)', logs))
  assert len(tasks) == 2, logs[-3000:]
  written = re.findall(r'Actor (\d+) done: \d+ env steps, (\d+) items', logs)
  assert {task for task, _ in written} == set(tasks), logs[-3000:]
  assert all(int(items) > 0 for _, items in written)
  summaries = sorted(glob.glob(str(results / 'actors' / 'task_*')))
  assert len(summaries) == 2
  for summary_dir in summaries:
    assert max(scalar_values(summary_dir, 'Actor/policy_version')) > 0
  assert (results / 'train' / 'checkpoints' /
          f'ckpt-{max_steps}.index').exists()
  assert glob.glob(str(results / 'reverb_checkpoints' / '*' / 'DONE'))
  rows = (results / 'eval' / 'returns.csv').read_text().splitlines()
  assert rows[0].startswith('train_step,') and len(rows) >= 2
  assert rows[-1].startswith(f'{max_steps},')
