"""A finished workdir answers with its recorded result without reading data
or compiling; anything short of a verified finish takes the full path."""

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest

from remix_jax import data
from remix_jax.trainer import build
from remix_jax.trainer import run_record
from remix_jax.trainer import train
from tests.trainer import test_workdir as tw

# main.py in a process where reading data and building (compiling) the steps
# fail, so that only an answer from the records can succeed.
_NO_DATA_NO_STEPS = """\
import runpy, sys
import remix_jax.data
from remix_jax.trainer import build
def forbidden(*args, **kwargs):
  raise SystemExit("data or steps were built")
remix_jax.data.create_train_data = remix_jax.data.create_eval_data = forbidden
build.build = forbidden
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _forbid_data_and_steps(monkeypatch):
  def forbidden(*args, **kwargs):
    raise AssertionError("data or steps were built")
  monkeypatch.setattr(data, "create_train_data", forbidden)
  monkeypatch.setattr(data, "create_eval_data", forbidden)
  monkeypatch.setattr(build, "build", forbidden)


def _config(**overrides):
  return tw.tiny_config(num_epochs=2, **overrides)


@pytest.fixture(name="trained", scope="module")
def _trained(tmp_path_factory):
  """A finished tiny run of 2 epochs: ``(workdir, its result)``."""
  workdir = tmp_path_factory.mktemp("finished") / "w"
  return workdir, train.train_and_evaluate(_config(), str(workdir))


@pytest.fixture(name="finished")
def _finished(trained, tmp_path):
  """A copy of the finished run for one test: ``(workdir, its result)``."""
  workdir = tmp_path / "w"
  shutil.copytree(trained[0], workdir)
  return workdir, trained[1]


def test_a_finished_run_answers_from_its_records(finished, monkeypatch,
                                                 caplog):
  workdir, result = finished
  _forbid_data_and_steps(monkeypatch)
  with caplog.at_level(logging.INFO):
    again = train.train_and_evaluate(_config(), str(workdir))
  assert again == result
  assert (f"already finished: top-1 {result['top1']:.2f} % at step 32; "
          f"results in {workdir}/ (results.json, results.md, per_class.png)"
          ) in caplog.text
  # A free field (where the data lives, the logging) is no change.
  again = train.train_and_evaluate(
      _config(**{"data.data_dir": "/elsewhere", "log_every_steps": 3}),
      str(workdir))
  assert again["top1"] == result["top1"]
  # A changed config is still refused, before anything is built.
  with pytest.raises(run_record.ConfigChangedError, match="mix_alpha"):
    train.train_and_evaluate(_config(mix_alpha=0.5), str(workdir))


def test_main_answers_from_the_records_of_a_finished_run(finished):
  workdir, result = finished
  done = subprocess.run(
      [sys.executable, "-c", _NO_DATA_NO_STEPS, tw.MAIN,
       f"--workdir={workdir}", *tw._TINY_FLAGS, "--config.num_epochs=2"],  # pylint: disable=protected-access
      cwd=tw.REPO, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr
  assert done.stderr.splitlines()[-1] == (
      f"already finished: top-1 {result['top1']:.2f} % at step 32; results "
      f"in {workdir}/ (results.json, results.md, per_class.png); use a new "
      "--workdir to train again")
  refused = subprocess.run(
      [sys.executable, "-c", _NO_DATA_NO_STEPS, tw.MAIN,
       f"--workdir={workdir}", *tw._TINY_FLAGS, "--config.num_epochs=2",  # pylint: disable=protected-access
       "--config.seed=3"],
      cwd=tw.REPO, capture_output=True, text=True, timeout=300)
  assert refused.returncode == 1
  assert refused.stderr.splitlines()[-1].startswith(
      f"error: workdir {workdir} was trained with another config: seed 0 -> 3")


def _damage_manifest(workdir, step):
  path = workdir / "checkpoint_manifests" / f"{step}.json"
  manifest = json.loads(path.read_text())
  key = sorted(manifest["arrays"])[0]
  manifest["arrays"][key][2] = "0" * 64
  path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("damage", ["checksum", "truncated", "no_results",
                                    "newer_checkpoint", "other_results"])
def test_anything_short_of_a_verified_finish_takes_the_full_path(
    finished, monkeypatch, damage):
  """Only the full path reads data; with it forbidden, the re-run fails."""
  workdir = finished[0]
  if damage == "checksum":
    _damage_manifest(workdir, 32)
  elif damage == "truncated":
    tw._truncate_largest_data_file(workdir / "checkpoints" / "32")  # pylint: disable=protected-access
  elif damage == "no_results":
    os.remove(workdir / "results.json")
  elif damage == "newer_checkpoint":
    results = json.loads((workdir / "results.json").read_text())
    results["metrics"]["step"] = 16
    (workdir / "results.json").write_text(json.dumps(results))
  else:  # results of another config in the workdir
    results = json.loads((workdir / "results.json").read_text())
    results["config"]["mix_alpha"] = 0.5
    (workdir / "results.json").write_text(json.dumps(results))
  _forbid_data_and_steps(monkeypatch)
  with pytest.raises(AssertionError, match="data or steps were built"):
    train.train_and_evaluate(_config(), str(workdir))
  assert not (workdir / "checkpoints" / "corrupt").exists()  # nothing moved
