"""CutMix (Yun et al., ICCV 2019): paste a box of the partner image."""

from __future__ import annotations

from typing import Optional

import jax

from remix_jax.mixers import ops


def cut_and_paste(images: jax.Array, partners: ops.Partners, box: ops.Box):
  """Pastes the partners' pixels inside ``box`` (one box, or one per sample).

  Returns ``(mixed_images, MixInfo)`` with λ = 1 − (pasted area)/(H·W), the
  area after clipping at the image border.
  """
  batch, height, width = images.shape[:3]
  keep = 1.0 - ops.broadcast_batch(
      ops.box_mask(box, height, width), batch)
  mixed = ops.paste(images, partners.images, keep)
  return mixed, ops.info_of(partners, ops.kept_fraction(keep), keep)


def cutmix(rng: jax.Array, images: jax.Array, labels: jax.Array, *,
           alpha: float = 1.0, per_sample: bool = False,
           partners: Optional[ops.Partners] = None):
  """CutMix: replace a random box of each image by the partner's pixels.

  λ ~ Beta(α, α); the box has sides ``⌊H√(1−λ)⌋ × ⌊W√(1−λ)⌋`` (halved and
  doubled around the centre as in the reference code) at a uniform random
  centre, clipped at the border. The returned λ is recomputed from the area
  actually pasted: ``λ = 1 − |box|/(H·W)``.

  Args:
    rng: PRNG key.
    images: ``[B, H, W, C]`` batch (any dtype; pixels are copied).
    labels: ``[B]`` integer labels.
    alpha: Beta concentration α > 0.
    per_sample: one λ and one box per sample instead of one per batch.
    partners: optional :class:`~remix_jax.mixers.ops.Partners` (a second
      batch, or rows of this batch); ``None``: a random permutation.

  Returns:
    ``(mixed_images, MixInfo(partner, partner_labels, lam, mask))``; ``mask``
    is 1 where the original pixel is kept.

  Reference:
    S. Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers
    with Localizable Features", ICCV 2019. arXiv:1905.04899.
  """
  ops.check_batch(images, labels)
  ops.check_alpha(alpha)
  batch, height, width = images.shape[:3]
  k_perm, k_lam, k_box = jax.random.split(rng, 3)
  partners = ops.pair(k_perm, images, labels, partners)
  lam = ops.draw_beta(k_lam, alpha, ops.num_draws(batch, per_sample))
  box = ops.random_box(k_box, lam, height, width)
  return cut_and_paste(images, partners, box)
