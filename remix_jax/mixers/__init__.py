"""Input mixers: pure, jittable functions ``(rng, images, labels, …) →
(mixed_images, info)``.

``info.partner_labels [B]`` and ``info.lam [B]`` (weight of the original
sample, area-corrected) feed any label rule in :mod:`remix_jax.label_rules`;
``info.partner [B]`` is the partner's row of the batch (``None`` for a second
batch); the cut mixers also return ``info.mask [B, H, W]`` (1 where the
original pixel is kept).

Every mixer takes ``partners=``: ``None`` (a random permutation of the batch),
rows of the batch (:func:`~remix_jax.mixers.ops.batch_partners`, e.g.
UniMix's :func:`~remix_jax.mixers.ops.prior_partners`), or a second batch
``Partners(images, labels)`` from another sampling stream (CMO's
minority-weighted sampler, Balanced-MixUp's class-balanced one).
"""

from remix_jax.mixers.ops import MixInfo
from remix_jax.mixers.ops import Partners
from remix_jax.mixers.ops import batch_partners
from remix_jax.mixers.ops import prior_partners
from remix_jax.mixers.balanced_mixup import balanced_mixup
from remix_jax.mixers.cutmix import cutmix
from remix_jax.mixers.fmix import fmix
from remix_jax.mixers.manifold import ManifoldInfo
from remix_jax.mixers.manifold import apply_manifold_mix
from remix_jax.mixers.manifold import manifold_mixup
from remix_jax.mixers.mixup import mixup
from remix_jax.mixers.resizemix import resizemix
from remix_jax.mixers.saliencymix import saliencymix
from remix_jax.mixers.saliencymix import spectral_residual_saliency
from remix_jax.mixers.unimix import unimix
from remix_jax.mixers.unimix import unimix_factor

#: Input mixers by name (Manifold Mixup mixes inside the model).
MIXERS = {
    "mixup": mixup,
    "cutmix": cutmix,
    "saliencymix": saliencymix,
    "fmix": fmix,
    "resizemix": resizemix,
    "manifold_mixup": manifold_mixup,
    "balanced_mixup": balanced_mixup,
    "unimix": unimix,
}

#: The mixers that paste pixels (and return a mask).
CUT_MIXERS = ("cutmix", "saliencymix", "fmix", "resizemix")


def get_mixer(name: str):
  """The mixer function called ``name``; one-line error naming the choices."""
  try:
    return MIXERS[name]
  except KeyError:
    raise ValueError(f"unknown mixer {name!r}; choose one of "
                     f"{', '.join(sorted(MIXERS))}") from None


__all__ = [
    "MIXERS", "CUT_MIXERS", "MixInfo", "ManifoldInfo", "Partners",
    "apply_manifold_mix", "balanced_mixup", "batch_partners", "cutmix", "fmix",
    "get_mixer", "manifold_mixup", "mixup", "prior_partners", "resizemix",
    "saliencymix", "spectral_residual_saliency", "unimix", "unimix_factor",
]
