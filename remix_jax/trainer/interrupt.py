"""A stop request: SIGTERM or SIGINT turned into a flag checked between steps.

The one signal handler of the trainer. ``main.py`` installs it before its
slow imports (so a signal during start-up is seen) and hands it to
:func:`remix_jax.trainer.train.train_and_evaluate`, which installs its own
when called without one. Light to import (no JAX).
"""

from __future__ import annotations

import logging
import signal
import threading

#: The signals that ask a run to save and stop.
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequest:
  """A context that turns :data:`SIGNALS` into ``requested = True``.

  On entry (in the main thread) it installs its handler for each signal; on
  exit it restores the previous handlers. Elsewhere it installs nothing and
  ``requested`` stays ``False``.
  """

  def __init__(self):
    self.requested = False
    self.signal_name = None
    self._previous = {}

  def __enter__(self) -> "StopRequest":
    if threading.current_thread() is threading.main_thread():
      for signum in SIGNALS:
        self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name
    logging.warning("%s received: saving a checkpoint and stopping",
                    self.signal_name)
    self.requested = True

  def __exit__(self, *exc):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous = {}
