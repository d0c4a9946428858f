"""UniMix (Xu et al., NeurIPS 2021): a mixing factor that favours the rarer of
the two classes."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from remix_jax.mixers import ops


def unimix_factor(rng: jax.Array, n_a: jax.Array, n_b: jax.Array,
                  alpha: float) -> jax.Array:
  """UniMix's weight of sample ``a``, one per sample, as released:

      ξ* = n_b / (n_a + n_b),   λ = ξ* + b, b ~ Beta(α, α),
      λ ← λ − 1 if λ > 1

  The more images the partner's class has, the larger the weight of ``a``.

  Args:
    rng: PRNG key.
    n_a: ``[B]`` training-set count of each sample's class.
    n_b: ``[B]`` training-set count of its partner's class.
    alpha: α > 0 of Beta(α, α) (0.8 in the released configs).

  Returns:
    ``[B] float32`` λ in [0, 1].
  """
  n_a = jnp.asarray(n_a, jnp.float32)
  n_b = jnp.asarray(n_b, jnp.float32)
  xi = n_b / jnp.maximum(n_a + n_b, 1.0)
  lam = xi + ops.draw_beta(rng, alpha, n_a.shape[0])
  return jnp.where(lam > 1.0, lam - 1.0, lam)


def unimix(rng: jax.Array, images: jax.Array, labels: jax.Array, *,
           class_counts, alpha: float = 0.8,
           partners: Optional[ops.Partners] = None):
  """UniMix: ``x̃ᵢ = λᵢ·xᵢ + (1 − λᵢ)·x'ᵢ`` with :func:`unimix_factor`'s λᵢ.

  The label weight follows the image weight. UniMix pairs each sample with a
  row of the batch drawn ∝ ``n_y^τ`` WITH replacement
  (:func:`~remix_jax.mixers.ops.prior_partners`, pass it with
  :func:`~remix_jax.mixers.ops.batch_partners`); without ``partners`` the
  partner is a random permutation.

  Paper and code: the paper's introduction describes a "tail-favoured mixing
  factor"; the released factor wraps ξ* + Beta(α, α) onto [0, 1], which is
  close to uniform for any ξ* (E[λ] stays within 0.47–0.53 at α = 0.8), so
  in the released code the tail emphasis comes mostly from the pairing and
  the logit-adjusted (Bayias) loss. This follows the code.

  Args:
    rng: PRNG key.
    images: ``[B, H, W, C]`` batch.
    labels: ``[B]`` integer labels.
    class_counts: ``[C]`` training-set counts ``n_c``.
    alpha: α > 0 of Beta(α, α) (``unimix_alp`` = 0.8).
    partners: optional :class:`~remix_jax.mixers.ops.Partners`.

  Returns:
    ``(mixed_images, MixInfo(partner, partner_labels, lam, mask=None))``.

  Reference:
    Z. Xu, Z. Chai, C. Yuan, "Towards Calibrated Model for Long-Tailed Visual
    Recognition from Prior Perspective", NeurIPS 2021, arXiv:2111.03874;
    ``unimix_factor`` and ``unimix`` in ``core.py`` of
    github.com/XuZhengzhuo/Prior-LT.
  """
  ops.check_batch(images, labels)
  ops.check_alpha(alpha)
  k_perm, k_lam = jax.random.split(rng)
  partners = ops.pair(k_perm, images, labels, partners)
  counts = jnp.asarray(class_counts, jnp.float32)
  lam = unimix_factor(k_lam, counts[labels], counts[partners.labels], alpha)
  return ops.blend(images, partners.images, lam), ops.info_of(partners, lam)
