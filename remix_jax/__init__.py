"""remix_jax: Remix and SUMix mixup-family regularization in JAX/Flax NNX.

Light to import: the mixers, label rules, Remix, SUMix and losses are pure
JAX and take plain arguments. The data pipeline (``remix_jax.data``), the
models (``remix_jax.models``) and the trainer (``remix_jax.trainer``, the one
part that reads a config) are imported explicitly.

The library needs JAX, Flax, optax and numpy only (``pip install
remix_jax``). The input pipelines and the trainer need the ``trainer``
extra (``pip install "remix_jax[trainer]"``, :mod:`remix_jax.extras`).

Importing the package or any of its modules sets no environment variable
and no JAX or XLA option. The trainer sets the project's XLA:CPU flags and
allocator options when it starts (:mod:`remix_jax.trainer.process_setup`);
your own program can call
``remix_jax.trainer.process_setup.configure_process()``
before its first JAX computation to get the same.
"""

import importlib

__version__ = "0.1.0"

#: The library's modules, imported on first access (``remix_jax.mixers``),
#: so that importing ``remix_jax`` alone, or a light module of it such as
#: :mod:`remix_jax.trainer.interrupt`, does not import JAX.
_MODULES = ("label_rules", "losses", "mixers", "remix", "sumix")

__all__ = [*_MODULES, "__version__"]


def __getattr__(name: str):
  if name in _MODULES:
    return importlib.import_module(f"remix_jax.{name}")
  raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
