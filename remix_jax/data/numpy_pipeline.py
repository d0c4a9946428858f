"""In-memory pipelines in NumPy alone, no TensorFlow (``digits_numpy``).

They read the same arrays as their tfds twin (``digits_numpy``: the
``sklearn_digits`` images and split, :mod:`remix_jax.data.digits`) and
follow :mod:`remix_jax.data.memory` step for step: the same long-tailed
subset, the same order, crop offsets and flips for a given ``(shuffle_seed,
epoch, resample)`` (:mod:`remix_jax.data.columns`), and the same float32
normalization ``(x / 255 − mean) / std``, so their batches equal the tfds
pipeline's. Each batch is gathered, cropped, flipped and normalized on the
calling thread when the trainer asks for it (no prefetch).
"""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import numpy as np

from remix_jax.data import arrays
from remix_jax.data import base
from remix_jax.data import columns as columns_lib
from remix_jax.data import digits
from remix_jax.data import options as options_lib
from remix_jax.data import process_split
from remix_jax.data import registry


def _digits(split: str) -> tuple[np.ndarray, np.ndarray, Sequence[str]]:
  images, labels = digits.images_and_labels()
  index = digits.split_indices()[split]
  return images[index], labels[index], digits.CLASS_NAMES


#: Per dataset: ``split -> (uint8 images [N, H, W, C], labels [N], class
#: names)``, in the split's original order.
READERS = {"digits_numpy": _digits}


def read_split(spec: registry.DatasetSpec, split: str,
               options: Optional[options_lib.DataOptions] = None
               ) -> tuple[arrays.SplitArrays, Sequence[str]]:
  """``split`` of ``spec`` in memory.

  Args:
    spec: a dataset whose ``pipeline`` is ``numpy``.
    split: the split's name.
    options: keep the long-tailed subset of these options
      (:func:`remix_jax.data.columns.longtail_selector`); ``None``: every
      example, in order.

  Returns:
    ``(the kept examples, the class names)``.
  """
  images, labels, names = READERS[spec.name](split)
  select = None if options is None else columns_lib.longtail_selector(
      spec, options, len(names))
  indices = (np.arange(len(labels), dtype=np.int64) if select is None
             else np.asarray(select(labels), np.int64))
  return arrays.SplitArrays(images=images[indices],
                            labels=labels[indices].astype(np.int32),
                            indices=indices), names


def crop_flip(images: np.ndarray, offsets: np.ndarray, flips: np.ndarray,
              pad: int) -> np.ndarray:
  """Zero-pads ``pad`` pixels, crops back to ``H×W`` at ``offsets``, flips
  (:func:`remix_jax.data.augment.crop_flip` in NumPy).

  Args:
    images: ``[B, H, W, C]``.
    offsets: ``int32 [B, 2]`` top-left corner (row, column) in the padded
      image, each in ``[0, 2·pad]``.
    flips: ``bool [B]``; mirror left-right where True.
    pad: padding on each side.

  Returns:
    ``[B, H, W, C]``, same dtype.
  """
  batch, height, width = images.shape[:3]
  padded = np.pad(images, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
  rows = offsets[:, :1] + np.arange(height)[None]
  cols = offsets[:, 1:] + np.arange(width)[None]
  cols = np.where(flips[:, None], cols[:, ::-1], cols)
  return padded[np.arange(batch)[:, None, None], rows[:, :, None],
                cols[:, None, :]]


def normalize(images: np.ndarray, mean: Sequence[float],
              std: Sequence[float]) -> np.ndarray:
  """``(x / 255 − mean) / std`` per channel for uint8 ``x``, float32."""
  x = images.astype(np.float32) / np.float32(255.0)
  return (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)


class _Cached:
  """Images and labels held as arrays, gathered by index per batch."""

  def __init__(self, split: arrays.SplitArrays, spec: registry.DatasetSpec):
    self.spec = spec
    self.images = split.images
    self.labels = split.labels.astype(np.int32)

  def batch(self, index, offset=None, flip=None, **extra):
    x = self.images[index]
    if offset is not None:
      x = crop_flip(x, offset, flip, self.spec.pad)
    return {"image": normalize(x, self.spec.mean, self.spec.std),
            "label": self.labels[index], **extra}


def _rows(cache: _Cached, local: dict[str, np.ndarray]
          ) -> Iterator[dict[str, np.ndarray]]:
  for step in range(len(local["index"])):
    yield columns_lib.load_with_partner(
        cache.batch, {k: v[step] for k, v in local.items()})


class NumpyTrainData(columns_lib.CachedTrainData):
  """The long-tailed training split of a ``numpy`` dataset, in memory.

  Extra attributes (beside :class:`~remix_jax.data.columns.CachedTrainData`'s):
    images: ``uint8 [N, H, W, C]`` the cached examples.
  """

  def __init__(self, spec: registry.DatasetSpec,
               options: options_lib.DataOptions, *, global_batch_size: int,
               process_index: int = 0, process_count: int = 1):
    split, names = read_split(spec, spec.train_split, options)
    super().__init__(
        split, spec, options, num_classes=len(names), class_names=names,
        global_batch_size=global_batch_size, process_index=process_index,
        process_count=process_count)
    self.images = split.images
    self._cache = _Cached(split, spec)

  def epoch_batches(self, epoch: int, resample: bool, start_step: int,
                    partners: bool = False
                    ) -> Iterator[dict[str, np.ndarray]]:
    return _rows(self._cache, self.local_epoch_columns(
        epoch, resample, start_step, partners))


class NumpyEvalData(base.EvalData):
  """The evaluation split of a ``numpy`` dataset, in original order,
  padded."""

  def __init__(self, spec: registry.DatasetSpec, *, global_batch_size: int,
               process_index: int = 0, process_count: int = 1):
    data, names = read_split(spec, spec.eval_split)
    super().__init__(
        num_classes=len(names), num_examples=len(data.labels),
        global_batch_size=global_batch_size, process_index=process_index,
        process_count=process_count)
    self.labels = data.labels
    self._cache = _Cached(data, spec)

  def eval_batches(self) -> Iterator[dict[str, np.ndarray]]:
    index, mask = process_split.padded_eval_order(self.num_examples,
                                                  self.global_batch_size)
    return _rows(self._cache, columns_lib.local_columns(
        {"index": index, "mask": mask}, self.global_batch_size,
        self.process_index, self.process_count))
