"""A trained run back as a model (``remix_jax.trainer.load``)."""

import re

import numpy as np
import pytest
from flax import nnx

from remix_jax.trainer import load
from remix_jax.trainer import run_record
from remix_jax.trainer import train
from tests.trainer import test_workdir as tw


def test_a_finished_run_loads_and_reproduces_its_recorded_top1(tmp_path,
                                                               caplog):
  with caplog.at_level("INFO"):
    result = train.train_and_evaluate(tw.tiny_config(), str(tmp_path))
  # The run's last line: its wall time and where its outputs are.
  assert re.search(rf"done in \d+ (s|min).*; results in {tmp_path}/ "
                   r"\(results.json, results.md, per_class.png\)",
                   caplog.text), caplog.text
  model, info = load.load_run(str(tmp_path))
  assert isinstance(model, nnx.Module)
  assert info["step"] == result["step"] == 16
  assert info["metrics"]["top1"] == result["top1"]
  assert list(info["class_names"]) == [str(d) for d in range(10)]
  logits = model(np.zeros((2, 8, 8, 1), np.float32)).logits
  assert logits.shape == (2, 10)
  again = load.evaluate_run(str(tmp_path))
  assert again["top1"] == result["top1"]
  assert again["per_class"] == result["per_class"]


def test_main_eval_only_prints_the_test_metrics(tmp_path):
  result = train.train_and_evaluate(tw.tiny_config(), str(tmp_path))
  done = tw._main(f"--workdir={tmp_path}", "--eval_only")  # pylint: disable=protected-access
  assert done.returncode == 0, done.stderr
  assert f"top-1 {result['top1']:.2f}" in done.stdout + done.stderr


def test_a_directory_without_a_record_is_not_a_run(tmp_path):
  with pytest.raises(run_record.ConfigChangedError, match="no run record"):
    load.load_run(str(tmp_path))
