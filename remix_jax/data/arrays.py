"""Reading a tfds split into memory as decoded uint8 arrays.

The split is read once with the images still encoded, put in ORIGINAL order
(sorted by the ``id`` feature: ``train_00000`` … for CIFAR, ImageFolder's
order for CINIC-10), optionally reduced to a subset of original indices (the
long-tailed selection) and only then decoded, so CIFAR-10-LT decodes 12,406
images rather than 50,000. TensorFlow and tfds are imported by the functions
that read; :class:`SplitArrays` needs neither.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import numpy as np

_READ_BATCH = 4096


@dataclasses.dataclass(frozen=True)
class SplitArrays:
  """A split (or a subset of it) held in memory.

  Attributes:
    images: ``uint8 [N, H, W, C]``.
    labels: ``int32 [N]``.
    indices: ``int64 [N]`` original index of each example (its position in
      ``id`` order in the full split).
  """

  images: np.ndarray
  labels: np.ndarray
  indices: np.ndarray


def read_encoded(builder, split: str) -> tuple[np.ndarray, np.ndarray]:
  """``(encoded images object [N], labels int64 [N])`` in original order."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  ds = builder.as_dataset(split=split, shuffle_files=False,
                          decoders={"image": tfds.decode.SkipDecoding()})
  has_id = "id" in builder.info.features
  ds = ds.map(lambda ex: {k: ex[k] for k in ("id", "image", "label")
                          if k != "id" or has_id})
  parts = list(ds.batch(_READ_BATCH).as_numpy_iterator())
  if not parts:
    return np.zeros(0, object), np.zeros(0, np.int64)
  encoded = np.concatenate([p["image"] for p in parts])
  labels = np.concatenate([p["label"] for p in parts]).astype(np.int64)
  if has_id:
    order = np.argsort(np.concatenate([p["id"] for p in parts]),
                       kind="stable")
    encoded, labels = encoded[order], labels[order]
  return encoded, labels


def decode_images(builder, encoded: np.ndarray) -> np.ndarray:
  """Decodes encoded images with the split's image feature, in parallel.

  Returns:
    ``uint8 [N, H, W, C]`` (the feature's static shape).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  feature = builder.info.features["image"]
  if len(encoded) == 0:
    return np.zeros((0,) + tuple(feature.shape), np.uint8)
  ds = tf.data.Dataset.from_tensor_slices(encoded).map(
      feature.decode_example, num_parallel_calls=tf.data.AUTOTUNE,
      deterministic=True)
  return np.concatenate(list(ds.batch(_READ_BATCH).as_numpy_iterator()))


def load_split(builder, split: str,
               select: Optional[Callable[[np.ndarray], np.ndarray]] = None
               ) -> SplitArrays:
  """Reads ``split``, keeps ``select(labels)`` (original indices; all when
  ``None``) and decodes only those images.

  Args:
    builder: a prepared tfds builder whose features include ``image`` and
      ``label`` (and ``id`` to restore the original order).
    split: the tfds split.
    select: maps the labels ``[N]`` in original order to the original indices
      to keep, in the order to keep them.

  Returns:
    The kept examples as :class:`SplitArrays`.
  """
  encoded, labels = read_encoded(builder, split)
  indices = (np.arange(len(labels), dtype=np.int64) if select is None
             else np.asarray(select(labels), np.int64))
  return SplitArrays(images=decode_images(builder, encoded[indices]),
                     labels=labels[indices].astype(np.int32), indices=indices)
