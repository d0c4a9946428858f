"""The output every model of :mod:`remix_jax.models` returns."""

from __future__ import annotations

from typing import NamedTuple

import jax


class ModelOutput(NamedTuple):
  """What a model's ``__call__(x, *, mix=None)`` returns.

  Attributes:
    logits: ``[B, C]`` float32 classifier outputs (cosines in ``[-1, 1]`` with
      the normalized classifier of Cao et al. 2019).
    features: ``[B, D]`` float32 globally average-pooled features, the input
      of the classifier (``D = model.feature_dim``).
  """

  logits: jax.Array
  features: jax.Array
