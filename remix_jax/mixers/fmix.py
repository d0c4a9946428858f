"""FMix (Harris et al., 2020): binarised low-frequency Fourier masks."""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from remix_jax.mixers import ops


def low_frequency_image(rng: jax.Array, n: int, height: int, width: int,
                        decay_power: float = 3.0) -> jax.Array:
  """Random grey images dominated by low frequencies, ``[n, H, W]`` in [0, 1].

  A complex spectrum with i.i.d. normal real/imaginary parts is scaled by
  ``1 / max(|f|, 1/max(H, W))^δ`` and inverse-rFFT'd, then min–max scaled, as
  in the reference ``make_low_freq_image``.
  """
  fy = jnp.fft.fftfreq(height)[:, None]
  fx = jnp.abs(jnp.fft.fftfreq(width)[:width // 2 + 1])[None, :]
  freqs = jnp.sqrt(fy**2 + fx**2)
  scale = 1.0 / jnp.maximum(freqs, 1.0 / max(height, width))**decay_power
  param = jax.random.normal(rng, (2, n) + freqs.shape)
  spectrum = scale * (param[0] + 1j * param[1])
  img = jnp.fft.irfft2(spectrum, s=(height, width))
  img = img - jnp.min(img, axis=(1, 2), keepdims=True)
  return img / (jnp.max(img, axis=(1, 2), keepdims=True) + 1e-12)


def binarise_top(values: jax.Array, count: jax.Array) -> jax.Array:
  """1 on exactly the ``count[i]`` largest entries of each ``values[i]``.

  Args:
    values: ``[n, H, W]`` real maps.
    count: ``[n] int32`` number of ones per map (a traced value is fine).

  Returns:
    ``[n, H, W] float32`` binary masks (ties broken by position).
  """
  n, height, width = values.shape
  order = jnp.argsort(-values.reshape(n, -1), axis=-1)
  on_in_order = (jnp.arange(height * width)[None, :] < count[:, None]).astype(
      jnp.float32)
  # Scatter the sorted on/off pattern back (cheaper than a second argsort).
  mask = jnp.zeros_like(on_in_order).at[jnp.arange(n)[:, None], order].set(
      on_in_order)
  return mask.reshape(n, height, width)


def fmix(rng: jax.Array, images: jax.Array, labels: jax.Array, *,
         alpha: float = 1.0, decay_power: float = 3.0,
         per_sample: bool = False,
         partners: Optional[ops.Partners] = None):
  """FMix: keep the original where a low-frequency mask is on.

  λ ~ Beta(α, α); a low-frequency image (decay power δ) is binarised so that
  its top ``⌈λ·H·W⌉`` pixels are 1; ``x̃ = m·x + (1 − m)·x[π]``. The returned
  λ is the exact fraction of ones, ``⌈λHW⌉/(HW)``. The reference code flips a
  coin between ⌈λHW⌉ and ⌊λHW⌋; we always take the ceiling.

  Args:
    rng: PRNG key.
    images: ``[B, H, W, C]`` batch.
    labels: ``[B]`` integer labels.
    alpha: Beta concentration α > 0.
    decay_power: δ, the spectrum's decay exponent (3 in the paper).
    per_sample: one λ and one mask per sample instead of one per batch.
    partners: optional :class:`~remix_jax.mixers.ops.Partners` (a second
      batch, or rows of this batch); ``None``: a random permutation.

  Returns:
    ``(mixed_images, MixInfo(partner, partner_labels, lam, mask))``.

  Reference:
    E. Harris et al., "FMix: Enhancing Mixed Sample Data Augmentation",
    arXiv:2002.12047, 2020.
  """
  ops.check_batch(images, labels)
  ops.check_alpha(alpha)
  batch, height, width = images.shape[:3]
  k_perm, k_lam, k_mask = jax.random.split(rng, 3)
  partners = ops.pair(k_perm, images, labels, partners)
  n = ops.num_draws(batch, per_sample)
  lam = ops.draw_beta(k_lam, alpha, n)
  noise = low_frequency_image(k_mask, n, height, width, decay_power)
  keep = binarise_top(noise, ops.ceil_count(lam, height * width))
  keep = ops.broadcast_batch(keep, batch)
  mixed = ops.paste(images, partners.images, keep)
  return mixed, ops.info_of(partners, ops.kept_fraction(keep), keep)
