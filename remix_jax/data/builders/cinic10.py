"""``cinic10``: CINIC-10 read from the official archive in tfds' manual_dir.

CINIC-10 (Darlow et al. 2018) combines CIFAR-10 with down-sampled ImageNet
images of the same 10 classes: 270,000 32×32 PNGs split equally into
``train``, ``valid`` and ``test`` (9,000 per class per split). Remix (Chou et
al. 2020) trains on ``train`` and evaluates on ``valid``.

Download ``CINIC-10.tar.gz`` (https://datashare.ed.ac.uk/handle/10283/3192)
into ``<data_dir>/downloads/manual/``. The archive holds
``train/``, ``valid/``, ``test/``, each with the class folders ``airplane`` …
``truck`` of PNG files (optionally under one top-level folder).

* Splits ``train``, ``validation`` (the archive's ``valid/``), ``test``.
* ``id``: ``'<folder>/<class>/<file>'``; sorting ids gives torchvision
  ``ImageFolder``'s order (classes, then file names, sorted), the original
  index order of imbalanced-DL's CINIC-10-LT.
* ``image``: ``uint8 [32, 32, 3]`` (grey images converted to RGB).
"""

from __future__ import annotations

import tensorflow_datasets as tfds

from remix_jax.data.builders import archive as archive_lib

ARCHIVE = "CINIC-10.tar.gz"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog",
           "horse", "ship", "truck")
#: tfds split name -> folder in the archive.
SPLIT_FOLDERS = {"train": "train", "validation": "valid", "test": "test"}


def parse_member(path: str):
  """``(folder, class, file)`` of an archive member ``…/folder/class/x.png``,
  or ``None`` for anything else."""
  parts = archive_lib.path_parts(path)
  if len(parts) < 3 or not parts[-1].lower().endswith(".png"):
    return None
  folder, cls, name = parts[-3:]
  if folder not in SPLIT_FOLDERS.values() or cls not in CLASSES:
    return None
  return folder, cls, name


class Cinic10(tfds.core.GeneratorBasedBuilder):
  """CINIC-10 from the manually downloaded ``CINIC-10.tar.gz``."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "train / validation / test from the archive."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Download {ARCHIVE} from https://datashare.ed.ac.uk/handle/10283/3192 "
      "and place it (not extracted) in the manual directory, by default "
      "<data_dir>/downloads/manual/.")

  def _info(self) -> tfds.core.DatasetInfo:
    return archive_lib.image_classification_info(
        self, image_shape=(32, 32, 3), label_names=CLASSES,
        homepage="https://github.com/BayesWatch/cinic-10",
        citation="@article{darlow2018cinic, title={CINIC-10 is not ImageNet "
                 "or CIFAR-10}, author={Darlow, Luke N. and Crowley, Elliot "
                 "J. and Antoniou, Antreas and Storkey, Amos J.}, "
                 "journal={arXiv:1810.03505}, year={2018}}")

  def _split_generators(self, dl_manager):
    archive = archive_lib.manual_archive(dl_manager, ARCHIVE,
                                         self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    return {split: self._generate_examples(dl_manager.iter_archive(archive),
                                           folder)
            for split, folder in SPLIT_FOLDERS.items()}

  def _generate_examples(self, members, folder):
    for path, fobj in members:
      parsed = parse_member(path)
      if parsed is None or parsed[0] != folder:
        continue
      key = "/".join(parsed)
      yield key, {"id": key, "image": archive_lib.decode_rgb(fobj.read()),
                  "label": parsed[1]}
