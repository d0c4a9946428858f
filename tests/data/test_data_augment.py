"""Augmentation ops: crop/flip against NumPy, normalization, iNat crops."""

import numpy as np
import tensorflow as tf

from remix_jax.data import augment


def numpy_crop_flip(images, offsets, flips, pad):
  padded = np.pad(images, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
  h, w = images.shape[1:3]
  out = []
  for x, (r, c), f in zip(padded, offsets, flips):
    crop = x[r:r + h, c:c + w]
    out.append(crop[:, ::-1] if f else crop)
  return np.stack(out)


def test_crop_flip_matches_numpy():
  rng = np.random.default_rng(0)
  images = rng.integers(1, 256, (16, 32, 32, 3), dtype=np.uint8)
  offsets, flips = augment.draw_crop_flip(rng, 16, 4, True)
  assert offsets.min() >= 0 and offsets.max() <= 8 and flips.any()
  assert not flips.all()
  got = augment.crop_flip(tf.constant(images), tf.constant(offsets),
                          tf.constant(flips), 4).numpy()
  np.testing.assert_array_equal(got, numpy_crop_flip(images, offsets, flips, 4))
  identity = augment.crop_flip(tf.constant(images), tf.fill([16, 2], 4),
                               tf.zeros([16], tf.bool), 4).numpy()
  np.testing.assert_array_equal(identity, images)
  # Zero padding shows up as black borders for shifted crops.
  corner = augment.crop_flip(tf.constant(images), tf.zeros([16, 2], tf.int32),
                             tf.zeros([16], tf.bool), 4).numpy()
  assert (corner[:, :4] == 0).all() and (corner[:, :, :4] == 0).all()


def test_no_flip_draws():
  _, flips = augment.draw_crop_flip(np.random.default_rng(0), 100, 1, False)
  assert not flips.any()


def test_normalize():
  x = tf.constant([[[[0, 255]]]], tf.uint8)
  out = augment.normalize(x, (0.5, 0.5), (0.25, 0.5)).numpy()
  np.testing.assert_allclose(out, [[[[-2.0, 1.0]]]])
  assert out.dtype == np.float32


def test_inception_train_is_seeded():
  image = tf.constant(np.random.default_rng(0).integers(
      0, 256, (60, 90, 3), dtype=np.uint8))
  a = augment.inception_train(image, tf.constant([1, 2], tf.int64), 24)
  b = augment.inception_train(image, tf.constant([1, 2], tf.int64), 24)
  c = augment.inception_train(image, tf.constant([1, 3], tf.int64), 24)
  assert a.shape == (24, 24, 3) and a.dtype == tf.float32
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert not np.array_equal(a.numpy(), c.numpy())
  assert 0 <= a.numpy().min() and a.numpy().max() <= 1


def test_resize_center_crop():
  image = tf.constant(np.arange(40 * 80 * 3, dtype=np.int64).reshape(
      40, 80, 3) % 256, tf.uint8)
  out = augment.resize_center_crop(image, 32, 28)
  assert out.shape == (28, 28, 3)
  gray = tf.io.encode_png(tf.zeros((5, 7, 1), tf.uint8))
  assert augment.decode_rgb(gray).shape == (5, 7, 3)
