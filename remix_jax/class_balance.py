"""The effective number of samples (Cui et al. 2019), the one formula behind
class-balanced re-weighting (RW/DRW, :func:`remix_jax.losses.
class_balanced_weights`) and re-sampling (RS/DRS, :mod:`remix_jax.data.
resample`):

    E_n = (1 − β^n) / (1 − β),

the expected volume of ``n`` samples. β → 1 gives ``E_n → n``; β = 0 gives
``E_n = 1``. Both rules weight class ``c`` by ``1 / E_{n_c}``.

Reference:
  Y. Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
  CVPR 2019.
"""

from __future__ import annotations

import numpy as np


def effective_number(counts, beta: float) -> np.ndarray:
  """``E_n = (1 − β^n) / (1 − β)`` per class (0 for an empty class).

  Args:
    counts: ``[C]`` training images per class.
    beta: ``0 <= β < 1`` (a one-line ``ValueError`` otherwise).

  Returns:
    ``float64 [C]``.
  """
  if not 0 <= beta < 1:
    raise ValueError(f"beta must be in [0, 1), got {beta}")
  n = np.asarray(counts, np.float64)
  return (1.0 - np.power(beta, n)) / (1.0 - beta)
