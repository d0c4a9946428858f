"""The reproduction tables' bookkeeping and report, and the plots (fake runs,
no data, no training)."""

import json
import os
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest

from configs import cifar_lt
from experiments.remix_paper import plots as experiment_plots
from experiments.remix_paper import report as paper_report
from experiments.remix_paper import status
from experiments.remix_paper import tables
from remix_jax import plots
from remix_jax.trainer import build
from tests.helpers import REPO

COUNTS = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
         "horse", "ship", "truck"]


def _metrics(top1, per_class=None):
  per_class = per_class or [top1] * 10
  return {"top1": top1, "top5": 99.0, "per_class": per_class,
          "head": float(np.mean(per_class[:3])),
          "mid": float(np.mean(per_class[3:7])),
          "tail": float(np.mean(per_class[7:])),
          "many": float(np.mean(per_class[:8])),
          "medium": float(np.mean(per_class[8:])), "few": None}


def _finish(runs_dir, cell, seed, metrics,
            key_derivation=build.KEY_DERIVATION):
  workdir = os.path.join(runs_dir, cell.run_name(seed))
  os.makedirs(workdir, exist_ok=True)
  with open(os.path.join(workdir, "results.json"), "w") as f:
    json.dump({"metrics": metrics, "class_counts": COUNTS,
               "class_names": NAMES, "config": {},
               "key_derivation": key_derivation}, f)


def test_run_names_and_configs():
  cell = tables.Cell("remix_drw", seeds=(0, 1))
  assert cell.run_name(1) == "remix_drw_cifar10_exp100_cpu30_s1"
  # The cell's config is the preset the command line builds from its string.
  assert cell.config(1).to_json() == cifar_lt.get_config(
      "dataset=cifar10,rho=100,profile=exp,method=remix_drw,"
      "protocol=cpu30,seed=1").to_json()
  offline = tables.get_table("paper", "cifar10_jpeg")
  assert [c.dataset for c in offline] == ["cifar10_jpeg"] * len(offline)
  assert offline[3].run_name(1) == "remix_cifar10_jpeg_exp100_paper_s1"
  assert {c.dataset for c in tables.get_table("paper")} == {"cifar10"}
  assert cell.deferred_base() == tables.Cell("remix", seeds=(0, 1))
  assert tables.Cell("remix").deferred_base() is None
  assert [c.method for c in tables.get_table("cpu30")] == [
      "erm", "mixup", "remix", "remix_drw", "cutmix", "remix_cm",
      "cutmix_sumix", "sumix_remix", "cutmix_sumix_follow",
      "sumix_follow_remix", "logit_adjustment", "cmo", "unimix",
      "balanced_mixup", "remix_la", "remix_cmo"]
  with pytest.raises(ValueError, match="cpu30"):
    tables.get_table("nope")


def test_paper_numbers():
  assert tables.paper_top1("remix_drw", "cifar10_jpeg", "exp", 100) == 79.76
  assert tables.paper_top1("remix_cm", "cifar100", "step", 10) == 57.78
  assert tables.paper_top1("erm", "cinic10", "step", 200) == 51.64
  assert tables.paper_top1("cutmix_sumix", "cifar10", "exp", 100) is None
  # Table 1 and 5 each fill all 8 CIFAR columns, Table 2 the 8 CINIC ones.
  assert len(tables.PAPER_TOP1) == 8 * (14 + 4 + 10)


def test_status_finished_in_progress_not_started(tmp_path):
  runs_dir = str(tmp_path)
  erm, mixup, remix = (tables.Cell(m) for m in ("erm", "mixup", "remix"))
  _finish(runs_dir, erm, 0, _metrics(70.0))
  ckpt = tmp_path / mixup.run_name(0) / "checkpoints"
  for name in ("100", "200", "300.orbax-checkpoint-tmp-1"):
    (ckpt / name).mkdir(parents=True)
  runs = status.table_runs([erm, mixup, remix], runs_dir)
  assert [r.state for r in runs] == [
      status.FINISHED, status.IN_PROGRESS, status.NOT_STARTED]
  assert runs[0].describe() == "finished (top-1 70.00)"
  assert runs[1].step == 200
  assert runs[1].describe() == "in progress (checkpoint at step 200)"
  assert runs[2].describe() == "not started"
  (tmp_path / mixup.run_name(0) / "progress.json").write_text('{"epoch": 7}')
  assert (status.run_status(mixup, 0, runs_dir).describe()
          == "in progress, last evaluated epoch 7")
  (tmp_path / mixup.run_name(0) / "progress.json").write_text(
      '{"epoch": 7, "step": 672, "top1": 41.256}')
  assert (status.run_status(mixup, 0, runs_dir).describe()
          == "in progress, last evaluated epoch 7 (top-1 41.26)")


