"""``main.py --help`` and ``--helpfull``: the usage, the flags, the config
files, the method presets and (``--helpfull``) every config field."""

import subprocess
import sys

import pytest

from configs import default
from remix_jax.trainer import methods
from remix_jax.trainer import run_record
from tests.trainer import test_workdir as tw


def _help(flag):
  done = subprocess.run([sys.executable, tw.MAIN, flag], cwd=tw.REPO,
                        capture_output=True, text=True, timeout=120)
  assert done.returncode == 0, done.stderr
  return done.stdout


@pytest.mark.parametrize("flag", ["--help", "-h", "--helpfull"])
def test_help_shows_usage_flags_config_files_and_presets(flag):
  out = _help(flag)
  # The examples keep their lines (a continuation backslash ends a line).
  assert ("    python main.py --workdir runs/c10 \\\n        --config "
          "configs/cifar_lt.py:dataset=cifar10,rho=100,method=remix_drw\n"
          ) in out
  for name in ("workdir", "allow_changes", "allow_unverified_checkpoints",
               "eval_only", "verbose"):
    assert f"\n  --{name}\n" in out
  assert "\n  --config=FILE.py[:ARGS]\n" in out
  for name in ("cifar_lt.py", "default.py", "quickstart.py", "sumix.py"):
    assert f"\n  {name}\n" in out
  assert "args.py" not in out and "fields.py" not in out  # not config files
  presets = out.split("Method presets")[1]
  for name in methods.METHODS:
    assert f" {name}," in presets or f" {name}\n" in presets


def test_helpfull_lists_every_config_field_and_the_files_arguments():
  short, full = _help("--help"), _help("--helpfull")
  fields = run_record.flatten(default.get_config())
  assert len(fields) > 50
  for field in fields:
    assert f"\n  {field} = " in full, field
    assert f"\n  {field} = " not in short
  assert "\n  data.name = 'cifar10'\n" in full
  assert "\n  mixer = from method\n" in full
  # The config files' arguments, and docstring roles as plain text.
  assert "dataset   cifar10 (default; tfds downloads it)" in full
  assert "one of remix_jax.data.registry.SUPPORTED_DATASETS." in full
  assert ":data:" not in full and ":func:" not in full
