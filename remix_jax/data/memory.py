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
from remix_jax.data import longtail
from remix_jax.data import options as options_lib
from remix_jax.data import registry
from remix_jax.data import resample as resample_lib
from remix_jax.data import process_split


def longtail_selector(spec: registry.DatasetSpec,
                      options: options_lib.DataOptions, num_classes: int):
  """``labels -> kept original indices`` for the long-tailed split of
  ``options`` (``rho``, ``profile``, ``split_seed``),
  or ``None`` (keep everything) for datasets that are long-tailed already."""
  if not spec.longtail:
    return None

  def select(labels: np.ndarray) -> np.ndarray:
    per_class = np.bincount(labels, minlength=num_classes)
    counts = longtail.longtail_counts(int(per_class.min()), num_classes,
                                      options.rho, options.profile)
    return longtail.longtail_indices(labels, counts, seed=options.split_seed)

  return select


#: The prefix of the partner stream's columns and batch keys.
PARTNER = "partner_"


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


class InMemoryTrainData(base.TrainData):
  """Long-tailed training split cached in memory (see module docstring).

  Extra attributes:
    images: ``uint8 [N, H, W, C]`` the cached examples (a copy).
    source_indices: ``int64 [N]`` original index of each cached example, in
      LDAM's order (class by class, shuffled within the class).
    labels: ``int32 [N]`` labels of the cached examples.
  """

  def __init__(self, builder, spec: registry.DatasetSpec,
               options: options_lib.DataOptions, *,
               global_batch_size: int, process_index: int = 0,
               process_count: int = 1):
    num_classes = builder.info.features["label"].num_classes
    split = arrays.load_split(builder, spec.train_split,
                              longtail_selector(spec, options, num_classes))
    super().__init__(
        class_counts=np.bincount(split.labels, minlength=num_classes),
        class_names=builder.info.features["label"].names,
        image_shape=split.images.shape[1:],
        global_batch_size=global_batch_size, process_index=process_index,
        process_count=process_count)
    self.spec = spec
    self.source_indices = split.indices
    self.labels = split.labels
    self._cache = _Cached(split, spec)
    self._shuffle_seed = int(options.shuffle_seed)
    self._beta = float(options.resample_beta)
    self._partner_power = float(options.partner_power)
    self._augment = bool(options.augment) and (spec.pad > 0 or spec.flip)

  @property
  def images(self) -> np.ndarray:
    """``uint8 [N, H, W, C]`` the cached examples (a copy)."""
    return self._cache.images.numpy()

  def epoch_columns(self, epoch: int, resample: bool,
                    partners: bool = False) -> dict[str, np.ndarray]:
    """The global order of one epoch, ``[steps · B]``, with augmentation
    parameters per position (``offset [.., 2]``, ``flip``) when augmenting;
    with ``partners`` the partner stream's columns too, named
    ``partner_<column>``."""
    size = self.steps_per_epoch * self.global_batch_size
    rng = resample_lib.epoch_rng(self._shuffle_seed, epoch, resample)
    order = resample_lib.epoch_order(
        rng, self.labels, self.class_counts, resample=resample,
        beta=self._beta)[:size]
    columns = self._augmented(rng, order)
    if partners:
      rng = resample_lib.partner_rng(self._shuffle_seed, epoch)
      order = resample_lib.partner_order(rng, self.labels, self.class_counts,
                                         self._partner_power, size)
      columns.update({f"{PARTNER}{k}": v
                      for k, v in self._augmented(rng, order).items()})
    return columns

  def _augmented(self, rng: np.random.Generator,
                 order: np.ndarray) -> dict[str, np.ndarray]:
    columns = {"index": order}
    if self._augment:
      columns["offset"], columns["flip"] = augment.draw_crop_flip(
          rng, len(order), self.spec.pad, self.spec.flip)
    return columns

  def _load(self, columns):
    """One position's example(s) from its columns."""
    out = self._cache.batch(**{k: v for k, v in columns.items()
                               if not k.startswith(PARTNER)})
    mine = {k[len(PARTNER):]: v for k, v in columns.items()
            if k.startswith(PARTNER)}
    if mine:
      out.update({PARTNER + k: v for k, v in self._cache.batch(**mine).items()})
    return out

  def epoch_dataset(self, epoch: int, resample: bool, start_step: int,
                    partners: bool = False) -> tf.data.Dataset:
    local = {k: process_split.process_rows(v, self.global_batch_size,
                                      self.process_index,
                                      self.process_count)[start_step:]
             for k, v in self.epoch_columns(epoch, resample,
                                            partners).items()}
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
    local = {k: process_split.process_rows(v, self.global_batch_size,
                                      self.process_index, self.process_count)
             for k, v in (("index", index), ("mask", mask))}

    def load(c):
      return {**self._cache.batch(c["index"]), "mask": c["mask"]}

    return tf.data.Dataset.from_tensor_slices(local).map(
        load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
