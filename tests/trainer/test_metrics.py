"""The class groups of the long-tail metrics."""

import numpy as np

from remix_jax import metrics


def test_shot_groups_boundaries():
  groups = metrics.shot_groups([150, 101, 100, 20, 19, 5])
  np.testing.assert_array_equal(groups["many"], [1, 1, 0, 0, 0, 0])
  np.testing.assert_array_equal(groups["medium"], [0, 0, 1, 1, 0, 0])
  np.testing.assert_array_equal(groups["few"], [0, 0, 0, 0, 1, 1])


def test_position_groups_of_cifar10():
  groups = metrics.position_groups(10)
  assert list(np.flatnonzero(groups["head"])) == [0, 1, 2]
  assert list(np.flatnonzero(groups["mid"])) == [3, 4, 5, 6]
  assert list(np.flatnonzero(groups["tail"])) == [7, 8, 9]
