"""Input mixers: pure, jittable functions ``(rng, images, labels, …) →
(mixed_images, info)``.

``info.partner [B]`` and ``info.lam [B]`` (weight of the original sample,
area-corrected) feed any label rule in :mod:`remix_jax.label_rules`; the cut
mixers also return ``info.mask [B, H, W]`` (1 where the original pixel is
kept).
"""

from remix_jax.mixers.ops import MixInfo
from remix_jax.mixers.cutmix import cutmix
from remix_jax.mixers.fmix import fmix
from remix_jax.mixers.manifold import ManifoldInfo
from remix_jax.mixers.manifold import apply_manifold_mix
from remix_jax.mixers.manifold import manifold_mixup
from remix_jax.mixers.mixup import mixup
from remix_jax.mixers.resizemix import resizemix
from remix_jax.mixers.saliencymix import saliencymix
from remix_jax.mixers.saliencymix import spectral_residual_saliency

#: Input mixers by name (Manifold Mixup mixes inside the model).
MIXERS = {
    "mixup": mixup,
    "cutmix": cutmix,
    "saliencymix": saliencymix,
    "fmix": fmix,
    "resizemix": resizemix,
    "manifold_mixup": manifold_mixup,
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
    "MIXERS", "CUT_MIXERS", "MixInfo", "ManifoldInfo", "apply_manifold_mix",
    "cutmix", "fmix", "get_mixer", "manifold_mixup", "mixup", "resizemix",
    "saliencymix", "spectral_residual_saliency",
]
