"""When a run saves, and what a save writes: the checkpoint and, with the
first one, the run record."""

from __future__ import annotations

from remix_jax.trainer import checkpointing
from remix_jax.trainer import run_record


class RunSaver:
  """The run's checkpointer with its cadence and its record.

  Args:
    workdir: the run's directory.
    config: the run's config (its record).
    changes: the allowed config changes of this resume
      (:func:`remix_jax.trainer.run_record.check`).
    key_derivation: how the run's keys come from its seed.
    keep: checkpoints kept.
    every: save at the end of every this many epochs.
    primary: this is process 0 (it writes the record).
    replace_record: the workdir held no checkpoint: a record there belongs
      to a run that saved nothing and is replaced.
    allow_unverified: restore checkpoints that have no checksums
      (:class:`remix_jax.trainer.checkpointing.Checkpointer`).
  """

  def __init__(self, workdir: str, config, *, changes: dict,
               key_derivation: str, keep: int, every: int, primary: bool,
               replace_record: bool = False,
               allow_unverified: bool = False):
    self.checkpointer = checkpointing.Checkpointer(
        workdir, keep=keep, primary=primary,
        allow_unverified=allow_unverified)
    self.workdir, self.config, self.changes = workdir, config, changes
    self.key_derivation, self.every, self.primary = (
        key_derivation, every, primary)
    self.resumed_step = 0
    self.replace_record = replace_record
    self._recorded = False

  def restore(self, state):
    """``(state, restored step or None)`` from the newest good checkpoint
    (:meth:`remix_jax.trainer.checkpointing.Checkpointer.restore_latest`)."""
    restored = self.checkpointer.restore_latest(
        checkpointing.abstract_like(state))
    if restored is None:
      return state, None
    self.resumed_step = restored[0]
    return restored[1], restored[0]

  def due(self, epochs_done: int, *, last: bool) -> bool:
    """Whether a checkpoint is due after ``epochs_done`` epochs (or at the
    run's last step, or where it stops early: ``last``)."""
    return epochs_done % self.every == 0 or last

  def save(self, step: int, state) -> None:
    """Saves ``state`` as checkpoint ``step``. The first save writes the run
    record before the checkpoint (process 0), so that no checkpoint can
    exist without the record of its config."""
    if self.primary and not self._recorded:
      run_record.write(self.workdir, self.config, step=self.resumed_step,
                       changes=self.changes,
                       key_derivation=self.key_derivation,
                       replace=self.replace_record)
      self._recorded = True
    self.checkpointer.save(step, state)

  @property
  def directory(self) -> str:
    return self.checkpointer.directory

  def all_steps(self):
    return self.checkpointer.all_steps()

  def close(self) -> None:
    self.checkpointer.close()
