"""remix_jax: Remix and SUMix mixup-family regularization in JAX/Flax NNX.

Light to import: the mixers, label rules and losses are pure JAX. The data
pipeline (``remix_jax.data``), the models (``remix_jax.models``) and the
trainer (``remix_jax.train``) are imported explicitly.
"""

from remix_jax import losses
from remix_jax import mixers
from remix_jax import remix

__version__ = "0.1.0"

__all__ = ["losses", "mixers", "remix", "__version__"]
