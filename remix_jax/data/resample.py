"""Epoch order: a seeded shuffle, or class-balanced re-sampling (RS/DRS).

Re-sampling follows the class-balanced rule of Cui et al. (2019) as used by
LDAM-DRW's DRS and by Remix-RS/DRS (Chou et al. 2020): an example of class
``c`` is drawn with probability proportional to ``1 / E_{n_c}``, the
effective number of ``n_c`` samples (:mod:`remix_jax.class_balance`; β =
0.9999 by default). β → 1 makes every class equally likely; β = 0 keeps the
natural, long-tailed frequencies. An epoch draws ``N`` examples WITH
replacement, so its length does not change.

Every random choice of an epoch comes from ``(shuffle_seed, epoch,
resample)``, so an epoch can be replayed (and resumed mid-way) exactly.

References:
  Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
  CVPR 2019. Cao et al., "Learning Imbalanced Datasets with
  Label-Distribution-Aware Margin Loss", NeurIPS 2019. Chou et al., "Remix:
  Rebalanced Mixup", ECCV Workshops 2020.
"""

from __future__ import annotations

import numpy as np

from remix_jax import class_balance


def class_sampling_rates(counts, beta: float) -> np.ndarray:
  """Expected draws per epoch of ONE example of each class under RS.

  ``r_c ∝ 1 / E_{n_c}``, scaled so that an epoch draws ``N = Σ_c n_c`` examples
  (``Σ_c n_c · r_c = N``). Class ``c`` then fills the fraction
  ``n_c / E_{n_c} / Σ_k (n_k / E_{n_k})`` of an epoch. Empty classes get 0.

  Args:
    counts: ``[C]`` training images per class.
    beta: the effective-number β, ``0 <= β < 1``.

  Returns:
    ``float64 [C]`` rates.

  Raises:
    ValueError: ``beta`` outside ``[0, 1)`` (one line).
  """
  counts = np.asarray(counts, np.float64)
  eff = class_balance.effective_number(counts, beta)
  weights = np.divide(1.0, eff, out=np.zeros_like(eff), where=counts > 0)
  return weights * counts.sum() / np.sum(counts * weights)


def epoch_rng(shuffle_seed: int, epoch: int,
              resample: bool) -> np.random.Generator:
  """The NumPy generator behind every random choice of one epoch."""
  return np.random.default_rng([int(shuffle_seed), int(epoch), int(resample)])


#: The third seed word of the partner stream's generator (the epoch's own
#: generators use 0 and 1, the ``resample`` flag).
PARTNER_STREAM = 2


def partner_rng(shuffle_seed: int, epoch: int) -> np.random.Generator:
  """The NumPy generator of one epoch's partner stream (its order and
  augmentation), independent of the epoch's own (:func:`epoch_rng`)."""
  return np.random.default_rng([int(shuffle_seed), int(epoch),
                                PARTNER_STREAM])


def partner_order(rng: np.random.Generator, labels, class_counts,
                  power: float, size: int) -> np.ndarray:
  """``size`` example indices drawn WITH replacement, example ``i`` with
  probability ``∝ n_{y_i}^(−power)``, so class ``c`` with ``∝ n_c^(1 −
  power)`` (CMO's ``get_weighted_sampler``, which normalises the class
  weights ``n_c^(−r)`` to sum ``C`` first; Balanced-MixUp's class-balanced
  sampler is ``power = 1``).

  Args:
    rng: the partner generator (:func:`partner_rng`).
    labels: ``[N]`` labels of the cached training examples.
    class_counts: ``[C]`` training images per class.
    power: r >= 0.
    size: how many indices.

  Returns:
    ``int64 [size]`` indices into the cached examples.
  """
  counts = np.asarray(class_counts, np.float64)
  weights = np.power(np.maximum(counts, 1.0), -float(power))
  p = weights[np.asarray(labels)]
  return rng.choice(len(p), size=size, replace=True,
                    p=p / p.sum()).astype(np.int64)


def epoch_seed(shuffle_seed: int, epoch: int, resample: bool) -> int:
  """A 31-bit integer seed for one epoch (tf.data shuffles, tfds file order)."""
  return int(epoch_rng(shuffle_seed, epoch, resample).integers(2**31 - 1))


def epoch_order(rng: np.random.Generator, labels, class_counts, *,
                resample: bool, beta: float) -> np.ndarray:
  """The example indices of one epoch, ``N`` of them.

  Args:
    rng: the epoch's generator (:func:`epoch_rng`).
    labels: ``[N]`` labels of the cached training examples.
    class_counts: ``[C]`` training images per class.
    resample: ``False``: a permutation of ``range(N)``; ``True``: ``N`` draws
      with replacement, example ``i`` with probability ``∝ 1/E_{n_{y_i}}``.
    beta: the effective-number β of the re-sampling.

  Returns:
    ``int64 [N]`` indices into the cached examples.
  """
  labels = np.asarray(labels)
  n = len(labels)
  if not resample:
    return rng.permutation(n).astype(np.int64)
  p = class_sampling_rates(class_counts, beta)[labels]
  return rng.choice(n, size=n, replace=True, p=p / p.sum()).astype(np.int64)
