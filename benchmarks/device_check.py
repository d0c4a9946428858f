"""The device check: one command that runs on a bare GPU machine in under
eight minutes and leaves its figures in one JSON file.

    bash benchmarks/device_check.sh --out DIR [--budget_s 460]
    bash benchmarks/device_check.sh --out DIR --dry_run   # CPU, tiny sizes

Each case runs in a child process of its own, with what is left of the
budget as its time limit, and ``DIR/device_check.json`` is rewritten after
every case (a run cut short keeps what finished); ``DIR/device_check.log``
holds one line per case and the last lines of its output. The cases, in
order:

1. ``wheels``: the wheels in ``.whl/`` (``benchmarks/device_wheels.sh``
   fetches them where pip works) installed with ``--no-index`` into a
   temporary folder put first on ``PYTHONPATH``;
2. ``environment``: the device, Python and the package versions;
3. ``trainer``: ``main.py`` end to end on ``digits_numpy`` (no TensorFlow)
   with the ``jsonl`` metric writer: ResNet-32, batch 128, 20 epochs;
4. ``loop_idle``: ``benchmarks/loop_idle.py`` on that run, the train step's
   device time against the loop's wall time per step, and the input
   pipeline's images/s;
5. ``train_step_float32``, ``train_step_bfloat16``:
   ``benchmarks/train_step.py``, ResNet-32 at batch 128, ERM and CutMix +
   SUMix, train step and eval forward beside PyTorch on the same device,
   eager and ``torch.compile``, in interleaved rounds;
6. ``tests``: :data:`TESTS` (no dataset needed), without xdist.

JAX runs with ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` beside PyTorch, and
``JAX_PLATFORMS=cuda`` unless set (``cpu`` in the dry run). ``--dry_run``
runs every case on the CPU at tiny sizes (and ``torch.compile`` with the
``aot_eager`` backend, which traces without generating code), under the
import guard of ``benchmarks/device_guard``: a module that the GPU machine
lacks (``benchmarks/device_packages.txt``) and the wheels do not bring
(``benchmarks/device_wheels.txt``) is refused there as it would be on that
machine, and listed under ``refused_imports``.

This process itself imports neither JAX nor PyTorch.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.join(REPO, "benchmarks")

#: The tests run on the device: the library's mixers, label rules, losses
#: and convolutions, and the trainer's step (Remix, SUMix), none of which
#: needs a dataset (those that need 4 devices skip on one GPU).
TESTS = ("tests/library/test_class_balance.py", "tests/library/test_remix.py",
         "tests/library/test_losses.py", "tests/library/test_mixers.py",
         "tests/library/test_manifold.py", "tests/library/test_conv.py",
         "tests/library/test_sumix.py", "tests/library/test_sumix_rule.py")
#: The dry run's tests: the same mechanism, fewer files.
DRY_TESTS = ("tests/library/test_class_balance.py",
             "tests/library/test_remix.py")

#: Per case: (the most seconds it may take on the GPU, full size, dry-run
#: size). The dry run's cases may take :data:`DRY_SLOWER` times as long: a
#: CPU compiles and runs them slower than the GPU machine's 16 cores.
SIZES = {
    "trainer": (150, dict(model="resnet32", batch=128, rho=1.0, epochs=20,
                          log_every=10),
                dict(model="tiny_resnet", batch=32, rho=10.0, epochs=2,
                     log_every=4)),
    "loop_idle": (90, dict(iters=50, epochs=3), dict(iters=5, epochs=1)),
    "train_step": (170, dict(model="resnet32", batch=128, iters=30, rounds=3,
                             mixers="erm,cutmix_sumix",
                             compile="inductor"),
                   dict(model="tiny_resnet", batch=8, iters=4, rounds=2,
                        mixers="erm", compile="aot_eager")),
}


DRY_SLOWER = 4
#: ``--budget_s`` unless given: under eight minutes on the GPU, with room for
#: the machine's start; the dry run's, on a 2-core CPU.
BUDGET_S = 460
DRY_BUDGET_S = 1800


def normalized(dist: str) -> str:
  """A distribution's name as PEP 503 compares names."""
  return re.sub(r"[-_.]+", "-", dist).lower()


def read_list(path: str) -> list[str]:
  """The lines of ``path`` that are neither blank nor comments."""
  with open(path, encoding="utf-8") as f:
    return [line.strip() for line in f
            if line.strip() and not line.lstrip().startswith("#")]


