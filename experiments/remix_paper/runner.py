"""Trains the unfinished runs of a reproduction table, branching each
deferred method from its base.

A deferred method (DRW, DRS, …) trains exactly as its base method until its
switch epoch (``config.rebalance_epoch``; :func:`remix_jax.trainer.methods.
deferred_base`). So the base is trained to that epoch and stopped there with
a checkpoint (``train_and_evaluate(..., stop_at_epoch=...)``); each deferred
run starts from a copy of it (:func:`remix_jax.trainer.checkpointing.copy_checkpoint`)
and the base continues. A five-row table with two deferred rows then costs
3 × 200 + 2 × 40 epochs instead of 5 × 200.

The copy carries the base's run record (``config.json``), and the deferred
run continues it with only the fields that differ allowed to change
(``allow_changes``), so any other difference is refused in one line. The
branch is written to ``branch.json`` in the deferred run's workdir (base,
step, epoch and the base's test curve up to there), and the report marks the
row as branched.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from typing import Callable, Optional, Sequence

from experiments.remix_paper import status
from experiments.remix_paper.status import FINISHED
from experiments.remix_paper.status import Run
from experiments.remix_paper.tables import Cell
from remix_jax import files
from remix_jax.trainer import checkpointing
from remix_jax.trainer import methods
from remix_jax.trainer import run_record


def _train_fn():
  from remix_jax.trainer import train  # pylint: disable=g-import-not-at-top
  return train.train_and_evaluate


def changed_fields(base_config, config) -> list[str]:
  """The (dotted) fields in which ``config`` differs from ``base_config``,
  each with its method applied (:func:`remix_jax.trainer.methods.resolve`),
  as the run record holds them."""
  old = run_record.flatten(methods.resolve(base_config))
  new = run_record.flatten(methods.resolve(config))
  return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def branch(run: Run, base: Cell, base_workdir: str, step: int,
           epoch: int) -> None:
  """Starts ``run`` from checkpoint ``step`` (epoch ``epoch``) of its base's
  workdir: copies the checkpoint and the base's run record, and writes
  ``branch.json`` (the base, the step, the epoch and the base's test curve up
  to it). ``run`` is updated in place to what its workdir now holds."""
  os.makedirs(run.workdir, exist_ok=True)
  # The record first: a checkpoint without one is refused as foreign.
  files.write_atomically(
      os.path.join(run.workdir, run_record.RECORD_FILE),
      lambda tmp: shutil.copyfile(
          os.path.join(base_workdir, run_record.RECORD_FILE), tmp))
  checkpointing.copy_checkpoint(base_workdir, step, run.workdir)
  curve = [p for p in status.eval_curve(base_workdir) if p[0] <= epoch]
  record = {"method": base.method, "base": base.run_name(run.seed),
            "step": step, "epoch": epoch, "base_curve": curve}
  files.write_json(os.path.join(run.workdir, status.BRANCH_FILE), record,
                   indent=1)
  _refresh(run)


def _refresh(run: Run) -> None:
  """Re-reads ``run``'s state from its workdir, in place."""
  now = status.run_status(run.cell, run.seed, os.path.dirname(run.workdir))
  for field in dataclasses.fields(now):
    setattr(run, field.name, getattr(now, field.name))


def _needs_branch(run: Run) -> bool:
  """A deferred run that has not started (no checkpoint, no branch)."""
  return (run.state != FINISHED and run.cell.deferred_base() is not None
          and not checkpointing.saved_steps(run.workdir)
          and run.branch is None)


def _configure(cell: Cell, seed: int, data_dir: str):
  config = cell.config(seed)
  config.data.data_dir = data_dir
  return config


def _branch_from_base(children: Sequence[Run], base: Cell, runs_dir: str,
                      data_dir: str, train_fn) -> bool:
  """Trains ``base`` to the switch epoch of ``children`` (deferred runs of
  one seed that have not started) and branches each of them there; ``False``
  if interrupted."""
  seed = children[0].seed
  base_workdir = os.path.join(runs_dir, base.run_name(seed))
  epoch = _configure(children[0].cell, seed, data_dir).rebalance_epoch
  print(f"== {base_workdir}: to epoch {epoch}, where "
        f"{', '.join(c.cell.method for c in children)} branch from it",
        flush=True)
  stopped = train_fn(_configure(base, seed, data_dir), base_workdir,
                     stop_at_epoch=epoch)
  if stopped.get("interrupted"):
    print(f"interrupted at step {stopped['step']}; re-run to resume")
    return False
  at = epoch * stopped["steps_per_epoch"]
  for child in children:
    if at in checkpointing.saved_steps(base_workdir):
      branch(child, base, base_workdir, at, epoch)
      print(f"== {child.workdir}: branched from checkpoint {at} of "
            f"{base_workdir}", flush=True)
    else:
      logging.warning("%s is past epoch %d without a checkpoint there; %s "
                      "trains from step 0", base_workdir, epoch,
                      child.workdir)
  return True


def train_runs(runs: Sequence[Run], runs_dir: str, data_dir: str,
               on_finished: Callable[[], None], *,
               train_fn: Optional[Callable] = None) -> bool:
  """Trains each unfinished run of ``runs`` (seed 0 of every cell first),
  branching deferred runs from their base (module docstring).

  Before a run trains, the deferred runs that branch from it (or, for a
  deferred run, from its own base) and have not started are branched: the
  base (same cell with the base method, same seed, in ``runs_dir``, whether
  or not it is among ``runs``) is trained to the switch epoch and copied. A
  base already past the switch without a checkpoint there leaves its
  deferred runs to train from step 0 (logged).

  Args:
    runs: the runs to train (:func:`status.table_runs`).
    runs_dir: the directory of the table's workdirs.
    data_dir: ``config.data.data_dir`` of every run.
    on_finished: called after each run that finishes.
    train_fn: ``train_and_evaluate`` (a test may pass its own).

  Returns:
    ``False`` if a run was interrupted (SIGTERM), after which the rest are
    left alone; ``True`` otherwise.
  """
  train_fn = train_fn or _train_fn()
  ordered = sorted(runs, key=lambda r: r.seed)  # stable: table order
  for run in ordered:
    if run.state == FINISHED:
      continue
    base = run.cell.deferred_base() or run.cell
    children = [r for r in ordered if r.seed == run.seed and _needs_branch(r)
                and r.cell.deferred_base().run_name(r.seed)
                == base.run_name(r.seed)]
    if children:
      if not _branch_from_base(children, base, runs_dir, data_dir, train_fn):
        return False
      _refresh(run)  # the base itself may have trained to the branch
    allow = ()
    if run.branch is not None:
      allow = changed_fields(_configure(base, run.seed, data_dir),
                             _configure(run.cell, run.seed, data_dir))
    print(f"== {run.workdir}: {run.describe()}", flush=True)
    result = train_fn(_configure(run.cell, run.seed, data_dir), run.workdir,
                      allow_changes=allow)
    if result.get("interrupted"):
      print(f"interrupted at step {result['step']}; re-run to resume")
      return False
    on_finished()
  return True
