"""Tiny-ImageNet from a tiny generated zip in the official layout; ImageNet's
one-line errors before preparation (no data, no network)."""

import os
import zipfile

import numpy as np
import pytest

from remix_jax import data
from remix_jax.data import source
from remix_jax.data.builders import tiny_imagenet
from tests import data_helpers

#: As listed in wnids.txt (not sorted); labels follow the sorted order.
WNIDS = ("n02124075", "n01443537", "n09193705")
SORTED = sorted(WNIDS)
PER_CLASS = 6
#: Sorted-wnid label of val_0.JPEG, val_1.JPEG, ….
VAL_LABELS = (2, 0, 1, 1, 0, 2)
GREY = (1, 0)  # (label, k) of the greyscale training image
GREY_VALUE = 77


config = data.DataOptions


def jpeg(pixels) -> bytes:
  return data_helpers.encode_image(pixels, "JPEG")


def flat(red, green):
  pixels = np.zeros((64, 64, 3), np.uint8)
  pixels[...] = (red, green, 128)
  return pixels


def red(label):
  return 60 * label + 30


def write_zip(path):
  """``tiny-imagenet-200.zip``: 3 classes × 6 training JPEGs (R encodes the
  label, G = 30·k), 6 validation JPEGs (G = 200), plus the files the builder
  must skip (boxes, words.txt, unlabelled test images)."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  root = "tiny-imagenet-200"
  with zipfile.ZipFile(path, "w") as z:
    z.writestr(f"{root}/wnids.txt", "\n".join(WNIDS) + "\n")
    z.writestr(f"{root}/words.txt",
               "".join(f"{w}\tthing {w}\n" for w in WNIDS))
    for wnid in WNIDS:
      label = SORTED.index(wnid)
      z.writestr(f"{root}/train/{wnid}/{wnid}_boxes.txt", "")
      for k in reversed(range(PER_CLASS)):  # out of sorted order
        pixels = (np.full((64, 64), GREY_VALUE, np.uint8)
                  if (label, k) == GREY else flat(red(label), 30 * k))
        z.writestr(f"{root}/train/{wnid}/images/{wnid}_{k}.JPEG",
                   jpeg(pixels))
    rows = []
    for k, label in enumerate(VAL_LABELS):
      z.writestr(f"{root}/val/images/val_{k}.JPEG",
                 jpeg(flat(red(label), 200)))
      rows.append(f"val_{k}.JPEG\t{SORTED[label]}\t0\t0\t63\t63\n")
    z.writestr(f"{root}/val/val_annotations.txt", "".join(rows))
    z.writestr(f"{root}/test/images/test_0.JPEG", jpeg(flat(0, 0)))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
  """A data_dir with the zip in its manual dir, prepared by the pipeline's
  own path (source.load_builder → builder.download_and_prepare)."""
  root = str(tmp_path_factory.mktemp("tfds"))
  spec = data.registry.get_spec("tiny_imagenet")
  write_zip(source.manual_path(spec, root))
  source.load_builder(spec, root, "test")
  return root


def test_parse_member():
  parse = tiny_imagenet.parse_member
  assert parse("tiny-imagenet-200/train/n01/images/n01_3.JPEG") == (
      "train", "n01", "n01_3.JPEG")
  assert parse("./tiny-imagenet-200/val/images/val_7.JPEG") == (
      "val", None, "val_7.JPEG")
  assert parse("tiny-imagenet-200/train/n01/n01_boxes.txt") is None
  assert parse("tiny-imagenet-200/test/images/test_0.JPEG") is None


def test_tiny_imagenet_splits_labels_and_grey(tiny_dir):
  import tensorflow_datasets as tfds
  builder = tfds.builder("tiny_imagenet", data_dir=tiny_dir)
  assert builder.info.features["label"].names == SORTED
  assert {s: builder.info.splits[s].num_examples
          for s in builder.info.splits} == {
              "train": 3 * PER_CLASS, "validation": len(VAL_LABELS)}
  train = list(builder.as_dataset(split="train").as_numpy_iterator())
  for ex in train:
    wnid, name = ex["id"].decode().split("/")[1:]
    k = int(name[len(wnid) + 1:-len(".JPEG")])
    assert ex["label"] == SORTED.index(wnid)
    assert ex["image"].shape == (64, 64, 3)
    expected = ((GREY_VALUE,) * 3 if (ex["label"], k) == GREY
                else (red(ex["label"]), 30 * k, 128))
    np.testing.assert_allclose(ex["image"][32, 32], expected, atol=3)
  val = list(builder.as_dataset(split="validation").as_numpy_iterator())
  labels = {ex["id"].decode(): ex["label"] for ex in val}
  assert labels == {f"val/val_{k}.JPEG": label
                    for k, label in enumerate(VAL_LABELS)}


@pytest.mark.parametrize("rho", [1.0, 3.0])
def test_tiny_imagenet_pipeline(tiny_dir, rho):
  train = data.create_train_data(config(name="tiny_imagenet", rho=rho),
                                 global_batch_size=4, data_dir=tiny_dir)
  counts = data.longtail_counts(PER_CLASS, 3, rho)
  if rho == 1.0:
    np.testing.assert_array_equal(counts, PER_CLASS)
  np.testing.assert_array_equal(train.class_counts, counts)
  all_labels = np.repeat(np.arange(3), PER_CLASS)
  np.testing.assert_array_equal(train.source_indices,
                                data.longtail_indices(all_labels, counts))
  assert train.class_names == SORTED
  assert train.images.shape == (counts.sum(), 64, 64, 3)
  batch = next(train.iterate(0))
  assert batch["image"].shape == (4, 64, 64, 3)
  assert batch["image"].dtype == np.float32

  ev = data.create_eval_data(config(name="tiny_imagenet"),
                             global_batch_size=4, data_dir=tiny_dir)
  assert ev.num_examples == len(VAL_LABELS) and ev.num_batches == 2
  batches = list(ev.iterate())
  assert batches[0]["image"].shape == (4, 64, 64, 3)
  labels = np.concatenate([b["label"][b["mask"]] for b in batches])
  np.testing.assert_array_equal(labels, VAL_LABELS)  # val_0, val_1, … order


def test_imagenet2012_config():
  spec = data.check_options(config(name="imagenet2012", rho=1.0))
  assert (spec.tfds_name, spec.in_memory, spec.longtail) == (
      "imagenet2012", False, False)
  assert (spec.crop_size, spec.resize_size, spec.eval_split) == (
      224, 256, "validation")


def test_imagenet2012_manual_downloads_missing(tmp_path):
  manual = os.path.join(str(tmp_path), "downloads", "manual")
  cfg = config(name="imagenet2012", data_dir=str(tmp_path))
  with pytest.raises(FileNotFoundError) as err:
    data.create_train_data(cfg, global_batch_size=8)
  message = str(err.value)
  assert "\n" not in message
  assert message.startswith(
      f"imagenet2012 is not prepared in {tmp_path} (from DataOptions.data_dir)"
      f" and the manual downloads {manual}/ILSVRC2012_img_train.tar, "
      f"{manual}/ILSVRC2012_img_val.tar are missing")

  # With only the training tar, tfds would prepare ImageNet without its
  # validation split: the check names the missing tar instead.
  os.makedirs(manual)
  open(os.path.join(manual, "ILSVRC2012_img_train.tar"), "w").close()
  with pytest.raises(FileNotFoundError,
                     match=f"and the manual download {manual}/"
                     "ILSVRC2012_img_val.tar is missing; download "
                     "ILSVRC2012_img_val.tar there"):
    data.create_eval_data(cfg, global_batch_size=8)
