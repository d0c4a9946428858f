"""ResizeMix (Qin et al., 2020): paste a shrunken copy of the whole partner."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from remix_jax.mixers import ops


def draw_scale(rng: jax.Array, n: int, scope: tuple[float, float],
               alpha: float, use_alpha: bool) -> jax.Array:
  """Side ratios τ ``[n]``: U(scope), or Beta(α, α) redrawn on U(scope) when
  it falls outside ``scope`` (the reference's ``use_alpha=True``)."""
  k_beta, k_unif = jax.random.split(rng)
  uniform = jax.random.uniform(k_unif, (n,), minval=scope[0], maxval=scope[1])
  if not use_alpha:
    return uniform
  tau = ops.draw_beta(k_beta, alpha, n)
  inside = (tau >= scope[0]) & (tau <= scope[1])
  return jnp.where(inside, tau, uniform)


def nearest_source_index(dst: jax.Array, start: jax.Array, stop: jax.Array,
                         size: int) -> jax.Array:
  """Nearest-neighbour source index when ``size`` pixels are resized onto
  ``[start, stop)``: ``⌊(dst − start)·size / (stop − start)⌋`` (as
  ``F.interpolate(mode='nearest')``), clipped into the image."""
  extent = jnp.maximum(stop - start, 1)
  return jnp.clip(((dst - start) * size) // extent, 0, size - 1)


def resizemix(rng: jax.Array, images: jax.Array, labels: jax.Array, *,
              alpha: float = 1.0, scope: tuple[float, float] = (0.1, 0.8),
              use_alpha: bool = False, per_sample: bool = False,
              partners: Optional[ops.Partners] = None):
  """ResizeMix: the partner image, resized to the box, is pasted into it.

  τ ~ U(scope) (or Beta(α, α) with rejection onto U(scope), ``use_alpha``);
  the box is CutMix's box for nominal λ = 1 − τ² (sides ⌊τH⌋ × ⌊τW⌋ at a
  uniform centre, clipped); the WHOLE partner image is resized with nearest
  neighbour to the clipped box and pasted. λ = 1 − area(box)/(H·W). The resize is
  a gather with static shapes (no resize to a traced size).

  Args:
    rng: PRNG key.
    images: ``[B, H, W, C]`` batch.
    labels: ``[B]`` integer labels.
    alpha: Beta concentration, used only with ``use_alpha``.
    scope: range of τ.
    use_alpha: draw τ from Beta(α, α) first (SUMix configs set this).
    per_sample: one τ and one box per sample instead of one per batch.
    partners: optional :class:`~remix_jax.mixers.ops.Partners` (a second
      batch, or rows of this batch); ``None``: a random permutation.

  Returns:
    ``(mixed_images, MixInfo(partner, partner_labels, lam, mask))``.

  Reference:
    J. Qin et al., "ResizeMix: Mixing Data with Preserved Object Information
    and True Labels", arXiv:2012.11101, 2020.
  """
  ops.check_batch(images, labels)
  if use_alpha:
    ops.check_alpha(alpha)
  if not 0.0 < scope[0] <= scope[1] <= 1.0:
    raise ValueError(f"scope must satisfy 0 < low <= high <= 1, got {scope}")
  batch, height, width = images.shape[:3]
  k_perm, k_tau, k_box = jax.random.split(rng, 3)
  partners = ops.pair(k_perm, images, labels, partners)
  n = ops.num_draws(batch, per_sample)
  tau = draw_scale(k_tau, n, scope, alpha, use_alpha)
  box = ops.random_box(k_box, 1.0 - tau**2, height, width)
  box = ops.Box(*(ops.broadcast_batch(c, batch) for c in box))
  rows = jnp.arange(height)[None, :]
  cols = jnp.arange(width)[None, :]
  src_r = nearest_source_index(rows, box.y1[:, None], box.y2[:, None], height)
  src_c = nearest_source_index(cols, box.x1[:, None], box.x2[:, None], width)
  rows_of = jnp.arange(batch)[:, None, None]
  shrunk = partners.images[rows_of, src_r[:, :, None], src_c[:, None, :]]
  keep = 1.0 - ops.box_mask(box, height, width)
  mixed = jnp.where(keep[..., None] > 0, images, shrunk)
  return mixed, ops.info_of(partners, ops.kept_fraction(keep), keep)