def test_runs_with_the_earlier_keys_are_named_in_one_note(tmp_path):
  runs_dir = str(tmp_path)
  erm, mixup = tables.Cell("erm", seeds=(0, 1)), tables.Cell("mixup")
  _finish(runs_dir, erm, 0, _metrics(70.0), key_derivation=None)
  _finish(runs_dir, erm, 1, _metrics(71.0))
  workdir = tmp_path / mixup.run_name(0)
  (workdir / "checkpoints" / "100").mkdir(parents=True)
  (workdir / "config.json").write_text('{"history": [], "config": {}}')
  runs = status.table_runs([erm, mixup], runs_dir)
  assert [r.key_derivation for r in runs] == [None, build.KEY_DERIVATION,
                                              None]
  text = paper_report.markdown("t", paper_report.summarize([erm, mixup],
                                                           runs), [])
  assert (f"- ERM s0, Mixup s0: {paper_report.EARLIER_KEYS_NOTE}"
          in text.splitlines())
  assert "A seed s is a whole run" in text


def test_aggregate_mean_and_sample_std():
  stats = paper_report.aggregate([_metrics(70.0, [60.0] * 10),
                               _metrics(72.0, [64.0] * 10)])
  assert stats["n"] == 2
  assert stats["mean"]["top1"] == pytest.approx(71.0)
  assert stats["std"]["top1"] == pytest.approx(np.sqrt(2.0))
  assert stats["mean"]["per_class"] == pytest.approx([62.0] * 10)
  assert stats["std"]["per_class"] == pytest.approx([np.sqrt(8.0)] * 10)
  one = paper_report.aggregate([_metrics(70.0)])
  assert one["std"]["top1"] is None
  assert paper_report.pm(one["mean"]["top1"], one["std"]["top1"]) == "70.00"
  assert paper_report.pm(71.0, 1.414) == "71.00 ± 1.41"
  # A group missing in one run (None) has no aggregate.
  assert paper_report.aggregate([{**_metrics(70.0), "tail": None}])[
      "mean"]["tail"] is None


def _fake_table(tmp_path):
  cells = [tables.Cell(m, seeds=(0, 1)) for m in (
      "erm", "mixup", "remix", "remix_drw", "cutmix", "remix_cm",
      "cutmix_sumix")]
  top1 = {"erm": 70.0, "mixup": 72.0, "remix": 71.0, "cutmix": 74.0,
          "remix_cm": 75.5, "cutmix_sumix": 74.5}
  runs_dir = str(tmp_path / "runs")
  for cell in cells:
    if cell.method in top1:
      for seed in cell.seeds:
        tilt = np.linspace(90, 30, 10) + seed
        _finish(runs_dir, cell, seed,
                _metrics(top1[cell.method] + seed - 0.5, list(tilt)))
  (tmp_path / "runs" / cells[3].run_name(0) / "checkpoints" / "200").mkdir(
      parents=True)
  (tmp_path / "runs" / cells[3].run_name(0) / "config.json").write_text(
      json.dumps({"history": [], "config": {},
                  "key_derivation": build.KEY_DERIVATION}))
  return cells, runs_dir


def test_orderings_with_margins(tmp_path):
  cells, runs_dir = _fake_table(tmp_path)
  summaries = paper_report.summarize(cells, status.table_runs(cells, runs_dir))
  got = {(o["lower"], o["higher"]): o
         for o in paper_report.check_orderings(summaries)}
  # remix_drw is unfinished, so the first chain is erm < mixup < remix.
  claimed = {("erm", "mixup"), ("mixup", "remix"), ("cutmix", "remix_cm")}
  assert {k for k, o in got.items() if o["claimed"]} == claimed
  # The one other pair within one table of the paper (Table 1): ERM, Remix.
  # Pairs across tables (ERM, CutMix) or without a paper number (CutMix+
  # SUMix) are not orderings of the paper.
  assert set(got) - claimed == {("erm", "remix")}
  # Every row has 2 seeds 1 point apart: SE = sqrt(0.5/2 + 0.5/2).
  se = np.sqrt(0.5)
  assert got["erm", "remix"]["verdict"] == "within noise"
  assert got["erm", "remix"]["margin"] == pytest.approx(1.0)
  assert got["erm", "remix"]["se"] == pytest.approx(se)
  assert got["erm", "remix"]["paper_margin"] == pytest.approx(75.36 - 71.86)
  assert got["erm", "mixup"]["verdict"] == "holds"
  assert got["erm", "mixup"]["margin"] == pytest.approx(2.0)
  assert got["erm", "mixup"]["paper_margin"] == pytest.approx(73.09 - 71.86)
  assert got["mixup", "remix"]["verdict"] == "within noise"
  assert got["mixup", "remix"]["margin"] == pytest.approx(-1.0)
  assert got["cutmix", "remix_cm"]["margin"] == pytest.approx(1.5)
  assert got["cutmix", "remix_cm"]["verdict"] == "holds"
  assert all((o["n_lower"], o["n_higher"]) == (2, 2) and "holds" not in o
             for o in got.values())


