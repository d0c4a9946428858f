"""The device check's import guard (``benchmarks/device_check.py
--dry_run``): this interpreter imports only what the GPU machine has.

Python imports ``sitecustomize`` at start-up from ``PYTHONPATH``; the dry run
puts this folder there for every process it starts. The guard then refuses
(``ModuleNotFoundError``, as that machine would raise) a top-level module
that the project's code, a script or the standard library imports unless it
is in the standard library, inside the repository, or listed in
``$REMIX_DEVICE_GUARD_ALLOWED`` (the top-level modules of that machine's
packages and of the wheels that travel, one per line). What an installed
package imports for itself is left to it: its dependencies there are its
own. Each refusal of a module that is installed here is appended to
``$REMIX_DEVICE_GUARD_LOG`` as ``<module> <importer>``, except where the
importer only asks whether it exists: ``importlib.util.find_spec`` then
answers ``None``, as it would there. Nothing is guarded unless both
variables are set.
"""

import importlib.machinery
import importlib.util
import os
import sys
import threading

#: How deep this thread is in ``importlib.util.find_spec`` calls.
_PROBING = threading.local()


class _Refused(ModuleNotFoundError):
  """A module the GPU machine lacks."""


def _probe_aware(find_spec):
  """``importlib.util.find_spec`` that answers ``None`` for a refused
  module, as it does for a missing one, and marks the call as a probe."""

  def probe(name, package=None):
    _PROBING.depth = getattr(_PROBING, "depth", 0) + 1
    try:
      return find_spec(name, package)
    except _Refused:
      return None
    finally:
      _PROBING.depth -= 1

  return probe


def _inside(path: str, root: str) -> bool:
  return os.path.abspath(path).startswith(root + os.sep)


class _Guard:
  """A meta path finder that refuses the modules the GPU machine lacks."""

  def __init__(self, allowed: set, root: str, log: str):
    self.allowed, self.root, self.log = allowed, root, log
    self.stdlib = set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    self.stdlib_dir = os.path.dirname(os.path.abspath(os.__file__))

  def _importer(self) -> str:
    """The top-level module that asked for the import (the first frame
    outside the import machinery)."""
    frame = sys._getframe(2)  # pylint: disable=protected-access
    while frame is not None:
      name = frame.f_code.co_filename
      if not (name.startswith("<frozen") or "importlib" in name
              or name == __file__):
        return str(frame.f_globals.get("__name__", "")).split(".")[0]
      frame = frame.f_back
    return ""

  def _found_in(self, name: str, path, root: str) -> bool:
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    if spec is None:
      return False
    places = [spec.origin, *(spec.submodule_search_locations or [])]
    return any(_inside(p, root) and "site-packages" not in p
               for p in places if p)

  def _in_repo(self, name: str, path) -> bool:
    return self._found_in(name, path, self.root)

  def _installed_package(self, module: str) -> bool:
    """Whether ``module`` (an importer) is an installed package's, neither
    the repository's, the standard library's nor a script's."""
    if module in ("", "__main__") or module in self.stdlib:
      return False
    return not (self._in_repo(module, None)
                or self._found_in(module, None, self.stdlib_dir))

  def find_spec(self, name, path=None, target=None):
    del target
    if "." in name or name in self.stdlib or name in self.allowed:
      return None
    importer = self._importer()
    # The repository's own, the standard library's private modules
    # (_sysconfigdata_*) that sys.stdlib_module_names does not list, and an
    # installed package's own imports.
    if (self._in_repo(name, path)
        or self._found_in(name, path, self.stdlib_dir)
        or self._installed_package(importer)):
      return None
    if importlib.machinery.PathFinder.find_spec(name, path) is None:
      return None  # missing here too: the import fails as it would there
    if not getattr(_PROBING, "depth", 0):
      with open(self.log, "a", encoding="utf-8") as f:
        f.write(f"{name} {importer or '?'}\n")
    raise _Refused(
        f"No module named {name!r} (the GPU machine has no such package: "
        "benchmarks/device_guard)", name=name)


def _install() -> None:
  allowed_file = os.environ.get("REMIX_DEVICE_GUARD_ALLOWED")
  log = os.environ.get("REMIX_DEVICE_GUARD_LOG")
  if not (allowed_file and log):
    return
  with open(allowed_file, encoding="utf-8") as f:
    allowed = {line.strip() for line in f if line.strip()}
  root = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  sys.meta_path.insert(0, _Guard(allowed, root, log))
  importlib.util.find_spec = _probe_aware(importlib.util.find_spec)


_install()
