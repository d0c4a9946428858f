"""SUMix's Flax NNX modules: the uncertainty and similarity heads and the
wrapper model that carries them (Qin et al., "SUMix: Mixup with Semantic and
Uncertain Information", ECCV 2024, arXiv:2407.07805).

The heads hold the parameters (``W_u``, ``b_u`` and, as our extension, a
learned ``log s``); the computations are the pure ops of
:mod:`remix_jax.sumix`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from remix_jax import sumix
from remix_jax.models.layers import l2_normalize


class UncertaintyHead(nnx.Module):
  """``u = ℓ2norm(softmax(W_u·h + b_u))`` on the pooled features ``h``.

  ``W_u`` and ``b_u`` are initialised normal(std 0.01), like the classifier of
  the released head. With ``is_norm=False`` (the released ImageNet setting)
  the head has no parameters and ``u`` is the classifier's logits.

  Args:
    feature_dim: ``D``, the backbone's pooled feature size.
    num_classes: ``C``.
    is_norm: learn ``W_u`` (True) or reuse the logits (False).
    rngs: parameter rngs.
  """

  def __init__(self, feature_dim: int, num_classes: int, *, is_norm: bool,
               rngs: nnx.Rngs):
    self.is_norm = is_norm
    self.linear = (nnx.Linear(
        feature_dim, num_classes, rngs=rngs,
        kernel_init=nnx.initializers.normal(0.01),
        bias_init=nnx.initializers.zeros_init()) if is_norm else None)

  def __call__(self, features: jax.Array, logits: jax.Array) -> jax.Array:
    if not self.is_norm:
      return logits
    z = self.linear(features.astype(jnp.float32))
    return l2_normalize(jax.nn.softmax(z, axis=-1), axis=-1)


class SimilarityHead(nnx.Module):
  """Computes the semantic distances and λ̃ from clean and mixed logits.

  As released it has no parameters: ``s`` is a constant (the per-device
  batch size by default). ``learn_scale=True`` is our extension: ``s =
  exp(log_s)`` with ``log_s`` an ``nnx.Param`` initialised to ``log(scale)``.
  Because λ̃ is stop-gradient, a learned ``s`` is trained only through the
  regularizer ``R`` (where ``A`` appears inside ``exp(−(A + β))``).

  Args:
    scale: the initial (or fixed) ``s``.
    learn_scale: make ``log s`` a parameter.
  """

  def __init__(self, scale: float, *, learn_scale: bool = False):
    if scale <= 0:
      raise ValueError(f"SUMix scale={scale} must be > 0")
    self.learn_scale = learn_scale
    if learn_scale:
      self.log_scale = nnx.Param(jnp.log(jnp.asarray(scale, jnp.float32)))
    else:
      self.scale = float(scale)

  def __call__(self, logits_clean, logits_mixed, labels, partner, lam):
    """``(λ̃ [B], Distances)``; see :func:`remix_jax.sumix.sumix_ratio`."""
    scale = (jnp.exp(self.log_scale[...]) if self.learn_scale else self.scale)
    distances = sumix.semantic_distances(logits_clean, logits_mixed, labels,
                                         partner, scale)
    return (sumix.ratio_from_distances(distances, labels, partner, lam),
            distances)


class SUMixModel(nnx.Module):
  """A backbone with SUMix's uncertainty and similarity heads.

  ``model(x, mix=…)`` is the backbone's ``ModelOutput`` (evaluation uses only
  it); ``model.uncertainty`` and ``model.similarity`` are the heads. Exposes
  the backbone's ``num_mix_layers`` and ``feature_dim``.

  Args:
    backbone: any model of :mod:`remix_jax.models`.
    num_classes: ``C``.
    scale: SUMix's ``s``.
    is_norm: see :class:`UncertaintyHead`.
    learn_scale: see :class:`SimilarityHead`.
    rngs: parameter rngs for the uncertainty head.
  """

  def __init__(self, backbone: nnx.Module, *, num_classes: int, scale: float,
               is_norm: bool = True, learn_scale: bool = False,
               rngs: nnx.Rngs):
    self.backbone = backbone
    self.num_mix_layers = backbone.num_mix_layers
    self.feature_dim = backbone.feature_dim
    self.uncertainty = UncertaintyHead(backbone.feature_dim, num_classes,
                                       is_norm=is_norm, rngs=rngs)
    self.similarity = SimilarityHead(scale, learn_scale=learn_scale)

  def __call__(self, x: jax.Array, *, mix=None):
    return self.backbone(x, mix=mix)
