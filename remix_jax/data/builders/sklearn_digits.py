"""``sklearn_digits``: scikit-learn's bundled 8×8 handwritten digits as tfds.

The 1,797 real images of ``sklearn.datasets.load_digits`` (UCI optical
recognition of handwritten digits, 10 classes) ship inside scikit-learn, so
this builder prepares itself with no download; it is the offline dataset of
the quickstart.

* ``image``: ``uint8 [8, 8, 1]``, the 0–16 intensities scaled to 0–255
  (``round(v · 255 / 16)``).
* ``label``: ClassLabel ``'0'`` … ``'9'``; ``id``: ``'<split>_<index>'`` with
  the 4-digit index into ``load_digits()`` (sorting ids restores that order).
* Splits: a fixed seeded 75/25 split, ``np.random.RandomState(0)``
  permutation of the 1,797 indices: the first 1,347 are ``train``, the other
  450 ``test``, each stored in increasing original index.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from remix_jax.data.builders import archive as archive_lib

#: Seed and fraction of the fixed train/test split.
SPLIT_SEED = 0
TRAIN_FRACTION = 0.75


def split_indices() -> dict[str, np.ndarray]:
  """The original ``load_digits()`` indices of each split, sorted."""
  from sklearn import datasets  # pylint: disable=g-import-not-at-top
  n = len(datasets.load_digits().target)
  perm = np.random.RandomState(SPLIT_SEED).permutation(n)
  n_train = int(n * TRAIN_FRACTION)
  return {"train": np.sort(perm[:n_train]), "test": np.sort(perm[n_train:])}


class SklearnDigits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's 8×8 digits (1,797 images), prepared offline."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Seeded 75/25 train/test split."}

  def _info(self) -> tfds.core.DatasetInfo:
    return archive_lib.image_classification_info(
        self, image_shape=(8, 8, 1), label_names=[str(d) for d in range(10)],
        homepage="https://scikit-learn.org/stable/modules/generated/"
                 "sklearn.datasets.load_digits.html")

  def _split_generators(self, dl_manager):
    del dl_manager  # bundled with scikit-learn: nothing to download
    return {name: self._generate_examples(name, idx)
            for name, idx in split_indices().items()}

  def _generate_examples(self, split, indices):
    from sklearn import datasets  # pylint: disable=g-import-not-at-top
    digits = datasets.load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    for i in indices:
      key = f"{split}_{i:04d}"
      yield key, {"id": key, "image": images[i][..., None],
                  "label": int(digits.target[i])}
