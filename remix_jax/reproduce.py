"""Reproduction tables: which runs make up a table, their status on disk, and
the report comparing them with the Remix paper (Chou et al. 2020).

A table is a list of :class:`Cell` (method, dataset, ρ, profile, protocol,
seeds); each (cell, seed) is one run in its own workdir. The runner
(``benchmarks/reproduce.py``) trains the unfinished runs; this module only
reads workdirs and writes the report: mean ± std over the finished seeds next
to the paper's number for the same cell, and which of the paper's orderings
hold.

Pure Python/NumPy (the plots import matplotlib and JAX lazily).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Optional, Sequence

import numpy as np

from remix_jax import report

#: Metrics aggregated over seeds (``per_class`` element-wise).
METRICS = ("top1", "head", "mid", "tail", "per_class")

#: Display names of the methods (the paper's where it has one).
METHOD_LABELS = {
    "erm": "ERM", "focal": "Focal", "rw": "RW", "rs": "RS", "drw": "DRW",
    "drs": "DRS", "ldam": "LDAM", "ldam_drw": "LDAM-DRW",
    "ldam_drs": "LDAM-DRS", "mixup": "Mixup", "remix": "Remix",
    "manifold_mixup": "Manifold Mixup", "remix_mm": "Remix-MM",
    "cutmix": "CutMix", "remix_cm": "Remix-CM", "remix_rw": "Remix-RW",
    "remix_rs": "Remix-RS", "remix_drw": "Remix-DRW", "remix_drs": "Remix-DRS",
    "remix_ldam_drw": "Remix-LDAM-DRW", "remix_ldam_drs": "Remix-LDAM-DRS",
    "cutmix_sumix": "CutMix+SUMix", "sumix_remix": "Remix-CM+SUMix",
    "cutmix_sumix_follow": "CutMix+SUMix(follow)",
    "sumix_follow_remix": "Remix-CM+SUMix(follow)",
}

_SUMIX_NOTE = (
    "λ̃ as released (s = the per-device batch, 128): in training it "
    "saturates and gives the majority label to the smaller image of the mix "
    "for about half the samples, whatever the pasted area (`python "
    "benchmarks/sumix_direction.py`), so these rows measure the released "
    "rule, not a ratio that follows the mix; see the README's SUMix section.")

#: A note printed under a table that has the method (why its row reads as
#: it does).
METHOD_NOTES = {"cutmix_sumix": _SUMIX_NOTE, "sumix_remix": _SUMIX_NOTE}

#: The paper's orderings checked on our numbers (each chain lower → higher).
ORDERINGS = (("erm", "mixup", "remix", "remix_drw"), ("cutmix", "remix_cm"))


def method_label(method: str) -> str:
  """The display name of ``method`` (the paper's, or the method name)."""
  return METHOD_LABELS.get(method, method)


# --- The paper's top-1 accuracy (remix.md §3) -------------------------------

_CIFAR_COLUMNS = tuple((dataset, profile, rho)
                       for dataset in ("cifar10", "cifar100")
                       for profile in ("exp", "step") for rho in (100.0, 10.0))
_CINIC_COLUMNS = tuple(("cinic10", profile, rho) for profile in ("exp", "step")
                       for rho in (200.0, 100.0, 50.0, 10.0))

# Rows whose method this library has no name for (RW Focal, BBN) are left out.
_PAPER_TABLES = {
    # ResNet-32; C10 LT100, LT10, step100, step10, then the same for C100.
    "Table 1": (_CIFAR_COLUMNS, {
        "erm": (71.86, 86.22, 64.17, 84.02, 40.12, 56.77, 40.13, 54.74),
        "focal": (70.18, 86.66, 63.91, 83.64, 38.41, 55.78, 38.57, 53.27),
        "drs": (74.50, 86.72, 72.03, 85.17, 40.33, 57.26, 41.35, 56.79),
        "drw": (74.86, 86.88, 71.60, 85.51, 40.66, 57.32, 41.14, 57.22),
        "ldam": (73.35, 86.96, 66.58, 85.00, 39.60, 56.91, 39.58, 56.27),
        "ldam_drw": (76.57, 86.7, 75.94, 86.52, 42.64, 57.18, 45.40, 57.09),
        "mixup": (73.09, 88.00, 65.80, 85.20, 40.83, 58.37, 39.64, 54.46),
        "remix": (75.36, 88.15, 68.98, 86.34, 41.94, 59.36, 39.96, 57.06),
        "remix_ldam_drw": (79.33, 86.78, 77.81, 86.46, 45.02, 59.47, 45.32,
                           56.59),
        "remix_ldam_drs": (79.45, 87.16, 78.00, 86.91, 45.66, 59.21, 45.74,
                           56.19),
        "remix_rs": (76.23, 87.70, 67.28, 86.63, 41.13, 58.62, 39.74, 56.09),
        "remix_rw": (75.1, 87.91, 68.74, 86.38, 33.51, 57.65, 17.42, 54.45),
        "remix_drs": (79.53, 88.85, 77.46, 88.16, 46.53, 60.52, 47.25, 60.76),
        "remix_drw": (79.76, 89.02, 77.86, 88.34, 46.77, 61.23, 46.78, 60.44),
    }),
    # ResNet-32, same columns as Table 1.
    "Table 5": (_CIFAR_COLUMNS, {
        "manifold_mixup": (73.47, 87.78, 66.13, 85.22, 41.19, 58.55, 39.52,
                           53.72),
        "remix_mm": (77.07, 88.70, 69.78, 87.39, 44.12, 60.76, 40.22, 58.01),
        "cutmix": (75.04, 88.30, 67.97, 86.35, 41.86, 59.47, 40.23, 56.59),
        "remix_cm": (76.59, 87.96, 69.61, 87.59, 43.55, 60.15, 40.336, 57.78),
    }),
    # CINIC-10, ResNet-18; LT200, LT100, LT50, LT10, then step.
    "Table 2": (_CINIC_COLUMNS, {
        "erm": (56.16, 61.82, 72.34, 77.06, 51.64, 55.64, 68.35, 74.16),
        "rs": (53.71, 59.11, 71.28, 75.99, 50.65, 53.82, 65.54, 71.33),
        "rw": (54.84, 60.87, 72.62, 76.88, 50.47, 55.91, 69.24, 74.81),
        "drw": (59.66, 63.14, 73.56, 77.88, 54.41, 57.87, 68.76, 72.85),
        "drs": (57.98, 62.16, 73.14, 77.39, 52.67, 57.41, 69.52, 75.89),
        "mixup": (57.93, 62.06, 74.55, 79.28, 53.47, 56.91, 69.74, 75.59),
        "remix": (58.86, 63.21, 75.07, 79.02, 54.22, 57.57, 70.21, 76.37),
        "ldam_drw": (60.80, 65.51, 74.94, 77.90, 54.93, 61.17, 72.26, 76.12),
        "remix_drs": (61.64, 65.95, 75.34, 79.17, 60.12, 66.53, 75.47, 79.86),
        "remix_drw": (62.95, 67.76, 75.49, 79.43, 62.82, 67.56, 76.55, 79.36),
    }),
}

#: ``(method, dataset, profile, rho) -> top-1 %`` of the paper.
PAPER_TOP1: dict[tuple[str, str, str, float], float] = {}
#: The same keys -> the paper table the number comes from.
PAPER_SOURCE: dict[tuple[str, str, str, float], str] = {}
for _name, (_columns, _rows) in _PAPER_TABLES.items():
  for _method, _values in _rows.items():
    for _column, _value in zip(_columns, _values, strict=True):
      PAPER_TOP1[(_method, *_column)] = _value
      PAPER_SOURCE[(_method, *_column)] = _name

#: Our datasets that are the paper's under another name.
_PAPER_DATASET = {"cifar10_jpeg": "cifar10"}


def paper_key(method: str, dataset: str, profile: str, rho: float):
  """The :data:`PAPER_TOP1` key of a cell (``cifar10_jpeg`` is CIFAR-10)."""
  return (method, _PAPER_DATASET.get(dataset, dataset), profile, float(rho))


def paper_top1(method: str, dataset: str, profile: str,
               rho: float) -> Optional[float]:
  """The paper's top-1 accuracy (%) for the cell, or ``None`` if it has none."""
  return PAPER_TOP1.get(paper_key(method, dataset, profile, rho))


# --- Tables of runs ---------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cell:
  """One method on one long-tailed benchmark, run once per seed.

  Attributes:
    method: a name from :data:`remix_jax.methods.METHODS`.
    dataset: ``config.data.name``.
    rho: imbalance ratio.
    profile: ``'exp'`` or ``'step'``.
    protocol: ``'paper'``, ``'cpu30'`` or ``'remix300'`` (``configs/cifar_lt.py``).
    seeds: split seeds (0 = LDAM's split).
  """

  method: str
  dataset: str = "cifar10_jpeg"
  rho: float = 100
  profile: str = "exp"
  protocol: str = "cpu30"
  seeds: tuple[int, ...] = (0,)

  @property
  def group(self) -> tuple[str, str, float, str]:
    """``(dataset, profile, rho, protocol)``: cells compared with each other."""
    return (self.dataset, self.profile, float(self.rho), self.protocol)

  def config_arg(self, seed: int) -> str:
    """The ``configs/cifar_lt.py`` argument string of the run with ``seed``."""
    return (f"dataset={self.dataset},rho={self.rho:g},profile={self.profile},"
            f"method={self.method},protocol={self.protocol},seed={seed}")

  def run_name(self, seed: int) -> str:
    """The workdir name of the run with ``seed``."""
    return (f"{self.method}_{self.dataset}_{self.profile}{self.rho:g}_"
            f"{self.protocol}_s{seed}")

  def paper_top1(self) -> Optional[float]:
    """The paper's top-1 accuracy for this cell, or ``None``."""
    return paper_top1(self.method, self.dataset, self.profile, self.rho)


_CPU30_METHODS = ("erm", "mixup", "remix", "remix_drw", "cutmix", "remix_cm",
                  "cutmix_sumix", "sumix_remix", "cutmix_sumix_follow",
                  "sumix_follow_remix")
_PAPER_METHODS = ("erm", "mixup", "remix", "remix_drw")

#: The reproduction tables by name.
TABLES: dict[str, list[Cell]] = {
    "cpu30": [Cell(m, protocol="cpu30") for m in _CPU30_METHODS],
    "paper": [Cell(m, protocol="paper") for m in _PAPER_METHODS],
}


def get_table(name: str) -> list[Cell]:
  """The cells of table ``name``; a one-line ``ValueError`` lists the names."""
  try:
    return TABLES[name]
  except KeyError:
    raise ValueError(f"unknown table {name!r}; choose one of "
                     f"{', '.join(TABLES)}") from None


# --- Run status -------------------------------------------------------------

FINISHED, IN_PROGRESS, NOT_STARTED = "finished", "in progress", "not started"


@dataclasses.dataclass
class Run:
  """One (cell, seed) and what its workdir holds.

  Attributes:
    cell: the cell.
    seed: the split seed.
    workdir: the run's directory.
    state: :data:`FINISHED`, :data:`IN_PROGRESS` or :data:`NOT_STARTED`.
    step: newest checkpoint step (``None`` without checkpoints).
    epoch: last evaluated epoch from ``progress.json`` (``None`` if absent).
    top1: test top-1 at that epoch (``None`` if unknown).
    results: the parsed ``results.json`` of a finished run.
    archived: the workdir is not here; ``epoch``/``top1`` come from the
      archived ``progress.json`` (:func:`write_report`), so a re-run starts
      from step 0.
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


def latest_checkpoint_step(workdir: str) -> Optional[int]:
  """The newest step in ``workdir/checkpoints`` (numeric directory names;
  orbax's temporary directories are ignored), or ``None``."""
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    return None
  steps = [int(name) for name in os.listdir(directory)
           if name.isdigit() and os.path.isdir(os.path.join(directory, name))]
  return max(steps, default=None)


def _read_json(path: str) -> Optional[dict]:
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def archive_dir(results_dir: str, table: str) -> str:
  """Where :func:`write_report` keeps copies of the runs' results.

  ``<results_dir>/runs/<table>/<run name>.json`` (finished) and ``<run
  name>.progress.json`` (unfinished: last evaluated epoch and top-1):
  committed with the report, so a fresh checkout still knows (and skips) the
  finished runs and shows how far the others got, although their workdirs
  (checkpoints) are not committed.
  """
  return os.path.join(results_dir, "runs", table)


def _archived_progress_path(archive: str, run_name: str) -> str:
  return os.path.join(archive, run_name + ".progress.json")


def _read_progress(run: Run, path: str) -> None:
  progress = _read_json(path) or {}
  if isinstance(progress.get("epoch"), int):
    run.epoch = progress["epoch"]
  if isinstance(progress.get("top1"), (int, float)):
    run.top1 = float(progress["top1"])


def run_status(cell: Cell, seed: int, runs_dir: str,
               archive: Optional[str] = None) -> Run:
  """Reads the state of one run from its workdir under ``runs_dir``.

  Finished: ``results.json`` is in the workdir, or (when the workdir has
  none) its copy ``<archive>/<run name>.json``. In progress: the workdir
  exists (checkpoints, events or ``progress.json``), or it does not but its
  last ``progress.json`` was archived (``<archive>/<run name>.progress.json``;
  then ``run.archived``). Not started: none of these.
  """
  name = cell.run_name(seed)
  workdir = os.path.join(runs_dir, name)
  run = Run(cell, seed, workdir)
  results = _read_json(os.path.join(workdir, "results.json"))
  if results is None and archive is not None:
    results = _read_json(os.path.join(archive, name + ".json"))
  if results is not None and "metrics" in results:
    run.state, run.results = FINISHED, results
    return run
  if os.path.isdir(workdir):
    run.state = IN_PROGRESS
    run.step = latest_checkpoint_step(workdir)
    _read_progress(run, os.path.join(workdir, "progress.json"))
  elif archive is not None and os.path.isfile(
      progress_copy := _archived_progress_path(archive, name)):
    run.state, run.archived = IN_PROGRESS, True
    _read_progress(run, progress_copy)
  return run


def table_runs(cells: Sequence[Cell], runs_dir: str,
               archive: Optional[str] = None) -> list[Run]:
  """Every (cell, seed) of ``cells`` with its status, in table order
  (see :func:`run_status`)."""
  return [run_status(cell, seed, runs_dir, archive) for cell in cells
          for seed in cell.seeds]


# --- Aggregation ------------------------------------------------------------


def _mean_std(values):
  """Mean and sample std (``None`` for one value) over axis 0; ``None`` if
  any value is missing."""
  if not values or any(v is None for v in values):
    return None, None
  x = np.asarray(values, np.float64)
  std = x.std(axis=0, ddof=1).tolist() if len(x) > 1 else None
  return x.mean(axis=0).tolist(), std


def aggregate(metrics_list: Sequence[dict]) -> dict:
  """Mean ± std over seeds of :data:`METRICS`.

  Args:
    metrics_list: the ``metrics`` dicts of the finished runs of one cell.

  Returns:
    ``{'n': runs, 'mean': {metric: value}, 'std': {metric: value}}``; the
    std is the sample std (``ddof=1``), ``None`` with fewer than 2 runs;
    ``per_class`` values are lists.
  """
  out = {"n": len(metrics_list), "mean": {}, "std": {}}
  for key in METRICS:
    out["mean"][key], out["std"][key] = _mean_std(
        [m.get(key) for m in metrics_list])
  return out


def pm(mean, std) -> str:
  """``'75.36 ± 0.21'``, or just the mean without a std, ``'–'`` without one."""
  return report.fmt(mean) + ("" if std is None else f" ± {std:.2f}")


@dataclasses.dataclass
class CellSummary:
  """A cell with its runs, the aggregate of the finished ones and the paper's
  number."""

  cell: Cell
  runs: list[Run]
  stats: dict
  paper: Optional[float]

  @property
  def finished(self) -> list[Run]:
    return [r for r in self.runs if r.state == FINISHED]

  @property
  def top1(self) -> Optional[float]:
    return self.stats["mean"]["top1"] if self.finished else None


def summarize(cells: Sequence[Cell], runs: Sequence[Run]) -> list[CellSummary]:
  """Groups ``runs`` by cell and aggregates each cell's finished runs."""
  out = []
  for cell in cells:
    cell_runs = [r for r in runs if r.cell == cell]
    stats = aggregate([r.results["metrics"] for r in cell_runs
                       if r.state == FINISHED])
    out.append(CellSummary(cell, cell_runs, stats, cell.paper_top1()))
  return out


def check_orderings(summaries: Sequence[CellSummary],
                    orderings=ORDERINGS) -> list[dict]:
  """Which of the paper's orderings hold among the finished cells.

  Within each group of comparable cells (same dataset, profile, ρ and
  protocol), each chain of ``orderings`` is restricted to its finished
  methods and every consecutive pair ``a < b`` is checked.

  Returns:
    One dict per pair: ``group``, ``lower``, ``higher``, ``holds``,
    ``margin`` (our top-1 of ``higher`` minus ``lower``, points) and
    ``paper_margin`` (the same in the paper, ``None`` if it lacks one).
  """
  out = []
  groups = dict.fromkeys(s.cell.group for s in summaries)
  for group in groups:
    by_method = {s.cell.method: s for s in summaries
                 if s.cell.group == group and s.finished}
    for chain in orderings:
      present = [m for m in chain if m in by_method]
      for lower, higher in zip(present, present[1:]):
        lo, hi = by_method[lower], by_method[higher]
        margin = hi.top1 - lo.top1
        paper_margin = (None if lo.paper is None or hi.paper is None
                        else hi.paper - lo.paper)
        out.append({"group": list(group), "lower": lower, "higher": higher,
                    "holds": margin > 0, "margin": margin,
                    "paper_margin": paper_margin})
  return out


# --- Report -----------------------------------------------------------------


def _group_title(group) -> str:
  dataset, profile, rho, protocol = group
  return f"{dataset}, {profile} ρ={rho:g}, protocol {protocol}"


def _first_results(summaries: Sequence[CellSummary]) -> Optional[dict]:
  for s in summaries:
    for r in s.finished:
      return r.results
  return None


def markdown(table: str, summaries: Sequence[CellSummary],
             orderings: Sequence[dict]) -> str:
  """The report of one table: a summary row per cell (ours next to the
  paper's), runs not finished, per-class accuracy and the orderings."""
  lines = [f"# Reproduction: `{table}`", "",
           "Ours: mean ± sample std over the finished seeds (n). Paper: Chou "
           "et al. 2020 (Tables 1, 2, 5; ResNet-32 on CIFAR, ResNet-18 on "
           "CINIC; 300 epochs, mean of 5 runs); Δ = ours − paper; – = no "
           "paper number.", ""]
  for group in dict.fromkeys(s.cell.group for s in summaries):
    members = [s for s in summaries if s.cell.group == group]
    lines += [f"## {_group_title(group)}", "",
              "| method | n | top-1 (ours) | top-1 (paper) | Δ | head | mid "
              "| tail | status |", "|---|---|---|---|---|---|---|---|---|"]
    for s in members:
      mean, std = s.stats["mean"], s.stats["std"]
      paper = report.fmt(s.paper)
      if s.paper is not None:
        paper += f" ({PAPER_SOURCE[paper_key(s.cell.method, *group[:3])]})"
      delta = (None if s.top1 is None or s.paper is None
               else s.top1 - s.paper)
      cols = [pm(mean[k], std[k]) if s.finished else "–"
              for k in ("top1", "head", "mid", "tail")]
      status = "; ".join(f"s{r.seed}: {r.describe()}" for r in s.runs
                         if r.state != FINISHED) or "finished"
      lines.append(
          f"| {method_label(s.cell.method)} | {s.stats['n']} | {cols[0]} | "
          f"{paper} | {'–' if delta is None else f'{delta:+.2f}'} | "
          f"{' | '.join(cols[1:])} | {status} |")
    finished = [s for s in members if s.finished]
    if finished:
      results = _first_results(finished)
      lines += ["", "Per-class top-1 (%):", "",
                "| class | name | train images | " + " | ".join(
                    method_label(s.cell.method) for s in finished) + " |",
                "|---|---|---|" + "---|" * len(finished)]
      for c, (name, n) in enumerate(zip(results["class_names"],
                                        results["class_counts"])):
        accs = [pm(s.stats["mean"]["per_class"][c],
                   None if s.stats["std"]["per_class"] is None
                   else s.stats["std"]["per_class"][c]) for s in finished]
        lines.append(f"| {c} | {name} | {n} | " + " | ".join(accs) + " |")
    group_orderings = [o for o in orderings if tuple(o["group"]) == group]
    lines += ["", "The paper's orderings among the finished cells (top-1 "
              "margin in points, ours vs paper):", ""]
    if not group_orderings:
      lines.append("- none checkable yet (needs two finished methods of one "
                   "chain).")
    for o in group_orderings:
      paper_margin = ("–" if o["paper_margin"] is None
                      else f"{o['paper_margin']:+.2f}")
      lines.append(
          f"- {method_label(o['lower'])} < {method_label(o['higher'])}: "
          f"{'holds' if o['holds'] else 'does NOT hold'} "
          f"({o['margin']:+.2f} vs paper {paper_margin})")
    lines.append("")
  notes = {}
  for s in summaries:
    if s.cell.method in METHOD_NOTES:
      notes.setdefault(METHOD_NOTES[s.cell.method], []).append(
          method_label(s.cell.method))
  if notes:
    lines += ["Notes:", ""]
    lines += [f"- {', '.join(dict.fromkeys(names))}: {note}"
              for note, names in notes.items()]
    lines.append("")
  return "\n".join(lines)


def report_json(table: str, summaries: Sequence[CellSummary],
                orderings: Sequence[dict]) -> dict:
  """The machine-readable report (what :func:`markdown` shows)."""
  return {
      "table": table,
      "cells": [{
          **dataclasses.asdict(s.cell),
          "paper_top1": s.paper,
          "n": s.stats["n"], "mean": s.stats["mean"], "std": s.stats["std"],
          "runs": [{"seed": r.seed, "workdir": r.workdir, "state": r.state,
                    "step": r.step, "epoch": r.epoch, "top1": r.top1,
                    "archived": r.archived, "status": r.describe()}
                   for r in s.runs],
      } for s in summaries],
      "orderings": list(orderings),
  }


def write_report(table: str, cells: Sequence[Cell], runs_dir: str,
                 results_dir: str) -> list[CellSummary]:
  """Writes ``<results_dir>/<table>.md`` and ``.json`` and, once a run is
  finished, ``<table>_per_class.png`` and ``<table>_groups.png`` (one pair
  per group of comparable cells, suffixed when the table has several).
  Each finished run's ``results.json``, and each unfinished run's
  ``progress.json``, is copied to :func:`archive_dir`, which later reports
  (and the runner) read when the workdir is gone.

  Args:
    table: the table's name (file names and title).
    cells: its cells.
    runs_dir: the directory holding the table's run workdirs.
    results_dir: where the report goes (created if needed).

  Returns:
    The cell summaries.
  """
  from remix_jax import plots  # pylint: disable=g-import-not-at-top
  archive = archive_dir(results_dir, table)
  runs = table_runs(cells, runs_dir, archive)
  for run in runs:
    name = run.cell.run_name(run.seed)
    progress_copy = _archived_progress_path(archive, name)
    if run.state == FINISHED:
      os.makedirs(archive, exist_ok=True)
      with open(os.path.join(archive, name + ".json"), "w") as f:
        json.dump(run.results, f, indent=1)
      if os.path.exists(progress_copy):
        os.remove(progress_copy)
    elif not run.archived and os.path.isfile(
        os.path.join(run.workdir, "progress.json")):
      os.makedirs(archive, exist_ok=True)
      shutil.copyfile(os.path.join(run.workdir, "progress.json"),
                      progress_copy)
  summaries = summarize(cells, runs)
  orderings = check_orderings(summaries)
  os.makedirs(results_dir, exist_ok=True)
  base = os.path.join(results_dir, table)
  with open(base + ".md", "w") as f:
    f.write(markdown(table, summaries, orderings))
  with open(base + ".json", "w") as f:
    json.dump(report_json(table, summaries, orderings), f, indent=1)
  groups = list(dict.fromkeys(s.cell.group for s in summaries))
  for group in groups:
    members = [s for s in summaries if s.cell.group == group and s.finished]
    if not members:
      continue
    suffix = "" if len(groups) == 1 else "_" + "_".join(
        f"{x:g}" if isinstance(x, float) else x for x in group)
    by_method = {method_label(s.cell.method): s.stats["mean"]
                 for s in members}
    plots.per_class_vs_size(f"{base}{suffix}_per_class.png", by_method,
                            _first_results(members)["class_counts"])
    plots.group_bars(f"{base}{suffix}_groups.png", by_method)
  return summaries
