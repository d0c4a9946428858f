"""The project's XLA:CPU flags: added once, user settings win, XLA obeys."""

import os
import subprocess
import sys

import pytest

from remix_jax import cpu_flags
from tests.helpers import REPO

FLAG = "--xla_cpu_experimental_ynn_fusion_type="


def test_flags_are_appended_once_and_keep_the_users_flags():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
  added = cpu_flags.set_cpu_flags(env)
  assert added == [FLAG + ",".join(cpu_flags.YNN_FUSION_TYPES)]
  assert env["XLA_FLAGS"] == ("--xla_force_host_platform_device_count=4 "
                              + added[0])
  assert cpu_flags.set_cpu_flags(env) == []
  assert env["XLA_FLAGS"].count(FLAG) == 1
  empty = {}
  cpu_flags.set_cpu_flags(empty)
  assert empty["XLA_FLAGS"] == added[0]


def test_a_user_value_or_the_opt_out_wins():
  env = {"XLA_FLAGS": FLAG + "LIBRARY_FUSION_TYPE_DOT"}
  assert cpu_flags.set_cpu_flags(env) == []
  assert env["XLA_FLAGS"] == FLAG + "LIBRARY_FUSION_TYPE_DOT"
  env = {cpu_flags.OPT_OUT: "1"}
  assert cpu_flags.set_cpu_flags(env) == []
  assert "XLA_FLAGS" not in env


_PROBE = """
import sys
if sys.argv[1] == "import":
  import remix_jax  # noqa: F401
import jax, jax.numpy as jnp
from jax import lax
conv = lambda x, w: lax.conv_general_dilated(
    x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
hlo = jax.jit(conv).lower(jnp.ones((8, 8, 8, 64)),
                          jnp.ones((3, 3, 64, 64))).compile().as_text()
print("ynn" if "ynn_fusion" in hlo else "xla")
"""


def _conv_backend(*, import_package: bool, opt_out: bool = False) -> str:
  env = {k: v for k, v in os.environ.items()
         if k not in ("XLA_FLAGS", cpu_flags.OPT_OUT)}
  if opt_out:
    env[cpu_flags.OPT_OUT] = "1"
  out = subprocess.run(
      [sys.executable, "-c", _PROBE, "import" if import_package else "plain"],
      env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
      check=True)
  return out.stdout.split()[-1]


def test_importing_the_package_keeps_convolutions_out_of_ynnpack():
  """What the flag is for; fails if a jax upgrade ignores or renames it."""
  default = _conv_backend(import_package=False)
  assert _conv_backend(import_package=True) == "xla"
  assert _conv_backend(import_package=True, opt_out=True) == default
  if default != "ynn":
    pytest.skip("XLA:CPU does not use YNNPACK for convolutions on this CPU, "
                "so the flag changes nothing here")
