"""Layers shared by the ResNets: conv/BN factory, stems, shortcuts, heads.

Conventions (as PyTorch, so recipes transfer): convolutions without bias and
with symmetric ``k // 2`` zero padding (``nn.Conv2d(padding=k // 2)``, not
XLA's ``SAME``, which pads stride-2 convs on one side only); BatchNorm with
PyTorch's momentum 0.1 (``nnx.BatchNorm(momentum=0.9)``) and ε = 1e-5. NHWC.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from remix_jax.models import batch_norm as batch_norm_lib
from remix_jax.models import conv as conv_lib
from remix_jax.models import initializers
from remix_jax.models.conv_bn import conv_bn

#: PyTorch's BatchNorm momentum 0.1 in Flax's convention (weight of the old).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


@dataclasses.dataclass(frozen=True)
class LayerFactory:
  """Builds the convs and BatchNorms of one model with shared settings.

  Attributes:
    dtype: compute dtype (e.g. ``jnp.bfloat16`` on GPU).
    param_dtype: parameter dtype (float32).
    conv_init: kernel initializer of every convolution.
    weight_grad_chunks: batch chunks of each conv's kernel gradient
      (:func:`remix_jax.models.conv.make_conv_fn`; same values, faster on
      XLA:CPU); ``1`` is the plain ``lax.conv_general_dilated``.
    conv_impl: ``"xla"`` or ``"onednn"`` (oneDNN's convolutions and
      training-mode BatchNorm on XLA:CPU, :mod:`remix_jax.models.onednn`,
      :mod:`remix_jax.models.onednn_batch_norm`; ``weight_grad_chunks``
      then does not apply).
  """

  dtype: Any
  param_dtype: Any
  conv_init: initializers.Initializer
  weight_grad_chunks: int = 1
  conv_impl: str = "xla"

  def conv(self, in_channels: int, out_channels: int, kernel: int,
           stride: int = 1, *, rngs: nnx.Rngs) -> nnx.Conv:
    """A ``kernel × kernel`` bias-free conv with ``kernel // 2`` padding.

    Output size ``⌊(H + 2·(k // 2) − k) / s⌋ + 1`` (``⌈H / s⌉`` for odd k),
    as ``nn.Conv2d(in, out, k, s, padding=k // 2, bias=False)``.

    Args:
      in_channels: input channels.
      out_channels: output channels.
      kernel: square kernel size.
      stride: spatial stride.
      rngs: parameter RNGs.

    Returns:
      The ``nnx.Conv``.
    """
    pad = kernel // 2
    return nnx.Conv(
        in_channels, out_channels, (kernel, kernel), strides=(stride, stride),
        padding=((pad, pad), (pad, pad)), use_bias=False,
        kernel_init=self.conv_init, dtype=self.dtype,
        param_dtype=self.param_dtype,
        conv_general_dilated=conv_lib.make_conv_fn(self.weight_grad_chunks,
                                                  self.conv_impl),
        rngs=rngs)

  def batch_norm(self, channels: int, *,
                 rngs: nnx.Rngs) -> batch_norm_lib.BatchNorm:
    """A BatchNorm over the channel axis (train mode until ``.eval()``).

    ``y = γ·(x − μ)/√(σ² + ε) + β`` with batch statistics in train mode and
    running ones (``r ← 0.9·r + 0.1·batch``) in eval mode; call it with
    ``relu=True`` for ``ReLU(BN(x))``.

    Args:
      channels: number of channels.
      rngs: parameter RNGs.

    Returns:
      The :class:`~remix_jax.models.batch_norm.BatchNorm` (oneDNN's
      training pass when ``conv_impl`` is ``"onednn"``).
    """
    return batch_norm_lib.BatchNorm(
        channels, use_running_average=False, momentum=BN_MOMENTUM,
        epsilon=BN_EPSILON, dtype=self.dtype, param_dtype=self.param_dtype,
        impl=self.conv_impl, rngs=rngs)


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  """``nn.MaxPool2d(3, stride=2, padding=1)`` on NHWC (pads with −∞).

  Args:
    x: ``[B, H, W, C]`` activations.

  Returns:
    ``[B, ⌈H/2⌉, ⌈W/2⌉, C]`` window maxima.
  """
  return jax.lax.reduce_window(
      x, jnp.array(-jnp.inf, x.dtype), jax.lax.max, (1, 3, 3, 1),
      (1, 2, 2, 1), ((0, 0), (1, 1), (1, 1), (0, 0)))


class Stem(nnx.Module):
  """ResNet stem: conv → BN → ReLU (→ 3×3/2 max-pool for ImageNet).

  CIFAR stem: 3×3 conv, stride 1, no pool. ImageNet stem: 7×7 conv, stride 2,
  then the max-pool (He et al. 2016).

  With ``in_channels=None`` the input channels are first averaged into one
  (``x.mean(-1, keepdims=True)``), so the same parameters serve inputs with
  any channel count (grayscale digits and RGB alike).

  Args:
    in_channels: input channels, or ``None`` to accept any (see above).
    out_channels: stem width.
    kernel: conv kernel size (3 or 7).
    stride: conv stride (1 or 2).
    pool: apply the 3×3 stride-2 max-pool after the ReLU.
    layers: the model's :class:`LayerFactory`.
    rngs: parameter RNGs.

  Reference:
    K. He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
  """

  def __init__(self, in_channels: int | None, out_channels: int, *,
               kernel: int, stride: int, pool: bool, layers: LayerFactory,
               rngs: nnx.Rngs):
    self.fold_channels = in_channels is None
    self.pool = pool
    self.conv = layers.conv(1 if in_channels is None else in_channels,
                            out_channels, kernel, stride, rngs=rngs)
    self.bn = layers.batch_norm(out_channels, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    """``[B, H, W, C] → [B, H', W', out_channels]``."""
    if self.fold_channels:
      x = jnp.mean(x, axis=-1, keepdims=True)
    x = conv_bn(self.conv, self.bn, x, relu=True)
    return max_pool_3x3_s2(x) if self.pool else x


class PadShortcut(nnx.Module):
  """Parameter-free shortcut "option A" of He et al. 2016 (CIFAR ResNets).

  ``x[:, ::s, ::s]`` then zero channels padded on both sides up to
  ``out_channels`` (LDAM-DRW's ``LambdaLayer``: ``planes // 4`` zeros each
  side when the width doubles).

  Args:
    in_channels: input channels.
    out_channels: output channels (``>= in_channels``).
    stride: spatial subsampling step.
  """

  def __init__(self, in_channels: int, out_channels: int, stride: int):
    if out_channels < in_channels:
      raise ValueError(f"option A cannot reduce channels: {in_channels} -> "
                       f"{out_channels}")
    self.stride = stride
    self.pad_low = (out_channels - in_channels) // 2
    self.pad_high = out_channels - in_channels - self.pad_low

  def __call__(self, x: jax.Array) -> jax.Array:
    """``[B, H, W, Cin] → [B, ⌈H/s⌉, ⌈W/s⌉, Cout]``."""
    x = x[:, ::self.stride, ::self.stride]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (self.pad_low, self.pad_high)))


class ProjectionShortcut(nnx.Module):
  """Shortcut "option B" of He et al. 2016: 1×1 conv (stride s) → BN.

  Args:
    in_channels: input channels.
    out_channels: output channels.
    stride: conv stride.
    layers: the model's :class:`LayerFactory`.
    rngs: parameter RNGs.
  """

  def __init__(self, in_channels: int, out_channels: int, stride: int, *,
               layers: LayerFactory, rngs: nnx.Rngs):
    self.conv = layers.conv(in_channels, out_channels, 1, stride, rngs=rngs)
    self.bn = layers.batch_norm(out_channels, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    """``[B, H, W, Cin] → [B, ⌈H/s⌉, ⌈W/s⌉, Cout]``."""
    return conv_bn(self.conv, self.bn, x)


#: Shortcut kinds: ``"A"`` zero-padding identity, ``"B"`` projection.
SHORTCUTS = ("A", "B")


def make_shortcut(kind: str, in_channels: int, out_channels: int, stride: int,
                  *, layers: LayerFactory, rngs: nnx.Rngs) -> nnx.Module | None:
  """The shortcut of a residual block, ``None`` for the plain identity.

  Args:
    kind: ``"A"`` (:class:`PadShortcut`) or ``"B"``
      (:class:`ProjectionShortcut`); used only when the shape changes
      (``stride != 1`` or ``in_channels != out_channels``).
    in_channels: block input channels.
    out_channels: block output channels.
    stride: block stride.
    layers: the model's :class:`LayerFactory`.
    rngs: parameter RNGs.

  Returns:
    The shortcut module, or ``None`` when the identity fits.
  """
  if kind not in SHORTCUTS:
    raise ValueError(f"unknown shortcut {kind!r}; choose one of "
                     f"{', '.join(SHORTCUTS)}")
  if stride == 1 and in_channels == out_channels:
    return None
  if kind == "A":
    return PadShortcut(in_channels, out_channels, stride)
  return ProjectionShortcut(in_channels, out_channels, stride, layers=layers,
                            rngs=rngs)


def l2_normalize(x: jax.Array, axis: int) -> jax.Array:
  """``F.normalize``: ``x / max(‖x‖₂, 1e-12)`` along ``axis``."""
  norm = jnp.sqrt(jnp.sum(jnp.square(x), axis=axis, keepdims=True))
  return x / jnp.maximum(norm, 1e-12)


class NormedLinear(nnx.Module):
  """Cosine classifier of LDAM-DRW: ``z = (x / ‖x‖) · (W / ‖W‖_col)``.

  ``z_j = cos(x, w_j) ∈ [−1, 1]``; no bias. ``W [in, out]`` is drawn
  ``U(−1, 1)`` and its columns renormalized to unit norm (LDAM's
  ``uniform_(-1, 1).renorm_(2, 1, 1e-5).mul_(1e5)``). LDAM scales these
  cosines by ``s`` inside the loss.

  Args:
    in_features: feature dimension ``D``.
    out_features: number of classes ``C``.
    param_dtype: parameter dtype.
    rngs: parameter RNGs.

  Reference:
    K. Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
    Margin Loss", NeurIPS 2019. arXiv:1906.07413.
  """

  def __init__(self, in_features: int, out_features: int, *,
               param_dtype: Any = jnp.float32, rngs: nnx.Rngs):
    w = jax.random.uniform(rngs.params(), (in_features, out_features),
                           jnp.float32, -1.0, 1.0)
    self.kernel = nnx.Param(l2_normalize(w, axis=0).astype(param_dtype))

  def __call__(self, x: jax.Array) -> jax.Array:
    """``[B, D] → [B, C]`` cosines, computed in float32."""
    x = l2_normalize(x.astype(jnp.float32), axis=1)
    w = l2_normalize(self.kernel[...].astype(jnp.float32), axis=0)
    return x @ w


def make_classifier(in_features: int, num_classes: int, *, normalized: bool,
                    kernel_init: initializers.Initializer,
                    param_dtype: Any = jnp.float32,
                    rngs: nnx.Rngs) -> nnx.Module:
  """The classifier head, run in float32 (it is tiny; keeps logits exact).

  Args:
    in_features: feature dimension ``D``.
    num_classes: number of classes ``C``.
    normalized: :class:`NormedLinear` (cosine, for LDAM) instead of a Linear.
    kernel_init: Linear kernel initializer (the bias uses PyTorch's default
      ``U(±1/√D)``).
    param_dtype: parameter dtype.
    rngs: parameter RNGs.

  Returns:
    A module ``[B, D] → [B, C]``.
  """
  if normalized:
    return NormedLinear(in_features, num_classes, param_dtype=param_dtype,
                        rngs=rngs)
  return nnx.Linear(in_features, num_classes, kernel_init=kernel_init,
                    bias_init=initializers.torch_linear_bias(in_features),
                    dtype=jnp.float32, param_dtype=param_dtype, rngs=rngs)
