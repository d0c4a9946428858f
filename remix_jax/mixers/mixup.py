"""Mixup (Zhang et al., ICLR 2018): convex combination of two images."""

from __future__ import annotations

from typing import Optional

import jax

from remix_jax.mixers import ops


def mixup(rng: jax.Array, images: jax.Array, labels: jax.Array, *,
          alpha: float = 1.0, per_sample: bool = False,
          partners: Optional[ops.Partners] = None):
  """Mixup: ``x̃ᵢ = λ·xᵢ + (1 − λ)·x'ᵢ`` with λ ~ Beta(α, α).

  ``x'ᵢ`` is ``x_{π(i)}`` for a random permutation π, or row ``i`` of
  ``partners``.

  Args:
    rng: PRNG key.
    images: ``[B, H, W, C]`` batch (float; integer inputs are rounded back).
    labels: ``[B]`` integer labels (used for shape checks; the label side is
      built from the returned info, see :mod:`remix_jax.label_rules`).
    alpha: Beta concentration α > 0 (1.0 for CIFAR in Remix, 0.4 for iNat).
    per_sample: draw one λ per sample instead of one per batch.
    partners: optional :class:`~remix_jax.mixers.ops.Partners` (a second
      batch, or rows of this batch); ``None``: a random permutation.

  Returns:
    ``(mixed_images, MixInfo(partner, partner_labels, lam, mask=None))``.

  Reference:
    H. Zhang et al., "mixup: Beyond Empirical Risk Minimization", ICLR 2018.
    arXiv:1710.09412.
  """
  ops.check_batch(images, labels)
  ops.check_alpha(alpha)
  batch = images.shape[0]
  k_perm, k_lam = jax.random.split(rng)
  partners = ops.pair(k_perm, images, labels, partners)
  lam = ops.broadcast_batch(
      ops.draw_beta(k_lam, alpha, ops.num_draws(batch, per_sample)),
      batch)
  return ops.blend(images, partners.images, lam), ops.info_of(partners, lam)