def _summaries_of(tmp_path, top1s):
  """Finished cells of the methods in ``top1s``, one seed per value."""
  cells = [tables.Cell(m, seeds=tuple(range(len(v))))
           for m, v in top1s.items()]
  runs_dir = str(tmp_path / "runs")
  for cell, values in zip(cells, top1s.values()):
    for seed, top1 in enumerate(values):
      _finish(runs_dir, cell, seed, _metrics(top1))
  return paper_report.summarize(cells, status.table_runs(cells, runs_dir))


def test_orderings_are_judged_against_twice_the_standard_error(tmp_path):
  summaries = _summaries_of(tmp_path, {
      "erm": [70.0, 71.0], "mixup": [71.0, 72.0], "remix": [75.0, 76.0],
      "remix_drw": [60.0, 61.0, 62.0], "ldam_drw": [80.0]})
  got = {(o["lower"], o["higher"]): o
         for o in paper_report.check_orderings(summaries)}
  se = np.sqrt(0.5 / 2 + 0.5 / 2)
  assert got["erm", "mixup"]["se"] == pytest.approx(se)
  assert got["erm", "mixup"]["verdict"] == "within noise"  # +1 < 2 SE
  assert got["mixup", "remix"]["verdict"] == "holds"  # +4 > 2 SE
  # Remix-DRW: 3 seeds, std 1: SE = sqrt(0.5/2 + 1/3).
  assert got["remix", "remix_drw"]["se"] == pytest.approx(
      np.sqrt(0.25 + 1 / 3))
  assert got["remix", "remix_drw"]["verdict"] == "fails"  # -14.5 < -2 SE
  assert got["remix", "remix_drw"]["n_higher"] == 3
  # Table 1's LDAM-DRW < Remix-DRW is a claim of the paper; one LDAM-DRW
  # seed gives no spread to judge it by.
  ldam = got["ldam_drw", "remix_drw"]
  assert ldam["claimed"]
  assert (ldam["verdict"], ldam["se"], ldam["n_lower"]) == (
      "no verdict", None, 1)
  assert ldam["margin"] == pytest.approx(61.0 - 80.0)
  assert ldam["paper_margin"] == pytest.approx(79.76 - 76.57)
  md = paper_report.markdown("t", summaries, list(got.values()))
  assert ("- ERM < Mixup: within noise (+1.00 ± 0.71 SE, n = 2/2; paper "
          "+1.23)") in md
  assert "- Mixup < Remix: holds (+4.00 ± 0.71 SE, n = 2/2; paper +2.27)" in (
      md)
  assert "- Remix < Remix-DRW: fails (-14.50 ± 0.76 SE, n = 2/3;" in md
  assert ("- LDAM-DRW < Remix-DRW: no verdict (n = 1/3: -19.00; paper "
          "+3.19)") in md
  assert "holds if m > 2·SE, fails if m < −2·SE" in md
  # The verdict is strict at ±2 SE.
  assert paper_report.verdict(1.0, 0.5) == "within noise"
  assert paper_report.verdict(-1.0, 0.5) == "within noise"
  assert paper_report.verdict(1.01, 0.5) == "holds"
  assert paper_report.verdict(1.0, None) == "no verdict"


