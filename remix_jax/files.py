"""Files written whole or not at all."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Callable


def write_atomically(path: str, write: Callable[[str], None]) -> None:
  """Writes ``path`` by calling ``write(temporary path)`` and renaming the
  result over ``path`` (``os.replace``, atomic on one file system), so a
  reader sees the old file or the new one, never a part. The temporary file
  (``<path>.tmp<pid>``, beside ``path``) is removed when ``write`` or the
  rename fails, and the error is raised.

  Args:
    path: the file to write.
    write: writes the whole content to the path it is given.
  """
  tmp = f"{path}.tmp{os.getpid()}"
  try:
    write(tmp)
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise


def write_text(path: str, text: str) -> None:
  """Writes ``text`` to ``path`` atomically (:func:`write_atomically`)."""

  def write(tmp):
    with open(tmp, "w") as f:
      f.write(text)

  write_atomically(path, write)


def write_json(path: str, value, *, indent=None) -> None:
  """Writes ``value`` as JSON to ``path`` atomically."""
  write_text(path, json.dumps(value, indent=indent))
