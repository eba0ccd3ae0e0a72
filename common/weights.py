"""Policy weights through Reverb: the learner pushes its variables and
train_step to the variables table, actors pull them."""
import time
from typing import Callable, Dict

from absl import logging
import numpy as np
import reverb
import tensorflow as tf
import tree
from tf_agents.experimental.distributed import reverb_variable_container

from common.errors import UserError
from common.reverb_calls import LongWait
from common.reverb_calls import StoppableCalls
from common.reverb_calls import retry_call
from common.specs import TRAIN_STEP_KEY
from common.specs import VARIABLES_TABLE
from common.tables import learner_train_step


class WeightsTimeoutError(UserError, TimeoutError):
  """The learner pushed no weights in time."""


class WeightsSync:
  """Pushes or pulls the policy variables + train_step through Reverb.

  Until `should_stop()`: then a push or pull the server does not answer
  gives up (see StoppableCalls).
  """

  def __init__(self, address: str, variables: Dict,
               should_stop: Callable[[], bool] = lambda: False):
    self._container = reverb_variable_container.ReverbVariableContainer(
        address, table_names=[VARIABLES_TABLE])
    self._client = reverb.Client(address)
    self._variables = variables
    self._flat_variables = tf.nest.flatten(variables)
    self._version_index = [path for path, _ in tree.flatten_with_path(
        variables)].index((TRAIN_STEP_KEY,))
    self._calls = StoppableCalls(should_stop)

  @property
  def version(self) -> int:
    """The train_step the local weights come from."""
    return int(self._variables[TRAIN_STEP_KEY].numpy())

  def push(self) -> bool:
    """Pushes the variables; whether they were pushed (see retry_call)."""
    return retry_call(self._calls, lambda: self._container.push(
        self._variables), 'Pushing weights')

  def push_if_replaced(self) -> bool:
    """Pushes again if the server holds weights of another version (a
    server restored from an older checkpoint); whether it pushed. Raises
    InterruptedError when stopped while the server does not answer."""
    served = self._calls.call(lambda: learner_train_step(self._client))
    if served == self.version:
      return False
    logging.warning('The server holds weights version %s, not %d (restored '
                    'from an older checkpoint?): pushing them again', served,
                    self.version)
    return self.push()

  def pull(self) -> int:
    """Updates the local variables to the latest pushed ones; the version.

    One sample with the Python client and an assign per variable, none when
    the version is the one held: half the CPU of TF-Agents' container pull.
    Raises InterruptedError when stopped during a pull the server does not
    answer.
    """
    values = self._calls.call(lambda: next(self._client.sample(
        VARIABLES_TABLE, num_samples=1, emit_timesteps=False)).data)
    version = int(np.reshape(values[self._version_index], -1)[0])
    if version != self.version:
      for variable, value in zip(self._flat_variables, values):
        variable.assign(np.reshape(value, variable.shape))
    return version

  def wait_and_pull(self, timeout_s: float, log_every_s: float = 10.0) -> int:
    """Blocks until the learner pushed weights, then pulls them."""
    start = time.monotonic()
    wait = LongWait(log_every_s, lambda waited: logging.info(
        'Waiting for the learner to push weights version 0 to table %r '
        '(%.0fs of %.0fs)', VARIABLES_TABLE, waited, timeout_s))
    while self._client.server_info()[VARIABLES_TABLE].current_size == 0:
      if self._calls.should_stop():
        raise InterruptedError('stopped while waiting for weights')
      if time.monotonic() - start > timeout_s:
        raise WeightsTimeoutError(
            f'the learner pushed no weights to table {VARIABLES_TABLE!r} '
            f'within {timeout_s:.0f}s: is the learner running against the '
            f'same Reverb server? (see --weights_timeout_s)')
      wait.tick()
      time.sleep(0.2)
    return self.pull()