def allowed_modules() -> list[str]:
  """The top-level modules, installed here, of the GPU machine's packages
  and of the wheels (what the guard lets the project import)."""
  import importlib.metadata  # pylint: disable=g-import-not-at-top
  dists = {normalized(d) for d in read_list(
      os.path.join(HERE, "device_packages.txt"))}
  dists |= {normalized(w.split("==")[0]) for w in read_list(
      os.path.join(HERE, "device_wheels.txt"))}
  return sorted(top for top, owners in
                importlib.metadata.packages_distributions().items()
                if any(normalized(d) in dists for d in owners))


class Check:
  """The cases' shared state: where things go, the environment of the
  children, the budget and the report (written after every case)."""

  def __init__(self, args):
    self.args, self.dry = args, args.dry_run
    self.out = os.path.abspath(args.out)
    os.makedirs(self.out, exist_ok=True)
    self.tmp = tempfile.mkdtemp(prefix="device_check_")
    self.json_path = os.path.join(self.out, "device_check.json")
    self.log_path = os.path.join(self.out, "device_check.log")
    if args.budget_s is None:
      args.budget_s = DRY_BUDGET_S if self.dry else BUDGET_S
    self.deadline = time.monotonic() + args.budget_s
    self.report = {
        "check": "device_check", "dry_run": self.dry,
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "budget_s": args.budget_s, "command": " ".join(sys.argv),
        "cases": {}, "summary": {}}
    self.env = self._environment()
    open(self.log_path, "w", encoding="utf-8").close()

  def _environment(self) -> dict:
    env = dict(os.environ)
    env.update(XLA_PYTHON_CLIENT_PREALLOCATE="false", PYTHONUNBUFFERED="1",
               TF_CPP_MIN_LOG_LEVEL="2",
               JAX_COMPILATION_CACHE_DIR=os.path.join(self.tmp, "jax_cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    env["JAX_PLATFORMS"] = "cpu" if self.dry else env.get(
        "JAX_PLATFORMS", "cuda")
    paths = [REPO, env.get("PYTHONPATH", "")]
    if self.dry:
      allowed = os.path.join(self.tmp, "allowed.txt")
      with open(allowed, "w", encoding="utf-8") as f:
        f.write("\n".join(allowed_modules()) + "\n")
      self.guard_log = os.path.join(self.tmp, "refused.txt")
      open(self.guard_log, "w", encoding="utf-8").close()
      env.update(REMIX_DEVICE_GUARD_ALLOWED=allowed,
                 REMIX_DEVICE_GUARD_LOG=self.guard_log)
      paths.insert(0, os.path.join(HERE, "device_guard"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env

  def left(self) -> float:
    return self.deadline - time.monotonic()

  def log(self, text: str) -> None:
    with open(self.log_path, "a", encoding="utf-8") as f:
      f.write(text.rstrip("\n") + "\n")
    print(text, flush=True)

  def write(self) -> None:
    """The report as it stands, replaced whole."""
    if self.dry:
      with open(self.guard_log, encoding="utf-8") as f:
        self.report["refused_imports"] = sorted(set(f.read().split("\n"))
                                                - {""})
    self.report["summary"] = summarize(self.report["cases"])
    tmp = self.json_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(self.report, f, indent=2)
      f.write("\n")
    os.replace(tmp, self.json_path)

  def run(self, name: str, command: list, limit: float, parse=None) -> dict:
    """Runs one case's ``command`` (at most ``limit`` s and what is left of
    the budget), records it with ``parse()``'s result, and rewrites the
    report."""
    timeout = min(limit * (DRY_SLOWER if self.dry else 1), self.left())
    case = {"command": " ".join(command)}
    if timeout < 10:
      case.update(status="skipped", why="the budget is spent")
    else:
      case.update(self._execute(command, timeout))
      if parse is not None and case["status"] == "ok":
        try:
          case["result"] = parse()
        except (OSError, ValueError, KeyError) as err:
          case.update(status="failed", why=f"no result: {err}")
    self.report["cases"][name] = case
    self.log(f"== {name}: {case['status']} ({case.get('seconds', 0):.0f} s)"
             + (f": {case['why']}" if "why" in case else ""))
    for line in case.get("tail", []):
      self.log(f"   {line}")
    self.write()
    return case

  def _execute(self, command: list, timeout: float) -> dict:
    start = time.monotonic()
    try:
      proc = subprocess.run(command, cwd=REPO, env=self.env, timeout=timeout,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, check=False)
      output, status = proc.stdout, "ok" if proc.returncode == 0 else "failed"
      extra = {"rc": proc.returncode}
    except subprocess.TimeoutExpired as err:
      output = err.stdout if isinstance(err.stdout, str) else (
          (err.stdout or b"").decode(errors="replace"))
      status, extra = "timeout", {"why": f"stopped after {timeout:.0f} s"}
    lines = output.rstrip().splitlines()
    return {"status": status, "seconds": time.monotonic() - start, **extra,
            "tail": lines[-(12 if status == "ok" else 40):]}


def read_json(path: str) -> dict:
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def _python(check: Check) -> list:
  return [check.args.python]


def case_wheels(check: Check) -> None:
  """Installs the wheels of ``--wheels`` (none: recorded as such)."""
  wheels = sorted(glob.glob(os.path.join(check.args.wheels, "*.whl")))
  if not wheels:
    check.report["cases"]["wheels"] = {"status": "ok", "wheels": [],
                                       "why": "no wheels to install"}
    check.log(f"== wheels: none in {check.args.wheels}")
    check.write()
    return
  site = os.path.join(check.tmp, "site")
  case = check.run("wheels", _python(check) + [
      "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
      "--no-cache-dir", "--upgrade", "--target", site, *wheels], 60)
  case["wheels"] = [os.path.basename(w) for w in wheels]
  if case["status"] == "ok":
    check.env["PYTHONPATH"] = os.pathsep.join(
        [site, check.env["PYTHONPATH"]])
  check.write()


_ENVIRONMENT = r"""
import importlib.metadata as md, json, os, platform, subprocess, sys
import jax
out = {"python": sys.version.split()[0], "machine": platform.machine(),
       "cpu_count": os.cpu_count(), "jax_platform": jax.default_backend(),
       "jax_devices": [d.device_kind for d in jax.devices()], "versions": {}}
for dist in ("jax", "jaxlib", "jax-cuda13-plugin", "flax", "optax",
             "orbax-checkpoint", "numpy", "torch", "triton", "scikit-learn",
             "ml-collections", "absl-py", "tensorboard"):
  try:
    out["versions"][dist] = md.version(dist)
  except md.PackageNotFoundError:
    out["versions"][dist] = None
import torch
out["torch_cuda"] = torch.cuda.is_available()
if torch.cuda.is_available():
  out["torch_device"] = torch.cuda.get_device_name(0)
try:
  out["nvidia_smi"] = subprocess.run(
      ["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
       "--format=csv,noheader"], capture_output=True, text=True,
      timeout=20).stdout.strip()
except (OSError, subprocess.SubprocessError):
  out["nvidia_smi"] = None
with open(sys.argv[1], "w") as f:
  json.dump(out, f)
"""


def case_environment(check: Check) -> None:
  path = os.path.join(check.tmp, "environment.json")
  check.run("environment", _python(check) + ["-c", _ENVIRONMENT, path], 90,
            parse=lambda: read_json(path))


def case_trainer(check: Check) -> str:
  """``main.py`` on ``digits_numpy``; returns the workdir."""
  limit, full, dry = SIZES["trainer"]
  s = dry if check.dry else full
  workdir = os.path.join(check.tmp, "run")
  overrides = dict(model=s["model"], batch_size=s["batch"],
                   eval_batch_size=500, num_epochs=s["epochs"],
                   eval_every_epochs=s["epochs"],
                   checkpoint_every_epochs=s["epochs"],
                   log_every_steps=s["log_every"], progress_bar=False,
                   metric_writer="jsonl", method="erm", warmup_epochs=0.0)
  overrides.update({"data.name": "digits_numpy", "data.rho": s["rho"]})
  command = _python(check) + [
      "main.py", "--workdir", workdir, "--config", "configs/quickstart.py",
      *(f"--config.{k}={v}" for k, v in overrides.items())]

  def parse():
    result = read_json(os.path.join(workdir, "results.json"))["metrics"]
    return {k: result.get(k) for k in ("top1", "top5", "head", "mid", "tail",
                                       "step", "num_examples")}

  check.run("trainer", command, limit, parse)
  return workdir


def case_loop_idle(check: Check, workdir: str) -> None:
  limit, full, dry = SIZES["loop_idle"]
  s = dry if check.dry else full
  path = os.path.join(check.tmp, "loop_idle.json")
  check.run("loop_idle", _python(check) + [
      os.path.join(HERE, "loop_idle.py"), "--workdir", workdir, "--iters",
      str(s["iters"]), "--epochs", str(s["epochs"]), "--json", path], limit,
            parse=lambda: read_json(path))


def case_train_step(check: Check, dtype: str) -> None:
  limit, full, dry = SIZES["train_step"]
  s = dry if check.dry else full
  path = os.path.join(check.tmp, f"train_step_{dtype}.json")
  check.run(f"train_step_{dtype}", _python(check) + [
      os.path.join(HERE, "train_step.py"), "--model", s["model"], "--batch",
      str(s["batch"]), "--iters", str(s["iters"]), "--rounds",
      str(s["rounds"]), "--mixers", s["mixers"], "--conv_impls", "xla",
      "--dtype", dtype, "--torch_device", "cpu" if check.dry else "cuda",
      "--torch_compile", s["compile"], "--json", path], limit,
            parse=lambda: read_json(path))


def junit_counts(path: str) -> dict:
  """Passed, failed, skipped and the failures' names from pytest's
  ``--junitxml`` file."""
  root = ElementTree.parse(path).getroot()
  counts = {"passed": 0, "failed": 0, "skipped": 0, "failures": []}
  for case in root.iter("testcase"):
    name = f"{case.get('classname')}::{case.get('name')}"
    if case.find("failure") is not None or case.find("error") is not None:
      counts["failed"] += 1
      bad = case.find("failure") if case.find(
          "failure") is not None else case.find("error")
      counts["failures"].append(
          f"{name}: {(bad.get('message') or '').splitlines()[:1]}")
    elif case.find("skipped") is not None:
      counts["skipped"] += 1
    else:
      counts["passed"] += 1
  return counts


def case_tests(check: Check) -> None:
  path = os.path.join(check.tmp, "junit.xml")
  files = DRY_TESTS if check.dry else TESTS
  check.run("tests", _python(check) + [
      "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", "-q",
      "-o", "addopts=", "-m", "not slow", f"--junitxml={path}", *files],
            check.left(), parse=lambda: junit_counts(path))


def _erm(report: dict, contender: str, kind: str) -> dict:
  return report["head_to_head"].get(contender, {}).get(kind, {})


def summarize(cases: dict) -> dict:
  """The headline figures of the finished cases: per dtype, ms per train
  step and eval forward of each contender, and JAX's ratios to PyTorch
  (its time over ours: ``> 1`` is faster); the loop's idle share."""
  out = {}
  for name, case in cases.items():
    result = case.get("result")
    if not (name.startswith("train_step_") and result):
      continue
    dtype = name[len("train_step_"):]
    row = {"methods_ms": {m["method"]: m["step_ms"]
                          for m in result["methods"]}}
    for contender in result["head_to_head"]:
      for kind in ("step", "forward"):
        entry = _erm(result, contender, kind)
        row[f"{contender}_{kind}_ms"] = entry["ms"]["median"]
        for key in ("ratio_to_torch", "ratio_to_torch_compile"):
          if entry.get(key):
            row[f"{contender}_{kind}_{key}"] = entry[key]["median"]
    out[dtype] = row
  idle = cases.get("loop_idle", {}).get("result")
  if idle:
    out["loop_idle"] = {k: idle[k] for k in (
        "device_ms_per_step", "loop_ms_per_step", "device_idle_fraction",
        "pipeline_images_per_s")}
  return out


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(REPO, "device_check"),
                      help="folder of device_check.json and .log")
  parser.add_argument("--dry_run", action="store_true",
                      help="on the CPU, tiny sizes, under the import guard")
  parser.add_argument("--budget_s", type=float, default=None,
                      help=f"seconds for all cases together (default "
                      f"{BUDGET_S}; dry run {DRY_BUDGET_S})")
  parser.add_argument("--wheels", default=os.path.join(REPO, ".whl"),
                      help="folder of the wheels to install")
  parser.add_argument("--python", default=sys.executable,
                      help="the interpreter of the cases")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  """Runs every case; the exit code is 1 when one failed or timed out (a
  case the budget left no time for is reported as skipped)."""
  check = Check(parse_args(argv))
  check.log(f"device check{' (dry run)' if check.dry else ''}: budget "
            f"{check.args.budget_s:.0f} s, report {check.json_path}")
  case_wheels(check)
  case_environment(check)
  workdir = case_trainer(check)
  if check.report["cases"]["trainer"]["status"] == "ok":
    case_loop_idle(check, workdir)
  for dtype in ("float32", "bfloat16"):
    case_train_step(check, dtype)
  case_tests(check)
  check.report["seconds"] = check.args.budget_s - check.left()
  check.write()
  status = {n: c["status"] for n, c in check.report["cases"].items()}
  bad = [n for n, s in status.items() if s in ("failed", "timeout")]
  skipped = [n for n, s in status.items() if s == "skipped"]
  check.log(f"done in {check.report['seconds']:.0f} s; "
            + (f"failed or stopped: {', '.join(bad)}" if bad
               else "no case failed")
            + (f"; skipped: {', '.join(skipped)}" if skipped else ""))
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())
