"""Flax NNX models for long-tailed classification, with the Manifold Mixup hook.

Every model maps ``x [B, H, W, C]`` to :class:`ModelOutput` ``(logits,
features)`` through ``model(x, *, mix=None)``, exposes ``num_mix_layers`` and
``feature_dim``, and switches BatchNorm with ``model.train()`` /
``model.eval()``. Build one with :func:`create_model`.
"""

from remix_jax.models.base import ModelOutput
from remix_jax.models.blocks import BasicBlock
from remix_jax.models.blocks import Bottleneck
from remix_jax.models.blocks import Stage
from remix_jax.models.layers import NormedLinear
from remix_jax.models.layers import PadShortcut
from remix_jax.models.registry import DTYPES
from remix_jax.models.registry import MODELS
from remix_jax.models.registry import create_model
from remix_jax.models.resnet import ResNet
from remix_jax.models.resnet import ResNetSpec

__all__ = [
    "DTYPES", "MODELS", "BasicBlock", "Bottleneck", "ModelOutput",
    "NormedLinear", "PadShortcut", "ResNet", "ResNetSpec", "Stage",
    "create_model",
]
