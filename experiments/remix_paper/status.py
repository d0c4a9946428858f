"""What a table's run workdirs hold: finished, in progress or not started,
the test top-1 curve, and the branch a deferred run started from.

A run's workdir (``remix_jax.trainer.train.train_and_evaluate``) holds
``checkpoints/``, TensorBoard events (``test/top1`` at every evaluation),
``progress.json`` (the last evaluation) and, once finished, ``results.json``.
A run branched from its base (:mod:`experiments.remix_paper.runner`) also
holds ``branch.json``. In a report, copies under
``<results_dir>/runs/<table>/`` (:func:`archive_dir`) stand in for workdirs
that are not on this machine; what is trained is decided by the workdirs
alone, so committed copies are references, never reasons to skip a run.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from typing import Optional, Sequence

from experiments.remix_paper.tables import Cell
from remix_jax.trainer import checkpointing
from remix_jax.trainer import run_record
from remix_jax.trainer import report

FINISHED, IN_PROGRESS, NOT_STARTED = "finished", "in progress", "not started"

#: Written by the runner into a run that starts from its base's checkpoint.
BRANCH_FILE = "branch.json"


@dataclasses.dataclass
class Run:
  """One (cell, seed) and what its workdir holds.

  Attributes:
    cell: the cell.
    seed: the run's seed (``configs/cifar_lt.py``: subset, initialisation,
      mixing and data order).
    workdir: the run's directory.
    state: :data:`FINISHED`, :data:`IN_PROGRESS` or :data:`NOT_STARTED`.
    step: newest checkpoint step (``None`` without checkpoints).
    epoch: last evaluated epoch from ``progress.json`` (``None`` if absent).
    top1: test top-1 at that epoch (``None`` if unknown).
    results: the parsed ``results.json`` of a finished run.
    archived: the workdir is not here; ``epoch``/``top1`` come from the
      archived ``progress.json``, so a re-run starts from step 0.
    curve: ``[[epoch, top1], …]`` of every evaluation (a branched run's
      starts with its base's up to the branch).
    branch: the parsed ``branch.json`` (``base``, ``step``, ``epoch``), or
      ``None`` for a run trained from step 0.
    resumed_at: steps at which the run went on from a checkpoint after it
      stopped (``resumed_at`` of ``progress.json`` or ``results.json``), a
      branched run's start included.
    branched_at: steps at which deferred runs branched from this run (set
      by :func:`table_runs`): it stopped there by plan and went on.
    key_derivation: how the run's keys came from its seed (its run record's
      ``key_derivation``); ``None`` for a run started before it was recorded
      (init ``key(seed)``, step ``key(seed + 1)``) or not started.
  """

  cell: Cell
  seed: int
  workdir: str
  state: str = NOT_STARTED
  step: Optional[int] = None
  epoch: Optional[int] = None
  top1: Optional[float] = None
  results: Optional[dict] = None
  archived: bool = False
  curve: list = dataclasses.field(default_factory=list)
  branch: Optional[dict] = None
  resumed_at: list = dataclasses.field(default_factory=list)
  branched_at: list = dataclasses.field(default_factory=list)
  key_derivation: Optional[str] = None

  @property
  def restarts(self) -> list[int]:
    """:attr:`resumed_at` without the planned ones: a branched run's start
    from its base, and a base going on after its deferred runs branched."""
    planned = set(self.branched_at)
    if self.branch is not None:
      planned.add(self.branch.get("step"))
    return [s for s in self.resumed_at if s not in planned]

  def describe(self) -> str:
    """A short status line, e.g. ``'in progress (checkpoint at step 768)'``."""
    if self.state == FINISHED:
      return f"finished (top-1 {report.fmt(self.results['metrics']['top1'])})"
    if self.state == IN_PROGRESS:
      if self.epoch is not None:
        line = f"in progress, last evaluated epoch {self.epoch}"
        if self.top1 is not None:
          line += f" (top-1 {report.fmt(self.top1)})"
        if self.archived:
          line += "; its checkpoint is not on this machine"
        return line
      if self.step is not None:
        return f"in progress (checkpoint at step {self.step})"
      return "in progress (no checkpoint yet)"
    return NOT_STARTED


def read_json(path: str) -> Optional[dict]:
  """The parsed JSON file, or ``None`` if it is missing or unreadable."""
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def archive_dir(results_dir: str, table: str) -> str:
  """Where the report keeps copies of the runs' results.

  ``<results_dir>/runs/<table>/<run name>.json`` (finished: ``results.json``
  plus ``curve`` and ``branch``) and ``<run name>.progress.json``
  (unfinished: last evaluated epoch and top-1, ``curve``, ``branch``):
  committed with the report, so that a report rewritten in the same
  ``results_dir`` still shows the finished runs and how far the others got,
  although their workdirs (checkpoints) are not committed.
  """
  return os.path.join(results_dir, "runs", table)


def archived_progress_path(archive: str, run_name: str) -> str:
  """The archived progress of an unfinished run."""
  return os.path.join(archive, run_name + ".progress.json")


def eval_curve(workdir: str) -> list[list]:
  """``[[epoch, top1], …]`` of the run's evaluations, from its TensorBoard
  events (``test/top1``) and ``progress.json`` (steps → epochs); a step
  evaluated twice (a resumed run) keeps its last value. Empty without
  events or an evaluation."""
  progress = read_json(os.path.join(workdir, "progress.json")) or {}
  if not progress.get("epoch") or not glob.glob(
      os.path.join(workdir, "events.out.tfevents.*")):
    return []
  steps_per_epoch = progress["step"] // progress["epoch"]
  # pylint: disable=g-import-not-at-top
  from tensorboard.backend.event_processing import event_accumulator
  from tensorboard.util import tensor_util
  # pylint: enable=g-import-not-at-top
  events = event_accumulator.EventAccumulator(
      workdir, size_guidance={event_accumulator.TENSORS: 0})
  events.Reload()
  if "test/top1" not in events.Tags()["tensors"]:
    return []
  by_step = {e.step: round(float(tensor_util.make_ndarray(e.tensor_proto)), 2)
             for e in events.Tensors("test/top1")}
  return [[step // steps_per_epoch, top1]
          for step, top1 in sorted(by_step.items())]


def _read_progress(run: Run, progress: Optional[dict]) -> None:
  progress = progress or {}
  if isinstance(progress.get("epoch"), int):
    run.epoch = progress["epoch"]
  if isinstance(progress.get("top1"), (int, float)):
    run.top1 = float(progress["top1"])
  _read_resumes(run, progress)


def _read_resumes(run: Run, record: dict) -> None:
  steps = record.get("resumed_at")
  if isinstance(steps, list):
    run.resumed_at = [int(x) for x in steps]


def full_curve(run: Run) -> list[list]:
  """The run's own evaluations after its base's up to the branch."""
  own = eval_curve(run.workdir)
  if run.branch is None:
    return own
  return [p for p in run.branch.get("base_curve", [])
          if p[0] <= run.branch["epoch"]] + [
              p for p in own if p[0] > run.branch["epoch"]]


def run_status(cell: Cell, seed: int, runs_dir: str,
               archive: Optional[str] = None) -> Run:
  """Reads the state of one run from its workdir under ``runs_dir``.

  Finished: ``results.json`` is in the workdir, or (when the workdir has
  none) its copy ``<archive>/<run name>.json``. In progress: the workdir
  exists (checkpoints, events or ``progress.json``), or it does not but its
  progress was archived (``<archive>/<run name>.progress.json``; then
  ``run.archived``). Not started: none of these. The curve is read from the
  workdir's events when the workdir is here, else from the archive.
  """
  name = cell.run_name(seed)
  workdir = os.path.join(runs_dir, name)
  run = Run(cell, seed, workdir)
  here = os.path.isdir(workdir)
  run.branch = read_json(os.path.join(workdir, BRANCH_FILE))
  results = read_json(os.path.join(workdir, "results.json"))
  copy = None
  if results is None and archive is not None:
    copy = results = read_json(os.path.join(archive, name + ".json"))
  if results is not None and "metrics" in results:
    run.state, run.results = FINISHED, results
    _read_resumes(run, results)
    run.key_derivation = results.get("key_derivation")
  elif here:
    run.state = IN_PROGRESS
    run.step = max(checkpointing.saved_steps(workdir), default=None)
    _read_progress(run, read_json(os.path.join(workdir, "progress.json")))
    run.key_derivation = run_record.key_derivation(workdir)
  elif archive is not None and (copy := read_json(
      archived_progress_path(archive, name))) is not None:
    run.state, run.archived = IN_PROGRESS, True
    _read_progress(run, copy)
    run.key_derivation = copy.get("key_derivation")
  if here:
    run.curve = full_curve(run)
  elif copy is not None:
    run.curve = copy.get("curve", [])
    run.branch = copy.get("branch")
  return run


def table_runs(cells: Sequence[Cell], runs_dir: str,
               archive: Optional[str] = None) -> list[Run]:
  """Every (cell, seed) of ``cells`` with its status, in table order
  (see :func:`run_status`), each base run with the steps its deferred runs
  branched at (:attr:`Run.branched_at`)."""
  runs = [run_status(cell, seed, runs_dir, archive) for cell in cells
          for seed in cell.seeds]
  by_name = {r.cell.run_name(r.seed): r for r in runs}
  for run in runs:
    base = by_name.get((run.branch or {}).get("base"))
    if base is not None and run.branch["step"] not in base.branched_at:
      base.branched_at.append(run.branch["step"])
  return runs
