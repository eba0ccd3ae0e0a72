"""python -m deploy.launch_ray --address=auto \
     --flagfile=configs/cartpole_dqn.flags --actors=2 --root_dir=/shared/run

Runs the whole topology on a Ray cluster, one Ray actor per process, with
the flags and output of deploy.launch_local plus the placement's (below).
--root_dir must be a directory every node sees at the same path (a shared
filesystem): the children read the experiment there and write checkpoints
that a process restarted on another node restores.
"""
from common import shutdown
shutdown.block_signals()  # Before anything starts threads.

# pylint: disable=g-import-not-at-top,wrong-import-position
import logging
import threading
import time

from common import cli
from common import ports
from common import settings
from common.errors import UserError
from deploy import launch_flags
from deploy import ray_children
from deploy.graph import EVAL
from deploy.graph import SERVER
from deploy.graph import process_graph
from deploy.supervisor import Processes
from deploy.supervisor import run
from deploy.watch import ServerView
from deploy.watch import StatusMilestones

_EXPERIMENT_FLAGS = launch_flags.define_flags(__name__)
settings.define_flags(ray_children.RayPlacement, module_name=__name__)

_CONNECT_TIMEOUT_S = 20.0


class ClusterError(UserError, ConnectionError):
  """No Ray cluster answers at --address."""


def _connect(address: str, stop: shutdown.Shutdown) -> None:
  """ray.init, bounded: a head that does not answer, or does not let this
  driver in, is one error line, never a hang."""
  host, _, port = address.rpartition(':')
  if address != 'auto' and not (port.isdigit() and ports.wait_until_listening(
      host, int(port), _CONNECT_TIMEOUT_S)):
    raise ClusterError(
        f'no Ray cluster answers at --address={address}; start one with '
        f'`ray start --head` or pass the address of its head (host:port)')
  import ray
  failure = []

  def init():
    try:
      ray.init(address=address, log_to_driver=False,
               logging_level=logging.WARNING)
    except Exception as e:  # pylint: disable=broad-except
      failure.append(e)

  thread = threading.Thread(target=init, daemon=True, name='ray-init')
  thread.start()
  deadline = time.monotonic() + _CONNECT_TIMEOUT_S
  while thread.is_alive() and not stop.wait(0.2):
    if time.monotonic() > deadline:
      raise ClusterError(
          f'the Ray cluster at --address={address} did not take this driver '
          f'within {_CONNECT_TIMEOUT_S:.0f}s; with token authentication, '
          f'RAY_AUTH_MODE=token and its RAY_AUTH_TOKEN must be set here too')
  if failure:
    raise ClusterError(f'cannot join the Ray cluster at --address={address}: '
                       f'{str(failure[0]).splitlines()[0]}') from failure[0]


def main():
  stop = shutdown.Shutdown(grace_s=300)
  launch = launch_flags.launch_settings(_EXPERIMENT_FLAGS)
  placement = settings.from_flags(ray_children.RayPlacement)
  _connect(placement.address, stop)
  if stop.requested:
    cli.exit_now(1)
  import ray
  try:
    waiting = ray_children.check_resources(
        placement, launch.actors, tpu=launch.strategy.kind == 'tpu')
    if waiting:
      print(f'Note: {waiting}', flush=True)
    children = ray_children.make_children(launch, process_graph(launch),
                                          placement)
    address = children[SERVER].address
    code = run(launch, stop, Processes(
        children, address,
        StatusMilestones(ServerView(address), since=time.time()),
        children[EVAL].eval_rows if EVAL in children else list, env={}))
  finally:
    ray.shutdown()
  cli.exit_now(code)


if __name__ == '__main__':
  cli.run('launcher', main)
