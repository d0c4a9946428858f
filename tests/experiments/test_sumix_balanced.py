"""experiments/sumix/balanced.py: config, TensorBoard series, diagnostics,
tables, and (slow) the whole command on tiny digits."""

import json
import subprocess
import sys

import numpy as np
import pytest

from experiments.sumix import balanced as balanced_module
from remix_jax.trainer import config_lib
from tests.helpers import REPO

SCRIPT = REPO / "experiments" / "sumix" / "balanced.py"


@pytest.fixture(scope="module")
def balanced():
  return balanced_module


def test_rows_share_one_balanced_schedule(balanced):
  configs = [balanced.config_for(m, epochs=15, data_dir="/data")
             for _, m in balanced.ROWS]
  for c in configs:
    config_lib.validate_config(c)
    assert (c.data.name, c.data.rho, c.model, c.num_epochs, c.schedule,
            c.batch_size, c.mixer, c.mix_alpha) == (
                "cifar10_jpeg", 1.0, "resnet32", 15, "cosine", 128, "cutmix",
                1.0)
    assert c.log_every_steps == 1
  assert [(c.sumix.enabled, c.sumix.rule) for c in configs] == [
      (False, "official"), (True, "official"), (True, "follow")]
  # Apart from the method's own fields the recipes are identical.
  strip = lambda c: {k: v for k, v in c.to_dict().items()
                     if k not in ("method", "sumix")}
  assert strip(configs[0]) == strip(configs[1]) == strip(configs[2])


def test_read_series_orders_steps_and_keeps_the_last_value(balanced,
                                                           tmp_path):
  from clu import metric_writers
  writer = metric_writers.SummaryWriter(str(tmp_path))
  for step in (1, 2, 3):
    writer.write_scalars(step, {"mix_ratio": 0.1 * step, "loss": 1.0})
  writer.write_scalars(2, {"mix_ratio": 0.9})  # re-logged after a resume
  writer.flush()
  series = balanced.read_series(str(tmp_path))
  np.testing.assert_allclose(series["mix_ratio"], [0.1, 0.9, 0.3], rtol=1e-6)
  assert "sumix_ratio" not in series


def test_diagnostics_and_markdown(balanced):
  lam = np.array([0.1, 0.3, 0.7, 0.9] * 2)
  series = {"mix_ratio": lam, "sumix_ratio": lam, "label_weight": lam,
            "sumix_label_flip": np.array([0.0] * 6 + [0.5, 0.5])}
  d = balanced.diagnostics(series)
  assert d["steps"] == 8 and d["flip_rate"] == pytest.approx(0.125)
  assert d["flip_rate_last_quarter"] == pytest.approx(0.5)
  assert d["corr_lambda_ratio"] == pytest.approx(1.0)
  assert [b["batches"] for b in d["lambda_bins"]] == [2, 2, 2, 2]
  assert balanced.diagnostics({"mix_ratio": lam}) is None
  rows = [{"label": "CutMix", "top1": 50.0, "top5": 90.0, "wall_minutes": 1.0,
           "diagnostics": None},
          {"label": "CutMix+SUMix (follow)", "top1": 51.5, "top5": 91.0,
           "wall_minutes": 2.0, "diagnostics": d}]
  md = balanced.markdown(rows, "setting")
  assert "| CutMix | 50.00 | 90.00 | – | – | – | 1.0 |" in md
  assert "| CutMix+SUMix (follow) | 51.50 | 91.00 | 0.125 | 0.500 | +1.00 |" in md
  assert "| 0.2–0.4 | 2 | 0.300 | 0.300 | 0.000 |" in md


def _row(method, top1):
  return {"label": method, "method": method, "top1": top1, "top5": 90.0,
          "wall_minutes": 1.0, "diagnostics": None}


def test_rows_merge_in_table_order_and_the_newer_row_wins(balanced):
  kept = [_row("cutmix_sumix_follow", 1.0), _row("cutmix", 2.0)]
  merged = balanced.merge_rows(kept, [_row("mixup", 3.0),
                                      _row("cutmix", 4.0)])
  assert [(r["method"], r["top1"]) for r in merged] == [
      ("cutmix", 4.0), ("cutmix_sumix_follow", 1.0), ("mixup", 3.0)]


