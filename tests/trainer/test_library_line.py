"""The library/trainer line: only ``remix_jax/trainer/`` (and ``configs/``)
reads a config; the rest of ``remix_jax`` takes plain arguments."""

import ast
import pathlib
import sys

import pytest
from ml_collections import ConfigDict

from configs import quickstart
from remix_jax.trainer import train
from tests import helpers

LIBRARY = helpers.REPO / "remix_jax"
TRAINER = LIBRARY / "trainer"


def _library_files():
  return sorted(p for p in LIBRARY.rglob("*.py") if TRAINER not in p.parents)


def _docstrings(tree) -> set:
  """The ids of the docstring nodes of ``tree``."""
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                         ast.AsyncFunctionDef)) and node.body:
      first = node.body[0]
      if isinstance(first, ast.Expr) and isinstance(first.value,
                                                     ast.Constant):
        out.add(id(first.value))
  return out


@pytest.mark.parametrize("path", _library_files(),
                         ids=lambda p: str(p.relative_to(helpers.REPO)))
def test_the_library_neither_imports_a_config_nor_names_one(path):
  tree = ast.parse(path.read_text())
  imports = [alias.name for node in ast.walk(tree)
             if isinstance(node, ast.Import) for alias in node.names]
  imports += [node.module or "" for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom)]
  assert not [m for m in imports if m.split(".")[0] == "ml_collections"]
  assert not [m for m in imports if m.startswith("remix_jax.trainer")]
  docstrings = _docstrings(tree)
  messages = [node.value for node in ast.walk(tree)
              if isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in docstrings]
  assert not [m for m in messages if "config." in m]


class _Recorder:
  """Which module reads each config field (``{(module, field)}``)."""

  def __init__(self):
    self.reads = set()


class _ReadProxy:
  """A ``ConfigDict`` that records the module of every field read; nested
  dicts, and the dicts its methods return (copies), record too."""

  def __init__(self, config, recorder, prefix=""):
    object.__setattr__(self, "_config", config)
    object.__setattr__(self, "_recorder", recorder)
    object.__setattr__(self, "_prefix", prefix)

  def _wrap(self, value, name):
    if isinstance(value, ConfigDict):
      return _ReadProxy(value, self._recorder, f"{self._prefix}{name}.")
    return value

  def __getattr__(self, name):
    value = getattr(self._config, name)
    if callable(value) and not isinstance(value, ConfigDict):
      def call(*args, **kwargs):
        out = value(*args, **kwargs)
        return (_ReadProxy(out, self._recorder, self._prefix)
                if isinstance(out, ConfigDict) else out)
      return call
    module = sys._getframe(1).f_globals.get("__name__", "?")  # pylint: disable=protected-access
    self._recorder.reads.add((module, self._prefix + name))
    return self._wrap(value, name)

  def __setattr__(self, name, value):
    setattr(self._config, name, value)


def test_every_config_field_is_read_inside_the_trainer(tmp_path):
  config = quickstart.get_config()
  config.batch_size, config.eval_batch_size, config.num_epochs = 32, 64, 1
  config.eval_every_epochs = config.checkpoint_every_epochs = 1
  config.progress_bar, config.num_devices = False, 2
  recorder = _Recorder()
  result = train.train_and_evaluate(_ReadProxy(config, recorder),
                                    str(tmp_path))
  assert result["top1"] > 0
  readers = {module for module, _ in recorder.reads}
  # The proxy sees the reads (it would pass trivially if it saw none).
  assert "remix_jax.trainer.build" in readers
  assert ("remix_jax.trainer.objective", "mixer") in recorder.reads
  outside = sorted((m, f) for m, f in recorder.reads
                   if not (m.startswith("remix_jax.trainer.")
                           or m.startswith("configs.")))
  assert not outside


def test_a_library_error_names_the_config_field_through_the_trainer(
    tmp_path):
  config = quickstart.get_config()
  config.data.data_dir = str(tmp_path / "no_tfds_here")
  (tmp_path / "no_tfds_here").mkdir()
  config.data.name = "cifar10_jpeg"
  with pytest.raises(FileNotFoundError,
                     match=r"\(from config\.data\.data_dir\).*point "
                     r"config\.data\.data_dir or TFDS_DATA_DIR"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
