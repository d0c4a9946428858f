"""Manifold Mixup (Verma et al., ICML 2019): mix hidden states at a random layer.

The mixer only draws the mixing info: partners, λ and the candidate layer ``k``
(0 is the input, 1… are hidden layers the model exposes). The model calls
:func:`apply_manifold_mix` at each of its candidate layers with that layer's
static index; the mix happens where the traced ``info.layer`` equals it:

    h_k ← λ·h_k + (1 − λ)·h_k[partner]   at the chosen layer k only.

The choice is a mask (``jnp.where``) over the static candidate indices, never a
Python branch on a traced value, so one compiled step serves every layer.

Reference: V. Verma et al., "Manifold Mixup: Better Representations by
Interpolating Hidden States", ICML 2019. arXiv:1806.05236.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from remix_jax.mixers import ops


class ManifoldInfo(NamedTuple):
  """Mixing info for Manifold Mixup.

  Attributes:
    partner: ``[B] int32`` partner index of each sample (a row of the batch).
    lam: ``[B] float32`` weight of the original sample (the same value for the
      whole batch unless ``per_sample``).
    layer: ``[] int32`` the candidate layer to mix at (0 = input).
    partner_labels: ``[B]`` the partner's label of each sample (set by
      :func:`manifold_mixup`; the model's hook does not read it).
  """

  partner: jax.Array
  lam: jax.Array
  layer: jax.Array
  partner_labels: Optional[jax.Array] = None


def manifold_mixup(rng: jax.Array, images: jax.Array, labels: jax.Array, *,
                   alpha: float = 2.0, num_layers: int = 3,
                   per_sample: bool = False,
                   partners: Optional[ops.Partners] = None):
  """Draws Manifold Mixup info; the images are returned unchanged.

  λ ~ Beta(α, α) (one per batch, or one per sample with ``per_sample``), the
  partner is a random permutation and the layer ``k`` is uniform over
  ``range(num_layers)``. The model mixes at layer ``k`` with
  :func:`apply_manifold_mix`.

  Args:
    rng: PRNG key.
    images: ``[B, ...]`` batch (returned as is).
    labels: ``[B]`` integer labels.
    alpha: Beta concentration (Verma et al. use 2.0 on CIFAR).
    num_layers: number of candidate layers of the model, input included
      (``model.num_mix_layers``).
    per_sample: one λ per sample instead of one per batch.
    partners: optional partners that are rows of this batch (with an
      ``index``, e.g. :func:`~remix_jax.mixers.ops.prior_partners`); a second
      batch cannot be mixed inside the model, whose hidden states it lacks.

  Returns:
    ``(images, ManifoldInfo)``.
  """
  ops.check_batch(images, labels, images_4d=False)
  ops.check_alpha(alpha)
  if num_layers < 1:
    raise ValueError(f"num_layers must be >= 1, got {num_layers}")
  batch = images.shape[0]
  if partners is not None and partners.index is None:
    raise ValueError("partners must be rows of the batch (with an index) for "
                     "manifold_mixup: a second batch has no hidden states")
  k_perm, k_lam, k_layer = jax.random.split(rng, 3)
  partners = ops.pair(k_perm, images, labels, partners)
  lam = ops.draw_beta(k_lam, alpha, ops.num_draws(batch, per_sample))
  info = ManifoldInfo(
      partner=partners.index, partner_labels=partners.labels,
      lam=ops.broadcast_batch(lam, batch),
      layer=jax.random.randint(k_layer, (), 0, num_layers, dtype=jnp.int32))
  return images, info


def apply_manifold_mix(h: jax.Array, info: ManifoldInfo | None,
                       layer: int) -> jax.Array:
  """The model-side hook: mixes ``h`` if ``layer`` is the chosen one.

  Args:
    h: ``[B, ...]`` activations at candidate layer ``layer``.
    info: the :class:`ManifoldInfo` of the step, or ``None`` (no mixing).
    layer: this candidate's static index (0 = input).

  Returns:
    ``λ·h + (1 − λ)·h[partner]`` when ``info.layer == layer``, else ``h``.
  """
  if info is None:
    return h
  lam = info.lam.reshape((-1,) + (1,) * (h.ndim - 1)).astype(h.dtype)
  mixed = lam * h + (1 - lam) * h[info.partner]
  return jnp.where(info.layer == layer, mixed, h)
