"""A stop request: SIGTERM, SIGINT (Ctrl-C) or SIGHUP turned into a flag
checked between steps; the run saves a checkpoint and stops. A second
signal exits at once (exit code 128 + the signal's number).

The one signal handler of the trainer. ``main.py`` installs it before its
slow imports (so a signal during start-up is seen) and hands it to
:func:`remix_jax.trainer.train.train_and_evaluate`, which installs its own
when called without one. Light to import (no JAX).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

#: The signals that ask a run to save and stop.
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


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
    name = signal.Signals(signum).name
    if self.requested:
      sys.stderr.write(f"{name} received again: exiting now, without "
                       "saving\n")
      os._exit(128 + signum)  # pylint: disable=protected-access
    self.signal_name = name
    self.requested = True  # before anything slow: a second signal may come
    logging.warning("%s received: saving a checkpoint and stopping (send "
                    "it again to exit at once)", name)

  def __exit__(self, *exc):
    for signum, previous in self._previous.items():
      signal.signal(signum, previous)
    self._previous = {}
