"""Class re-balancing: the effective number of samples (Cui et al. 2019),
the one formula behind class-balanced re-weighting (RW/DRW,
:func:`remix_jax.losses.class_balanced_weights`) and re-sampling (RS/DRS,
:mod:`remix_jax.data.resample`), and :class:`Rebalance`, the one schedule
that says when each is on:

    E_n = (1 − β^n) / (1 − β),

the expected volume of ``n`` samples. β → 1 gives ``E_n → n``; β = 0 gives
``E_n = 1``. Both rules weight class ``c`` by ``1 / E_{n_c}``.

References:
  Y. Cui et al., "Class-Balanced Loss Based on Effective Number of Samples",
  CVPR 2019. K. Cao et al., "Learning Imbalanced Datasets with
  Label-Distribution-Aware Margin Loss", NeurIPS 2019 (the deferred forms
  DRW/DRS).
"""

from __future__ import annotations

import dataclasses

import numpy as np

#: Re-weighting modes: none, class-balanced loss weights from the start (RW)
#: or from the switch epoch (DRW).
REWEIGHT = ("none", "rw", "drw")
#: Re-sampling modes: none, class-balanced epochs from the start (RS) or
#: from the switch epoch (DRS).
RESAMPLE = ("none", "rs", "drs")


def check_beta(beta, *, name: str = "beta") -> None:
  """One-line ``ValueError`` unless ``0 <= β < 1``, naming β as ``name``."""
  if not 0 <= beta < 1:
    raise ValueError(f"{name} must be in [0, 1), got {beta}")


def effective_number(counts, beta: float) -> np.ndarray:
  """``E_n = (1 − β^n) / (1 − β)`` per class (0 for an empty class).

  Args:
    counts: ``[C]`` training images per class.
    beta: ``0 <= β < 1`` (a one-line ``ValueError`` otherwise).

  Returns:
    ``float64 [C]``.
  """
  check_beta(beta)
  n = np.asarray(counts, np.float64)
  return (1.0 - np.power(beta, n)) / (1.0 - beta)


@dataclasses.dataclass(frozen=True)
class Rebalance:
  """When re-weighting and re-sampling are on.

  A mode ``'none'`` is never on, ``'rw'``/``'rs'`` always, and the deferred
  ``'drw'``/``'drs'`` from epoch ``epoch`` on (epochs counted from 0):
  ``on(e) = e >= epoch``. The same rule serves the host (the epoch order,
  a Python ``int`` epoch) and the device (the loss weights, a traced
  epoch), so DRW and DRS switch at the same step.

  Attributes:
    reweight: one of :data:`REWEIGHT`.
    resample: one of :data:`RESAMPLE`.
    epoch: the switch epoch of the deferred modes.
  """

  reweight: str = "none"
  resample: str = "none"
  epoch: float = 0

  def __post_init__(self):
    for field, value, choices in (("reweight", self.reweight, REWEIGHT),
                                  ("resample", self.resample, RESAMPLE)):
      if value not in choices:
        raise ValueError(f"{field}={value!r} is not valid; choose one "
                         f"of {', '.join(choices)}")

  def reweights(self, epoch):
    """Whether the loss is class-balanced at ``epoch`` (bool, or a traced
    bool for a traced epoch)."""
    return _on(self.reweight, epoch, self.epoch)

  def resamples(self, epoch):
    """Whether the epoch order is class-balanced at ``epoch``."""
    return _on(self.resample, epoch, self.epoch)


def _on(mode: str, epoch, start):
  if mode == "none":
    return False
  if mode in ("rw", "rs"):
    return True
  return epoch >= start