def test_report_markdown_json_and_plots(tmp_path):
  cells, runs_dir = _fake_table(tmp_path)
  results_dir = str(tmp_path / "results")
  paper_report.write_report("fake", cells, runs_dir, results_dir)
  md = (tmp_path / "results" / "fake.md").read_text()
  # Our epochs (the paper trained 300) are in the heading.
  assert "\n## cifar10, exp ρ=100, protocol cpu30 (30 epochs)\n" in md
  assert "top-1 (committed)" not in md  # no reference given
  assert "| ERM | 2 | 70.00 ± 0.71 | 71.86 (Table 1) | -1.86 |" in md
  # head, mid, tail, many (classes 0-7), medium (8-9), few (none).
  assert ("| Mixup | 2 | 72.00 ± 0.71 | 73.09 (Table 1) | -1.09 | 83.83 ± "
          "0.71 | 60.50 ± 0.71 | 37.17 ± 0.71 | 67.17 ± 0.71 | 33.83 ± 0.71 | "
          "– | finished |") in md
  assert "| Remix-CM | 2 | 75.50 ± 0.71 | 76.59 (Table 5) | -1.09 |" in md
  assert "| CutMix+SUMix | 2 | 74.50 ± 0.71 | – | – |" in md
  assert ("| Remix-DRW | 0 | – | 79.76 (Table 1) | – | – | – | – | – | – | "
          "– | s0: in "
          "progress (checkpoint at step 200); s1: not started |") in md
  assert "| 9 | truck | 50 | 30.50 ± 0.71 |" in md
  assert "- ERM < Mixup: holds (+2.00 ± 0.71 SE, n = 2/2; paper +1.23)" in md
  assert ("- Mixup < Remix: within noise (-1.00 ± 0.71 SE, n = 2/2; paper "
          "+2.27)") in md
  claims, others = md.split("not claimed as an ordering by the paper):")
  assert ("- ERM < Remix: within noise (+1.00 ± 0.71 SE, n = 2/2; paper "
          "+3.50)") in others
  assert "ERM < Remix" not in claims
  assert "- CutMix+SUMix: λ̃ as released" in md
  assert md.count("λ̃ as released") == 1
  report = json.loads((tmp_path / "results" / "fake.json").read_text())
  erm = report["cells"][0]
  assert erm["method"] == "erm" and erm["paper_top1"] == 71.86
  assert erm["mean"]["top1"] == pytest.approx(70.0)
  assert [r["state"] for r in report["cells"][3]["runs"]] == [
      "in progress", "not started"]
  for name in ("fake_per_class.png", "fake_groups.png"):
    assert (tmp_path / "results" / name).stat().st_size > 1000


def test_seed_mean_curve_uses_the_epochs_the_seeds_share():
  finished = [[0, 10.0], [1, 20.0], [2, 30.0]]
  assert experiment_plots.seed_mean_curve([finished]) == []
  assert experiment_plots.seed_mean_curve([finished, []]) == []
  # An unfinished seed counts up to its last epoch; past it, one seed is
  # left (no mean).
  assert experiment_plots.seed_mean_curve([
      finished, [[0, 20.0], [1, 40.0]]]) == [[0, 15.0], [1, 30.0]]
  # Past the unfinished one the two finished seeds go on; an epoch only
  # one of the seeds that passed it evaluated (1.5) is left out.
  assert experiment_plots.seed_mean_curve([
      finished, [[0, 30.0], [1, 40.0], [1.5, 45.0], [2, 50.0]],
      [[0, 50.0]]]) == [[0, 30.0], [1, 30.0], [2, 40.0]]


def _archive_run(results_dir, cell, seed, curve, top1=None):
  """A run known only from the archive: finished with ``top1``, else in
  progress at the curve's last epoch."""
  archive = status.archive_dir(results_dir, "fake")
  os.makedirs(archive, exist_ok=True)
  name = cell.run_name(seed)
  if top1 is None:
    path, record = status.archived_progress_path(archive, name), {
        "epoch": curve[-1][0], "top1": curve[-1][1]}
  else:
    path, record = os.path.join(archive, name + ".json"), {
        "metrics": _metrics(top1), "class_counts": COUNTS,
        "class_names": NAMES}
  with open(path, "w") as f:
    json.dump({**record, "curve": curve}, f)


