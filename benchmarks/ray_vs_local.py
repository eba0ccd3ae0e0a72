"""python -m benchmarks.ray_vs_local [--rounds=3] [--max_train_steps=8000]

deploy.launch_ray on a local multi-node Ray cluster (a head and a node each
for the server, the learner and the collectors, on loopback addresses)
against deploy.launch_local, same flags and seeds, alternating rounds. Per
job: the time from launch to the first train step, the steady train and
env steps/s (the learner's progress records after the first quarter of the
budget), and the time to an eval return of 200 (CartPole DQN). Then Ray's
own memory per node (RSS of each node's Ray processes, with no job).
The cluster stands through all rounds, as a user's would.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

from benchmarks import measure
from benchmarks.table import print_table
from common import records
from common import run_dir

_ROUNDS = measure.define_rounds(3, 'Alternating rounds (seed = round).')
_MAX_TRAIN_STEPS = flags.DEFINE_integer('max_train_steps', 8000,
                                        'Train steps per job.')
_ACTORS = flags.DEFINE_integer('actors', 2, 'Collect actors.')
_TARGET = 200.0
_NODES = (('127.0.0.3', 'replay', 1), ('127.0.0.4', 'learner', 1),
          ('127.0.0.5', 'collector', 2))
_VARIANTS = ('launch_local', 'launch_ray')


def _start_cluster():
  from ray import cluster_utils  # pylint: disable=g-import-not-at-top
  cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={
      'num_cpus': 0, 'node_ip_address': '127.0.0.2'})
  for ip, resource, units in _NODES:
    cluster.add_node(num_cpus=0, node_ip_address=ip,
                     resources={resource: units})
  cluster.wait_for_nodes()
  return cluster


def _job(variant, seed, address) -> dict:
  root_dir = tempfile.mkdtemp(prefix=f'{variant}_')
  extra = [f'--address={address}'] if variant == 'launch_ray' else []
  command = [sys.executable, '-m', f'deploy.{variant}', *extra,
             '--flagfile=configs/cartpole_dqn.flags', f'--seed={seed}',
             f'--actors={_ACTORS.value}',
             f'--max_train_steps={_MAX_TRAIN_STEPS.value}',
             f'--root_dir={root_dir}']
  launched = time.time()
  with open(os.path.join(root_dir, 'launcher.out'), 'w') as out:
    subprocess.run(command, cwd=measure.PROJECT_ROOT, stdout=out,
                   stderr=subprocess.STDOUT, check=True)
  learner = measure.learner_records(root_dir)
  first = next(r.time for r in learner if r.event == records.FIRST_TRAIN_STEP)
  steady = [r for r in measure.progress_with(
      learner, 'Learner/train_steps_per_sec')
            if r['train_step'] > _MAX_TRAIN_STEPS.value // 4]
  target = next((float(r['wall_time']) for r in run_dir.read_eval_returns(
      run_dir.returns_csv_path(root_dir))
                 if float(r['average_return']) >= _TARGET), None)
  return {
      'first_step_s': first - launched,
      'train_per_s': statistics.median(
          r['Learner/train_steps_per_sec'] for r in steady),
      'env_per_s': statistics.median(
          r['Reverb/inserts_per_sec'] for r in steady),
      'target_s': None if target is None else target - launched}


def _ray_memory_mb():
  """RSS in MB of each node's Ray processes (its raylet and every process
  under it: agents, idle workers), and of the head's services (GCS,
  dashboard, monitors)."""
  ps = [line.split(None, 3) for line in subprocess.run(
      ['ps', '-eo', 'pid,ppid,rss,args'], capture_output=True,
      text=True).stdout.splitlines()[1:]]
  rss = {int(pid): int(kb) / 1024 for pid, _, kb, _ in ps}
  children = {}
  for pid, ppid, _, _ in ps:
    children.setdefault(int(ppid), []).append(int(pid))

  def tree(pid):
    return rss[pid] + sum(tree(child) for child in children.get(pid, []))

  memory = {}
  for pid, _, _, args in ps:
    if '/raylet/raylet ' in args:
      ip = args.split('--node_ip_address=')[1].split()[0]
      memory[f'node {ip}'] = tree(int(pid))
    elif any(name in args for name in ('gcs_server', 'monitor.py',
                                       'dashboard.py', 'log_monitor.py')):
      memory['head services'] = memory.get('head services', 0) + rss[int(pid)]
  return memory


def main(argv):
  del argv
  cluster = _start_cluster()
  try:
    def run(variant, round_index):
      return _job(variant, round_index, cluster.address)

    def report(variant, round_index, result):
      print(f'round {round_index} {variant}: {result}', flush=True)

    runs = measure.alternate(list(_VARIANTS), _ROUNDS.value, run, report)
    time.sleep(5)  # Idle workers of the last job exit.
    memory = _ray_memory_mb()
  finally:
    cluster.shutdown()

  def median(variant, key):
    values = [r[key] for r in runs[variant] if r[key] is not None]
    return statistics.median(values) if values else None

  rows = []
  for key, name in (('first_step_s', 'launch to first train step (s)'),
                    ('train_per_s', 'steady train steps/s'),
                    ('env_per_s', 'steady env steps/s'),
                    ('target_s', f'launch to eval return {_TARGET:.0f} (s)')):
    local, ray = median('launch_local', key), median('launch_ray', key)
    rows.append((name, _fmt(local), _fmt(ray),
                 f'{ray / local:.2f}' if local and ray else '-'))
  print_table(('median', 'launch_local', 'launch_ray', 'ray / local'), rows)
  print_table(('Ray node', 'RSS of its Ray processes (MB)'),
              sorted((node, f'{mb:.0f}') for node, mb in memory.items()))


def _fmt(value):
  return '-' if value is None else f'{value:.1f}'


if __name__ == '__main__':
  app.run(main)
