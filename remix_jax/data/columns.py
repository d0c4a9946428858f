"""One epoch of an in-memory training split, in NumPy (no TensorFlow).

Shared by the ``tf.data`` pipeline (:mod:`remix_jax.data.memory`) and the
NumPy one (:mod:`remix_jax.data.numpy_pipeline`), so that both read the same
long-tailed subset and, for a given ``(shuffle_seed, epoch, resample)``, the
same order, crop offsets and flips.
"""

from __future__ import annotations

import numpy as np

from remix_jax.data import arrays
from remix_jax.data import base
from remix_jax.data import longtail
from remix_jax.data import options as options_lib
from remix_jax.data import process_split
from remix_jax.data import registry
from remix_jax.data import resample as resample_lib


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


def draw_crop_flip(rng: np.random.Generator, n: int, pad: int,
                   flip: bool) -> tuple[np.ndarray, np.ndarray]:
  """Random crop offsets and flips for ``n`` examples.

  Args:
    rng: the epoch's generator.
    n: number of examples.
    pad: padding on each side; offsets are uniform in ``[0, 2·pad]``.
    flip: draw flips with probability 1/2 (else never flip).

  Returns:
    ``(offsets int32 [n, 2] (row, column), flips bool [n])``.
  """
  offsets = rng.integers(0, 2 * pad + 1, size=(n, 2)).astype(np.int32)
  flips = rng.random(n) < 0.5 if flip else np.zeros(n, bool)
  return offsets, flips


def epoch_columns(labels: np.ndarray, class_counts: np.ndarray, *,
                  length: int, shuffle_seed: int, beta: float,
                  spec: registry.DatasetSpec, augment: bool, epoch: int,
                  resample: bool) -> dict[str, np.ndarray]:
  """The global order of one epoch with its augmentation parameters.

  Args:
    labels: ``[N]`` labels of the cached examples.
    class_counts: ``[C]`` examples per class.
    length: positions kept (``steps_per_epoch · global_batch_size``).
    shuffle_seed: :attr:`~remix_jax.data.DataOptions.shuffle_seed`.
    beta: the re-sampling's effective-number β.
    spec: the dataset (its ``pad`` and ``flip``).
    augment: draw crop offsets and flips.
    epoch: the epoch number.
    resample: class-balanced draws with replacement instead of a
      permutation.

  Returns:
    ``{'index': int64 [length]}``, plus ``offset int32 [length, 2]`` and
    ``flip bool [length]`` when augmenting.
  """
  rng = resample_lib.epoch_rng(shuffle_seed, epoch, resample)
  order = resample_lib.epoch_order(rng, labels, class_counts,
                                   resample=resample, beta=beta)[:length]
  columns = {"index": order}
  if augment:
    columns["offset"], columns["flip"] = draw_crop_flip(
        rng, len(order), spec.pad, spec.flip)
  return columns


#: The prefix of the partner stream's columns and batch keys.
PARTNER = "partner_"


def partner_columns(labels: np.ndarray, class_counts: np.ndarray, *,
                    length: int, shuffle_seed: int, power: float,
                    spec: registry.DatasetSpec, augment: bool,
                    epoch: int) -> dict[str, np.ndarray]:
  """The partner stream of one epoch: ``length`` examples drawn with
  replacement, example ``i`` with probability ``∝ n_{y_i}^(−power)``
  (:func:`remix_jax.data.resample.partner_order`), from a generator of its
  own (:func:`remix_jax.data.resample.partner_rng`), with their crops and
  flips when augmenting.

  Returns:
    The columns of :func:`epoch_columns`, each named ``partner_<column>``.
  """
  rng = resample_lib.partner_rng(shuffle_seed, epoch)
  order = resample_lib.partner_order(rng, labels, class_counts, power, length)
  columns = {"index": order}
  if augment:
    columns["offset"], columns["flip"] = draw_crop_flip(
        rng, len(order), spec.pad, spec.flip)
  return {PARTNER + k: v for k, v in columns.items()}


