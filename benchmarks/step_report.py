"""The train-step benchmark's figures: one JSON file, and the markdown made
from it.

``benchmarks/train_step.py`` writes its measurements with
:func:`write_report` (default ``results/benchmarks/train_step.json``): the
machine (:func:`machine`), the settings, each method's step, and the
head-to-head of the ERM train step and eval forward of every contender
(oneDNN's convolutions, XLA's, PyTorch) over interleaved rounds, with the
median, the spread over rounds and the ratio to PyTorch measured in the
same run. :func:`markdown_table` renders the head-to-head;
``python benchmarks/train_step.py --markdown`` prints it between the
markers of :data:`MARKERS`, which is what a document pastes. A document
that holds the markers is checked against the JSON by :func:`block_drift`
(``tests/experiments/test_step_report.py``), so its figures have one
source.

Light to import: the standard library only.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import re
import statistics
from typing import Optional, Sequence

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Where ``benchmarks/train_step.py`` writes its report by default.
DEFAULT_JSON = os.path.join(REPO, "results", "benchmarks", "train_step.json")
#: The markers around the rendered table in a markdown document.
MARKERS = ("<!-- train-step:start -->", "<!-- train-step:end -->")
#: Contenders in table order, with their labels.
LABELS = {"onednn": "JAX, oneDNN convolutions",
          "xla": "JAX, XLA's convolutions",
          "torch": "PyTorch eager channels_last",
          "torch_compile": "PyTorch torch.compile channels_last"}
#: The PyTorch references, by the key of each contender's ratio to them.
REFERENCES = {"ratio_to_torch": "torch",
              "ratio_to_torch_compile": "torch_compile"}
#: The two passes timed head to head, with their labels.
KINDS = {"step": "train", "forward": "eval"}
SCHEMA = 1


def cpu_model() -> str:
  """The CPU's model name (``/proc/cpuinfo``, else :mod:`platform`)."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def machine(**versions: Optional[str]) -> dict:
  """The machine the figures were measured on.

  Args:
    **versions: package versions to record (``jax=..., torch=...``; ``None``
      for one that was not used).

  Returns:
    ``{'cpu', 'cores', 'usable_cores', 'platform', 'python', 'versions',
    'date'}``; ``date`` is UTC, ISO 8601.
  """
  usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count())
  now = datetime.datetime.now(datetime.timezone.utc)
  return {"cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable,
          "platform": platform.platform(), "python": platform.python_version(),
          "versions": dict(versions),
          "date": now.replace(microsecond=0).isoformat()}


def _spread(values: Sequence[float]) -> dict:
  return {"median": statistics.median(values), "min": min(values),
          "max": max(values)}


def head_to_head(times: dict, batch: int) -> dict:
  """The head-to-head section of the report.

  Args:
    times: ``{(contender, kind): [median seconds of each round]}``, as
      ``torch_reference.head_to_head`` returns; ``kind`` is a key of
      :data:`KINDS`, the contender ``'torch'`` is PyTorch (eager) and
      ``'torch_compile'`` PyTorch under ``torch.compile``.
    batch: images per call.

  Returns:
    ``{contender: {kind: {'ms': {'median', 'min', 'max'}, 'round_ms',
    'images_per_s', 'ratio_to_torch'}}}``: milliseconds per call over the
    rounds, images/s at the median, and (for JAX contenders, when PyTorch
    was timed) each round's PyTorch time over the contender's, summarized
    over rounds (``> 1``: faster than PyTorch); ``None`` without PyTorch.
    With ``torch_compile`` timed, ``'ratio_to_torch_compile'`` likewise.
  """
  out = {}
  for (name, kind), seconds in times.items():
    ms = [1e3 * s for s in seconds]
    entry = {"ms": _spread(ms), "round_ms": ms,
             "images_per_s": batch / statistics.median(seconds),
             "ratio_to_torch": None}
    for key, reference in REFERENCES.items():
      ref_s = times.get((reference, kind))
      if ref_s is not None and not name.startswith("torch"):
        rounds = [t / s for t, s in zip(ref_s, seconds)]
        entry[key] = {**_spread(rounds), "rounds": rounds}
    out.setdefault(name, {})[kind] = entry
  return out


