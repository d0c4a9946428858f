"""The partner stream of the in-memory pipeline: a second batch per step,
drawn ∝ n_c^(−r) per example, fixed by (shuffle_seed, epoch)."""

import numpy as np
import pytest

from remix_jax import data
from remix_jax.data import resample
from tests.data.test_data_pipeline import config as options
from tests.data.test_data_pipeline import digits_dir  # noqa: F401  pylint: disable=unused-import
from tests.data.test_data_pipeline import stack
from tests.data.test_data_pipeline import train  # noqa: F401  pylint: disable=unused-import


def test_partners_leave_the_first_stream_unchanged(train):
  plain = stack(list(train.iterate(3)))
  both = stack(list(train.iterate(3, partners=True)))
  assert set(both) == {"image", "label", "partner_image", "partner_label"}
  for key in ("image", "label"):
    np.testing.assert_array_equal(both[key], plain[key])
  assert both["partner_image"].shape == both["image"].shape
  assert not np.array_equal(both["partner_label"], both["label"])


def test_partner_stream_replays_resumes_and_splits_over_processes(
    train, digits_dir):
  full = list(train.iterate(2, partners=True))
  again = list(train.iterate(2, partners=True))
  resumed = list(train.iterate(2, partners=True, start_step=3))
  for x, y in zip(full, again):
    np.testing.assert_array_equal(x["partner_image"], y["partner_image"])
  for x, y in zip(full[3:], resumed):
    np.testing.assert_array_equal(x["partner_image"], y["partner_image"])
    np.testing.assert_array_equal(x["partner_label"], y["partner_label"])
  other = stack(list(train.iterate(4, partners=True)))["partner_label"]
  assert not np.array_equal(stack(full)["partner_label"], other)
  halves = [list(data.create_train_data(
      options(), global_batch_size=32, process_index=p, process_count=2,
      data_dir=digits_dir).iterate(2, partners=True)) for p in range(2)]
  for step, batch in enumerate(full):
    np.testing.assert_array_equal(
        np.concatenate([h[step]["partner_image"] for h in halves]),
        batch["partner_image"])


@pytest.mark.parametrize("power", [1.0, 0.0])
def test_partner_classes_follow_n_to_the_one_minus_r(digits_dir, power):
  train = data.create_train_data(options(partner_power=power),
                                 global_batch_size=32, data_dir=digits_dir)
  labels = np.concatenate([stack(list(train.iterate(e, partners=True)))[
      "partner_label"] for e in range(4)])
  hist = np.bincount(labels, minlength=10) / len(labels)
  counts = train.class_counts
  want = counts ** (1 - power) / np.sum(counts ** (1 - power))
  np.testing.assert_allclose(hist, want, atol=0.03)


def test_partner_order_by_hand():
  rng = np.random.default_rng(0)
  labels = np.array([0, 0, 0, 1])
  order = resample.partner_order(rng, labels, [3, 1], 1.0, 40000)
  # Per example ∝ n^(−1): each class-0 row 1/6, the class-1 row 1/2.
  freq = np.bincount(order, minlength=4) / len(order)
  np.testing.assert_allclose(freq, [1 / 6, 1 / 6, 1 / 6, 1 / 2], atol=0.01)


def test_bad_partner_power_is_one_line():
  with pytest.raises(ValueError, match=r"^partner_power=-1.0 must be >= 0$"):
    data.check_options(options(partner_power=-1.0))
