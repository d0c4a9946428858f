"""A small wrapper around orbax ``CheckpointManager``: save, auto-resume,
fall back past a corrupt checkpoint.

The train state (params, BatchNorm statistics, optimizer state, step, rng) is
one pytree saved with ``StandardSave``; the data position follows from the
step, because the input pipeline is deterministic per (seed, epoch, step).
"""

from __future__ import annotations

import logging
import os

import jax
import orbax.checkpoint as ocp


class Checkpointer:
  """Saves the train state under ``workdir/checkpoints`` and restores it.

  Args:
    workdir: the run's directory.
    keep: how many of the newest checkpoints to keep.
  """

  def __init__(self, workdir: str, keep: int = 2):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def save(self, step: int, state, *, wait: bool = False) -> None:
    """Saves ``state`` as checkpoint ``step`` (asynchronously unless ``wait``)."""
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)
    if wait:
      self._manager.wait_until_finished()

  def restore_latest(self, abstract_state):
    """The newest readable checkpoint as ``(step, state)``, or ``None``.

    A checkpoint that fails to restore (truncated or corrupt files) is skipped
    with a warning and the previous one is tried; nothing is deleted.

    Args:
      abstract_state: a pytree of ``jax.ShapeDtypeStruct`` with shardings
        (``jax.eval_shape`` of the initial state) that fixes the structure.
    """
    for step in sorted(self._manager.all_steps(), reverse=True):
      try:
        state = self._manager.restore(
            step, args=ocp.args.StandardRestore(abstract_state))
      except Exception as err:  # pylint: disable=broad-except
        logging.warning("checkpoint %d in %s cannot be restored (%s: %s); "
                        "falling back to the previous one", step,
                        self.directory, type(err).__name__,
                        str(err).splitlines()[0] if str(err) else "")
        continue
      return step, state
    return None

  def all_steps(self):
    return sorted(self._manager.all_steps())

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


def abstract_like(tree):
  """``ShapeDtypeStruct`` (with sharding) for every array leaf of ``tree``."""
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                     sharding=getattr(x, "sharding", None)),
      tree)
