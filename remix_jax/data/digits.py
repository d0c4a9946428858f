"""scikit-learn's bundled 8×8 handwritten digits as uint8 arrays (no
TensorFlow): the images and the fixed split behind both ``sklearn_digits``
(the tfds builder, :mod:`remix_jax.data.builders.sklearn_digits`) and
``digits_numpy`` (:mod:`remix_jax.data.numpy_pipeline`).

* images: ``uint8 [8, 8, 1]``, the 0–16 intensities scaled to 0–255
  (``round(v · 255 / 16)``); labels ``0`` … ``9``.
* Splits: a fixed seeded 75/25 split, ``np.random.RandomState(0)``
  permutation of the 1,797 indices: the first 1,347 are ``train``, the other
  450 ``test``, each in increasing original index.
"""

from __future__ import annotations

import numpy as np

#: Seed and fraction of the fixed train/test split.
SPLIT_SEED = 0
TRAIN_FRACTION = 0.75
#: The class names.
CLASS_NAMES = tuple(str(d) for d in range(10))


def images_and_labels() -> tuple[np.ndarray, np.ndarray]:
  """All 1,797 digits in ``load_digits()`` order: ``(uint8 [N, 8, 8, 1],
  int64 [N])``."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  digits = datasets.load_digits()
  images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
  return images[..., None], digits.target.astype(np.int64)


def split_indices() -> dict[str, np.ndarray]:
  """The original ``load_digits()`` indices of each split, sorted."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  n = len(datasets.load_digits().target)
  perm = np.random.RandomState(SPLIT_SEED).permutation(n)
  n_train = int(n * TRAIN_FRACTION)
  return {"train": np.sort(perm[:n_train]), "test": np.sort(perm[n_train:])}
