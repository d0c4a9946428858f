"""The project's XLA:CPU flags: added once, user settings win, XLA obeys;
importing the library sets nothing, the trainer sets them in time."""

import json
import logging
import os
import subprocess
import sys

import jax
import pytest

from remix_jax.trainer import process_setup
from tests.helpers import REPO

FLAG = "--xla_cpu_experimental_ynn_fusion_type="


def _clean_env(**extra) -> dict:
  """This process's environment without XLA_FLAGS and the opt-out."""
  env = {k: v for k, v in os.environ.items()
         if k not in ("XLA_FLAGS", process_setup.OPT_OUT)}
  env.update(extra)
  return env


def _run(code: str, *args: str, env=None) -> subprocess.CompletedProcess:
  """Runs ``code`` in a fresh interpreter at the repository root."""
  return subprocess.run(
      [sys.executable, "-c", code, *args], env=_clean_env() if env is None
      else env, cwd=REPO, capture_output=True, text=True, timeout=300,
      check=True)


def test_flags_are_appended_once_and_keep_the_users_flags():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  added = process_setup.configure_process(env)
  assert added == [FLAG + ",".join(process_setup.YNN_FUSION_TYPES)]
  assert env["XLA_FLAGS"] == ("--xla_force_host_platform_device_count=4 "
                              + added[0])
  assert process_setup.configure_process(env) == []
  assert env["XLA_FLAGS"].count(FLAG) == 1
  empty = {}
  process_setup.configure_process(empty)
  assert empty["XLA_FLAGS"] == added[0]


def test_a_user_value_or_the_opt_out_wins():
  env = {"XLA_FLAGS": FLAG + "LIBRARY_FUSION_TYPE_DOT"}
  assert process_setup.configure_process(env) == []
  assert env["XLA_FLAGS"] == FLAG + "LIBRARY_FUSION_TYPE_DOT"
  env = {process_setup.OPT_OUT: "1"}
  assert process_setup.configure_process(env) == []
  assert "XLA_FLAGS" not in env


def test_too_late_warns_once_and_leaves_the_environment(monkeypatch, caplog):
  jax.devices()  # JAX has started: XLA has read its flags
  assert process_setup.jax_backends_initialized()
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  monkeypatch.delenv(process_setup.OPT_OUT, raising=False)
  with caplog.at_level(logging.WARNING):
    assert process_setup.configure_process() == []
  assert "XLA_FLAGS" not in os.environ
  warnings = [r.getMessage() for r in caplog.records]
  assert len(warnings) == 1 and "\n" not in warnings[0]
  assert "before the first JAX computation" in warnings[0]
  # Nothing to warn about when the flags are set already or opted out of.
  caplog.clear()
  monkeypatch.setenv("XLA_FLAGS", FLAG + "LIBRARY_FUSION_TYPE_DOT")
  assert process_setup.configure_process() == []
  monkeypatch.setenv(process_setup.OPT_OUT, "1")
  assert process_setup.configure_process() == []
  assert not caplog.records
  # Another mapping than this process's environment is changed regardless.
  env = {}
  assert process_setup.configure_process(env) and FLAG in env["XLA_FLAGS"]


_IMPORTS = """
import json, os
import jax
env, options = dict(os.environ), dict(jax.config.values)
import remix_jax
import remix_jax.data
import remix_jax.mixers
import remix_jax.models
import remix_jax.trainer.train
from configs import cifar_lt, default, quickstart, sumix
for module in (default, cifar_lt, quickstart, sumix):
  module.get_config()
print(json.dumps({
    "env": sorted(k for k in {*env, *os.environ}
                  if env.get(k) != os.environ.get(k)),
    "options": sorted(k for k, v in jax.config.values.items()
                      if options.get(k, v) != v),
    "started": remix_jax.trainer.process_setup.jax_backends_initialized(),
}))
"""


def test_importing_the_library_and_configs_changes_no_process_state():
  out = json.loads(_run(_IMPORTS).stdout.splitlines()[-1])
  assert out == {"env": [], "options": [], "started": False}


_ENTRY_POINTS = """
import os, sys
entry, workdir = sys.argv[1:]
if entry == "main":
  import main
  try:  # main() sets the flags first, then refuses the config in one line
    main.main(["main.py", "--workdir", workdir, "--config.mixer=mixupp"])
  except SystemExit:
    pass
else:
  from configs import quickstart
  from remix_jax.trainer import train
  config = quickstart.get_config()
  config.mixer = "mixupp"  # refused right after the flags are set
  try:
    train.train_and_evaluate(config, workdir)
  except ValueError:
    pass
from remix_jax.trainer import process_setup
print(process_setup.jax_backends_initialized(), os.environ.get("XLA_FLAGS", ""))
"""


@pytest.mark.parametrize("entry", ["main", "train_and_evaluate"])
def test_the_trainer_sets_the_flags_before_jax_starts(entry, tmp_path):
  out = _run(_ENTRY_POINTS, entry, str(tmp_path)).stdout
  started, flags = out.splitlines()[-1].split(" ", 1)
  assert started == "False"
  assert flags == FLAG + ",".join(process_setup.YNN_FUSION_TYPES)


#: The scripts that run JAX (benchmarks and experiments), by dotted name from
#: the repository root; each sets the flags first, as main.py does.
SCRIPTS = ("benchmarks.conv_layers", "benchmarks.mixers",
           "benchmarks.profile_step", "benchmarks.train_step",
           "experiments.remix_paper.reproduce", "experiments.sumix.balanced",
           "experiments.sumix.compare", "experiments.sumix.direction")

