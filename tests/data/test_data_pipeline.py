"""Train/eval pipelines end to end on the embedded digits (offline, fast)."""

import numpy as np
import pytest

from remix_jax import data
from remix_jax.data.builders import sklearn_digits


def config(**overrides):
  return data.DataOptions(**{"name": "sklearn_digits", "rho": 10.0,
                             **overrides})


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="module")
def train(digits_dir):
  return data.create_train_data(config(), global_batch_size=32,
                                data_dir=digits_dir)


def stack(batches):
  return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def test_builder_splits():
  from sklearn import datasets
  splits = sklearn_digits.split_indices()
  assert len(splits["train"]) == 1347 and len(splits["test"]) == 450
  union = np.concatenate([splits["train"], splits["test"]])
  np.testing.assert_array_equal(np.sort(union), np.arange(1797))
  assert len(datasets.load_digits().target) == 1797


def test_train_split_and_batches(train):
  from sklearn import datasets
  targets = datasets.load_digits().target[sklearn_digits.split_indices()[
      "train"]]
  n_max = np.bincount(targets).min()
  expected = data.longtail_counts(n_max, 10, 10.0)
  np.testing.assert_array_equal(train.class_counts, expected)
  assert train.num_examples == expected.sum()
  assert train.steps_per_epoch == expected.sum() // 32
  assert train.num_classes == 10 and train.image_shape == (8, 8, 1)
  assert train.class_names == [str(d) for d in range(10)]
  np.testing.assert_array_equal(np.bincount(train.labels), expected)
  batches = list(train.iterate(0))
  assert len(batches) == train.steps_per_epoch
  for b in batches:
    assert b["image"].shape == (32, 8, 8, 1) and b["image"].dtype == np.float32
    assert b["label"].shape == (32,) and b["label"].dtype == np.int32
  lo, hi = (0 - 0.3053) / 0.3759, (1 - 0.3053) / 0.3759
  images = stack(batches)["image"]
  assert images.min() >= lo - 1e-5 and images.max() <= hi + 1e-5
  assert images.min() < lo + 1e-3 and images.max() > hi - 1e-3


def test_augmentation_is_seeded_per_example(train):
  columns = train.epoch_columns(3, False)
  offsets, index = columns["offset"], columns["index"]
  assert len(np.unique(offsets, axis=0)) > 1
  got = stack(list(train.iterate(3)))
  padded = np.pad(train.images, [(0, 0), (1, 1), (1, 1), (0, 0)])
  raw = np.stack([padded[i, r:r + 8, c:c + 8]
                  for i, (r, c) in zip(index, offsets)])
  np.testing.assert_allclose(got["image"], (raw / 255 - 0.3053) / 0.3759,
                             atol=1e-5)
  np.testing.assert_array_equal(got["label"], train.labels[index])


def test_same_epoch_identical_other_epoch_different(train, digits_dir):
  a, b = stack(list(train.iterate(1))), stack(list(train.iterate(1)))
  np.testing.assert_array_equal(a["image"], b["image"])
  np.testing.assert_array_equal(a["label"], b["label"])
  c = stack(list(train.iterate(2)))
  assert not np.array_equal(a["label"], c["label"])
  other = data.create_train_data(config(shuffle_seed=1), global_batch_size=32,
                                 data_dir=digits_dir)
  assert not np.array_equal(a["label"], stack(list(other.iterate(1)))["label"])


@pytest.mark.parametrize("resample", [False, True])
def test_start_step_resumes_exactly(train, resample):
  full = list(train.iterate(5, resample=resample))
  resumed = list(train.iterate(5, resample=resample, start_step=3))
  assert len(resumed) == train.steps_per_epoch - 3
  for x, y in zip(full[3:], resumed):
    np.testing.assert_array_equal(x["image"], y["image"])
    np.testing.assert_array_equal(x["label"], y["label"])
  assert not list(train.iterate(5, start_step=train.steps_per_epoch))
  with pytest.raises(ValueError, match="start_step=99 must be in"):
    train.iterate(5, start_step=99)


@pytest.mark.parametrize("resample", [False, True])
def test_processes_split_global_batches(train, digits_dir, resample):
  parts = [data.create_train_data(config(), global_batch_size=32,
                                  process_index=p, process_count=2,
                                  data_dir=digits_dir) for p in range(2)]
  assert parts[0].local_batch_size == 16
  assert parts[0].steps_per_epoch == train.steps_per_epoch
  whole = list(train.iterate(4, resample=resample))
  halves = [list(p.iterate(4, resample=resample)) for p in parts]
  for step, batch in enumerate(whole):
    for key in ("image", "label"):
      np.testing.assert_array_equal(
          np.concatenate([h[step][key] for h in halves]), batch[key])


def test_resampling_balances_classes(digits_dir):
  train = data.create_train_data(config(resample_beta=0.999999),
                                 global_batch_size=32, data_dir=digits_dir)
  labels = stack(list(train.iterate(0, resample=True)))["label"]
  hist = np.bincount(labels, minlength=10) / len(labels)
  np.testing.assert_allclose(hist, 0.1, atol=0.045)
  plain = stack(list(train.iterate(0)))["label"]
  assert np.bincount(plain, minlength=10)[0] / len(plain) > 0.2


def test_no_augmentation_gives_cached_images(digits_dir):
  train = data.create_train_data(config(augment=False), global_batch_size=32,
                                 data_dir=digits_dir)
  got = stack(list(train.iterate(0)))
  index = train.epoch_columns(0, False)["index"]
  assert set(train.epoch_columns(0, False)) == {"index"}
  np.testing.assert_allclose(
      got["image"], (train.images[index] / 255 - 0.3053) / 0.3759, atol=1e-5)


@pytest.mark.parametrize("process_count, batch", [(1, 64), (2, 64), (2, 100)])
def test_eval_counts_every_example_once(digits_dir, process_count, batch):
  parts = [data.create_eval_data(config(), global_batch_size=batch,
                                 process_index=p, process_count=process_count,
                                 data_dir=digits_dir)
           for p in range(process_count)]
  ev = parts[0]
  assert ev.num_examples == 450 and ev.num_batches == -(-450 // batch)
  outs = [list(p.iterate()) for p in parts]
  assert all(len(o) == ev.num_batches for o in outs)
  seen_labels, seen_images = [], []
  for step in range(ev.num_batches):
    for o in outs:
      b = o[step]
      assert b["mask"].dtype == bool and b["label"].dtype == np.int32
      assert b["image"].shape == (batch // process_count, 8, 8, 1)
      seen_labels.append(b["label"][b["mask"]])
      seen_images.append(b["image"][b["mask"]])
  labels, images = np.concatenate(seen_labels), np.concatenate(seen_images)
  assert len(labels) == 450
  np.testing.assert_array_equal(labels, ev.labels)
  single = data.create_eval_data(config(), global_batch_size=450,
                                 data_dir=digits_dir)
  np.testing.assert_allclose(images, next(single.iterate())["image"])


def test_pipelines_run_without_autotuning(train, digits_dir):
  """Autotuning's model thread made destroying an exhausted iterator wait
  for its next optimization round (a stall at every epoch boundary)."""
  from remix_jax.data import base
  eval_data = data.create_eval_data(config(), global_batch_size=32,
                                    data_dir=digits_dir)
  for ds in (train.epoch_dataset(0, False, 0), eval_data.eval_dataset()):
    options = base.finished_dataset(ds).options()
    assert options.autotune.enabled is False
    assert options.deterministic is True
