"""remix_jax: Remix and SUMix mixup-family regularization in JAX/Flax NNX.

Light to import: the mixers, label rules and losses are pure JAX. The data
pipeline (``remix_jax.data``), the models (``remix_jax.models``) and the
trainer (``remix_jax.train``) are imported explicitly.

Importing the package sets the project's XLA:CPU flags
(:mod:`remix_jax.cpu_flags`: XLA's own convolutions instead of YNNPACK's,
faster for ResNets on CPU, no effect on GPU/TPU). XLA reads its flags at the
first compilation of a process, so import ``remix_jax`` before running any
JAX code; ``REMIX_JAX_XLA_DEFAULTS=1`` keeps XLA's defaults.
"""

from remix_jax import cpu_flags

cpu_flags.set_cpu_flags()

from remix_jax import losses  # noqa: E402  pylint: disable=g-import-not-at-top
from remix_jax import mixers  # noqa: E402  pylint: disable=g-import-not-at-top
from remix_jax import remix  # noqa: E402  pylint: disable=g-import-not-at-top

__version__ = "0.1.0"

__all__ = ["losses", "mixers", "remix", "__version__"]