_SCRIPT_IMPORTS = """
import importlib, json, os, sys
sys.path.insert(0, "benchmarks")  # the benchmarks import their siblings
set_by = {}
for name in sys.argv[1:]:
  os.environ.pop("XLA_FLAGS", None)
  sys.modules.pop(name, None)  # run its body even if another imported it
  importlib.import_module(name)
  set_by[name] = os.environ.get("XLA_FLAGS", "")
from remix_jax.trainer import process_setup
print(json.dumps([process_setup.jax_backends_initialized(), set_by]))
"""


def test_the_scripts_set_the_flags_before_jax_starts():
  assert all((REPO / (name.replace(".", "/") + ".py")).is_file()
             for name in SCRIPTS)
  started, set_by = json.loads(
      _run(_SCRIPT_IMPORTS, *SCRIPTS).stdout.splitlines()[-1])
  assert not started
  flag = FLAG + ",".join(process_setup.YNN_FUSION_TYPES)
  assert {name: flag in flags for name, flags in set_by.items()} == {
      name: True for name in SCRIPTS}


_PROBE = """
import sys
import jax, jax.numpy as jnp
from jax import lax
import remix_jax.trainer.process_setup  # sets nothing
if sys.argv[1] == "late":
  jnp.zeros(1).block_until_ready()  # JAX starts before the flags are set
if sys.argv[1] in ("set", "late"):
  remix_jax.trainer.process_setup.configure_process()
conv = lambda x, w: lax.conv_general_dilated(
    x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
hlo = jax.jit(conv).lower(jnp.ones((8, 8, 8, 64)),
                          jnp.ones((3, 3, 64, 64))).compile().as_text()
print("ynn" if "ynn_fusion" in hlo else "xla")
"""


def _conv_backend(mode: str, *, opt_out: bool = False) -> tuple[str, str]:
  env = _clean_env(**({process_setup.OPT_OUT: "1"} if opt_out else {}))
  out = _run(_PROBE, mode, env=env)
  return out.stdout.split()[-1], out.stderr


def test_set_cpu_flags_keeps_convolutions_out_of_ynnpack():
  """What the flag is for; fails if a jax upgrade ignores or renames it."""
  default, _ = _conv_backend("plain")  # importing the library alone
  assert _conv_backend("set")[0] == "xla"  # after `import jax` is in time
  assert _conv_backend("set", opt_out=True)[0] == default
  late, stderr = _conv_backend("late")
  assert late == default
  assert "before the first JAX computation" in stderr
  if default != "ynn":
    pytest.skip("XLA:CPU does not use YNNPACK for convolutions on this CPU, "
                "so the flag changes nothing here")


_FUSION_PROBE = """
import sys
import jax, jax.numpy as jnp
import remix_jax.trainer.process_setup
if sys.argv[1] == "set":
  remix_jax.trainer.process_setup.configure_process()
x = jnp.ones((128, 32, 32, 16))
relu = jax.jit(lambda a, b: jnp.maximum(2 * a + b, 0)).lower(x, x)
sums = jax.jit(lambda a: a.sum(axis=(0, 1, 2))).lower(x)
print(*("ynn" if "ynn_fusion" in f.compile().as_text() else "xla"
        for f in (relu, sums)))
"""


def _fusion_backends(mode: str, xla_flags: str = "") -> list[str]:
  env = _clean_env(**({"XLA_FLAGS": xla_flags} if xla_flags else {}))
  return _run(_FUSION_PROBE, mode, env=env).stdout.split()[-2:]


def test_set_cpu_flags_keeps_elementwise_fusions_out_of_ynnpack():
  """Elementwise fusions stay XLA's own (beside oneDNN's OpenMP threads
  YNNPACK's slowed the step); reductions still go to YNNPACK."""
  eltwise_in_ynn = _fusion_backends(
      "plain", FLAG + "LIBRARY_FUSION_TYPE_ELTWISE,LIBRARY_FUSION_TYPE_REDUCE")
  if eltwise_in_ynn != ["ynn", "ynn"]:
    pytest.skip("XLA:CPU has no YNNPACK fusions on this CPU")
  assert _fusion_backends("set") == ["xla", "ynn"]


_IMPORT_MAIN = """
import json, os, signal, sys
import jax  # what importing jax itself does is not main.py's
env, path = dict(os.environ), list(sys.path)
handlers = {s: signal.getsignal(s) for s in signal.valid_signals()}
import main
from remix_jax.trainer import host_memory
print(json.dumps({
    "env": sorted(k for k in set(env) | set(os.environ)
                  if env.get(k) != os.environ.get(k)),
    "path": sys.path == path,
    "handlers": [int(s) for s, h in handlers.items()
                 if signal.getsignal(s) != h],
    "mallopt": host_memory.keep_freed_memory.cache_info().currsize,
    "absl_flags": "workdir" in __import__("absl.flags").flags.FLAGS,
}))
"""


def test_importing_main_changes_nothing_and_never_exits():
  out = _run(_IMPORT_MAIN, "--config.mixer=nope")
  assert json.loads(out.stdout.splitlines()[-1]) == {
      "env": [], "path": True, "handlers": [], "mallopt": 0,
      "absl_flags": False}
