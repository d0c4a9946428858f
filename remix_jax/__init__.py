"""remix_jax: Remix and SUMix mixup-family regularization in JAX/Flax NNX.

Light to import: the mixers, label rules and losses are pure JAX. The data
pipeline (``remix_jax.data``), the models (``remix_jax.models``) and the
trainer (``remix_jax.train``) are imported explicitly.

Importing the package or any of its modules sets no environment variable
and no JAX or XLA option. The project's XLA:CPU flags
(:mod:`remix_jax.cpu_flags`: XLA's own convolutions instead of YNNPACK's,
faster for ResNets on CPU, no effect on GPU/TPU) are set by the trainer
(``main.py`` and :func:`remix_jax.train.train_and_evaluate`). Your own
program gets them by calling ``remix_jax.cpu_flags.set_cpu_flags()`` before
its first JAX computation; ``REMIX_JAX_XLA_DEFAULTS=1`` keeps XLA's
defaults.
"""

from remix_jax import cpu_flags
from remix_jax import label_rules
from remix_jax import losses
from remix_jax import mixers
from remix_jax import remix

__version__ = "0.1.0"

__all__ = ["cpu_flags", "label_rules", "losses", "mixers", "remix",
           "__version__"]
