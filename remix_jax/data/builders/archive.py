"""Helpers shared by the project's tfds builders (``cinic10``,
``tiny_imagenet``, ``sklearn_digits``)."""

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


def image_classification_info(builder, *, image_shape, label_names=None,
                              homepage: str, citation: str = ""):
  """The ``DatasetInfo`` of an image-classification builder: features
  ``id`` (text), ``image`` and ``label``; examples kept in generation order.

  Args:
    builder: the ``GeneratorBasedBuilder`` (its module docstring becomes the
      description).
    image_shape: ``(H, W, C)``.
    label_names: class names, or ``None`` to set them when preparing.
    homepage: the dataset's home page.
    citation: BibTeX.
  """
  import sys  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.core.DatasetInfo(
      builder=builder,
      description=sys.modules[type(builder).__module__].__doc__,
      features=tfds.features.FeaturesDict({
          "id": tfds.features.Text(),
          "image": tfds.features.Image(shape=tuple(image_shape)),
          "label": tfds.features.ClassLabel(names=label_names),
      }),
      supervised_keys=("image", "label"),
      homepage=homepage,
      citation=citation,
      disable_shuffling=True,
  )
