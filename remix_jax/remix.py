"""The Remix label rule (Chou et al. 2020): a mix whose minority sample
dominates gets the minority label.

:func:`remix_lambda` is Eq. 10 of the paper; :func:`remix_rule` binds it to
the training-set class counts as a :data:`~remix_jax.label_rules.LabelRule`,
so it composes with every input mixer. The generic rules (``plain``, the
lookup by name) are in :mod:`remix_jax.label_rules`.

Reference:
  H.-P. Chou et al., "Remix: Rebalanced Mixup", ECCV Workshops 2020.
  arXiv:2007.03943.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np


def check_kappa_tau(kappa, tau) -> None:
  """One-line ``ValueError`` unless ``κ >= 1`` and ``τ ∈ [0, 1]`` (traced
  values pass)."""
  if isinstance(kappa, (int, float)) and kappa < 1:
    raise ValueError(f"kappa must be >= 1, got {kappa}")
  if isinstance(tau, (int, float)) and not 0.0 <= tau <= 1.0:
    raise ValueError(f"tau must be in [0, 1], got {tau}")


def remix_lambda(lam: jax.Array, n_a: jax.Array, n_b: jax.Array, *,
                 kappa: float = 3.0, tau: float = 0.5) -> jax.Array:
  """Remix (Rebalanced Mixup) label weight, Eq. 10 of Chou et al. 2020.

      λ_y = 0   if n_a/n_b ≥ κ  and  λ < τ
      λ_y = 1   if n_a/n_b ≤ 1/κ and 1 − λ < τ
      λ_y = λ   otherwise

  When one sample's class has at least κ× the training images of the other's
  and the minority image makes up more than 1 − τ of the mix, the label is
  the pure minority label. The ratios are compared as ``n_a ≥ κ·n_b`` and
  ``κ·n_a ≤ n_b``, so a class count of 0 does not divide by zero. ``τ = 0``
  gives back the base mixer (λ_y = λ) for any κ. The two cases exclude each
  other for κ > 1; at κ = 1 with equal counts and τ > 1/2 both can hold, and
  the first one wins.

  Args:
    lam: ``[B]`` input weight of the original sample ``a`` (area-corrected).
    n_a: ``[B]`` training-set count of the class of ``a``.
    n_b: ``[B]`` training-set count of the class of its partner ``b``.
    kappa: κ ≥ 1, the majority ratio (3 in the paper).
    tau: τ ∈ [0, 1], the dominance threshold (0.5 in the paper).

  Returns:
    ``[B]`` label weight λ_y of the original label, dtype of ``lam``.

  Reference:
    H.-P. Chou et al., "Remix: Rebalanced Mixup", ECCV Workshops 2020.
    arXiv:2007.03943.
  """
  check_kappa_tau(kappa, tau)
  lam = jnp.asarray(lam)
  n_a = jnp.asarray(n_a, jnp.float32)
  n_b = jnp.asarray(n_b, jnp.float32)
  a_majority = (n_a >= kappa * n_b) & (lam < tau)
  b_majority = (kappa * n_a <= n_b) & (1.0 - lam < tau)
  lam_y = jnp.where(a_majority, jnp.zeros_like(lam), lam)
  return jnp.where(b_majority & ~a_majority, jnp.ones_like(lam), lam_y)


def remix_rule(class_counts, *, kappa: float = 3.0,
               tau: float = 0.5) -> Callable:
  """A :data:`~remix_jax.label_rules.LabelRule` applying :func:`remix_lambda` with fixed counts.

  Args:
    class_counts: ``[C]`` training-set count of each class.
    kappa: κ of :func:`remix_lambda`.
    tau: τ of :func:`remix_lambda`.

  Returns:
    ``rule(lam, labels_a, labels_b) -> lam_y``.
  """
  counts = jnp.asarray(np.asarray(class_counts), jnp.float32)

  def rule(lam, labels_a, labels_b):
    return remix_lambda(lam, counts[labels_a], counts[labels_b], kappa=kappa,
                        tau=tau)

  return rule

