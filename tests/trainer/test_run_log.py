"""The metric writers of a run: ``metrics.jsonl`` without TensorFlow, and
the choice in the config."""

import json
import logging
import subprocess
import sys
import textwrap

import pytest

from configs import quickstart
from remix_jax.trainer import config_lib
from remix_jax.trainer import run_log
from tests.helpers import REPO


def test_jsonl_writer_appends_one_object_per_write(tmp_path, caplog):
  caplog.set_level(logging.INFO)
  log = run_log.RunLog(str(tmp_path), bar=False, total=10, initial=0,
                       batch_size=4, primary=True, writer="jsonl")
  log.scalars(3, {"loss": 1.5, "top1": 20})
  log.step_metrics(5, 0, [{"loss": 0.25}], first=4)
  log.close()
  with open(tmp_path / run_log.JSONL_FILE) as f:
    rows = [json.loads(line) for line in f]
  assert rows[0] == {"step": 3, "loss": 1.5, "top1": 20.0}
  assert rows[1]["step"] == 5 and rows[1]["loss"] == 0.25
  assert rows[1]["images_per_second"] > 0
  assert "[3] loss=1.5, top1=20" in caplog.text  # no bar: logged as well


def test_jsonl_writer_of_other_processes_writes_no_file(tmp_path):
  log = run_log.RunLog(str(tmp_path), bar=False, total=10, initial=0,
                       batch_size=4, primary=False, writer="jsonl")
  log.scalars(1, {"loss": 1.0})
  log.close()
  assert not (tmp_path / run_log.JSONL_FILE).exists()


def test_metric_writer_choice_is_checked():
  config = quickstart.get_config()
  config.metric_writer = "csv"
  with pytest.raises(ValueError, match=r"^config.metric_writer='csv' is not "
                     r"valid; choose one of tensorboard, jsonl$"):
    config_lib.validate_config(config)


def test_jsonl_run_log_imports_no_tensorflow(tmp_path):
  code = textwrap.dedent(f"""\
      import sys
      from remix_jax.trainer import run_log
      log = run_log.RunLog({str(tmp_path)!r}, bar=True, total=2, initial=0,
                           batch_size=1, primary=True, writer="jsonl")
      log.scalars(1, {{"loss": 1.0}})
      log.close()
      print([m for m in sys.modules if m.split(".")[0] in
             ("tensorflow", "clu")])
      """)
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO,
                       capture_output=True, text=True, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.strip().splitlines()[-1] == "[]"
