"""A run's artefacts: ``progress.json`` while it trains (the last evaluation
and the steps it resumed at), then ``results.json``, ``results.md`` and a
per-class plot."""

from __future__ import annotations

import json
import os

from remix_jax import files
from remix_jax import plots
from remix_jax.trainer import run_record


def fmt(x) -> str:
  """A percentage with 2 decimals, or a dash for ``None``."""
  return "–" if x is None else f"{x:.2f}"


def markdown_table(metrics: dict, class_counts, class_names) -> str:
  """Per-class accuracy next to training-set size, then the group summary."""
  lines = ["| class | name | train images | accuracy (%) |", "|---|---|---|---|"]
  for c, (n, acc) in enumerate(zip(class_counts, metrics["per_class"])):
    lines.append(f"| {c} | {class_names[c]} | {int(n)} | {acc:.2f} |")
  lines += ["", "| top-1 | top-5 | many | medium | few | head | mid | tail |",
            "|---|---|---|---|---|---|---|---|",
            "| " + " | ".join(fmt(metrics.get(k)) for k in (
                "top1", "top5", "many", "medium", "few", "head", "mid",
                "tail")) + " |"]
  return "\n".join(lines) + "\n"


PROGRESS_FILE = "progress.json"


def _read_progress(workdir: str) -> dict:
  try:
    with open(os.path.join(workdir, PROGRESS_FILE)) as f:
      progress = json.load(f)
  except (OSError, ValueError):
    return {}
  return progress if isinstance(progress, dict) else {}


def _write_progress(workdir: str, progress: dict) -> None:
  files.write_json(os.path.join(workdir, PROGRESS_FILE), progress)


def _resumes(progress: dict) -> list[int]:
  steps = progress.get("resumed_at", [])
  return [int(s) for s in steps] if isinstance(steps, list) else []


def resumed_at(workdir: str) -> list[int]:
  """The steps at which training of ``workdir`` went on from a checkpoint
  after it had stopped (an interruption, or a base run stopped at the
  switch epoch of its deferred runs; :func:`record_resume`), in order."""
  return _resumes(_read_progress(workdir))


def record_resume(workdir: str, step: int) -> None:
  """Adds ``step`` to the resumes kept in ``progress.json``, so that the
  run's results say where it restarted."""
  progress = _read_progress(workdir)
  progress["resumed_at"] = sorted(set(_resumes(progress)) | {int(step)})
  _write_progress(workdir, progress)


def write_progress(workdir: str, *, epoch: int, step: int,
                   metrics: dict) -> None:
  """Writes ``progress.json``: the last evaluated epoch, its step and test
  top-1, for whoever watches a run still in progress (the full history is in
  the TensorBoard events), keeping the recorded resumes."""
  _write_progress(workdir, {"epoch": int(epoch), "step": int(step),
                            "top1": metrics.get("top1"),
                            "resumed_at": resumed_at(workdir)})


#: What a finished run writes, besides its checkpoints and events.
RESULT_FILES = ("results.json", "results.md", "per_class.png")


def read_results(workdir: str):
  """The parsed ``results.json`` of a finished run, or ``None``."""
  try:
    with open(os.path.join(workdir, "results.json")) as f:
      results = json.load(f)
  except (OSError, ValueError):
    return None
  return results if isinstance(results, dict) and "metrics" in results else None


def duration(seconds: float) -> str:
  """``'1 h 02 min'``, ``'3 min 05 s'`` or ``'42 s'``."""
  seconds = int(round(seconds))
  h, rest = divmod(seconds, 3600)
  m, s = divmod(rest, 60)
  if h:
    return f"{h} h {m:02d} min"
  return f"{m} min {s:02d} s" if m else f"{s} s"


def where_line(workdir: str, seconds: float,
               scalars: str = "TensorBoard events in {workdir}") -> str:
  """The last line of a run: its wall time and where its outputs are
  (``scalars``: where the metric writer put them, ``{workdir}`` filled)."""
  return (f"done in {duration(seconds)}; results in {workdir}/ "
          f"({', '.join(RESULT_FILES)}), {scalars.format(workdir=workdir)}, "
          f"checkpoints in {os.path.join(workdir, 'checkpoints')}")


def finished_line(workdir: str, metrics: dict) -> str:
  """What a run that had finished already says: its recorded top-1 and
  where its outputs are."""
  return (f"already finished: top-1 {fmt(metrics.get('top1'))} % at step "
          f"{metrics.get('step')}; results in {workdir}/ "
          f"({', '.join(RESULT_FILES)}); use a new --workdir to train again")


def write_results(workdir: str, metrics: dict, *, class_counts, class_names,
                  config_json: str, title: str) -> None:
  """Writes ``results.json`` (with the steps the run resumed at and how its
  keys came from its seed), ``results.md`` and ``per_class.png``."""
  files.write_json(os.path.join(workdir, "results.json"), {
      "metrics": metrics, "class_counts": [int(n) for n in class_counts],
      "class_names": list(class_names), "config": json.loads(config_json),
      "resumed_at": resumed_at(workdir),
      "key_derivation": run_record.key_derivation(workdir)}, indent=1)
  table = markdown_table(metrics, class_counts, class_names)
  files.write_text(os.path.join(workdir, "results.md"),
                   f"# {title}\n\n{table}")
  plots.per_class_vs_size(os.path.join(workdir, "per_class.png"),
                          {"test": metrics}, class_counts, title=title)