def test_report_draws_each_methods_seeds_and_their_mean(tmp_path):
  results_dir = str(tmp_path / "results")
  cells = [tables.Cell(m, seeds=(0, 1, 2))
           for m in ("erm", "mixup", "remix", "remix_drw")]
  curve = [[e, 20.0 + e] for e in range(0, 31, 3)]
  for cell in cells[:3]:
    _archive_run(results_dir, cell, 0, curve, top1=50.0)
    _archive_run(results_dir, cell, 1, [[e, t + 2] for e, t in curve],
                 top1=52.0)
    _archive_run(results_dir, cell, 2, curve[:4])
  paper_report.write_report("fake", cells, str(tmp_path / "runs"),
                            results_dir)
  path = tmp_path / "results" / "fake_seed_curves.png"
  assert path.stat().st_size > 10000
  # One panel per method with a curve (3 of the 4), side by side.
  import matplotlib.image  # pylint: disable=g-import-not-at-top
  height, width = matplotlib.image.imread(str(path)).shape[:2]
  assert width == 1152 and height < width  # 3 panels of 3.2 in at 120 dpi
  assert (tmp_path / "results" / "fake_curves.png").stat().st_size > 10000


def test_glance_table_and_the_readme_block(tmp_path):
  summaries = _summaries_of(tmp_path, {"erm": [70.0, 71.0], "mixup": [72.5],
                                       "cutmix_sumix": [74.0]})
  cells = [s.cell for s in summaries] + [tables.Cell("remix")]
  summaries += paper_report.summarize(cells[-1:], [])
  table_json = paper_report.report_json("paper", summaries, [])
  assert paper_report.glance_table(table_json).splitlines() == [
      "| method | top-1 (ours) | n | top-1 (paper) |", "|---|---|---|---|",
      "| ERM | 70.50 ± 0.71 | 2 | 71.86 |", "| Mixup | 72.50 | 1 | 73.09 |",
      "| CutMix+SUMix | 74.00 | 1 | – |"]
  block = paper_report.readme_block(table_json)
  assert block.startswith("<!-- paper-table:start -->\n| method |")
  assert block.endswith("| – |\n<!-- paper-table:end -->")
  readme = f"# Title\n\nText.\n\n{block}\n\nMore text.\n"
  assert paper_report.find_readme_block(readme, "paper") == block
  assert paper_report.find_readme_block(readme, "cpu30") is None


def test_readme_paper_table_is_the_reports():
  """README.md's block of the paper table is what results/paper.json gives
  (``reproduce.py --table paper --readme_table`` prints it)."""
  table_json = status.read_json(str(REPO / "results" / "paper.json"))
  readme = (REPO / "README.md").read_text()
  assert paper_report.find_readme_block(readme, "paper") == (
      paper_report.readme_block(table_json)), (
          "README.md's paper table differs from results/paper.json: replace "
          "its block with the output of `python experiments/remix_paper/"
          "reproduce.py --table paper --readme_table`")


def test_cli_readme_table_prints_the_block(tmp_path):
  results_dir = tmp_path / "results"
  results_dir.mkdir()
  summaries = _summaries_of(tmp_path, {"erm": [70.0, 71.0]})
  table_json = paper_report.report_json("paper", summaries, [])
  (results_dir / "paper.json").write_text(json.dumps(table_json))
  args = [sys.executable, str(REPO / "experiments" / "remix_paper" /
                              "reproduce.py"), "--readme_table"]
  out = subprocess.run(args + ["--table", "paper", "--reference_dir",
                               str(results_dir)],
                       capture_output=True, text=True, timeout=120, check=True)
  assert out.stdout == paper_report.readme_block(table_json) + "\n"
  bad = subprocess.run(args + ["--table", "cpu30", "--reference_dir",
                               str(results_dir)],
                       capture_output=True, text=True, timeout=120)
  assert bad.returncode == 2 and not bad.stdout
  assert "--readme_table: no report at" in bad.stderr.splitlines()[-1]


def test_finished_results_survive_without_their_workdirs(tmp_path):
  """A report rewritten into the same results directory without the
  workdirs (results/ is committed, runs/ is not) keeps the finished rows."""
  cells, runs_dir = _fake_table(tmp_path)
  results_dir = str(tmp_path / "results")
  paper_report.write_report("fake", cells, runs_dir, results_dir)
  archive = tmp_path / "results" / "runs" / "fake"
  assert sorted(p.name for p in archive.iterdir()) == sorted(
      f"{c.run_name(s)}.json" for c in cells for s in c.seeds
      if c.method not in ("remix_drw",))
  before = (tmp_path / "results" / "fake.md").read_text()
  shutil.rmtree(runs_dir)
  runs = status.table_runs(cells, runs_dir, str(archive))
  assert [r.state for r in runs if r.cell.method == "erm"] == [
      status.FINISHED] * 2
  assert [r.state for r in runs if r.cell.method == "remix_drw"] == [
      status.NOT_STARTED] * 2
  paper_report.write_report("fake", cells, runs_dir, results_dir)
  after = (tmp_path / "results" / "fake.md").read_text()
  assert after == before.replace(
      "s0: in progress (checkpoint at step 200)", "s0: not started")
  # Without the archive the finished runs would count as not started.
  assert status.run_status(cells[0], 0, runs_dir).state == (
      status.NOT_STARTED)


