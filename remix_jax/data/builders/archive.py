"""Helpers shared by the builders that read a manually downloaded archive
(``cinic10``, ``tiny_imagenet``)."""

from __future__ import annotations

import io
import posixpath

import numpy as np


def path_parts(path: str) -> list[str]:
  """The components of an archive member's path (``\\`` or ``/``
  separators, ``.`` and ``..`` resolved)."""
  return posixpath.normpath(path.replace("\\", "/")).split("/")


def decode_rgb(data: bytes) -> np.ndarray:
  """``uint8 [H, W, 3]`` from encoded image bytes (PNG, JPEG, …; grey,
  palette or CMYK images converted to RGB)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(io.BytesIO(data)) as im:
    return np.asarray(im.convert("RGB"), np.uint8)


def manual_archive(dl_manager, name: str, instructions: str):
  """The path of archive ``name`` in tfds' manual directory.

  Args:
    dl_manager: the builder's ``tfds.download.DownloadManager``.
    name: the archive's file name.
    instructions: the builder's ``MANUAL_DOWNLOAD_INSTRUCTIONS``.

  Returns:
    The archive's path (an ``epath.Path``).

  Raises:
    FileNotFoundError: the archive is missing (the message says where to put
      it).
  """
  archive = dl_manager.manual_dir / name
  if not archive.exists():
    raise FileNotFoundError(f"{archive} not found; {instructions}")
  return archive
