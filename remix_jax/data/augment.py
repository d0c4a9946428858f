"""Image augmentation and normalization (TensorFlow ops, deterministic).

* CIFAR / CINIC-10 (LDAM-DRW, Remix): zero-pad 4 pixels, random 32×32 crop,
  random horizontal flip. Digits: pad 1 and crop, no flip. The crop offsets
  and flips are drawn in NumPy from the epoch's generator and applied to a
  whole batch with two gathers (:func:`crop_flip`), so they depend only on
  ``(shuffle_seed, epoch, position)``.
* iNaturalist (Remix §5.1, the ImageNet recipe): random-resized crop to 224
  (scale 0.08–1, aspect 3/4–4/3), horizontal flip and colour jitter, each from
  a stateless per-example seed; evaluation resizes the shorter side to 256
  and takes the centre 224×224 crop.
* Normalization: ``(x / 255 − mean) / std`` per channel.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

# In NumPy, shared with the NumPy pipeline.
from remix_jax.data.columns import draw_crop_flip  # noqa: F401  pylint: disable=unused-import


def normalize(images: tf.Tensor, mean: Sequence[float],
              std: Sequence[float]) -> tf.Tensor:
  """``(x − mean) / std`` per channel for ``x`` uint8 (scaled by 1/255) or
  float in ``[0, 1]``; returns float32."""
  x = tf.cast(images, tf.float32)
  if images.dtype == tf.uint8:
    x = x / 255.0
  return (x - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def crop_flip(images: tf.Tensor, offsets: tf.Tensor, flips: tf.Tensor,
              pad: int) -> tf.Tensor:
  """Zero-pads ``pad`` pixels, crops back to ``H×W`` at ``offsets``, flips.

  Args:
    images: ``[B, H, W, C]`` (any dtype; the padding is 0).
    offsets: ``int32 [B, 2]`` top-left corner (row, column) in the padded
      image, each in ``[0, 2·pad]``; ``(pad, pad)`` is the identity crop.
    flips: ``bool [B]``; mirror left-right where True.
    pad: padding on each side.

  Returns:
    ``[B, H, W, C]``, same dtype.
  """
  height, width = images.shape[1], images.shape[2]
  padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
  rows = offsets[:, :1] + tf.range(height)[None]
  cols = offsets[:, 1:] + tf.range(width)[None]
  cols = tf.where(flips[:, None], tf.reverse(cols, axis=[1]), cols)
  out = tf.gather(padded, rows, axis=1, batch_dims=1)
  return tf.gather(out, cols, axis=2, batch_dims=1)


def decode_rgb(encoded: tf.Tensor) -> tf.Tensor:
  """Decodes a JPEG/PNG string to ``uint8 [H, W, 3]`` (grey → RGB)."""
  return tf.io.decode_image(encoded, channels=3, expand_animations=False)


def random_resized_crop(image: tf.Tensor, seed: tf.Tensor, size: int,
                        scale=(0.08, 1.0),
                        ratio=(3 / 4, 4 / 3)) -> tf.Tensor:
  """Inception-style crop: random area fraction in ``scale`` and aspect ratio
  in ``ratio`` (10 attempts, else the whole image), resized to ``size²``.

  Args:
    image: ``uint8 [H, W, C]``.
    seed: ``int32 [2]`` stateless seed.
    size: output side.

  Returns:
    ``float32 [size, size, C]`` in ``[0, 1]``.
  """
  begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
      tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
      seed=seed, min_object_covered=0.0, aspect_ratio_range=ratio,
      area_range=scale, max_attempts=10, use_image_if_no_bounding_boxes=True)
  crop = tf.slice(image, begin, crop_size)
  out = tf.image.resize(tf.cast(crop, tf.float32) / 255.0, [size, size])
  return tf.clip_by_value(out, 0.0, 1.0)


def color_jitter(image: tf.Tensor, seed: tf.Tensor,
                 strength: float = 0.4) -> tf.Tensor:
  """Random brightness, contrast and saturation (each ``±strength``) on a
  float ``[0, 1]`` RGB image, from a stateless ``seed``; clipped to [0, 1]."""
  s1, s2, s3 = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
  x = tf.image.stateless_random_brightness(image, strength, s1)
  x = tf.image.stateless_random_contrast(x, 1 - strength, 1 + strength, s2)
  x = tf.image.stateless_random_saturation(x, 1 - strength, 1 + strength, s3)
  return tf.clip_by_value(x, 0.0, 1.0)


def inception_train(image: tf.Tensor, seed: tf.Tensor, size: int, *,
                    flip: bool = True, jitter: float = 0.4) -> tf.Tensor:
  """Random-resized crop + flip + colour jitter of one ``uint8`` image.

  Returns:
    ``float32 [size, size, C]`` in ``[0, 1]``.
  """
  s_crop, s_flip, s_jitter = tf.unstack(
      tf.random.experimental.stateless_split(seed, 3))
  x = random_resized_crop(image, s_crop, size)
  if flip:
    x = tf.image.stateless_random_flip_left_right(x, s_flip)
  if jitter:
    x = color_jitter(x, s_jitter, jitter)
  return x


def resize_center_crop(image: tf.Tensor, resize: int, crop: int) -> tf.Tensor:
  """Resizes the shorter side to ``resize`` and takes the centre ``crop²``.

  Returns:
    ``float32 [crop, crop, C]`` in ``[0, 1]``.
  """
  shape = tf.cast(tf.shape(image)[:2], tf.float32)
  new = tf.cast(tf.round(shape * resize / tf.reduce_min(shape)), tf.int32)
  new = tf.maximum(new, crop)
  x = tf.image.resize(tf.cast(image, tf.float32) / 255.0, new)
  top = (new[0] - crop) // 2
  left = (new[1] - crop) // 2
  x = tf.slice(x, [top, left, 0], [crop, crop, -1])
  return tf.clip_by_value(x, 0.0, 1.0)
