"""benchmarks/train_step.py's figures: the JSON report, its markdown table,
and the documents that show the table (one source: the JSON)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from benchmarks import step_report
from tests import helpers

TRAIN_STEP = helpers.REPO / "benchmarks" / "train_step.py"
#: Two rounds of three contenders, in seconds per call.
TIMES = {("torch", "step"): [0.20, 0.30], ("onednn", "step"): [0.10, 0.20],
         ("xla", "step"): [0.40, 0.50], ("torch", "forward"): [0.04, 0.05],
         ("onednn", "forward"): [0.02, 0.05], ("xla", "forward"): [0.08, 0.1]}


def _report(times=None) -> dict:
  machine = {"cpu": "Test CPU", "cores": 4, "usable_cores": 2,
             "platform": "Linux", "python": "3.11",
             "versions": {"jax": "0.10.2", "torch": "2.14.1", "jaxlib": None},
             "date": "2026-01-02T03:04:05+00:00"}
  settings = {"model": "resnet32", "batch": 10, "rounds": 2,
              "calls_per_round": 3}
  return step_report.report(
      machine_info=machine, settings=settings, methods=[],
      contenders=step_report.head_to_head(times or TIMES, batch=10))


def test_head_to_head_medians_spread_images_per_second_and_ratios():
  out = step_report.head_to_head(TIMES, batch=10)
  step = out["onednn"]["step"]
  assert step["ms"] == pytest.approx({"median": 150, "min": 100, "max": 200})
  assert step["round_ms"] == pytest.approx([100, 200])
  assert step["images_per_s"] == pytest.approx(10 / 0.15)
  # Each round's PyTorch time over ours (2.0, 1.5), then over the rounds.
  ratio = step["ratio_to_torch"]
  assert ratio["rounds"] == pytest.approx([2.0, 1.5])
  assert [ratio[k] for k in ("median", "min", "max")] == pytest.approx(
      [1.75, 1.5, 2.0])
  assert out["torch"]["step"]["ratio_to_torch"] is None
  without_torch = step_report.head_to_head(
      {k: v for k, v in TIMES.items() if k[0] != "torch"}, batch=10)
  assert without_torch["xla"]["forward"]["ratio_to_torch"] is None


def test_head_to_head_ratios_to_torch_compile():
  times = {**TIMES, ("torch_compile", "step"): [0.05, 0.10],
           ("torch_compile", "forward"): [0.02, 0.02]}
  out = step_report.head_to_head(times, batch=10)
  ratio = out["xla"]["step"]["ratio_to_torch_compile"]
  assert ratio["rounds"] == pytest.approx([0.125, 0.2])
  assert out["xla"]["step"]["ratio_to_torch"]["rounds"] == pytest.approx(
      [0.5, 0.6])
  for name in ("torch", "torch_compile"):
    assert out[name]["step"]["ratio_to_torch"] is None
    assert "ratio_to_torch_compile" not in out[name]["step"]
  assert "ratio_to_torch_compile" not in step_report.head_to_head(
      TIMES, batch=10)["xla"]["step"]


def test_markdown_table_rows_and_ratios():
  lines = step_report.markdown_table(_report()).splitlines()
  assert lines[0].startswith("resnet32, batch 10×32×32×3 float32, ERM train "
                             "step and eval forward; 2 interleaved rounds "
                             "of 3 calls per contender")
  assert "Test CPU, 2 of 4 cores, jax 0.10.2, torch 2.14.1, 2026-01-02." in (
      lines[0])
  assert lines[1] == ""
  assert lines[2] == ("| | train ms | train images/s | train × PyTorch | "
                      "eval ms | eval images/s | eval × PyTorch | rounds |")
  assert lines[4:] == [
      "| JAX, oneDNN convolutions | 150 (100–200) | 67 | **1.75×** "
      "(1.50–2.00) | 35.0 (20.0–50.0) | 286 | **1.50×** (1.00–2.00) | 2 |",
      "| JAX, XLA's convolutions | 450 (400–500) | 22 | **0.55×** "
      "(0.50–0.60) | 90.0 (80.0–100) | 111 | **0.50×** (0.50–0.50) | 2 |",
      "| PyTorch eager channels_last | 250 (200–300) | 40 | – | 45.0 "
      "(40.0–50.0) | 222 | – | 2 |"]


def test_block_drift_only_where_the_markers_are(tmp_path):
  value = _report()
  block = step_report.markdown_block(value)
  assert block.startswith(step_report.MARKERS[0] + "\n")
  assert block.endswith("\n" + step_report.MARKERS[1])
  doc = tmp_path / "doc.md"
  doc.write_text("# Speed\n\nNo table here, only the markers' names: "
                 f"`{step_report.MARKERS[0]}` … `{step_report.MARKERS[1]}`.\n")
  assert step_report.block_drift(str(doc), value) is None
  doc.write_text(f"# Speed\n\n{block}\n\nMore.\n")
  assert step_report.find_block(doc.read_text()) == block
  assert step_report.block_drift(str(doc), value) is None
  stale = _report({**TIMES, ("onednn", "step"): [0.1, 0.1]})
  message = step_report.block_drift(str(doc), stale)
  assert message.startswith(f"{doc}: the block between "
                            "<!-- train-step:start --> and")
  assert message.endswith("`python benchmarks/train_step.py --markdown`")


def _documents():
  """The repository's markdown files (README, BENCHMARKS, docs/, results/)."""
  for root, dirs, files in os.walk(helpers.REPO):
    dirs[:] = [d for d in dirs if not d.startswith(".") and d not in (
        "runs", "node_modules", "__pycache__")]
    for name in sorted(files):
      if name.endswith(".md"):
        yield os.path.join(root, name)


