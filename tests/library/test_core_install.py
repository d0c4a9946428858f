"""The library needs JAX, Flax, optax and numpy only; the trainer's packages
(TensorFlow, tfds, clu, ml-collections, ...) are the ``trainer`` extra.

The fast tests make those packages unimportable in a child process; the
slow one installs the repository with no extra into a fresh virtual
environment (``.ci/run`` runs it as a step of its own).
"""

import ast
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

from remix_jax import extras
from tests import helpers

CORE_ONLY = pathlib.Path(__file__).with_name("core_only.py")
#: What a module of the library may import when it is imported.
CORE_PACKAGES = {"jax", "jaxlib", "flax", "optax", "numpy", "remix_jax"}
#: The library: everything but the trainer and the data pipelines.
LIBRARY = sorted(
    p for p in (helpers.REPO / "remix_jax").rglob("*.py")
    if not {"trainer", "data"} & set(p.relative_to(helpers.REPO).parts))


def _module_level_imports(tree: ast.Module) -> list[str]:
  """The modules ``tree`` imports when it runs (not inside functions)."""
  out, todo = [], list(tree.body)
  while todo:
    node = todo.pop()
    if isinstance(node, ast.Import):
      out += [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and not node.level:
      out.append(node.module or "")
    elif isinstance(node, (ast.If, ast.Try, ast.With)):
      todo += [n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)]
  return out


@pytest.mark.parametrize("path", LIBRARY,
                         ids=lambda p: str(p.relative_to(helpers.REPO)))
def test_library_modules_import_only_jax_flax_optax_numpy(path):
  imports = _module_level_imports(ast.parse(path.read_text()))
  roots = {m.split(".")[0] for m in imports}
  other = roots - CORE_PACKAGES - set(sys.stdlib_module_names)
  assert not other, (f"{path.name} imports {sorted(other)} at import time; "
                     "import it inside the function that needs it")
  assert not [m for m in imports
              if m.startswith(("remix_jax.trainer", "remix_jax.data."))]


def _run_blocked(code: str) -> subprocess.CompletedProcess:
  """Runs ``code`` in a child with the trainer's packages unimportable."""
  prelude = textwrap.dedent(f"""\
      import sys
      sys.path.insert(0, {str(CORE_ONLY.parent)!r})
      import core_only
      sys.meta_path.insert(0, core_only._Block())
      """)
  env = dict(os.environ, PYTHONPATH=str(helpers.REPO))
  return subprocess.run([sys.executable, "-c", prelude + code],
                        cwd=helpers.REPO, env=env, capture_output=True,
                        text=True, timeout=600)


def test_the_library_runs_without_the_trainer_packages():
  env = dict(os.environ, PYTHONPATH=str(helpers.REPO))
  out = subprocess.run([sys.executable, str(CORE_ONLY), "--block"], env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.strip().endswith("core-only ok")


def test_main_without_the_trainer_packages_says_which_extra(tmp_path):
  code = textwrap.dedent(f"""\
      import runpy
      sys.argv = ["main.py", "--workdir", {str(tmp_path / "w")!r}]
      runpy.run_path("main.py", run_name="__main__")
      """)
  out = _run_blocked(code)
  assert out.returncode == 1 and not out.stdout
  line = out.stderr.strip()
  assert "\n" not in line, out.stderr
  assert line.startswith("error: main.py needs remix_jax's `trainer` extra")
  assert "tensorflow-cpu" in line and "ml-collections" in line
  assert 'pip install -e ".[trainer]"' in line
  assert not (tmp_path / "w").exists()


def test_the_data_pipelines_without_the_trainer_packages_say_which_extra():
  code = textwrap.dedent("""\
      from remix_jax import data
      assert data.DataOptions is not None  # the light part stays usable
      try:
        data.create_train_data
      except ModuleNotFoundError as err:
        print(err)
      """)
  out = _run_blocked(code)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.startswith(
      "remix_jax.data.create_train_data needs remix_jax's `trainer` extra")


def test_require_lists_what_is_missing(monkeypatch):
  extras.require("x")  # the suite runs with the trainer extra installed
  monkeypatch.setitem(extras.EXTRAS, "demo",
                      {"json": "json", "no_such_module_xyz": "no-such-dist"})
  assert extras.missing("demo") == ["no-such-dist"]
  with pytest.raises(ModuleNotFoundError, match=r"^the demo needs remix_jax's "
                     r"`demo` extra; not installed: no-such-dist; install "
                     r"them with pip install \"remix_jax\[demo\]\""):
    extras.require("the demo", "demo")


def test_require_can_do_without_optional_modules(monkeypatch):
  monkeypatch.setitem(extras.EXTRAS, "demo",
                      {"json": "json", "no_such_module_xyz": "no-such-dist"})
  extras.require("the demo", "demo", optional=("no_such_module_xyz",))
  monkeypatch.setitem(extras.EXTRAS, "demo",
                      {"no_such_module_xyz": "no-such-dist",
                       "no_such_module_abc": "other-dist"})
  with pytest.raises(extras.MissingExtraError,
                     match=r"not installed: no-such-dist, other-dist; "):
    extras.require("the demo", "demo", optional=("no_such_module_xyz",))


#: What the core install needs from the checkout.
_SOURCES = ("pyproject.toml", "setup.py", "README.md", "remix_jax")


def _copy_sources(dest: pathlib.Path) -> None:
  for name in _SOURCES:
    src = helpers.REPO / name
    if src.is_dir():
      shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(
          "__pycache__", "*.so", "*.egg-info"))
    else:
      shutil.copy2(src, dest / name)


def _pip(venv: pathlib.Path, *args: str) -> None:
  out = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", *args],
                       capture_output=True, text=True, timeout=1800)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.mark.slow
def test_a_core_install_runs_the_library_without_the_trainer(tmp_path):
  """``pip install .`` (no extra, a normal isolated build) in a fresh venv."""
  src, venv = tmp_path / "src", tmp_path / "venv"
  src.mkdir()
  _copy_sources(src)
  subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                 timeout=300)
  _pip(venv, "install", "-q", str(src))
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  python = str(venv / "bin" / "python")
  where = subprocess.run(
      [python, "-c", "import remix_jax, importlib.metadata as m; "
       "print(remix_jax.__file__); "
       "print(sorted(d.metadata['Name'].lower() for d in m.distributions()))"],
      cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
  path, names = where.stdout.splitlines()
  assert path.startswith(str(venv)), path
  # The oneDNN runtime is the `onednn` extra (the models load it on use).
  assert "onednn-cpu-gomp" not in names and "remix_jax" in names.replace(
      "-", "_"), names
  out = subprocess.run([python, str(CORE_ONLY)], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert out.stdout.strip().endswith("core-only ok")
