"""Long-tail counts and selection, re-sampling and process slicing (NumPy)."""

import numpy as np
import pytest

from remix_jax import class_balance
from remix_jax import data
from remix_jax.data import resample
from remix_jax.data import process_split

CIFAR10_EXP100 = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
CIFAR10_EXP10 = [5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500]
CINIC10_EXP100 = [9000, 5395, 3234, 1938, 1162, 696, 417, 250, 150, 90]


@pytest.mark.parametrize("n_max, num_classes, rho, profile, total", [
    (5000, 10, 100, "exp", 12_406),
    (5000, 10, 10, "exp", 20_431),
    (500, 100, 100, "exp", 10_847),
    (500, 100, 10, "exp", 19_573),
    (5000, 10, 100, "step", 25_250),
    (5000, 10, 10, "step", 27_500),
    (500, 100, 100, "step", 25_250),
    (500, 100, 10, "step", 27_500),
    (9000, 10, 100, "exp", 22_332),
    (9000, 10, 200, "exp", 20_168),
])
def test_reference_totals(n_max, num_classes, rho, profile, total):
  counts = data.longtail_counts(n_max, num_classes, rho, profile)
  assert counts.shape == (num_classes,) and counts.dtype == np.int64
  assert counts.sum() == total
  assert counts[0] == n_max


@pytest.mark.parametrize("n_max, rho, expected", [
    (5000, 100, CIFAR10_EXP100), (5000, 10, CIFAR10_EXP10),
    (9000, 100, CINIC10_EXP100)])
def test_reference_exp_lists(n_max, rho, expected):
  assert data.longtail_counts(n_max, 10, rho).tolist() == expected


def test_cifar100_exp100_ends():
  counts = data.longtail_counts(500, 100, 100)
  assert counts[0] == 500 and counts[-1] == 5
  assert np.all(np.diff(counts) <= 0)


def test_step_and_balanced():
  assert data.longtail_counts(500, 100, 100, "step").tolist() == (
      [500] * 50 + [5] * 50)
  assert data.longtail_counts(10, 5, 4, "step").tolist() == [10, 10, 2, 2, 2]
  assert data.longtail_counts(5000, 10, 1).tolist() == [5000] * 10
  assert data.longtail_counts(7, 1, 50).tolist() == [7]


@pytest.mark.parametrize("rho", [0.5, 0, -3, float("nan"), "10"])
def test_rho_below_one_rejected(rho):
  with pytest.raises(ValueError, match="rho=.* must be a finite number >= 1"):
    data.longtail_counts(5000, 10, rho)


def test_unknown_profile_lists_choices():
  with pytest.raises(ValueError, match="unknown long-tail profile 'linear'; "
                     "choose one of exp, step"):
    data.longtail_counts(5000, 10, 10, "linear")


def ldam_reference(labels, img_num_per_cls, seed=0):
  """LDAM-DRW's IMBALANCECIFAR10.gen_imbalanced_data, as written there."""
  np.random.seed(seed)
  targets_np = np.array(labels, dtype=np.int64)
  classes = np.unique(targets_np)
  kept = []
  for the_class, the_img_num in zip(classes, img_num_per_cls):
    idx = np.where(targets_np == the_class)[0]
    np.random.shuffle(idx)
    kept.extend(idx[:the_img_num])
  return np.array(kept)


def test_selection_matches_ldam_on_synthetic_labels():
  labels = np.random.default_rng(3).permutation(np.repeat(np.arange(10), 500))
  counts = data.longtail_counts(500, 10, 100)
  got = data.longtail_indices(labels, counts)
  np.testing.assert_array_equal(got, ldam_reference(labels, counts))
  np.testing.assert_array_equal(np.bincount(labels[got]), counts)
  other = data.longtail_indices(labels, counts, seed=1)
  assert set(got.tolist()) != set(other.tolist())
  np.testing.assert_array_equal(other, ldam_reference(labels, counts, seed=1))


def test_selection_rejects_too_many():
  with pytest.raises(ValueError, match="class 1 has 2 images, fewer than"):
    data.longtail_indices(np.array([0, 0, 0, 1, 1]), [3, 3])


def test_effective_number_and_rates():
  counts = np.array([5000, 500, 50, 0])
  np.testing.assert_allclose(class_balance.effective_number(counts, 0.9999),
                             (1 - 0.9999 ** counts) / (1 - 0.9999))
  np.testing.assert_allclose(class_balance.effective_number(counts, 0.0),
                             [1, 1, 1, 0])
  rates = resample.class_sampling_rates(counts, 0.9999)
  assert rates[-1] == 0
  assert np.isclose(np.sum(counts * rates), counts.sum())
  # beta = 0: natural frequencies, every example drawn once on average.
  np.testing.assert_allclose(resample.class_sampling_rates(counts[:3], 0.0), 1)
  with pytest.raises(ValueError, match=r"beta must be in \[0, 1\), got 1.0"):
    resample.class_sampling_rates(counts, 1.0)


def test_resampled_epoch_near_uniform_for_beta_to_one():
  counts = data.longtail_counts(5000, 10, 100)
  labels = np.repeat(np.arange(10), counts)
  rng = resample.epoch_rng(0, 0, True)
  order = resample.epoch_order(rng, labels, counts, resample=True,
                               beta=0.999999)
  assert len(order) == counts.sum()
  hist = np.bincount(labels[order], minlength=10)
  np.testing.assert_allclose(hist / hist.mean(), 1, atol=0.12)
  plain = resample.epoch_order(resample.epoch_rng(0, 0, False), labels, counts,
                               resample=False, beta=0.999999)
  np.testing.assert_array_equal(np.sort(plain), np.arange(counts.sum()))


def test_process_rows_partition_global_batches():
  values = np.arange(40)
  whole = process_split.process_rows(values, 8, 0, 1)
  parts = [process_split.process_rows(values, 8, p, 4) for p in range(4)]
  assert whole.shape == (5, 8) and parts[0].shape == (5, 2)
  np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)
  index, mask = process_split.padded_eval_order(10, 4)
  assert index.tolist() == list(range(10)) + [0, 0]
  assert mask.sum() == 10 and not mask[10:].any()


def test_batch_not_divisible_by_processes():
  with pytest.raises(ValueError, match="global batch size 10 is not divisible "
                     "by the number of processes 4"):
    process_split.local_batch_size(10, 4)
