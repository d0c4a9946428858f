"""Streamed pipelines for splits too large for memory (iNaturalist 2018).

Every image is kept (the split is long-tailed already: 437,513 images of
8,142 classes, 1,000 down to 2 per class). Each process reads its even share
of the split (``tfds.split_for_jax_process``), with the file order and the
shuffle buffer seeded from ``(shuffle_seed, epoch, resample)`` and the
augmentation of each example from its position in the epoch, so an epoch
replays identically and ``start_step`` resumes it (by skipping the first
positions before decoding).

Class-balanced re-sampling (RS/DRS) cannot draw with replacement from a
stream; each example is instead repeated ``k ~ Poisson(r_c)`` times, with
``r_c`` the expected draws of one example of class ``c`` under RS
(:func:`~remix_jax.data.resample.class_sampling_rates`): the number of draws
of each example of a multinomial sample of size ``N`` is Binomial(N, p_i) ≈
Poisson(N·p_i). The stream is repeated as needed so an epoch keeps exactly
``steps_per_epoch`` batches.

The class counts come from one pass over the labels, cached as JSON next to
the prepared dataset when that folder is writable.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from remix_jax.data import augment
from remix_jax.data import base
from remix_jax.data import options as options_lib
from remix_jax.data import registry
from remix_jax.data import resample as resample_lib

#: Examples held by the (seeded) shuffle buffer of a streamed epoch (at most
#: the process's share of the split).
SHUFFLE_BUFFER = 16_384


def _read(builder, split, *, shuffle_seed=None) -> tf.data.Dataset:
  """``(encoded image, label)`` pairs; files shuffled when a seed is given."""
  ds = builder.as_dataset(
      split=split, shuffle_files=shuffle_seed is not None,
      decoders={"image": tfds.decode.SkipDecoding()},
      read_config=tfds.ReadConfig(shuffle_seed=shuffle_seed))
  return ds.map(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32)))


def _counts_cache(builder, split: str):
  if not builder.is_prepared():
    return None
  return os.path.join(str(builder.data_dir),
                      f"remix_jax-class_counts-{split}.json")


def label_counts(builder, split: str) -> np.ndarray:
  """Examples per class of ``split`` (one pass over the labels, cached).

  Returns:
    ``int64 [C]``.
  """
  num_classes = builder.info.features["label"].num_classes
  cache = _counts_cache(builder, split)
  if cache and os.path.isfile(cache):
    with open(cache) as f:
      return np.asarray(json.load(f), np.int64)
  logging.info("counting the labels of %s/%s (once)", builder.name, split)
  counts = np.zeros(num_classes, np.int64)
  labels = _read(builder, split).map(lambda image, label: label)
  for batch in labels.batch(8192).as_numpy_iterator():
    counts += np.bincount(batch, minlength=num_classes)
  if cache:
    try:
      with open(f"{cache}.{os.getpid()}", "w") as f:
        json.dump(counts.tolist(), f)
      os.replace(f"{cache}.{os.getpid()}", cache)
    except OSError:
      logging.info("cannot write %s; the counts are not cached", cache)
  return counts


def _position_seed(seed: int, position, process_index: int,
                   process_count: int) -> tf.Tensor:
  """A stateless seed per (epoch seed, global position) pair."""
  position = tf.cast(position, tf.int64) * process_count + process_index
  return tf.stack([tf.constant(seed, tf.int64), position])


def repeat_by_class_rate(ds: tf.data.Dataset, rates, seed: int,
                         process_index: int = 0,
                         process_count: int = 1) -> tf.data.Dataset:
  """Streaming class-balanced re-sampling (see module docstring).

  Repeats ``ds`` forever and emits each ``(image, label)`` element
  ``k ~ Poisson(rates[label])`` times, ``k`` from a stateless seed of
  ``(seed, position)``.

  Args:
    ds: ``(image, label)`` elements.
    rates: ``[C]`` expected draws per example of each class
      (:func:`~remix_jax.data.resample.class_sampling_rates`).
    seed: the epoch seed.
    process_index, process_count: make positions distinct across processes.

  Returns:
    The infinite re-sampled stream.
  """
  rates = tf.constant(rates, tf.float32)
  salted = seed + 2**31  # epoch seeds are < 2**31: independent of augmentation

  def repeat(position, example):
    k = tf.random.stateless_poisson(
        [], _position_seed(salted, position, process_index, process_count),
        rates[example[1]], dtype=tf.int64)
    return tf.data.Dataset.from_tensors(example).repeat(k)

  return ds.repeat().enumerate().flat_map(repeat)


class StreamedTrainData(base.TrainData):
  """The full training split, streamed (see module docstring)."""

  def __init__(self, builder, spec: registry.DatasetSpec,
               options: options_lib.DataOptions, *,
               global_batch_size: int, process_index: int = 0,
               process_count: int = 1):
    size = spec.crop_size
    super().__init__(
        class_counts=label_counts(builder, spec.train_split),
        class_names=builder.info.features["label"].names,
        image_shape=(size, size, 3), global_batch_size=global_batch_size,
        process_index=process_index, process_count=process_count)
    self.spec = spec
    self._builder = builder
    self._split = tfds.split_for_jax_process(
        spec.train_split, process_index=process_index,
        process_count=process_count, drop_remainder=True)
    self._shuffle_seed = int(options.shuffle_seed)
    self._buffer = max(1, min(SHUFFLE_BUFFER,
                              self.num_examples // process_count))
    self._augment = bool(options.augment)
    self._rates = resample_lib.class_sampling_rates(
        self.class_counts, float(options.resample_beta))

  def _transform(self, seed: int):
    spec = self.spec

    def transform(position, example):
      image = augment.decode_rgb(example[0])
      if self._augment:
        image = augment.inception_train(
            image, _position_seed(seed, position, self.process_index,
                                  self.process_count),
            spec.crop_size, flip=spec.flip)
      else:
        image = augment.resize_center_crop(image, spec.resize_size,
                                           spec.crop_size)
      image.set_shape((spec.crop_size, spec.crop_size, 3))
      return {"image": augment.normalize(image, spec.mean, spec.std),
              "label": example[1]}

    return transform

  def epoch_dataset(self, epoch: int, resample: bool, start_step: int,
                    partners: bool = False) -> tf.data.Dataset:
    if partners:
      raise ValueError(f"partners=True needs an in-memory dataset; "
                       f"{self.spec.name} is streamed")
    seed = resample_lib.epoch_seed(self._shuffle_seed, epoch, resample)
    local = self.local_batch_size
    ds = _read(self._builder, self._split, shuffle_seed=seed)
    if resample:
      ds = repeat_by_class_rate(ds, self._rates, seed, self.process_index,
                                self.process_count)
    ds = ds.shuffle(self._buffer, seed=seed)
    ds = ds.take(self.steps_per_epoch * local).skip(start_step * local)
    ds = ds.enumerate(start=start_step * local).map(
        self._transform(seed), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)
    return ds.batch(local, drop_remainder=True)


class StreamedEvalData(base.EvalData):
  """The evaluation split streamed in order: each process reads its even
  share (the first ``N mod P`` processes one more example) and pads to the
  common number of batches with masked examples."""

  def __init__(self, builder, spec: registry.DatasetSpec, *,
               global_batch_size: int, process_index: int = 0,
               process_count: int = 1):
    super().__init__(
        num_classes=builder.info.features["label"].num_classes,
        num_examples=int(label_counts(builder, spec.eval_split).sum()),
        global_batch_size=global_batch_size, process_index=process_index,
        process_count=process_count)
    self.spec = spec
    self._builder = builder
    self._split = tfds.split_for_jax_process(
        spec.eval_split, process_index=process_index,
        process_count=process_count, drop_remainder=False)
    quotient, remainder = divmod(self.num_examples, process_count)
    self.num_local_examples = quotient + int(process_index < remainder)

  def eval_dataset(self) -> tf.data.Dataset:
    spec = self.spec
    size = spec.crop_size

    def transform(image, label):
      image = augment.resize_center_crop(augment.decode_rgb(image),
                                         spec.resize_size, size)
      image.set_shape((size, size, 3))
      return {"image": augment.normalize(image, spec.mean, spec.std),
              "label": label, "mask": tf.constant(True)}

    padding = tf.data.Dataset.from_tensors({
        "image": tf.zeros((size, size, 3), tf.float32),
        "label": tf.constant(0, tf.int32), "mask": tf.constant(False)})
    ds = _read(self._builder, self._split).take(self.num_local_examples)
    ds = ds.map(transform, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    total = self.num_batches * self.local_batch_size
    return ds.concatenate(padding.repeat()).take(total).batch(
        self.local_batch_size)
