"""Balanced-MixUp (Galdran et al., MICCAI 2021): Mixup of an instance-sampled
batch with a class-balanced one, weighted towards the instance batch."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from remix_jax.mixers import ops


def balanced_mixup(rng: jax.Array, images: jax.Array, labels: jax.Array, *,
                   alpha: float = 0.2, per_sample: bool = False,
                   partners: Optional[ops.Partners] = None):
  """Balanced-MixUp: ``x̃ᵢ = (1 − λ_b)·xᵢ + λ_b·x'ᵢ`` with λ_b ~ Beta(α, 1).

  ``x`` is the instance-sampled batch and ``x'`` the partner batch, which the
  method draws class-balanced (each class equally likely, with replacement),
  paired by position. λ_b ~ Beta(α, 1) is the weight of the BALANCED image, so
  a small α keeps the mix close to the instance batch (E[λ_b] = α/(α + 1):
  0.17 at α = 0.2). The returned ``lam = 1 − λ_b`` is the weight of the
  original sample, as for every mixer; the label weight follows the image
  weight (soft targets ``(1 − λ_b)·e_y + λ_b·e_{y'}``).

  Args:
    rng: PRNG key.
    images: ``[B, H, W, C]`` instance-sampled batch.
    labels: ``[B]`` integer labels.
    alpha: α > 0 of Beta(α, 1); the authors use 0.1, 0.2 and 0.3.
    per_sample: one λ_b per sample instead of one per batch (the released
      code draws one per batch).
    partners: the class-balanced batch
      (:class:`~remix_jax.mixers.ops.Partners`); ``None``: a random
      permutation of this batch (plain Mixup with Beta(α, 1)).

  Returns:
    ``(mixed_images, MixInfo(partner, partner_labels, lam, mask=None))``.

  Reference:
    A. Galdran, G. Carneiro, M. A. González Ballester, "Balanced-MixUp for
    Highly Imbalanced Medical Image Classification", MICCAI 2021,
    arXiv:2109.09850; ``train_lt_mxp.py::run_one_epoch`` of
    github.com/agaldran/balanced_mixup (``lam = np.random.beta(a=do_mixup,
    b=1)``, ``(1 - lam) * inputs + lam * balanced_inputs``).
  """
  ops.check_batch(images, labels)
  ops.check_alpha(alpha)
  batch = images.shape[0]
  k_perm, k_lam = jax.random.split(rng)
  partners = ops.pair(k_perm, images, labels, partners)
  n = ops.num_draws(batch, per_sample)
  lam_b = jax.random.beta(k_lam, alpha, 1.0, shape=(n,)).astype(jnp.float32)
  lam = ops.broadcast_batch(1.0 - lam_b, batch)
  return ops.blend(images, partners.images, lam), ops.info_of(partners, lam)
