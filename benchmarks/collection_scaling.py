"""Total collection rate with 1 and 2 collect actor processes, and what that
projects to on more cores.

    .venv/bin/python -m benchmarks.collection_scaling \
        [--experiments=cartpole_dqn,minitaur_sac] [--envs=1,8] \
        [--seconds=10] [--rounds=3]

Production processes: a Reverb server process (MinSize limiter, so inserts
never wait for a learner) and two `python -m actor` processes, after the
benchmark pushed weights version 0. The 1-actor rounds pause the second
actor (SIGSTOP), the 2-actor rounds let both run; they alternate for
--rounds rounds and the table gives medians. The rate is items inserted per
second as the server counts them: one per env step except the first step of
each episode. CPU seconds come from /proc for the actors and the server.
The projection for N cores divides them by the CPU seconds one item costs
(actor + server, from the 2-actor rounds): it assumes the cores hold only
actors and the server (the learner elsewhere) and that both scale out.
"""
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time

from absl import app
from absl import flags
from absl import logging

from benchmarks import experiments
from benchmarks.measure import alternate
from benchmarks.measure import define_experiments
from benchmarks.measure import define_rounds
from benchmarks.measure import define_seconds
from benchmarks.measure import medians
from benchmarks.table import print_table
from common import agents
from common import envs
from common.connection import connect
from common.tables import table_size
from common.weights import WeightsSync
from common import specs as specs_lib
from common.config import REPLAY_TABLE

_EXPERIMENTS = define_experiments(['cartpole_dqn', 'minitaur_sac'])
_ENVS = flags.DEFINE_list('envs', ['1', '8'], 'Envs per actor.')
_SECONDS = define_seconds(10)
_ROUNDS = define_rounds(3)
_CORES = (4, 8, 16, 32)


def cpu_seconds(pid: int) -> float:
  """User + system CPU seconds of a process so far."""
  with open(f'/proc/{pid}/stat') as f:
    fields = f.read().rsplit(')', 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


@dataclasses.dataclass
class Window:
  """Inserts/s and CPU cores used by the actors and the server."""
  inserts_per_s: float
  actor_cores: float
  server_cores: float


def measure_window(client, actors, server_pid, seconds) -> Window:
  def snapshot():
    inserts = client.server_info()[REPLAY_TABLE].rate_limiter_info
    return (time.monotonic(), inserts.insert_stats.completed,
            sum(cpu_seconds(a.pid) for a in actors), cpu_seconds(server_pid))
  before = snapshot()
  time.sleep(seconds)
  after = snapshot()
  elapsed = after[0] - before[0]
  return Window(*((a - b) / elapsed for a, b in zip(after[1:], before[1:])))


@contextlib.contextmanager
def actor_processes(name, overrides, address, count):
  """`count` collect actors on `address`; yields their Popen objects."""
  actors = [subprocess.Popen(
      [sys.executable, '-m', 'actor',
       *experiments.flag_args(name, overrides),
       f'--reverb_address={address}', f'--task={task}'],
      cwd=experiments.PROJECT_ROOT, stderr=subprocess.DEVNULL)
            for task in range(count)]
  try:
    yield actors
  finally:
    for actor in actors:
      actor.send_signal(signal.SIGCONT)
      actor.kill()
      actor.wait()


def wait_until_inserting(client, actors, timeout_s=120) -> None:
  """Until inserts flow, then 5 s more for every actor to be in its loop."""
  deadline = time.monotonic() + timeout_s
  while table_size(client) == 0:
    if any(actor.poll() is not None for actor in actors):
      raise RuntimeError('an actor process exited')
    if time.monotonic() > deadline:
      raise TimeoutError('the actors did not start collecting')
    time.sleep(1.0)
  time.sleep(5.0)


def measure(name: str, num_envs: int):
  """Median windows with 1 and with 2 actors running."""
  overrides = (f'--envs_per_actor={num_envs}', '--max_train_steps=1000000000')
  config = experiments.load(name, *overrides)
  env = envs.load_env(config.env)
  agent, train_step = agents.make_agent(config, env)
  env.close()
  with experiments.server_process(name, *overrides) as server:
    address = server.address
    WeightsSync(
        address, specs_lib.variables_nest(agent, train_step)).push()
    client = connect(address, timeout_s=30)
    with actor_processes(name, overrides, address, 2) as actors:
      wait_until_inserting(client, actors)
      def window(count, _):
        if count == 2:
          return measure_window(client, actors, server.pid, _SECONDS.value)
        actors[1].send_signal(signal.SIGSTOP)
        paused = measure_window(client, actors, server.pid, _SECONDS.value)
        actors[1].send_signal(signal.SIGCONT)
        time.sleep(1.0)
        return paused
      windows = alternate([1, 2], _ROUNDS.value, window)
  return {count: Window(**medians({
      field.name: [getattr(w, field.name) for w in runs]
      for field in dataclasses.fields(Window)}))
          for count, runs in windows.items()}


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  rows = []
  for name in _EXPERIMENTS.value:
    for num_envs in map(int, _ENVS.value):
      windows = measure(name, num_envs)
      rows.append((name, num_envs, windows))
      print(f'{name} envs={num_envs}: {windows}', flush=True)
  def cells(name, num_envs, windows):
    one, two = windows[1], windows[2]
    per_actor_core = two.inserts_per_s / two.actor_cores
    per_server_core = two.inserts_per_s / two.server_cores
    cpu_seconds_per_item = 1 / per_actor_core + 1 / per_server_core
    return (name, num_envs, f'{one.inserts_per_s:.0f}',
            f'{two.inserts_per_s:.0f}',
            f'{two.inserts_per_s / one.inserts_per_s:.2f}',
            f'{per_actor_core:.0f}', f'{per_server_core:.0f}',
            *(f'{cores / cpu_seconds_per_item:.0f}' for cores in _CORES))
  print_table(('experiment', 'envs per actor', '1 actor items/s',
               '2 actors items/s', '2 / 1', 'items per actor CPU-second',
               'items per server CPU-second',
               *(f'projected, {cores} cores' for cores in _CORES)),
              (cells(*row) for row in rows))


if __name__ == '__main__':
  app.run(main)
