"""In-memory pipelines (CIFAR-10/100, cifar10_jpeg, CINIC-10, digits).

Training: read the split once, keep LDAM-DRW's long-tailed subset (Cao et al.
2019; the counts of :func:`~remix_jax.data.longtail.longtail_counts` with
``n_max`` = the smallest class of the full split, i.e. 5000 / 500 / 9000 for
CIFAR-10 / CIFAR-100 / CINIC-10), cache it decoded as uint8. Each epoch the
global order (a seeded permutation, or class-balanced draws with
replacement) and the crop offsets and flips are computed in NumPy from
``(shuffle_seed, epoch, resample)``; every process takes its slice of every
global batch; ``tf.data`` gathers, augments, normalizes and prefetches.

Evaluation: the whole split, in order, padded to whole global batches with a
mask.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from remix_jax.data import arrays
from remix_jax.data import augment
from remix_jax.data import base
from remix_jax.data import columns as columns_lib
from remix_jax.data import options as options_lib
from remix_jax.data import registry
from remix_jax.data import process_split


class _Cached:
  """Images and labels held as tensors, gathered by index per batch."""

  def __init__(self, split: arrays.SplitArrays, spec: registry.DatasetSpec):
    self.spec = spec
    self.images = tf.convert_to_tensor(split.images)
    self.labels = tf.convert_to_tensor(split.labels, tf.int32)

  def batch(self, index, offset=None, flip=None):
    x = tf.gather(self.images, index)
    if offset is not None:
      x = augment.crop_flip(x, offset, flip, self.spec.pad)
    return {"image": augment.normalize(x, self.spec.mean, self.spec.std),
            "label": tf.gather(self.labels, index)}


class InMemoryTrainData(columns_lib.CachedTrainData):
  """Long-tailed training split cached in memory (see module docstring).

  Extra attributes (beside :class:`~remix_jax.data.columns.CachedTrainData`'s):
    images: ``uint8 [N, H, W, C]`` the cached examples (a copy).
  """

  def __init__(self, builder, spec: registry.DatasetSpec,
               options: options_lib.DataOptions, *,
               global_batch_size: int, process_index: int = 0,
               process_count: int = 1):
    label = builder.info.features["label"]
    split = arrays.load_split(
        builder, spec.train_split,
        columns_lib.longtail_selector(spec, options, label.num_classes))
    super().__init__(
        split, spec, options, num_classes=label.num_classes,
        class_names=label.names, global_batch_size=global_batch_size,
        process_index=process_index, process_count=process_count)
    self._cache = _Cached(split, spec)

  @property
  def images(self) -> np.ndarray:
    """``uint8 [N, H, W, C]`` the cached examples (a copy)."""
    return self._cache.images.numpy()

  def _load(self, columns):
    """One position's example(s) from its columns, with its partner's."""
    return columns_lib.load_with_partner(self._cache.batch, columns)

  def epoch_dataset(self, epoch: int, resample: bool, start_step: int,
                    partners: bool = False) -> tf.data.Dataset:
    local = self.local_epoch_columns(epoch, resample, start_step, partners)
    return tf.data.Dataset.from_tensor_slices(local).map(
        self._load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class InMemoryEvalData(base.EvalData):
  """The evaluation split cached in memory, in original order, padded."""

  def __init__(self, builder, spec: registry.DatasetSpec, *,
               global_batch_size: int, process_index: int = 0,
               process_count: int = 1):
    split = arrays.load_split(builder, spec.eval_split)
    super().__init__(
        num_classes=builder.info.features["label"].num_classes,
        num_examples=len(split.labels), global_batch_size=global_batch_size,
        process_index=process_index, process_count=process_count)
    self.labels = split.labels
    self._cache = _Cached(split, spec)

  def eval_dataset(self) -> tf.data.Dataset:
    index, mask = process_split.padded_eval_order(self.num_examples,
                                             self.global_batch_size)
    local = columns_lib.local_columns({"index": index, "mask": mask},
                                      self.global_batch_size,
                                      self.process_index, self.process_count)

    def load(c):
      return {**self._cache.batch(c["index"]), "mask": c["mask"]}

    return tf.data.Dataset.from_tensor_slices(local).map(
        load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
