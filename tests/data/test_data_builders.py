"""CINIC-10 from a tiny generated archive; CIFAR-100 and iNaturalist 2018
through ``tfds.testing.mock_data`` (no network)."""

import io
import os
import tarfile

import numpy as np
import pytest

from remix_jax import data
from remix_jax.data import source
from remix_jax.data.builders import cinic10
from tests import data_helpers

SPLIT_VALUE = {"train": 0, "valid": 100, "test": 200}
PER_CLASS = 3


config = data.DataOptions


def png(pixels) -> bytes:
  return data_helpers.encode_image(pixels, "PNG")


def file_names(cls):
  """Mixed CIFAR / ImageNet names, given out of sorted order."""
  return [f"n0{cls}_{k}.png" if k % 2 else f"cifar10-x-{k}.png"
          for k in reversed(range(PER_CLASS))]


def write_archive(path):
  """``CINIC-10.tar.gz`` with train/valid/test × 10 classes × 3 PNGs; the
  pixels encode (split, class, file): R = split, G = 20·class, B = k."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with tarfile.open(path, "w:gz") as tar:
    for folder, value in SPLIT_VALUE.items():
      for c, cls in enumerate(cinic10.CLASSES):
        for name in file_names(c):
          k = int(name.split("-")[-1].split("_")[-1][:-4])
          pixels = np.zeros((32, 32, 3), np.uint8)
          pixels[..., :] = (value, 20 * c, k)
          if folder == "test" and c == 0 and k == 0:
            pixels = np.full((32, 32), 77, np.uint8)  # a grey image
          blob = png(pixels)
          info = tarfile.TarInfo(f"{folder}/{cls}/{name}")
          info.size = len(blob)
          tar.addfile(info, io.BytesIO(blob))
      readme = tarfile.TarInfo("README.md")
      readme.size = 2
      tar.addfile(readme, io.BytesIO(b"hi"))


@pytest.fixture(scope="module")
def cinic_dir(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("tfds"))
  write_archive(source.manual_path(data.registry.get_spec("cinic10"), root))
  return root


def test_parse_member():
  assert cinic10.parse_member("./CINIC-10/valid/cat/a.png") == ("valid", "cat",
                                                                "a.png")
  assert cinic10.parse_member("train/cat/readme.txt") is None
  assert cinic10.parse_member("train/cow/a.png") is None


def test_cinic_longtail_train_and_valid_eval(cinic_dir):
  train = data.create_train_data(config(name="cinic10", rho=3.0),
                                 global_batch_size=4, data_dir=cinic_dir)
  counts = data.longtail_counts(PER_CLASS, 10, 3.0)
  np.testing.assert_array_equal(train.class_counts, counts)
  # Original (ImageFolder) order: class by class, file names sorted.
  all_labels = np.repeat(np.arange(10), PER_CLASS)
  np.testing.assert_array_equal(train.source_indices,
                                data.longtail_indices(all_labels, counts))
  sorted_k = [[int(n.split("-")[-1].split("_")[-1][:-4])
               for n in sorted(file_names(c))] for c in range(10)]
  expected = [(0, 20 * (i // PER_CLASS), sorted_k[i // PER_CLASS][
      i % PER_CLASS]) for i in train.source_indices]
  np.testing.assert_array_equal(train.images[:, 0, 0], expected)
  assert train.class_names == list(cinic10.CLASSES)
  batch = next(train.iterate(0))
  assert batch["image"].shape == (4, 32, 32, 3)

  ev = data.create_eval_data(config(name="cinic10"), global_batch_size=8,
                             data_dir=cinic_dir)
  assert ev.num_examples == 10 * PER_CLASS and ev.num_batches == 4
  images = np.concatenate([b["image"][b["mask"]] for b in ev.iterate()])
  red = images[..., 0] * 0.2421 + 0.4789
  np.testing.assert_allclose(red, 100 / 255, atol=1e-4)  # the valid/ folder


def test_cinic_splits_and_grey_images(cinic_dir):
  import tensorflow_datasets as tfds
  builder = tfds.builder("cinic10", data_dir=cinic_dir)
  assert {s: builder.info.splits[s].num_examples
          for s in ("train", "validation", "test")} == {
              "train": 30, "validation": 30, "test": 30}
  test = list(builder.as_dataset(split="test").as_numpy_iterator())
  grey = [ex for ex in test if ex["id"] == b"test/airplane/cifar10-x-0.png"]
  assert grey[0]["image"].shape == (32, 32, 3)
  assert (grey[0]["image"] == 77).all()


@pytest.fixture
def online(monkeypatch):
  """Pretends the download host answers (mock_data makes preparing a no-op)."""
  monkeypatch.setattr(source, "network_available", lambda host: True)


def test_cifar100_mock(online):
  import tensorflow_datasets as tfds
  cfg = config(name="cifar100", rho=10.0, profile="step")
  with tfds.testing.mock_data(num_examples=2000):
    train = data.create_train_data(cfg, global_batch_size=16)
    ev = data.create_eval_data(cfg, global_batch_size=64, process_index=1,
                               process_count=2)
    batches = list(train.iterate(0, resample=True))
    masks = [b["mask"] for b in ev.iterate()]
  per_class = np.bincount(train.labels, minlength=100)
  assert train.num_classes == 100
  assert (per_class[:50] == per_class[0]).all()
  assert (per_class[50:] == int(per_class[0] / 10)).all()
  assert len(batches) == train.steps_per_epoch
  assert batches[0]["image"].shape == (16, 32, 32, 3)
  assert ev.num_examples == 2000 and len(masks) == ev.num_batches == 32
  assert sum(m.sum() for m in masks) == 31 * 32  # process 1: none of the last


def test_inaturalist_mock(online):
  import tensorflow_datasets as tfds
  cfg = config(name="i_naturalist2018", rho=100.0)
  with tfds.testing.mock_data(num_examples=24):
    train = data.create_train_data(cfg, global_batch_size=4)
    full = list(train.iterate(1))
    again = list(train.iterate(1))
    resumed = list(train.iterate(1, start_step=4))
    resampled = list(train.iterate(1, resample=True))
    evals = [data.create_eval_data(cfg, global_batch_size=10, process_index=p,
                                   process_count=2) for p in range(2)]
    masks = [[b["mask"] for b in e.iterate()] for e in evals]
  assert train.num_examples == 24 and train.num_classes == 8142
  assert train.image_shape == (224, 224, 3) and len(full) == 6
  assert full[0]["image"].shape == (4, 224, 224, 3)
  assert full[0]["image"].dtype == np.float32
  for x, y in zip(full, again):
    np.testing.assert_array_equal(x["image"], y["image"])
  for x, y in zip(full[4:], resumed):
    np.testing.assert_array_equal(x["image"], y["image"])
    np.testing.assert_array_equal(x["label"], y["label"])
  assert len(resampled) == 6
  assert all(len(m) == 3 for m in masks)
  assert sum(mask.sum() for m in masks for mask in m) == 24


def test_streamed_resampling_balances_classes():
  import tensorflow as tf
  from remix_jax.data import streaming
  counts = data.longtail_counts(500, 5, 50)
  labels = np.repeat(np.arange(5), counts).astype(np.int32)
  ds = tf.data.Dataset.from_tensor_slices((labels.astype(np.int64), labels))
  rates = data.class_sampling_rates(counts, 0.999999)
  stream = streaming.repeat_by_class_rate(ds, rates, seed=3)
  drawn = np.array([y for _, y in stream.take(counts.sum())
                    .as_numpy_iterator()])
  hist = np.bincount(drawn, minlength=5) / len(drawn)
  np.testing.assert_allclose(hist, 0.2, atol=0.04)
  again = np.array([y for _, y in stream.take(50).as_numpy_iterator()])
  np.testing.assert_array_equal(again, drawn[:50])