def report(*, machine_info: dict, settings: dict, methods: list,
           contenders: dict, command: Sequence[str] = ()) -> dict:
  """The whole report, as :func:`write_report` stores it.

  Args:
    machine_info: :func:`machine`.
    settings: ``model``, ``batch``, ``rounds``, ``calls_per_round`` and any
      other setting of the run.
    methods: one dict per timed (conv_impl, method) step.
    contenders: :func:`head_to_head`.
    command: the command line.
  """
  return {"benchmark": "train_step", "schema": SCHEMA,
          "command": " ".join(command), "machine": machine_info,
          "settings": settings, "methods": methods,
          "head_to_head": contenders}


def write_report(value: dict, path: str) -> None:
  """Writes ``value`` to ``path`` as indented JSON, whole or not at all."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    with open(tmp, "w") as f:
      json.dump(value, f, indent=2)
      f.write("\n")
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def read_report(path: str) -> dict:
  with open(path) as f:
    return json.load(f)


def _ms(x: float) -> str:
  return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _cell_ms(kind: dict) -> str:
  ms = kind["ms"]
  return f"{_ms(ms['median'])} ({_ms(ms['min'])}–{_ms(ms['max'])})"


def _cell_ratio(kind: dict, name: str) -> str:
  ratio = kind["ratio_to_torch"]
  if name.startswith("torch") or ratio is None:
    return "–"
  return (f"**{ratio['median']:.2f}×** "
          f"({ratio['min']:.2f}–{ratio['max']:.2f})")


def caption(value: dict) -> str:
  """The line above the table: what was timed, where and when."""
  s, m = value["settings"], value["machine"]
  versions = ", ".join(f"{k} {v}" for k, v in sorted(m["versions"].items())
                       if v)
  rounds = f"{s['rounds']} interleaved round{'s' if s['rounds'] != 1 else ''}"
  return (f"{s['model']}, batch {s['batch']}×32×32×3 "
          f"{s.get('dtype', 'float32')}, ERM train step "
          f"and eval forward; {rounds} of "
          f"{s['calls_per_round']} calls per contender, median over rounds "
          f"(min–max); ratio = PyTorch's time / ours in each round. "
          f"{m['cpu']}, {m['usable_cores']} of {m['cores']} cores, "
          f"{versions}, {m['date'][:10]}.")


def markdown_table(value: dict) -> str:
  """The head-to-head of a report (:func:`report`) as markdown.

  One row per contender (oneDNN path, XLA path, PyTorch): ms per call
  (median over rounds, min–max), images/s and the ratio to PyTorch (median
  over rounds of each round's ratio, min–max) for the train step and the
  eval forward, and the number of rounds; :func:`caption` above it. No
  trailing newline.
  """
  lines = [caption(value), "",
           "| | train ms | train images/s | train × PyTorch | eval ms "
           "| eval images/s | eval × PyTorch | rounds |",
           "|---|---|---|---|---|---|---|---|"]
  contenders = value["head_to_head"]
  for name in sorted(contenders, key=lambda n: (
      list(LABELS).index(n) if n in LABELS else len(LABELS), n)):
    cells = [LABELS.get(name, name)]
    for kind in KINDS:
      k = contenders[name][kind]
      cells += [_cell_ms(k), f"{k['images_per_s']:,.0f}",
                _cell_ratio(k, name)]
    cells.append(str(len(contenders[name]["step"]["round_ms"])))
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def markdown_block(value: dict) -> str:
  """:func:`markdown_table` between :data:`MARKERS`, as a document holds it."""
  return f"{MARKERS[0]}\n{markdown_table(value)}\n{MARKERS[1]}"


def find_block(text: str, markers: Sequence[str] = MARKERS) -> Optional[str]:
  """The block of ``text`` from the start marker to the end marker, both
  included; ``None`` unless both are there, in that order, each a line of
  its own (a marker quoted inside a sentence does not count)."""
  start, end = (re.escape(m) for m in markers)
  found = re.search(rf"^{start}$.*?^{end}$", text, re.MULTILINE | re.DOTALL)
  return found.group(0) if found else None


def block_drift(path: str, value: dict,
                markers: Sequence[str] = MARKERS) -> Optional[str]:
  """Whether the markdown file ``path`` shows report ``value`` as rendered.

  Returns:
    ``None`` when the file holds no block between ``markers`` or its block
    equals :func:`markdown_block` of ``value``; else one line saying which
    file differs and how to fix it.
  """
  with open(path) as f:
    block = find_block(f.read(), markers)
  if block is None or block == markdown_block(value):
    return None
  return (f"{path}: the block between {markers[0]} and {markers[1]} differs "
          "from the report; replace it with the output of "
          "`python benchmarks/train_step.py --markdown`")