def test_unfinished_progress_survives_without_its_workdir(tmp_path):
  """A fresh checkout shows how far an unfinished run got; once the run
  finishes, its archived progress is replaced by its results."""
  cells, runs_dir = _fake_table(tmp_path)
  results_dir = str(tmp_path / "results")
  drw = cells[3]
  workdir = tmp_path / "runs" / drw.run_name(0)
  (workdir / "progress.json").write_text(
      '{"epoch": 10, "step": 960, "top1": 45.45, "resumed_at": [480, 800]}')
  paper_report.write_report("fake", cells, runs_dir, results_dir)
  archive = tmp_path / "results" / "runs" / "fake"
  copy = archive / f"{drw.run_name(0)}.progress.json"
  assert json.loads(copy.read_text())["epoch"] == 10
  assert not (archive / f"{drw.run_name(1)}.progress.json").exists()
  md = (tmp_path / "results" / "fake.md").read_text()
  assert "s0: in progress, last evaluated epoch 10 (top-1 45.45); s1:" in md
  assert "not started (s0: resumed from checkpoints 480, 800) |" in md

  shutil.rmtree(workdir)
  run = status.run_status(drw, 0, runs_dir, str(archive))
  assert (run.state, run.archived, run.epoch, run.step) == (
      status.IN_PROGRESS, True, 10, None)
  assert run.describe() == ("in progress, last evaluated epoch 10 (top-1 "
                            "45.45); its checkpoint is not on this machine")
  paper_report.write_report("fake", cells, runs_dir, results_dir)
  assert "its checkpoint is not on this machine; s1: not started" in (
      tmp_path / "results" / "fake.md").read_text()
  assert run.resumed_at == [480, 800]  # kept in the archived copy
  assert json.loads(copy.read_text())["top1"] == 45.45  # kept, not dropped
  report = json.loads((tmp_path / "results" / "fake.json").read_text())
  assert report["cells"][3]["runs"][0]["archived"] is True
  # Without the archive it would count as not started.
  assert status.run_status(drw, 0, runs_dir).state == status.NOT_STARTED

  _finish(runs_dir, drw, 0, _metrics(77.0))
  paper_report.write_report("fake", cells, runs_dir, results_dir)
  assert not copy.exists()
  assert (archive / f"{drw.run_name(0)}.json").exists()


def test_a_bases_branch_point_is_not_listed_as_a_restart(tmp_path):
  """The base stops at the switch epoch by plan and goes on from there; only
  its other resumes are restarts."""
  cells, runs_dir = _fake_table(tmp_path)
  remix, remix_drw = cells[2], cells[3]
  with open(os.path.join(runs_dir, remix.run_name(0), "results.json")) as f:
    record = json.load(f)
  record["resumed_at"] = [480, 800, 960]
  with open(os.path.join(runs_dir, remix.run_name(0), "results.json"),
            "w") as f:
    json.dump(record, f)
  (tmp_path / "runs" / remix_drw.run_name(0) / "branch.json").write_text(
      json.dumps({"method": "remix", "base": remix.run_name(0), "step": 800,
                  "epoch": 8, "base_curve": []}))
  runs = {(r.cell.method, r.seed): r
          for r in status.table_runs(cells, runs_dir)}
  assert runs["remix", 0].branched_at == [800]
  assert runs["remix", 0].restarts == [480, 960]
  assert runs["remix", 1].branched_at == runs["remix", 1].restarts == []
  paper_report.write_report("fake", cells, runs_dir,
                            str(tmp_path / "results"))
  md = (tmp_path / "results" / "fake.md").read_text()
  assert "(s0: resumed from checkpoints 480, 960) |" in md
  assert "s0: branched from Remix at epoch 8" in md


def test_a_rows_notes_follow_its_seeds():
  def run(seed, branch=None, restarts=()):
    return types.SimpleNamespace(seed=seed, branch=branch,
                                 restarts=list(restarts))
  branch = {"method": "remix", "epoch": 160}
  notes = paper_report._run_notes(  # pylint: disable=protected-access
      [run(1, branch), run(0, branch, [19149]), run(2)])
  assert notes == ("s0: branched from Remix at epoch 160; s0: resumed from "
                   "checkpoint 19149; s1: branched from Remix at epoch 160")


