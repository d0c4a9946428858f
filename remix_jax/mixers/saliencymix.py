"""SaliencyMix (Uddin et al., ICLR 2021): CutMix with the box on the salient peak.

The saliency map is the spectral residual of Hou & Zhang (CVPR 2007), computed
with ``jnp.fft`` so it is jittable:

    L(f) = log |F(f)|,   R(f) = L(f) − (h₃ * L)(f),   P(f) = arg F(f)
    S(x) = g_σ * |F⁻¹[exp(R(f) + i·P(f))]|²

where F is the 2-D Fourier transform of the grey image, h₃ a 3×3 mean filter
(circular) and g_σ a Gaussian blur (applied in the frequency domain).

The reference SaliencyMix code uses OpenCV's ``StaticSaliencyFineGrained``
(needs ``opencv-contrib-python``, not jittable) on the normalised tensor of one
source image, ``img[rand_index[0]]``, and pastes that one box at the same
location for the whole batch. ``per_sample=False`` follows that protocol with
the spectral-residual map; ``per_sample=True`` draws one λ per sample and
centres each box on the peak of that sample's own source image.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from remix_jax.mixers import ops
from remix_jax.mixers.cutmix import cut_and_paste


def spectral_residual_saliency(images: jax.Array, *,
                               sigma: float | None = None) -> jax.Array:
  """Spectral-residual saliency maps of a batch.

  Args:
    images: ``[B, H, W, C]`` images (any scale; channels are averaged).
    sigma: std of the Gaussian blur in pixels; default ``max(H, W) / 20``
      (OpenCV blurs a 64-px map with σ≈3 px after a 5×5 kernel).

  Returns:
    ``[B, H, W] float32`` maps scaled to [0, 1].

  Reference:
    X. Hou and L. Zhang, "Saliency Detection: A Spectral Residual Approach",
    CVPR 2007.
  """
  height, width = images.shape[1:3]
  if sigma is None:
    sigma = max(height, width) / 20.0
  grey = jnp.mean(images.astype(jnp.float32), axis=-1)
  spectrum = jnp.fft.fft2(grey)
  log_amp = jnp.log(jnp.abs(spectrum) + 1e-8)
  local_mean = sum(
      jnp.roll(log_amp, (dy, dx), axis=(1, 2))
      for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9.0
  residual = log_amp - local_mean
  recon = jnp.fft.ifft2(jnp.exp(residual + 1j * jnp.angle(spectrum)))
  sal = jnp.abs(recon) ** 2
  fy = jnp.fft.fftfreq(height)[:, None]
  fx = jnp.fft.fftfreq(width)[None, :]
  gauss = jnp.exp(-2.0 * (jnp.pi * sigma) ** 2 * (fy**2 + fx**2))
  sal = jnp.real(jnp.fft.ifft2(jnp.fft.fft2(sal) * gauss))
  sal = sal - jnp.min(sal, axis=(1, 2), keepdims=True)
  return sal / (jnp.max(sal, axis=(1, 2), keepdims=True) + 1e-12)


def saliency_peak(images: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Row and column ``[n] int32`` of the saliency maximum of each image."""
  sal = spectral_residual_saliency(images)
  width = images.shape[2]
  flat = jnp.argmax(sal.reshape(sal.shape[0], -1), axis=-1).astype(jnp.int32)
  return flat // width, flat % width


def saliencymix(rng: jax.Array, images: jax.Array, labels: jax.Array, *,
                alpha: float = 1.0, per_sample: bool = False,
                partners: Optional[ops.Partners] = None):
  """SaliencyMix: paste the partner's most salient box.

  λ ~ Beta(α, α) sets the box size exactly as in CutMix; the box is centred on
  the saliency peak of the source (partner) image, clipped, and the source's
  pixels inside it are pasted at the same location. λ is recomputed from the
  pasted area.

  Args:
    rng: PRNG key.
    images: ``[B, H, W, C]`` batch.
    labels: ``[B]`` integer labels.
    alpha: Beta concentration α > 0.
    per_sample: one λ and one box (from each sample's own source image) per
      sample; otherwise one λ and the box of source image ``partner[0]`` for
      the whole batch, as in the reference code.
    partners: optional :class:`~remix_jax.mixers.ops.Partners` (a second
      batch, or rows of this batch); ``None``: a random permutation.

  Returns:
    ``(mixed_images, MixInfo(partner, partner_labels, lam, mask))``.

  Reference:
    A. F. M. S. Uddin et al., "SaliencyMix: A Saliency Guided Data Augmentation
    Strategy for Better Regularization", ICLR 2021. arXiv:2006.01791.
  """
  ops.check_batch(images, labels)
  ops.check_alpha(alpha)
  batch, height, width = images.shape[:3]
  k_perm, k_lam = jax.random.split(rng)
  partners = ops.pair(k_perm, images, labels, partners)
  n = ops.num_draws(batch, per_sample)
  lam = ops.draw_beta(k_lam, alpha, n)
  cy, cx = saliency_peak(partners.images[:n])
  box = ops.centred_box(cy, cx, lam, height, width)
  return cut_and_paste(images, partners, box)
