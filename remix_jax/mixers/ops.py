"""Building blocks of the input mixers (public, for writing a new mixer):
mixing info, pairing, λ draws, boxes.

Every mixer in :mod:`remix_jax.mixers` is a pure function of an rng key and a
batch. It pairs sample ``i`` with a partner, builds the mixed input, and
reports the weight ``lam[i]`` that the ORIGINAL sample ``i`` has in the result
and the partner's label ``partner_labels[i]``. The label side (plain λ, Remix,
SUMix) only consumes that info, so any input mixer composes with any label
rule.

The partners come from one of two sources (:func:`pair`):

* the batch itself: a random permutation (the default), or any index vector
  the caller draws, e.g. UniMix's prior-weighted draw
  (:func:`prior_partners`), passed as :func:`batch_partners`;
* a second batch of the same shape from another sampling stream (CMO's
  minority-weighted sampler, Balanced-MixUp's class-balanced one), passed as
  ``Partners(images, labels)``; sample ``i`` is mixed with row ``i`` of it.

All shapes are static: boxes and masks are built from index comparisons, never
from dynamic slices, so the functions are safe under ``jax.jit``, ``jax.vmap``
and ``jax.shard_map``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp


class Partners(NamedTuple):
  """The partners of a batch, row ``i`` mixed into sample ``i``.

  Attributes:
    images: ``[B, H, W, C]`` partner images (any ``[B, ...]`` for Manifold
      Mixup's index-only use).
    labels: ``[B]`` their labels.
    index: ``[B] int32`` when the partners are rows of the batch itself
      (``images = batch[index]``); ``None`` for a second batch.
  """

  images: jax.Array
  labels: jax.Array
  index: Optional[jax.Array] = None


def batch_partners(images: jax.Array, labels: jax.Array,
                   index: jax.Array) -> Partners:
  """Partners taken from the batch itself: row ``index[i]`` for sample ``i``
  (a permutation, or any draw with replacement)."""
  index = jnp.asarray(index, jnp.int32)
  return Partners(images[index], labels[index], index)


def check_partners(partners: Partners, images: jax.Array) -> None:
  """One-line ``ValueError`` unless ``partners`` matches the batch's shapes."""
  if partners.images.shape != images.shape:
    raise ValueError(f"partners.images must have the batch's shape "
                     f"{tuple(images.shape)}, got "
                     f"{tuple(partners.images.shape)}")
  if partners.labels.shape != images.shape[:1]:
    raise ValueError(f"partners.labels must have shape [B]="
                     f"{tuple(images.shape[:1])}, got "
                     f"{tuple(partners.labels.shape)}")


def pair(rng: jax.Array, images: jax.Array, labels: jax.Array,
         partners: Optional[Partners] = None) -> Partners:
  """The partners of a batch: ``partners`` as given (checked), or a uniformly
  random permutation of the batch drawn from ``rng``."""
  if partners is not None:
    check_partners(partners, images)
    return partners
  return batch_partners(images, labels, permutation(rng, images.shape[0]))


def prior_partners(rng: jax.Array, labels: jax.Array, class_counts,
                   tau: float) -> jax.Array:
  """UniMix's pairing: ``[B] int32`` partner rows of the batch, each drawn
  independently WITH replacement with probability ``∝ n_{y_j}^τ``.

  τ < 0 favours the rare classes of the batch (Xu et al. use −0.5 on
  CIFAR-10-LT, −0.1 on CIFAR-100-LT); τ = 0 is a uniform draw with
  replacement. ``i`` may be its own partner.

  Inside ``shard_map``, ``rng`` must vary over every mesh axis that
  ``labels`` varies over (JAX checks it): to draw the same partners on
  every device from labels gathered over an axis, pass
  ``jax.lax.pcast(rng, axis, to='varying')``.

  Args:
    rng: PRNG key.
    labels: ``[B]`` labels of the batch.
    class_counts: ``[C]`` training-set counts ``n_c`` (> 0 for every class
      present in a batch).
    tau: the exponent τ.

  Returns:
    ``[B] int32`` partner indices into the batch.

  Reference:
    Z. Xu et al., "Towards Calibrated Model for Long-Tailed Visual
    Recognition from Prior Perspective", NeurIPS 2021, arXiv:2111.03874
    (``unimix_sampler`` in github.com/XuZhengzhuo/Prior-LT, ``core.py``).
  """
  counts = jnp.asarray(class_counts, jnp.float32)
  logits = tau * jnp.log(jnp.maximum(counts, 1.0))[labels]
  draws = jax.random.categorical(rng, logits, shape=labels.shape)
  return draws.astype(jnp.int32)


def blend(images: jax.Array, partner_images: jax.Array,
          lam: jax.Array) -> jax.Array:
  """``λᵢ·xᵢ + (1 − λᵢ)·x'ᵢ`` for ``lam [B]``, cast back to the input dtype."""
  w = lam.reshape((-1,) + (1,) * (images.ndim - 1))
  return cast_like(w * images + (1.0 - w) * partner_images, images)


class MixInfo(NamedTuple):
  """Per-sample mixing info returned by every input mixer.

  Attributes:
    partner: ``[B] int32`` when the partners are rows of the batch (sample
      ``i`` was mixed with sample ``partner[i]``); ``None`` when they came
      from a second batch (:class:`Partners` without ``index``).
    partner_labels: ``[B]`` the partner's label of each sample, the second
      label of every label rule.
    lam: ``[B] float32``; the weight of the ORIGINAL sample ``i`` in the mixed
      input, corrected to what was actually pasted (area after clipping for the
      cut mixers, exact pixel count for FMix).
    mask: ``[B, H, W] float32`` for the cut mixers (1 where the original pixel
      is kept, 0 where the partner's pixel is pasted); ``None`` for Mixup.
  """

  partner: Optional[jax.Array]
  partner_labels: jax.Array
  lam: jax.Array
  mask: Optional[jax.Array] = None


def check_batch(images: jax.Array, labels: jax.Array, *,
                images_4d: bool = True) -> None:
  """Raises a one-line ``ValueError`` unless ``images [B,H,W,C]`` (any
  ``[B, ...]`` when not ``images_4d``) and ``labels [B]``."""
  if images_4d and images.ndim != 4:
    raise ValueError(
        f"images must have shape [B, H, W, C], got shape {tuple(images.shape)}")
  if labels.shape != images.shape[:1]:
    raise ValueError(
        f"labels must have shape [B]={tuple(images.shape[:1])}, got "
        f"{tuple(labels.shape)}")


def check_alpha(alpha: float) -> None:
  """Raises unless ``alpha`` (the Beta(α, α) concentration) is positive."""
  if isinstance(alpha, (int, float)) and not alpha > 0:
    raise ValueError(f"alpha must be > 0 for Beta(alpha, alpha), got {alpha}")


def permutation(rng: jax.Array, batch_size: int) -> jax.Array:
  """A uniformly random permutation of ``range(batch_size)`` (the partners)."""
  return jax.random.permutation(rng, batch_size).astype(jnp.int32)


def draw_beta(rng: jax.Array, alpha: float, n: int) -> jax.Array:
  """``n`` draws of λ ~ Beta(α, α) as float32."""
  return jax.random.beta(rng, alpha, alpha, shape=(n,)).astype(jnp.float32)


def num_draws(batch_size: int, per_sample: bool) -> int:
  """How many λ (and boxes/masks) to draw: 1 per batch, or 1 per sample."""
  return batch_size if per_sample else 1


def broadcast_batch(x: jax.Array, batch_size: int) -> jax.Array:
  """Broadcasts a leading axis of size 1 (one draw per batch) to the batch."""
  return jnp.broadcast_to(x, (batch_size,) + x.shape[1:])


def cast_like(x: jax.Array, like: jax.Array) -> jax.Array:
  """Casts a blended float result back to the input dtype (rounding integers)."""
  if jnp.issubdtype(like.dtype, jnp.integer):
    info = jnp.iinfo(like.dtype)
    x = jnp.clip(jnp.round(x), info.min, info.max)
  return x.astype(like.dtype)


def paste(images: jax.Array, partner_images: jax.Array,
          mask: jax.Array) -> jax.Array:
  """``mask·x + (1 − mask)·x'`` for a binary ``mask [B,H,W]``."""
  return jnp.where(mask[..., None] > 0, images, partner_images)


def info_of(partners: Partners, lam: jax.Array,
            mask: Optional[jax.Array] = None) -> MixInfo:
  """The :class:`MixInfo` of a mix with ``partners``."""
  return MixInfo(partners.index, partners.labels, lam, mask)


def box_side(lam: jax.Array, size: int) -> jax.Array:
  """Side of the CutMix box along an axis of ``size`` pixels: ⌊size·√(1−λ)⌋."""
  return jnp.floor(size * jnp.sqrt(jnp.clip(1.0 - lam, 0.0, 1.0))).astype(
      jnp.int32)


class Box(NamedTuple):
  """Half-open pixel boxes ``[y1, y2) × [x1, x2)``, each field ``[n] int32``."""

  y1: jax.Array
  y2: jax.Array
  x1: jax.Array
  x2: jax.Array


def centred_box(cy: jax.Array, cx: jax.Array, lam: jax.Array, height: int,
                width: int) -> Box:
  """The CutMix box for nominal ratio λ centred at ``(cy, cx)``, clipped.

  As in the reference code (Yun et al. 2019): sides ``h = ⌊H√(1−λ)⌋`` and
  ``w = ⌊W√(1−λ)⌋``, corners ``clip(c ∓ side//2, 0, size)``.
  """
  half_h = box_side(lam, height) // 2
  half_w = box_side(lam, width) // 2
  return Box(
      y1=jnp.clip(cy - half_h, 0, height), y2=jnp.clip(cy + half_h, 0, height),
      x1=jnp.clip(cx - half_w, 0, width), x2=jnp.clip(cx + half_w, 0, width))


def random_box(rng: jax.Array, lam: jax.Array, height: int, width: int) -> Box:
  """CutMix boxes for nominal ratios ``lam [n]`` at uniform random centres."""
  ky, kx = jax.random.split(rng)
  n = lam.shape[0]
  cy = jax.random.randint(ky, (n,), 0, height)
  cx = jax.random.randint(kx, (n,), 0, width)
  return centred_box(cy, cx, lam, height, width)


def box_mask(box: Box, height: int, width: int) -> jax.Array:
  """``[n, H, W]`` float mask, 1 INSIDE the box (built by index comparisons)."""
  rows = jnp.arange(height)[None, :, None]
  cols = jnp.arange(width)[None, None, :]
  inside = ((rows >= box.y1[:, None, None]) & (rows < box.y2[:, None, None]) &
            (cols >= box.x1[:, None, None]) & (cols < box.x2[:, None, None]))
  return inside.astype(jnp.float32)


def kept_fraction(mask: jax.Array) -> jax.Array:
  """Area-corrected λ: the fraction of pixels where the original is kept."""
  return jnp.mean(mask, axis=(-2, -1))


def ceil_count(lam: jax.Array, total: int) -> jax.Array:
  """⌈λ·total⌉ as int32; a float32 product within 1e-4 above an integer counts
  as that integer (so λ = k/total gives exactly k)."""
  return jnp.ceil(lam * total - 1e-4).astype(jnp.int32)
