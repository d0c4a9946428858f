"""CIFAR-10-LT on the real prepared CIFAR-10 (skipped when it is absent)."""

import functools
import itertools

import numpy as np
import pytest

from remix_jax import data

CIFAR10_EXP100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]


config = functools.partial(data.DataOptions, name="cifar10_jpeg")


@pytest.fixture(scope="module")
def labels(shared_tfds_dir):
  """Train labels in original order, read with plain tfds."""
  import tensorflow_datasets as tfds
  ds = tfds.load("cifar10_jpeg", data_dir=shared_tfds_dir, split="train",
                 decoders={"image": tfds.decode.SkipDecoding()})
  rows = list(ds.map(lambda e: (e["id"], e["label"])).batch(10_000)
              .as_numpy_iterator())
  ids = np.concatenate([r[0] for r in rows])
  assert ids[0] == b"train_00000" and np.all(ids[:-1] < ids[1:])
  return np.concatenate([r[1] for r in rows])


@pytest.fixture(scope="module")
def train(shared_tfds_dir):
  return data.create_train_data(config(), global_batch_size=128,
                                data_dir=shared_tfds_dir)


def ldam_selection(labels, rho):
  """LDAM-DRW IMBALANCECIFAR10(imb_factor=1/rho, rand_number=0), verbatim."""
  img_max = len(labels) / 10
  img_num = [int(img_max * ((1 / rho) ** (i / (10 - 1.0)))) for i in range(10)]
  np.random.seed(0)
  kept = []
  for the_class, the_img_num in zip(np.unique(labels), img_num):
    idx = np.where(labels == the_class)[0]
    np.random.shuffle(idx)
    kept.extend(idx[:the_img_num])
  return np.array(kept)


def test_selection_is_ldams(train, labels):
  assert train.class_counts.tolist() == CIFAR10_EXP100
  assert train.num_examples == 12_406 and train.steps_per_epoch == 96
  expected = ldam_selection(labels, 100)
  np.testing.assert_array_equal(train.source_indices, expected)
  np.testing.assert_array_equal(
      train.source_indices,
      data.longtail_indices(labels, data.longtail_counts(5000, 10, 100)))
  np.testing.assert_array_equal(train.labels, labels[expected])
  assert train.class_names[0] == "airplane" and train.image_shape == (32, 32, 3)


def test_crop_and_flip_per_example(train):
  columns = train.epoch_columns(0, False)
  index, offsets, flips = (columns[k][:128] for k in ("index", "offset",
                                                       "flip"))
  assert 20 < flips.sum() < 108 and len(np.unique(offsets, axis=0)) > 20
  batch = next(train.iterate(0))
  padded = np.pad(train.images[index], [(0, 0), (4, 4), (4, 4), (0, 0)])
  raw = np.stack([x[r:r + 32, c:c + 32] for x, (r, c) in zip(padded, offsets)])
  raw = np.where(flips[:, None, None, None], raw[:, :, ::-1], raw)
  mean, std = np.array([0.4913, 0.4821, 0.4465]), np.array([0.2451, 0.2427,
                                                            0.2608])
  np.testing.assert_allclose(batch["image"], (raw / 255 - mean) / std,
                             atol=1e-5)
  assert batch["image"].dtype == np.float32 and batch["image"].shape == (
      128, 32, 32, 3)
  assert -2.1 < batch["image"].min() and batch["image"].max() < 2.2


def test_epochs_are_deterministic(train):
  first = list(itertools.islice(train.iterate(7), 5))
  again = list(itertools.islice(train.iterate(7), 5))
  other = next(train.iterate(8))
  for x, y in zip(first, again):
    np.testing.assert_array_equal(x["image"], y["image"])
  assert not np.array_equal(first[0]["label"], other["label"])
  resumed = next(train.iterate(7, start_step=4))
  np.testing.assert_array_equal(resumed["image"], first[4]["image"])


def test_eval_test_split_once_over_two_processes(shared_tfds_dir):
  parts = [data.create_eval_data(config(), global_batch_size=768,
                                 process_index=p, process_count=2,
                                 data_dir=shared_tfds_dir) for p in range(2)]
  assert parts[0].num_examples == 10_000 and parts[0].num_batches == 14
  masks, labels = [], []
  for batches in zip(*(p.iterate() for p in parts)):
    for b in batches:
      masks.append(b["mask"])
      labels.append(b["label"][b["mask"]])
  assert np.concatenate(masks).sum() == 10_000
  np.testing.assert_array_equal(np.concatenate(labels), parts[0].labels)
  assert np.bincount(np.concatenate(labels)).tolist() == [1000] * 10