def load_with_partner(load, columns: dict) -> dict:
  """``load(**own columns)``, plus ``load(**partner columns)`` under keys
  prefixed ``partner_`` when ``columns`` hold the partner stream's."""
  own = {k: v for k, v in columns.items() if not k.startswith(PARTNER)}
  partner = {k[len(PARTNER):]: v for k, v in columns.items()
             if k.startswith(PARTNER)}
  out = load(**own)
  if partner:
    out.update({PARTNER + k: v for k, v in load(**partner).items()})
  return out


def local_columns(columns: dict[str, np.ndarray], global_batch_size: int,
                  process_index: int, process_count: int,
                  start_step: int = 0) -> dict[str, np.ndarray]:
  """This process's rows of every global batch from ``start_step`` on,
  ``[steps − start_step, B/P, ...]`` per column
  (:func:`remix_jax.data.process_split.process_rows`)."""
  return {k: process_split.process_rows(v, global_batch_size, process_index,
                                        process_count)[start_step:]
          for k, v in columns.items()}


class CachedTrainData(base.TrainData):
  """A long-tailed training split held in memory as uint8 arrays: what both
  in-memory pipelines share (class statistics, the epoch's columns).

  Args:
    split: the kept examples (:class:`remix_jax.data.arrays.SplitArrays`).
    spec: the dataset.
    options: ``shuffle_seed``, ``resample_beta``, ``partner_power`` and
      ``augment``.
    num_classes: ``C``.
    class_names: the ``C`` class names.
    global_batch_size, process_index, process_count: as
      :class:`remix_jax.data.base.TrainData`.

  Extra attributes:
    source_indices: ``int64 [N]`` original index of each cached example, in
      LDAM's order (class by class, shuffled within the class).
    labels: ``int32 [N]`` labels of the cached examples.
  """

  def __init__(self, split: arrays.SplitArrays, spec: registry.DatasetSpec,
               options: options_lib.DataOptions, *, num_classes: int,
               class_names, global_batch_size: int, process_index: int,
               process_count: int):
    super().__init__(
        class_counts=np.bincount(split.labels, minlength=num_classes),
        class_names=class_names, image_shape=split.images.shape[1:],
        global_batch_size=global_batch_size, process_index=process_index,
        process_count=process_count)
    self.spec = spec
    self.source_indices = split.indices
    self.labels = split.labels
    self._shuffle_seed = int(options.shuffle_seed)
    self._beta = float(options.resample_beta)
    self._partner_power = float(options.partner_power)
    self._augment = bool(options.augment) and (spec.pad > 0 or spec.flip)

  def epoch_columns(self, epoch: int, resample: bool,
                    partners: bool = False) -> dict[str, np.ndarray]:
    """The global order of one epoch, ``[steps · B]``, with augmentation
    parameters per position (``offset [.., 2]``, ``flip``) when augmenting
    (:func:`epoch_columns`); with ``partners`` the partner stream's columns
    too (:func:`partner_columns`)."""
    length = self.steps_per_epoch * self.global_batch_size
    columns = epoch_columns(
        self.labels, self.class_counts, length=length,
        shuffle_seed=self._shuffle_seed, beta=self._beta, spec=self.spec,
        augment=self._augment, epoch=epoch, resample=resample)
    if partners:
      columns.update(partner_columns(
          self.labels, self.class_counts, length=length,
          shuffle_seed=self._shuffle_seed, power=self._partner_power,
          spec=self.spec, augment=self._augment, epoch=epoch))
    return columns

  def local_epoch_columns(self, epoch: int, resample: bool, start_step: int,
                          partners: bool = False) -> dict[str, np.ndarray]:
    """This process's rows of :meth:`epoch_columns` from ``start_step`` on,
    ``[steps − start_step, B/P, ...]``."""
    return local_columns(self.epoch_columns(epoch, resample, partners),
                         self.global_batch_size, self.process_index,
                         self.process_count, start_step)
