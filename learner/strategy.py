"""The learner's tf.distribute strategy: default (CPU or one GPU), mirrored
(all local GPUs, or logical CPUs for testing), TPU."""
import socket

from absl import logging
import tensorflow as tf

from common import ports
from common.config import StrategySettings
from common.errors import UserError


class TPUUnreachableError(UserError, ConnectionError):
  """--tpu names no TPU this host can reach."""


def make_strategy(config: StrategySettings,
                  connect_timeout_s: float) -> tf.distribute.Strategy:
  """default: one device; mirrored: all local GPUs; tpu: the named TPU."""
  if config.kind == 'mirrored' and config.cpu_replicas:
    # Before TensorFlow initialises its devices, as the learner's first step.
    cpu = tf.config.list_physical_devices('CPU')[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * config.cpu_replicas)
    return tf.distribute.MirroredStrategy(
        [f'/cpu:{i}' for i in range(config.cpu_replicas)])
  if config.kind == 'mirrored':
    if not tf.config.list_physical_devices('GPU'):
      logging.warning('--strategy=mirrored found no GPU: it trains on the '
                      'CPU, as one replica')
    return tf.distribute.MirroredStrategy()
  if config.kind == 'tpu':
    resolver = _tpu_resolver(config.tpu, connect_timeout_s)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)
  return tf.distribute.get_strategy()


def _tpu_resolver(tpu: str, connect_timeout_s: float):
  """The TPU's cluster resolver, once its address answers: connecting to a
  TPU that is not there would wait forever. A TPU name is looked up through
  the GCE metadata server, which TF asks with no timeout: here each of its
  calls gives up after connect_timeout_s."""
  default_timeout = socket.getdefaulttimeout()
  socket.setdefaulttimeout(connect_timeout_s)
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
  except Exception as e:  # pylint: disable=broad-except
    raise TPUUnreachableError(
        f'cannot resolve --tpu={tpu} ({type(e).__name__}: {e}): on a Cloud '
        f'TPU VM pass --tpu=local') from e
  finally:
    socket.setdefaulttimeout(default_timeout)
  address = resolver.master().replace('grpc://', '')
  host, _, port = address.rpartition(':')
  if host and port.isdigit() and not ports.wait_until_listening(
      host, int(port), connect_timeout_s, poll_s=0.5):
    raise TPUUnreachableError(
        f'no TPU answered at {resolver.master()} within '
        f'{connect_timeout_s:.0f}s: check --tpu and that this host can reach '
        f'the TPU worker (its port is 8470)')
  if resolver.master().startswith('grpc://'):
    logging.warning(
        'TPU worker %s is a remote TPU (a TPU Node): its host has no Reverb '
        'ops, so sampling is likely to fail there (google-deepmind/reverb#29);'
        ' run the learner on a Cloud TPU VM with --tpu=local', resolver.master())
  return resolver
