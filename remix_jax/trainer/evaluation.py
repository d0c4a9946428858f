"""Test-set evaluation of a run: when it is due, and how it is reported."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from remix_jax import metrics as metrics_lib
from remix_jax import parallel
from remix_jax.trainer import report


def evaluate(eval_step, state, eval_data, mesh, class_counts) -> dict:
  """Top-1/top-5, per-class and group accuracy over the whole test split
  (:func:`remix_jax.metrics.summarize`)."""
  totals = None
  for batch in eval_data.iterate():
    arrays = parallel.shard_batch(
        mesh, (batch["image"], batch["label"], batch["mask"]))
    counts = eval_step(state, *arrays)
    totals = counts if totals is None else jax.tree.map(jnp.add, totals,
                                                        counts)
  correct1, correct5, total = (np.asarray(jax.device_get(x)) for x in totals)
  return metrics_lib.summarize(correct1, correct5, total, class_counts)


class EpochEvaluation:
  """Evaluates at the end of every ``every``-th epoch and of the run, and
  reports each result: TensorBoard's ``test/*`` scalars, a console line and
  ``progress.json`` (process 0).

  Args:
    eval_step: the jitted eval step.
    eval_data: the test split (:class:`remix_jax.data.EvalData`).
    mesh: the device mesh.
    class_counts: training images per class (group accuracies).
    log: the run's :class:`remix_jax.trainer.run_log.RunLog`.
    workdir: the run's directory.
    steps_per_epoch: steps of one epoch.
    num_epochs: the run's epochs.
    every: evaluate every this many epochs.
    primary: this is process 0.
  """

  def __init__(self, eval_step, eval_data, mesh, class_counts, *, log,
               workdir: str, steps_per_epoch: int, num_epochs: int,
               every: int, primary: bool):
    self.eval_step, self.eval_data, self.mesh = eval_step, eval_data, mesh
    self.class_counts = class_counts
    self.log, self.workdir, self.primary = log, workdir, primary
    self.steps_per_epoch, self.num_epochs, self.every = (
        steps_per_epoch, num_epochs, every)

  def due(self, step: int) -> bool:
    """Whether an evaluation is due at ``step`` (an epoch's end)."""
    return ((step // self.steps_per_epoch) % self.every == 0
            or step >= self.num_epochs * self.steps_per_epoch)

  def evaluate(self, state) -> dict:
    """The test metrics of ``state``, unreported."""
    return evaluate(self.eval_step, state, self.eval_data, self.mesh,
                    self.class_counts)

  def __call__(self, step: int, state) -> dict:
    """Evaluates ``state`` at the end of epoch ``step // steps_per_epoch``
    and reports it."""
    epochs_done = step // self.steps_per_epoch
    out = self.evaluate(state)
    self.log.scalars(step, {f"test/{k}": v for k, v in out.items()
                            if isinstance(v, float)})
    self.log.write(
        f"epoch {epochs_done}/{self.num_epochs}: test top-1 "
        f"{out['top1']:.2f}%  many {report.fmt(out['many'])}  medium "
        f"{report.fmt(out['medium'])}  few {report.fmt(out['few'])}")
    if self.primary:
      report.write_progress(self.workdir, epoch=epochs_done, step=step,
                            metrics=out)
    self.log.restart_clock()
    return out
