"""What the trainer sees: :class:`TrainData` and :class:`EvalData`.

Both yield dicts of NumPy arrays holding this process's share of each global
batch (``[global_batch / process_count, ...]``), ready for
``jax.make_array_from_process_local_data`` / a device mesh. The tfds
pipelines build a ``tf.data`` pipeline per call of ``iterate``
(``epoch_dataset`` / ``eval_dataset``); the NumPy one
(:mod:`remix_jax.data.numpy_pipeline`) yields its batches itself
(``epoch_batches`` / ``eval_batches``). This module imports TensorFlow only
when a ``tf.data`` pipeline is finished.
"""

from __future__ import annotations

from typing import Iterator, Sequence, TYPE_CHECKING

import numpy as np

from remix_jax.data import process_split

if TYPE_CHECKING:
  import tensorflow as tf


#: Batches that :func:`finish` prefetches ahead of the consumer.
PREFETCH_BATCHES = 2


def finish(ds: tf.data.Dataset) -> Iterator[dict[str, np.ndarray]]:
  """Deterministic options, no autotuning, prefetch, NumPy iterator.

  Autotuning is off because its model thread outlives the data: an
  exhausted iterator with autotuning on waited for that thread's next
  optimization round when it was destroyed (seconds to tens of seconds),
  and the trainer destroys one at every epoch boundary and after every
  evaluation. Without it, parallel maps (``num_parallel_calls=AUTOTUNE``)
  run on as many threads as tf.data's pool has, and the prefetch buffer
  holds :data:`PREFETCH_BATCHES` batches.
  """
  return finished_dataset(ds).as_numpy_iterator()


def finished_dataset(ds: tf.data.Dataset) -> tf.data.Dataset:
  """``ds`` with :func:`finish`'s options and prefetch."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top,redefined-outer-name
  options = tf.data.Options()
  options.deterministic = True
  options.autotune.enabled = False
  return ds.with_options(options).prefetch(PREFETCH_BATCHES)


class TrainData:
  """The training split of one process: class statistics and epochs.

  Attributes:
    num_classes: ``C``.
    image_shape: ``(H, W, C)`` of the batches.
    class_counts: ``int64 [C]`` training images per class (``n_c``, for
      Remix, RW/DRW, LDAM and RS).
    class_names: the ``C`` class names.
    num_examples: training images, ``Σ_c n_c``.
    global_batch_size: images per step over all processes.
    local_batch_size: this process's share, ``global / process_count``.
    steps_per_epoch: ``num_examples // global_batch_size`` (the remainder of
      an epoch is dropped).
    process_index, process_count: this process and the number of processes.
  """

  def __init__(self, *, class_counts: np.ndarray, class_names: Sequence[str],
               image_shape: tuple[int, ...], global_batch_size: int,
               process_index: int, process_count: int):
    self.local_batch_size = process_split.local_batch_size(
        global_batch_size, process_count, process_index)
    self.global_batch_size = global_batch_size
    self.process_index = process_index
    self.process_count = process_count
    self.class_counts = np.asarray(class_counts, np.int64)
    self.num_classes = len(self.class_counts)
    self.class_names = list(class_names)
    self.image_shape = tuple(int(d) for d in image_shape)
    self.num_examples = int(self.class_counts.sum())
    self.steps_per_epoch = self.num_examples // global_batch_size

  def iterate(self, epoch: int, *, resample: bool = False,
              start_step: int = 0,
              partners: bool = False) -> Iterator[dict[str, np.ndarray]]:
    """The batches ``start_step … steps_per_epoch − 1`` of ``epoch``.

    Deterministic given ``(shuffle_seed, epoch, resample)``: the order,
    re-sampling and augmentation of every position are fixed, so iterating an
    epoch twice gives identical batches and ``start_step=k`` resumes exactly
    at batch ``k``.

    Args:
      epoch: the epoch number (seeds the order and augmentation).
      resample: class-balanced re-sampling (RS; DRS when switched on from an
        epoch by the trainer).
      start_step: the first batch to yield, ``0 <= start_step <=
        steps_per_epoch``.
      partners: add a second, independently drawn batch of the same size
        (``partner_image``, ``partner_label``): examples drawn with
        replacement, class ``c`` with probability ``∝ n_c^(1 − r)``
        (``DataOptions.partner_power`` = r), augmented like the first; it is
        fixed by ``(shuffle_seed, epoch)`` as the first batch is.

    Returns:
      An iterator of exactly ``steps_per_epoch − start_step`` batches, each
      ``{'image': [B/P, H, W, C], 'label': [B/P]}`` (float32 normalized
      images, int32 labels), with ``partners`` also ``partner_image`` and
      ``partner_label``.
    """
    if not 0 <= start_step <= self.steps_per_epoch:
      raise ValueError(f"start_step={start_step} must be in "
                       f"[0, {self.steps_per_epoch}]")
    return self.epoch_batches(int(epoch), bool(resample), int(start_step),
                              bool(partners))

  def epoch_batches(self, epoch: int, resample: bool, start_step: int,
                    partners: bool = False
                    ) -> Iterator[dict[str, np.ndarray]]:
    """The batches behind :meth:`iterate` (arguments checked): by default
    :meth:`epoch_dataset`, finished (:func:`finish`)."""
    return finish(self.epoch_dataset(epoch, resample, start_step, partners))

  def epoch_dataset(self, epoch: int, resample: bool, start_step: int,
                    partners: bool = False) -> tf.data.Dataset:
    """The batched ``tf.data`` pipeline behind :meth:`iterate` (a tfds
    pipeline defines it, or :meth:`epoch_batches` instead)."""
    raise NotImplementedError


class EvalData:
  """The evaluation split of one process, every example exactly once.

  Attributes:
    num_classes: ``C``.
    num_examples: evaluation images over all processes.
    num_batches: batches per process (equal on every process); the last ones
      are padded.
    global_batch_size, local_batch_size, process_index, process_count: as in
      :class:`TrainData`.
  """

  def __init__(self, *, num_classes: int, num_examples: int,
               global_batch_size: int, process_index: int,
               process_count: int):
    self.local_batch_size = process_split.local_batch_size(
        global_batch_size, process_count, process_index)
    self.global_batch_size = global_batch_size
    self.process_index = process_index
    self.process_count = process_count
    self.num_classes = int(num_classes)
    self.num_examples = int(num_examples)
    self.num_batches = -(-self.num_examples // global_batch_size)

  def iterate(self) -> Iterator[dict[str, np.ndarray]]:
    """``num_batches`` dicts ``{'image': float32 [B/P, ...], 'label': int32
    [B/P], 'mask': bool [B/P]}``; ``mask`` is False on padding, so summing
    masked metrics over all processes counts each example exactly once."""
    return self.eval_batches()

  def eval_batches(self) -> Iterator[dict[str, np.ndarray]]:
    """The batches behind :meth:`iterate`: by default :meth:`eval_dataset`,
    finished (:func:`finish`)."""
    return finish(self.eval_dataset())

  def eval_dataset(self) -> tf.data.Dataset:
    """The batched ``tf.data`` pipeline behind :meth:`iterate` (a tfds
    pipeline defines it, or :meth:`eval_batches` instead)."""
    raise NotImplementedError