def test_no_plots_before_a_run_finishes(tmp_path):
  paper_report.write_report("empty", [tables.Cell("erm")],
                         str(tmp_path / "runs"), str(tmp_path))
  assert "not started" in (tmp_path / "empty.md").read_text()
  assert not (tmp_path / "empty_per_class.png").exists()


def test_mixed_examples_grid(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8)
  labels = np.array([0, 9, 1, 8, 2, 7, 3, 6])
  path = tmp_path / "grid.png"
  plots.mixed_examples_grid(str(path), images, labels, COUNTS, NAMES,
                            num_shown=4)
  assert path.stat().st_size > 1000


def _reproduce(*args, timeout=120):
  return subprocess.run(
      [sys.executable, str(REPO / "experiments" / "remix_paper" /
                           "reproduce.py"), *map(str, args)],
      capture_output=True, text=True, timeout=timeout)


def test_cli_dry_run_lists_every_run(tmp_path):
  """Copies of finished runs, in the report's own directory or in the
  committed report, are no reason to skip a run: its workdir decides."""
  runs_dir, results_dir = tmp_path / "runs", tmp_path / "results"
  erm = tables.get_table("cpu30")[0]
  archive = results_dir / "runs" / "cpu30"
  archive.mkdir(parents=True)
  (archive / f"{erm.run_name(0)}.json").write_text(json.dumps(
      {"metrics": _metrics(58.6)}))
  out = _reproduce("--table", "cpu30", "--dry_run", "--runs_dir", runs_dir,
                   "--results_dir", results_dir)
  assert out.returncode == 0, out.stderr
  for cell in tables.get_table("cpu30"):
    assert f"{cell.run_name(0)}: not started" in out.stdout.splitlines()
  _finish(str(runs_dir / "cpu30"), erm, 0, _metrics(58.6))
  out = _reproduce("--table", "cpu30", "--dry_run", "--runs_dir", runs_dir,
                   "--results_dir", results_dir).stdout
  assert f"{erm.run_name(0)}: finished (top-1 58.60)" in out


@pytest.mark.parametrize("dataset", ["cifar10", "cifar10_jpeg"])
def test_cli_a_fresh_runs_dir_trains_every_row_of_the_paper_table(
    tmp_path, dataset):
  """The committed rows (results/) are references: an empty --runs_dir
  lists every row as not started, and names the committed rows the report
  compares with."""
  out = _reproduce("--table", "paper", "--dry_run", "--runs_dir", tmp_path,
                   "--dataset", dataset)
  assert out.returncode == 0, out.stderr
  lines = out.stdout.splitlines()
  cells = tables.get_table("paper", dataset)
  rows = [f"{c.run_name(s)}: not started" for c in cells for s in c.seeds]
  assert lines[:len(rows)] == rows
  committed = status.read_json(str(REPO / "results" / "paper.json"))
  finished = [r for c in committed["cells"] for r in c["runs"]
              if r["state"] == status.FINISHED]
  assert finished
  assert lines[len(rows):] == [
      "compared against the committed rows of results/paper.json:"] + [
          f"  {os.path.basename(r['workdir'])}: {r['status']}"
          for r in finished]
  assert not os.listdir(tmp_path)


def test_report_compares_with_the_committed_report(tmp_path):
  cells, runs_dir = _fake_table(tmp_path)
  committed = paper_report.report_json("fake", _summaries_of(
      tmp_path / "committed", {"erm": [64.92], "mixup": [63.0, 65.0]}), [])
  reference = {"path": "results/fake.json", "report": committed}
  paper_report.write_report("fake", cells, runs_dir,
                            str(tmp_path / "results"), reference)
  md = (tmp_path / "results" / "fake.md").read_text()
  names = [r["workdir"] for c in committed["cells"] for r in c["runs"]]
  assert ("Top-1 (committed): the committed report `results/fake.json`, "
          "whose finished rows are " + ", ".join(
              f"`{os.path.basename(n)}`" for n in names) + ".") in md
  assert "| Δ | top-1 (committed) | head |" in md
  assert "| ERM | 2 | 70.00 ± 0.71 | 71.86 (Table 1) | -1.86 | 64.92 (n = 1) |" in md
  assert "| Mixup | 2 | 72.00 ± 0.71 | 73.09 (Table 1) | -1.09 | 64.00 ± 1.41 (n = 2) |" in md
  assert "| Remix | 2 | 71.00 ± 0.71 | 75.36 (Table 1) | -4.36 | – |" in md
  report = json.loads((tmp_path / "results" / "fake.json").read_text())
  assert report["reference"] == {
      "path": "results/fake.json",
      "rows": [os.path.basename(n) for n in names]}