def test_write_table_keeps_rows_of_the_same_setting_only(balanced, tmp_path):
  out = str(tmp_path / "res" / "table")
  balanced.write_table(out, "setting A", [_row("cutmix_sumix", 1.0)])
  balanced.write_table(out, "setting A", [_row("cutmix", 2.0)])
  saved = json.loads((tmp_path / "res" / "table.json").read_text())
  assert saved["setting"] == "setting A"
  assert [r["method"] for r in saved["rows"]] == ["cutmix", "cutmix_sumix"]
  assert "| cutmix_sumix | 1.00 |" in (tmp_path / "res" / "table.md"
                                       ).read_text()
  balanced.write_table(out, "setting B", [_row("cutmix", 3.0)])
  assert balanced.finished_rows(out, "setting A") == []
  assert [r["top1"] for r in balanced.finished_rows(out, "setting B")] == [3.0]
  assert sorted(p.name for p in (tmp_path / "res").iterdir()) == [
      "table.json", "table.md"]  # no temporary file left


def test_rows_already_in_the_table_are_not_retrained(balanced, tmp_path,
                                                     monkeypatch):
  from remix_jax.trainer import train
  trained = []

  def fake_train(config, workdir):
    landed = {r["method"] for r in balanced.finished_rows(args.out, header)}
    assert set(trained) <= landed  # each earlier row is written as it ends
    trained.append(config.method)
    return {"top1": 60.0, "top5": 95.0, "per_class": [0.6] * 10}

  monkeypatch.setattr(train, "train_and_evaluate", fake_train)
  monkeypatch.setattr(balanced, "read_series", lambda workdir: {})
  args = balanced.argparse.Namespace(
      epochs=2, data_dir="/data", workdir=str(tmp_path / "runs"),
      out=str(tmp_path / "table"), temperature=0.5,
      rows="cutmix,cutmix_sumix,cutmix_sumix_follow", dataset="cifar10_jpeg",
      model="resnet32", batch_size=128)
  header = balanced.setting(args)
  balanced.write_table(args.out, header, [_row("cutmix", 50.0)])
  rows, _ = balanced.run(args)
  assert trained == ["cutmix_sumix", "cutmix_sumix_follow"]
  assert [r["method"] for r in rows] == trained
  table = balanced.finished_rows(args.out, header)
  assert [(r["method"], r["top1"]) for r in table] == [
      ("cutmix", 50.0), ("cutmix_sumix", 60.0), ("cutmix_sumix_follow", 60.0)]


def test_unknown_row_is_refused_in_one_line():
  out = subprocess.run([sys.executable, str(SCRIPT), "--rows", "cutmix,gridmix"],
                       capture_output=True, text=True, timeout=120)
  assert out.returncode != 0
  assert out.stderr.strip().splitlines()[-1].startswith(
      "--rows: unknown method(s) gridmix; choose from cutmix")


@pytest.mark.slow
def test_the_command_on_tiny_digits(tmp_path):
  """The whole command, 1 epoch of digits per row: both files written, with
  diagnostics for the two SUMix rows only."""
  out = tmp_path / "res" / "sumix_balanced"
  proc = subprocess.run(
      [sys.executable, str(SCRIPT), "--dataset", "sklearn_digits", "--model",
       "tiny_resnet", "--batch_size", "64", "--epochs", "1", "--workdir",
       str(tmp_path / "runs"), "--out", str(out)],
      capture_output=True, text=True, timeout=900, cwd=tmp_path)
  assert proc.returncode == 0, proc.stderr[-3000:]
  saved = json.loads(out.with_suffix(".json").read_text())
  rows = saved["rows"]
  assert [r["method"] for r in rows] == ["cutmix", "cutmix_sumix",
                                         "cutmix_sumix_follow"]
  assert rows[0]["diagnostics"] is None
  steps = rows[1]["diagnostics"]["steps"]
  assert steps > 5 and rows[2]["diagnostics"]["steps"] == steps
  for r in rows:
    assert 0.0 <= r["top1"] <= 100.0 and len(r["per_class"]) == 10
  for r in rows[1:]:
    bins = r["diagnostics"]["lambda_bins"]
    assert sum(b["batches"] for b in bins) == steps
    assert all(0.0 <= b["mean_ratio"] <= 1.0 for b in bins)
  assert rows[2]["temperature"] == 0.5 and rows[1]["temperature"] is None
  md = out.with_suffix(".md").read_text()
  assert md.count("mean λ̃ per batch-λ bin") == 2
  assert "| CutMix+SUMix (follow) |" in md
