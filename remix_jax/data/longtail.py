"""Long-tailed class counts and LDAM's subset selection.

The benchmark of LDAM-DRW (Cao et al. 2019, ``imbalance_cifar.py``), used by
Remix (Chou et al. 2020) for CIFAR-10/100-LT and, with ``n_max = 9000``, for
CINIC-10-LT:

* exponential profile: ``n_c = int(n_max · (1/ρ)^(c / (C − 1)))``, class 0 the
  head;
* step profile: the first ``⌊C/2⌋`` classes keep ``n_max``, the others
  ``int(n_max / ρ)``;
* selection: one legacy NumPy RNG seeded once, then class by class in order,
  shuffle that class's original indices and keep the first ``n_c``.

Pure NumPy; the reference counts of ``docs/datasets.md`` are tested.
"""

from __future__ import annotations

import numbers

import numpy as np

#: The imbalance profiles accepted by ``profile``.
PROFILES = ("exp", "step")

__all__ = ["PROFILES", "check_profile", "check_rho", "longtail_counts",
           "longtail_indices"]


def check_rho(rho) -> None:
  """One-line ``ValueError`` unless the imbalance ratio ``rho`` is ``>= 1``."""
  if (isinstance(rho, bool) or not isinstance(rho, numbers.Real)
      or not 1 <= rho < float("inf")):
    raise ValueError(f"rho={rho!r} must be a finite number >= 1 (the imbalance "
                     "ratio n_max/n_min; 1 = balanced)")


def check_profile(profile) -> None:
  """One-line ``ValueError`` unless ``profile`` is one of :data:`PROFILES`."""
  if profile not in PROFILES:
    raise ValueError(f"unknown long-tail profile {profile!r}; choose one of "
                     f"{', '.join(PROFILES)}")


def longtail_counts(n_max: int, num_classes: int, rho: float,
                    profile: str = "exp") -> np.ndarray:
  """Training images per class for a long-tailed profile (LDAM-DRW's rule).

  ``exp``: ``n_c = int(n_max · (1/ρ)^(c / (C − 1)))`` for ``c = 0 … C−1``.
  ``step``: ``n_max`` for the first ``⌊C/2⌋`` classes, ``int(n_max / ρ)`` for
  the rest. ``ρ = 1`` gives ``n_max`` everywhere. E.g. CIFAR-10 (``n_max =
  5000``) exp ρ=100 → ``[5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]``
  (12,406 images).

  Args:
    n_max: images of the largest class (LDAM: the per-class size of the
      balanced split, 5000 for CIFAR-10, 500 for CIFAR-100, 9000 for CINIC-10).
    num_classes: ``C >= 1``.
    rho: imbalance ratio ``n_max / n_min >= 1``.
    profile: ``'exp'`` or ``'step'``.

  Returns:
    ``int64 [C]`` class counts, class 0 the head.

  References:
    Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
    Margin Loss", NeurIPS 2019 (``imbalance_cifar.py``).
  """
  check_rho(rho)
  check_profile(profile)
  if num_classes < 1 or n_max < 0:
    raise ValueError(f"need num_classes >= 1 and n_max >= 0, got "
                     f"num_classes={num_classes}, n_max={n_max}")
  if profile == "step":
    head = num_classes // 2
    return np.array([int(n_max)] * head
                    + [int(n_max / rho)] * (num_classes - head), np.int64)
  if num_classes == 1:
    return np.array([int(n_max)], np.int64)
  return np.array([int(n_max * (1 / rho) ** (c / (num_classes - 1)))
                   for c in range(num_classes)], np.int64)


def longtail_indices(labels, counts, seed: int = 0) -> np.ndarray:
  """The original indices LDAM-DRW keeps for the given class counts.

  ``rng = np.random.RandomState(seed)`` once (the same stream as
  ``np.random.seed(seed)``); then for ``c = 0 … C−1``:
  ``idx = np.where(labels == c)[0]; rng.shuffle(idx); keep idx[:counts[c]]``.
  With ``seed=0`` and the labels in original CIFAR order this is exactly the
  subset of ``IMBALANCECIFAR10/100(rand_number=0)``.

  Args:
    labels: ``[N]`` integer labels in the dataset's ORIGINAL order.
    counts: ``[C]`` images to keep per class (:func:`longtail_counts`).
    seed: the split seed (0 = LDAM's split; other values give other splits).

  Returns:
    ``int64 [sum(counts)]`` original indices, class by class, each class in
    its shuffled order.

  Raises:
    ValueError: a class has fewer images than requested.
  """
  labels = np.asarray(labels)
  counts = np.asarray(counts, np.int64)
  rng = np.random.RandomState(seed)
  kept = []
  for c, n_c in enumerate(counts):
    idx = np.where(labels == c)[0]
    if n_c > len(idx):
      raise ValueError(f"class {c} has {len(idx)} images, fewer than the "
                       f"{n_c} requested")
    rng.shuffle(idx)
    kept.append(idx[:n_c])
  return np.concatenate(kept).astype(np.int64) if kept else np.zeros(
      0, np.int64)