def test_the_offline_rows_resume_their_workdirs(tmp_path):
  """The config reproduce.py builds with --dataset cifar10_jpeg is the one
  that trained each committed row, and Remix s1's (whose record the trainer
  wrote), and the workdir names are theirs: those runs resume."""
  from experiments.remix_paper import runner  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import config_lib  # pylint: disable=g-import-not-at-top
  from remix_jax.trainer import run_record  # pylint: disable=g-import-not-at-top
  cells = {c.run_name(s): (c, s)
           for c in tables.get_table("paper", "cifar10_jpeg") for s in c.seeds}
  archive = REPO / "results" / "runs" / "paper"
  records = {p.name[:-len(".json")]: json.loads(p.read_text())["config"]
             for p in archive.glob("*_s[0-9].json")}
  record = REPO / "tests" / "trainer" / "data" / (
      "record_before_the_trainer_package.json")
  records["remix_cifar10_jpeg_exp100_paper_s1"] = json.loads(
      record.read_text())["config"]
  assert len(records) >= 6
  for name, stored in records.items():
    assert name in cells, f"{name} is not a run of the paper table"
    workdir = tmp_path / name
    workdir.mkdir()
    (workdir / run_record.RECORD_FILE).write_text(
        json.dumps({"history": [], "config": stored}))
    config = config_lib.validate_config(
        runner._configure(*cells[name], "/any/data_dir"))  # pylint: disable=protected-access
    assert run_record.check(str(workdir), config, has_checkpoints=True) == {}


def test_cli_a_missing_dataset_stops_in_one_line(tmp_path):
  out = _reproduce("--table", "paper", "--only", "erm", "--seeds", "0",
                   "--dataset", "cifar10_jpeg", "--data_dir", tmp_path,
                   "--runs_dir", tmp_path / "runs")
  assert out.returncode == 1 and "Traceback" not in out.stderr
  assert out.stderr.count("\n") == 1
  assert out.stderr.startswith(
      f"error: cifar10_jpeg is not prepared in {tmp_path} (from --data_dir): "
      f"expected {tmp_path}/cifar10_jpeg/<version>/dataset_info.json; point "
      "--data_dir or TFDS_DATA_DIR at the directory")
  assert "docs/datasets.md" in out.stderr
  assert not (tmp_path / "runs" / "paper").exists()


def test_cifar10_offline_says_how_to_prepare_it(tmp_path, monkeypatch, capsys):
  from experiments.remix_paper import reproduce  # pylint: disable=g-import-not-at-top
  from remix_jax.data import source  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(source, "network_available", lambda *a, **k: False)
  with pytest.raises(SystemExit) as stop:
    reproduce.prepare_data("cifar10", str(tmp_path))
  assert stop.value.code == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1
  assert err.startswith(f"error: cifar10 is not prepared in {tmp_path} "
                        "(from --data_dir) and www.cs.toronto.edu cannot be "
                        "reached to download it; prepare it on a machine "
                        "with network access")
  assert "--data_dir / TFDS_DATA_DIR (see docs/datasets.md)" in err


def test_cli_seeds_selects_runs_and_refuses_unknown_ones(tmp_path):
  script = str(REPO / "experiments" / "remix_paper" / "reproduce.py")
  args = [sys.executable, script, "--table", "paper", "--dry_run",
          "--runs_dir", str(tmp_path / "runs"), "--results_dir",
          str(tmp_path / "results"), "--only", "erm,remix"]
  out = subprocess.run(args + ["--seeds", "0,2"], capture_output=True,
                       text=True, timeout=120, check=True).stdout
  listed = [line.split(":")[0] for line in out.splitlines()
            if not line.startswith(("compared against", " "))]
  cells = {c.method: c for c in tables.get_table("paper")}
  assert listed == [cells[m].run_name(s) for m in ("erm", "remix")
                    for s in (0, 2)]
  bad = subprocess.run(args + ["--seeds", "0,7"], capture_output=True,
                       text=True, timeout=120)
  assert bad.returncode == 2 and not bad.stdout
  assert bad.stderr.splitlines()[-1].endswith(
      "--seeds: 7 not in table paper (seeds 0, 1, 2)")
  assert "Traceback" not in bad.stderr
