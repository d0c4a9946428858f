"""The report of a reproduction table: mean ± std over the finished seeds
next to the paper's number for each cell, the paper's orderings judged against
the spread over seeds (our margin ± its standard error, and the paper's),
per-class accuracy, and the figures.

Reads workdirs (:mod:`experiments.remix_paper.status`); trains nothing.
Pure Python/NumPy (the plots import matplotlib lazily).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from typing import Optional, Sequence

import numpy as np

from experiments.remix_paper import plots as experiment_plots
from experiments.remix_paper import status
from experiments.remix_paper.status import FINISHED
from experiments.remix_paper.status import NOT_STARTED
from experiments.remix_paper.status import Run
from experiments.remix_paper.tables import Cell
from experiments.remix_paper.tables import method_label
from experiments.remix_paper.tables import METHOD_NOTES
from experiments.remix_paper.tables import ORDERINGS
from experiments.remix_paper.tables import PAPER_SOURCE
from experiments.remix_paper.tables import paper_key
from remix_jax import plots
from remix_jax.trainer import report

#: Metrics aggregated over seeds (``per_class`` element-wise).
METRICS = ("top1", "head", "mid", "tail", "many", "medium", "few",
           "per_class")


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


#: Verdicts on an ordering ``a < b`` (:func:`verdict`).
HOLDS, FAILS, WITHIN_NOISE, NO_VERDICT = (
    "holds", "fails", "within noise", "no verdict")


def margin_se(lower: CellSummary, higher: CellSummary) -> Optional[float]:
  """The standard error of our margin (``higher``'s mean top-1 minus
  ``lower``'s).

  Args:
    lower: a finished cell.
    higher: another finished cell.

  Returns:
    ``sqrt(s_a² / n_a + s_b² / n_b)`` from the cells' sample stds
    (``ddof=1``) over their ``n`` finished seeds; ``None`` where either
    cell has one seed (no std).
  """
  terms = [(s.stats["std"]["top1"], s.stats["n"]) for s in (lower, higher)]
  if any(std is None for std, _ in terms):
    return None
  return float(np.sqrt(sum(std**2 / n for std, n in terms)))


def verdict(margin: float, se: Optional[float]) -> str:
  """The verdict on an ordering ``a < b`` from our margin and its spread.

  Args:
    margin: our mean top-1 of ``b`` minus ``a`` (points).
    se: its standard error (:func:`margin_se`), or ``None``.

  Returns:
    :data:`HOLDS` if ``margin > 2 se``, :data:`FAILS` if ``margin < −2 se``,
    else :data:`WITHIN_NOISE`; :data:`NO_VERDICT` where ``se`` is ``None``.
  """
  if se is None:
    return NO_VERDICT
  if margin > 2 * se:
    return HOLDS
  return FAILS if margin < -2 * se else WITHIN_NOISE


def _ordering_pairs(by_method: dict, orderings) -> list[tuple[list, bool]]:
  """The pairs of finished cells of one group that :func:`check_orderings`
  checks.

  Args:
    by_method: method -> summary of the group's finished cells.
    orderings: chains of methods, each lower → higher.

  Returns:
    ``[(claimed, True), (others, False)]``: the claimed pairs (consecutive
    finished methods of each chain) and the other pairs whose numbers come
    from one table of the paper, each ``(lower, higher)`` in the order of
    the paper's numbers.
  """
  claimed = []
  for chain in orderings:
    present = [m for m in chain if m in by_method]
    claimed += zip(present, present[1:])
  seen = {frozenset(pair) for pair in claimed}
  in_paper = sorted((s for s in by_method.values()
                     if _paper_table(s) is not None), key=lambda s: s.paper)
  others = [(lo.cell.method, hi.cell.method)
            for lo, hi in itertools.combinations(in_paper, 2)
            if _paper_table(lo) == _paper_table(hi) and lo.paper != hi.paper
            and frozenset((lo.cell.method, hi.cell.method)) not in seen]
  return [(claimed, True), (others, False)]


def check_orderings(summaries: Sequence[CellSummary],
                    orderings=ORDERINGS) -> list[dict]:
  """The paper's orderings among the finished cells, judged against the
  spread over seeds.

  Within each group of comparable cells (same dataset, profile, ρ and
  protocol), each chain of ``orderings`` (the paper's claims) is restricted
  to its finished methods and every consecutive pair ``a < b`` is checked.
  Then every other pair of finished cells whose numbers come from the same
  table of the paper is checked in the order of the paper's numbers, so
  that the report states every ordering of that table the finished rows
  allow, not only the claimed ones.

  Args:
    summaries: the table's cells (:func:`summarize`).
    orderings: chains of methods, each lower → higher.

  Returns:
    One dict per pair: ``group``, ``lower``, ``higher``, ``claimed`` (a pair
    of a chain of ``orderings``, else only the paper's numbers order it),
    ``margin`` (our mean top-1 of ``higher`` minus ``lower``, points),
    ``se`` (its standard error, :func:`margin_se`; ``None`` where a cell
    has one seed), ``n_lower`` and ``n_higher`` (finished seeds),
    ``verdict`` (:func:`verdict`) and ``paper_margin`` (the same margin in
    the paper, ``None`` if it lacks one).
  """
  out = []
  for group in dict.fromkeys(s.cell.group for s in summaries):
    by_method = {s.cell.method: s for s in summaries
                 if s.cell.group == group and s.finished}
    for pairs, is_claimed in _ordering_pairs(by_method, orderings):
      for lower, higher in pairs:
        lo, hi = by_method[lower], by_method[higher]
        margin, se = hi.top1 - lo.top1, margin_se(lo, hi)
        paper_margin = (None if lo.paper is None or hi.paper is None
                        else hi.paper - lo.paper)
        out.append({"group": list(group), "lower": lower, "higher": higher,
                    "claimed": is_claimed, "margin": margin, "se": se,
                    "n_lower": lo.stats["n"], "n_higher": hi.stats["n"],
                    "verdict": verdict(margin, se),
                    "paper_margin": paper_margin})
  return out


def _paper_table(summary: CellSummary) -> Optional[str]:
  """The paper's table that holds the cell's number (``None`` if none)."""
  return PAPER_SOURCE.get(paper_key(summary.cell.method,
                                    *summary.cell.group[:3]))


# --- Report -----------------------------------------------------------------


def _group_title(cell: Cell) -> str:
  dataset, profile, rho, protocol = cell.group
  epochs = cell.config(cell.seeds[0]).num_epochs
  return (f"{dataset}, {profile} ρ={rho:g}, protocol {protocol} "
          f"({epochs} epochs)")


def _first_results(summaries: Sequence[CellSummary]) -> Optional[dict]:
  for s in summaries:
    for r in s.finished:
      return r.results
  return None


def _branch_note(run: Run) -> str:
  return (f"s{run.seed}: branched from {method_label(run.branch['method'])} "
          f"at epoch {run.branch['epoch']}")


def _restart_note(run: Run) -> str:
  steps = run.restarts
  return (f"s{run.seed}: resumed from checkpoint{'s' * (len(steps) > 1)} "
          f"{', '.join(map(str, steps))}")


def _run_notes(runs: Sequence[Run]) -> str:
  """How each run of a row was trained, by seed: its branch point, then its
  restarts (``s0: branched …; s0: resumed …; s1: branched …``)."""
  notes = []
  for run in sorted(runs, key=lambda r: r.seed):
    if run.branch:
      notes.append(_branch_note(run))
    if run.restarts:
      notes.append(_restart_note(run))
  return "; ".join(notes)


#: The note on runs whose record names no key derivation.
EARLIER_KEYS_NOTE = (
    "trained with the earlier keys (initialisation `key(seed)`, step "
    "`key(seed + 1)`) rather than `fold_in(key(seed), purpose)`; a seed is a "
    "sample either way, so they are kept")


def _ordering_line(o: dict) -> str:
  """``- ERM < Mixup: within noise (+0.52 ± 0.61 SE, n = 2/2; paper +1.23)``,
  or with a one-seed row ``no verdict (n = 1/1: +0.52; paper +1.23)``."""
  paper = ("–" if o["paper_margin"] is None else f"{o['paper_margin']:+.2f}")
  n = f"n = {o['n_lower']}/{o['n_higher']}"
  ours = (f"{n}: {o['margin']:+.2f}" if o["se"] is None
          else f"{o['margin']:+.2f} ± {o['se']:.2f} SE, {n}")
  return (f"- {method_label(o['lower'])} < {method_label(o['higher'])}: "
          f"{o['verdict']} ({ours}; paper {paper})")


#: What the verdicts of :func:`check_orderings` mean (the report's words).
ORDERINGS_INTRO = (
    "The paper's orderings among the finished cells, each A < B: our margin "
    "m = mean top-1 of B − mean top-1 of A (points) ± its standard error "
    "SE = √(s²_A/n_A + s²_B/n_B) (s: a row's sample std over its n finished "
    "seeds; n = n_A/n_B), then the paper's margin. Verdict: holds if m > "
    "2·SE, fails if m < −2·SE, within noise otherwise; no verdict where a "
    "row has n = 1 (no spread to judge the margin by):")


def _summary_rows(members: Sequence[CellSummary],
                  reference: Optional[dict]) -> list[str]:
  """The summary table of one group: a row per cell, ours next to the
  paper's (and the committed report's, with ``reference``)."""
  committed = reference is not None
  lines = ["| method | n | top-1 (ours) | top-1 (paper) | Δ | "
           + ("top-1 (committed) | " if committed else "")
           + "head | mid | tail | many | medium | few | status |",
           "|---|---|---|---|---|" + "---|" * (7 + committed)]
  for s in members:
    mean, std = s.stats["mean"], s.stats["std"]
    paper = report.fmt(s.paper)
    if s.paper is not None:
      paper += f" ({_paper_table(s)})"
    delta = (None if s.top1 is None or s.paper is None
             else s.top1 - s.paper)
    cols = [pm(mean[k], std[k]) if s.finished else "–"
            for k in METRICS[:-1]]
    status = "; ".join(f"s{r.seed}: {r.describe()}" for r in s.runs
                       if r.state != FINISHED) or "finished"
    notes = _run_notes(s.runs)
    if notes:
      status += f" ({notes})"
    theirs = ""
    if committed:
      match = reference_cell(reference["report"], s.cell)
      theirs = ("– | " if match is None else
                f"{pm(match['mean']['top1'], match['std']['top1'])} "
                f"(n = {match['n']}) | ")
    lines.append(
        f"| {method_label(s.cell.method)} | {s.stats['n']} | {cols[0]} | "
        f"{paper} | {'–' if delta is None else f'{delta:+.2f}'} | "
        f"{theirs}{' | '.join(cols[1:])} | {status} |")
  return lines


def reference_cell(reference: dict, cell: Cell) -> Optional[dict]:
  """The cell of a committed report that ``cell`` is compared against.

  Args:
    reference: a report (:func:`report_json`, e.g. the parsed committed
      ``results/<table>.json``).
    cell: one of our cells.

  Returns:
    The reference's cell with the same method, profile, ρ and protocol (on
    whatever dataset) and at least one finished run, or ``None``.
  """
  for c in reference["cells"]:
    if c["n"] and (c["method"], c["profile"], float(c["rho"]),
                   c["protocol"]) == (cell.method, cell.profile,
                                      float(cell.rho), cell.protocol):
      return c
  return None


def reference_rows(reference: dict,
                   cells: Sequence[Cell]) -> list[tuple[str, str]]:
  """The finished runs of a committed report that ``cells`` are compared
  against (:func:`reference_cell`), in table order.

  Returns:
    ``(run name, status)`` pairs, e.g. ``('erm_cifar10_jpeg_exp100_paper_s0',
    'finished (top-1 64.92)')``.
  """
  rows = []
  for cell in cells:
    match = reference_cell(reference, cell) or {"runs": []}
    rows += [(os.path.basename(r["workdir"]), r["status"])
             for r in match["runs"] if r["state"] == FINISHED]
  return rows


def _reference_intro(reference: Optional[dict],
                     summaries: Sequence[CellSummary]) -> list[str]:
  """The line that names the committed rows the report compares with."""
  if reference is None:
    return []
  rows = reference_rows(reference["report"], [s.cell for s in summaries])
  names = ", ".join(f"`{name}`" for name, _ in rows) or "none"
  return [f"Top-1 (committed): the committed report `{reference['path']}`, "
          f"whose finished rows are {names}.", ""]


def markdown(table: str, summaries: Sequence[CellSummary],
             orderings: Sequence[dict],
             reference: Optional[dict] = None) -> str:
  """The report of one table: a summary row per cell (ours next to the
  paper's), runs not finished, per-class accuracy and the orderings.

  Args:
    table: the table's name (the title).
    summaries: its cells (:func:`summarize`).
    orderings: :func:`check_orderings` of ``summaries``.
    reference: ``{'path': …, 'report': …}``: a committed report
      (:func:`report_json`) to compare with, in a column and a line naming
      its rows; ``None``: none.

  Returns:
    The Markdown text.
  """
  lines = [f"# Reproduction: `{table}`", "",
           "Ours: mean ± sample std over the finished seeds (n), trained "
           "with the protocol and epochs in each heading. A seed s is a "
           "whole run: it sets the long-tailed subset (`data.split_seed`; "
           "s0 is LDAM's subset), the initialisation, the mixing and every "
           "other random choice of the step (`seed`), and the data order "
           "and augmentation (`data.shuffle_seed`). Paper: Chou "
           "et al. 2020 (Tables 1, 2, 5; ResNet-32 on CIFAR, ResNet-18 on "
           "CINIC; 300 epochs, mean of 5 runs); Δ = ours − paper; – = no "
           "paper number. Head / mid / tail: the largest 30 %, middle 40 % "
           "and smallest 30 % of the classes; many / medium / few: classes "
           "with more than 100, 20–100 and fewer than 20 training images "
           "(– where no class is one).", ""]
  lines += _reference_intro(reference, summaries)
  for group in dict.fromkeys(s.cell.group for s in summaries):
    members = [s for s in summaries if s.cell.group == group]
    lines += [f"## {_group_title(members[0].cell)}", ""]
    lines += _summary_rows(members, reference)
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
    claimed = [o for o in group_orderings if o["claimed"]]
    others = [o for o in group_orderings if not o["claimed"]]
    lines += ["", ORDERINGS_INTRO, ""]
    if not claimed:
      lines.append("- none checkable yet (needs two finished methods of one "
                   "chain).")
    lines += [_ordering_line(o) for o in claimed]
    if others:
      lines += ["", "The other pairs of finished cells, in the order of the "
                "paper's numbers (same table of the paper; not claimed as an "
                "ordering by the paper):", ""]
      lines += [_ordering_line(o) for o in others]
    lines.append("")
  notes = {}
  for s in summaries:
    if s.cell.method in METHOD_NOTES:
      notes.setdefault(METHOD_NOTES[s.cell.method], []).append(
          method_label(s.cell.method))
  earlier_keys = [f"{method_label(r.cell.method)} s{r.seed}"
                  for s in summaries for r in s.runs
                  if r.state != NOT_STARTED and r.key_derivation is None]
  if earlier_keys:
    notes[EARLIER_KEYS_NOTE] = earlier_keys
  if notes:
    lines += ["Notes:", ""]
    lines += [f"- {', '.join(dict.fromkeys(names))}: {note}"
              for note, names in notes.items()]
    lines.append("")
  return "\n".join(lines)


def report_json(table: str, summaries: Sequence[CellSummary],
                orderings: Sequence[dict],
                reference: Optional[dict] = None) -> dict:
  """The machine-readable report (what :func:`markdown` shows); with
  ``reference``, its path and the names of the rows compared against
  (``'reference'``)."""
  out = {
      "table": table,
      "cells": [{
          **dataclasses.asdict(s.cell),
          "paper_top1": s.paper,
          "n": s.stats["n"], "mean": s.stats["mean"], "std": s.stats["std"],
          "runs": [{"seed": r.seed, "workdir": r.workdir, "state": r.state,
                    "step": r.step, "epoch": r.epoch, "top1": r.top1,
                    "archived": r.archived, "status": r.describe(),
                    "branch": r.branch, "resumed_at": r.resumed_at,
                    "key_derivation": r.key_derivation, "curve": r.curve}
                   for r in s.runs],
      } for s in summaries],
      "orderings": list(orderings),
  }
  if reference is not None:
    out["reference"] = {"path": reference["path"], "rows": [
        name for name, _ in reference_rows(
            reference["report"], [s.cell for s in summaries])]}
  return out


# --- Results at a glance (README) ------------------------------------------


def _readme_markers(table: str) -> tuple[str, str]:
  """The HTML comments around ``table``'s generated block in README.md."""
  return (f"<!-- {table}-table:start -->", f"<!-- {table}-table:end -->")


def glance_table(table_json: dict) -> str:
  """The table's results at a glance, as a markdown table.

  Args:
    table_json: the table's report (:func:`report_json`, e.g. the parsed
      ``results/<table>.json``).

  Returns:
    One row per cell with at least one finished seed: the method, our top-1
    (mean ± sample std over the finished seeds, the std only for n ≥ 2), n
    and the paper's top-1 (– without one); no trailing newline.
  """
  lines = ["| method | top-1 (ours) | n | top-1 (paper) |",
           "|---|---|---|---|"]
  for c in table_json["cells"]:
    if c["n"]:
      lines.append(f"| {method_label(c['method'])} | "
                   f"{pm(c['mean']['top1'], c['std']['top1'])} | {c['n']} | "
                   f"{report.fmt(c['paper_top1'])} |")
  return "\n".join(lines)


def readme_block(table_json: dict) -> str:
  """:func:`glance_table` between the table's README markers
  (``<!-- paper-table:start -->`` … ``<!-- paper-table:end -->``)."""
  start, end = _readme_markers(table_json["table"])
  return f"{start}\n{glance_table(table_json)}\n{end}"


def find_readme_block(text: str, table: str) -> Optional[str]:
  """The block of ``table`` in ``text`` (a README), markers included, as
  :func:`readme_block` writes it; ``None`` without both markers."""
  start, end = _readme_markers(table)
  i, j = text.find(start), text.find(end)
  if i < 0 or j < i:
    return None
  return text[i:j + len(end)]


def _archive(runs: Sequence[Run], archive: str) -> None:
  """Copies each finished run's results, and each unfinished run's progress,
  with its curve and branch, to ``archive`` (:func:`status.archive_dir`)."""
  for run in runs:
    name = run.cell.run_name(run.seed)
    progress_copy = status.archived_progress_path(archive, name)
    extra = {"curve": run.curve, "branch": run.branch}
    if run.state == FINISHED:
      os.makedirs(archive, exist_ok=True)
      with open(os.path.join(archive, name + ".json"), "w") as f:
        json.dump({**run.results, **extra}, f, indent=1)
      if os.path.exists(progress_copy):
        os.remove(progress_copy)
    elif not run.archived and run.epoch is not None:
      os.makedirs(archive, exist_ok=True)
      with open(progress_copy, "w") as f:
        json.dump({"epoch": run.epoch, "top1": run.top1,
                   "resumed_at": run.resumed_at,
                   "key_derivation": run.key_derivation, **extra}, f,
                  indent=1)


def _group_suffix(group, groups) -> str:
  """``''`` for a table of one group, else ``'_<dataset>_<profile>_…'``."""
  return "" if len(groups) == 1 else "_" + "_".join(
      f"{x:g}" if isinstance(x, float) else x for x in group)


def _write_curves(prefix: str, in_group: Sequence[CellSummary]) -> None:
  """``<prefix>_curves.png`` (every run's curve in one axes) and
  ``<prefix>_seed_curves.png`` (a panel per method: its seeds and their
  mean), where a run of the group has evaluated."""
  seeds = {method_label(s.cell.method): {r.seed: r.curve for r in s.runs}
           for s in in_group if any(r.curve for r in s.runs)}
  if not seeds:
    return
  switch = in_group[0].cell.config(0).rebalance_epoch
  heading = _group_title(in_group[0].cell)
  experiment_plots.accuracy_curves(
      f"{prefix}_curves.png",
      {f"{name} s{seed}": curve for name, by_seed in seeds.items()
       for seed, curve in by_seed.items() if curve},
      switch_epoch=switch, title=f"test top-1 per epoch · {heading}")
  experiment_plots.seed_curves(
      f"{prefix}_seed_curves.png", seeds, switch_epoch=switch,
      title=f"test top-1 per epoch, seeds (thin) and their mean (bold) · "
            f"{heading}")


def write_report(table: str, cells: Sequence[Cell], runs_dir: str,
                 results_dir: str,
                 reference: Optional[dict] = None) -> list[CellSummary]:
  """Writes ``<results_dir>/<table>.md`` and ``.json``, the test top-1 curves
  of every run that has evaluated (``<table>_curves.png``, and per method
  its seeds and their mean, ``<table>_seed_curves.png``; one of each per
  group of comparable cells, suffixed when the table has several) and, once
  a run is finished, ``<table>_per_class.png`` and ``<table>_groups.png``.
  Each finished run's results, and each unfinished run's progress, is copied
  to :func:`status.archive_dir` (with its curve and branch), which later
  reports into the same ``results_dir`` read when the workdir is gone (the
  runner trains from the workdirs alone).

  Args:
    table: the table's name (file names and title).
    cells: its cells.
    runs_dir: the directory holding the table's run workdirs.
    results_dir: where the report goes (created if needed).
    reference: a committed report to compare with (:func:`markdown`).

  Returns:
    The cell summaries.
  """
  archive = status.archive_dir(results_dir, table)
  runs = status.table_runs(cells, runs_dir, archive)
  _archive(runs, archive)
  summaries = summarize(cells, runs)
  orderings = check_orderings(summaries)
  os.makedirs(results_dir, exist_ok=True)
  base = os.path.join(results_dir, table)
  with open(base + ".md", "w") as f:
    f.write(markdown(table, summaries, orderings, reference))
  with open(base + ".json", "w") as f:
    json.dump(report_json(table, summaries, orderings, reference), f,
              indent=1)
  groups = list(dict.fromkeys(s.cell.group for s in summaries))
  for group in groups:
    prefix = base + _group_suffix(group, groups)
    in_group = [s for s in summaries if s.cell.group == group]
    _write_curves(prefix, in_group)
    members = [s for s in in_group if s.finished]
    if not members:
      continue
    by_method = {method_label(s.cell.method): s.stats["mean"]
                 for s in members}
    plots.per_class_vs_size(f"{prefix}_per_class.png", by_method,
                            _first_results(members)["class_counts"])
    experiment_plots.group_bars(f"{prefix}_groups.png", by_method)
  return summaries
