"""``sklearn_digits``: scikit-learn's bundled 8×8 handwritten digits as tfds.

The 1,797 real images of ``sklearn.datasets.load_digits`` (UCI optical
recognition of handwritten digits, 10 classes) ship inside scikit-learn, so
this builder prepares itself with no download; it is the offline dataset of
the quickstart.

The images, labels and split are those of :mod:`remix_jax.data.digits`
(``image`` ``uint8 [8, 8, 1]``, ``label`` ClassLabel ``'0'`` … ``'9'``, a
seeded 75/25 ``train``/``test`` split); ``id`` is ``'<split>_<index>'``
with the 4-digit index into ``load_digits()`` (sorting ids restores that
order). ``digits_numpy`` reads the same arrays without tfds.
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from remix_jax.data import digits
from remix_jax.data.builders import archive as archive_lib

#: The original ``load_digits()`` indices of each split, sorted.
split_indices = digits.split_indices


class SklearnDigits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's 8×8 digits (1,797 images), prepared offline."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Seeded 75/25 train/test split."}

  def _info(self) -> tfds.core.DatasetInfo:
    return archive_lib.image_classification_info(
        self, image_shape=(8, 8, 1), label_names=list(digits.CLASS_NAMES),
        homepage="https://scikit-learn.org/stable/modules/generated/"
                 "sklearn.datasets.load_digits.html")

  def _split_generators(self, dl_manager):
    del dl_manager  # bundled with scikit-learn: nothing to download
    return {name: self._generate_examples(name, idx)
            for name, idx in split_indices().items()}

  def _generate_examples(self, split, indices):
    images, labels = digits.images_and_labels()
    for i in indices:
      key = f"{split}_{i:04d}"
      yield key, {"id": key, "image": images[i], "label": int(labels[i])}