def test_documents_with_the_markers_show_the_report():
  """Every markdown file that holds the train-step markers shows the table
  of ``results/benchmarks/train_step.json``; files without them are left
  alone."""
  holders = [p for p in _documents()
             if step_report.find_block(open(p).read()) is not None]
  if not holders:
    return
  assert os.path.exists(step_report.DEFAULT_JSON), (
      f"{holders} show the train-step table but "
      f"{step_report.DEFAULT_JSON} is missing: run benchmarks/train_step.py")
  value = step_report.read_report(step_report.DEFAULT_JSON)
  drift = [m for p in holders if (m := step_report.block_drift(p, value))]
  assert not drift, "\n".join(drift)


def _run(*args, timeout=600):
  env = dict(os.environ, PYTHONPATH=str(helpers.REPO))
  out = subprocess.run([sys.executable, str(TRAIN_STEP), *args], env=env,
                       capture_output=True, text=True, timeout=timeout)
  assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
  return out.stdout


def test_a_tiny_run_writes_the_report_and_the_table_renders(tmp_path):
  path = tmp_path / "out" / "train_step.json"
  _run("--model", "tiny_resnet", "--batch", "4", "--iters", "2", "--rounds",
       "1", "--mixers", "erm", "--json", str(path))
  value = json.loads(path.read_text())
  assert value["benchmark"] == "train_step" and value["schema"] == 1
  machine = value["machine"]
  assert machine["cpu"] and machine["cores"] >= 1 and machine["date"]
  assert machine["versions"]["jax"] and machine["versions"]["jaxlib"]
  assert value["settings"]["rounds"] == 1
  assert value["settings"]["calls_per_round"] == 2
  assert [(r["conv_impl"], r["method"]) for r in value["methods"]][0] == (
      "xla", "erm")
  with_torch = importlib.util.find_spec("torch") is not None
  assert ("torch" in value["head_to_head"]) == with_torch
  for name, kinds in value["head_to_head"].items():
    for kind in ("step", "forward"):
      k = kinds[kind]
      assert set(k) == {"ms", "round_ms", "images_per_s", "ratio_to_torch"}
      assert set(k["ms"]) == {"median", "min", "max"} and len(k["round_ms"]) == 1
      assert k["images_per_s"] > 0
      assert (k["ratio_to_torch"] is not None) == (with_torch and
                                                   name != "torch")
  printed = _run("--markdown", "--json", str(path), timeout=300)
  assert printed == step_report.markdown_block(value) + "\n"
