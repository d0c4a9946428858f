"""benchmarks/device_check.sh: its import guard, its summary, and the whole
check on the CPU (``--dry_run``)."""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import device_check  # noqa: E402  pylint: disable=wrong-import-position

GUARD = REPO / "benchmarks" / "device_guard"


def _guarded(tmp_path, code: str, allowed=("numpy",)):
  (tmp_path / "allowed.txt").write_text("\n".join(allowed) + "\n")
  log = tmp_path / "refused.txt"
  env = dict(os.environ, REMIX_DEVICE_GUARD_ALLOWED=str(
      tmp_path / "allowed.txt"), REMIX_DEVICE_GUARD_LOG=str(log),
             PYTHONPATH=os.pathsep.join([str(GUARD), str(REPO)]))
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                       capture_output=True, text=True, check=False)
  assert out.returncode == 0, out.stderr[-3000:]
  return out.stdout.split(), log.read_text().split("\n")


def test_guard_refuses_what_the_machine_lacks(tmp_path):
  code = textwrap.dedent("""\
      import importlib.util, json, sysconfig, numpy   # allowed
      sysconfig.get_paths()              # its private _sysconfigdata module
      from configs import args           # the repository's own
      # Asking whether it exists answers as there, and is no refusal.
      assert importlib.util.find_spec("tensorflow") is None
      assert importlib.util.find_spec("json") is not None
      for name in ("tensorflow", "clu"):
        try:
          __import__(name)
        except ModuleNotFoundError as err:
          print("refused", err.name)
      """)
  printed, log = _guarded(tmp_path, code)
  assert printed == ["refused", "tensorflow", "refused", "clu"]
  assert log == ["tensorflow __main__", "clu __main__", ""]


def test_guard_is_off_without_its_variables():
  env = {k: v for k, v in os.environ.items()
         if not k.startswith("REMIX_DEVICE_GUARD")}
  env["PYTHONPATH"] = str(GUARD)
  out = subprocess.run([sys.executable, "-c", "import tensorflow"],
                       env=env, capture_output=True, text=True, check=False)
  assert out.returncode == 0, out.stderr[-3000:]


def test_allowed_modules_are_the_machines_and_the_wheels():
  allowed = set(device_check.allowed_modules())
  expected = {"jax", "flax", "optax", "orbax", "torch", "sklearn", "absl",
              "yaml", "pytest", "ml_collections"}
  if importlib.util.find_spec("torch") is None:  # the `bench` extra
    expected.remove("torch")
  assert expected <= allowed
  assert not {"tensorflow", "tensorflow_datasets", "clu"} & allowed


def test_junit_counts(tmp_path):
  path = tmp_path / "junit.xml"
  path.write_text(textwrap.dedent("""\
      <testsuites><testsuite>
        <testcase classname="tests.a" name="test_ok"/>
        <testcase classname="tests.a" name="test_bad">
          <failure message="assert 1 == 2&#10;more">trace</failure></testcase>
        <testcase classname="tests.b" name="test_skip">
          <skipped message="needs 4 devices"/></testcase>
      </testsuite></testsuites>"""))
  counts = device_check.junit_counts(str(path))
  assert (counts["passed"], counts["failed"], counts["skipped"]) == (1, 1, 1)
  assert counts["failures"] == ["tests.a::test_bad: ['assert 1 == 2']"]


def _entry(ms, ratios=None):
  return {"ms": {"median": ms}, **(ratios or {})}


def test_summary_holds_the_ratios_and_the_idle_share():
  result = {
      "methods": [{"method": "erm", "step_ms": 5.0},
                  {"method": "cutmix_sumix", "step_ms": 9.0}],
      "head_to_head": {
          "xla": {"step": _entry(5.0, {
              "ratio_to_torch": {"median": 1.5},
              "ratio_to_torch_compile": {"median": 0.8}}),
                  "forward": _entry(2.0, {"ratio_to_torch": {"median": 2.0}})},
          "torch": {"step": _entry(7.5), "forward": _entry(4.0)}}}
  idle = {"device_ms_per_step": 4.0, "loop_ms_per_step": {"median": 10.0},
          "device_idle_fraction": 0.6, "pipeline_images_per_s": 1e4}
  summary = device_check.summarize({
      "train_step_bfloat16": {"status": "ok", "result": result},
      "train_step_float32": {"status": "timeout"},
      "loop_idle": {"status": "ok", "result": idle}})
  row = summary["bfloat16"]
  assert row["methods_ms"] == {"erm": 5.0, "cutmix_sumix": 9.0}
  assert row["xla_step_ratio_to_torch"] == 1.5
  assert row["xla_step_ratio_to_torch_compile"] == 0.8
  assert row["torch_forward_ms"] == 4.0
  assert "float32" not in summary
  assert summary["loop_idle"]["device_idle_fraction"] == 0.6


@pytest.mark.slow
def test_dry_run_passes_and_writes_the_report(tmp_path):
  out = tmp_path / "out"
  env = dict(os.environ, PYTHON=sys.executable)
  done = subprocess.run(
      ["bash", str(REPO / "benchmarks" / "device_check.sh"), "--out",
       str(out), "--dry_run"],
      cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
  log = (out / "device_check.log").read_text()
  assert done.returncode == 0, log[-5000:]
  report = json.loads((out / "device_check.json").read_text())
  assert report["dry_run"]
  assert {n: c["status"] for n, c in report["cases"].items()} == {
      n: "ok" for n in ("wheels", "environment", "trainer", "loop_idle",
                        "train_step_float32", "train_step_bfloat16",
                        "tests")}
  assert report["refused_imports"] == []
  cases = report["cases"]
  assert cases["environment"]["result"]["jax_platform"] == "cpu"
  assert 0 <= cases["trainer"]["result"]["top1"] <= 100
  assert cases["tests"]["result"]["failed"] == 0
  assert cases["tests"]["result"]["passed"] > 0
  summary = report["summary"]
  for dtype in ("float32", "bfloat16"):
    assert summary[dtype]["xla_step_ratio_to_torch"] > 0
    assert summary[dtype]["xla_forward_ratio_to_torch_compile"] > 0
  assert summary["loop_idle"]["device_ms_per_step"] > 0
