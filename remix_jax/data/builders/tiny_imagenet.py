"""``tiny_imagenet``: Tiny-ImageNet-200 read from the official zip in tfds'
manual_dir.

Tiny-ImageNet (Le & Yang 2015, Stanford CS231n) holds 200 ImageNet classes
of 64×64 JPEGs: 500 training and 50 validation images per class (the 10,000
test images have no labels and are skipped). SUMix (Qin et al. 2024) trains
on ``train`` and evaluates on ``validation``.

Download ``tiny-imagenet-200.zip``
(http://cs231n.stanford.edu/tiny-imagenet-200.zip) into
``<data_dir>/downloads/manual/``. The zip holds ``tiny-imagenet-200/`` with
``wnids.txt`` (the 200 WordNet ids), ``train/<wnid>/images/<wnid>_<k>.JPEG``,
``val/images/val_<k>.JPEG`` and ``val/val_annotations.txt`` (tab-separated:
file, wnid, bounding box).

* Splits ``train`` (100,000 images), ``validation`` (10,000).
* ``label``: ClassLabel named by the wnids of ``wnids.txt``, sorted (the
  class order of torchvision's ``ImageFolder`` on ``train/``).
* ``id``: ``'train/<wnid>/<file>'`` or ``'val/<file>'``; sorting the train
  ids gives ``ImageFolder``'s order (classes, then file names, sorted).
* ``image``: ``uint8 [64, 64, 3]`` as PIL decodes the JPEGs (grey images
  converted to RGB), stored losslessly.
"""

from __future__ import annotations

import zipfile

import tensorflow_datasets as tfds

from remix_jax.data.builders import archive as archive_lib

ARCHIVE = "tiny-imagenet-200.zip"
#: tfds split name -> folder in the archive.
SPLIT_FOLDERS = {"train": "train", "validation": "val"}


def parse_member(path: str):
  """``(folder, wnid, file)`` of a training image
  ``…/train/<wnid>/images/x.JPEG``, ``(folder, None, file)`` of a validation
  image ``…/val/images/x.JPEG``, or ``None`` for anything else."""
  parts = archive_lib.path_parts(path)
  if not parts[-1].lower().endswith(".jpeg"):
    return None
  if len(parts) >= 4 and parts[-4] == "train" and parts[-2] == "images":
    return "train", parts[-3], parts[-1]
  if len(parts) >= 3 and parts[-3:-1] == ["val", "images"]:
    return "val", None, parts[-1]
  return None


def _read_member(z: zipfile.ZipFile, *tail: str) -> str:
  """The text of the zip member whose path ends with ``tail``."""
  for name in z.namelist():
    if archive_lib.path_parts(name)[-len(tail):] == list(tail):
      return z.read(name).decode()
  raise ValueError(f"{'/'.join(tail)} is not in the zip; is it the official "
                   f"{ARCHIVE}?")


def read_metadata(archive) -> tuple[list[str], dict[str, str]]:
  """The class names and validation labels in the zip.

  Args:
    archive: the path of ``tiny-imagenet-200.zip``.

  Returns:
    ``(sorted wnids, {validation file name: wnid})`` from ``wnids.txt`` and
    ``val/val_annotations.txt``.
  """
  with archive.open("rb") as f, zipfile.ZipFile(f) as z:
    wnids = _read_member(z, "wnids.txt").split()
    rows = _read_member(z, "val", "val_annotations.txt").splitlines()
  val_labels = dict(row.split("\t")[:2] for row in rows if row.strip())
  return sorted(wnids), val_labels


class TinyImagenet(tfds.core.GeneratorBasedBuilder):
  """Tiny-ImageNet-200 from the manually downloaded
  ``tiny-imagenet-200.zip``."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "train / validation from the archive."}
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      f"Download {ARCHIVE} from http://cs231n.stanford.edu/{ARCHIVE} and "
      "place it (not extracted) in the manual directory, by default "
      "<data_dir>/downloads/manual/.")

  def _info(self) -> tfds.core.DatasetInfo:
    # Label names are set from the archive's wnids.txt when preparing.
    return archive_lib.image_classification_info(
        self, image_shape=(64, 64, 3), homepage="http://cs231n.stanford.edu/",
        citation="@article{le2015tiny, title={Tiny ImageNet Visual "
                 "Recognition Challenge}, author={Le, Ya and Yang, Xuan}, "
                 "journal={CS 231N}, year={2015}}")

  def _split_generators(self, dl_manager):
    archive = archive_lib.manual_archive(dl_manager, ARCHIVE,
                                         self.MANUAL_DOWNLOAD_INSTRUCTIONS)
    wnids, val_labels = read_metadata(archive)
    self.info.features["label"].names = wnids
    return {split: self._generate_examples(dl_manager.iter_archive(archive),
                                           folder, val_labels)
            for split, folder in SPLIT_FOLDERS.items()}

  def _generate_examples(self, members, folder, val_labels):
    for path, fobj in members:
      parsed = parse_member(path)
      if parsed is None or parsed[0] != folder:
        continue
      _, wnid, name = parsed
      key = "/".join(p for p in parsed if p)
      yield key, {"id": key, "image": archive_lib.decode_rgb(fobj.read()),
                  "label": wnid or val_labels[name]}
