"""Residual blocks and the stage builder shared by every ResNet.

Reference:
  K. He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
  arXiv:1512.03385.
"""

from __future__ import annotations

import jax
from flax import nnx

from remix_jax.models import layers as layers_lib
from remix_jax.models.conv_bn import conv_bn


class ResidualBlock(nnx.Module):
  """Base of the residual blocks: ``y = ReLU(F(x) + shortcut(x))``.

  Subclasses set ``expansion`` (output channels = ``width · expansion``),
  build ``self.shortcut`` with :meth:`_make_shortcut` and compute ``F``.
  """

  expansion: int = 1

  def _make_shortcut(self, shortcut: str, in_channels: int, width: int,
                     stride: int, *, layers: layers_lib.LayerFactory,
                     rngs: nnx.Rngs) -> None:
    """Sets ``self.shortcut`` (``None`` for the plain identity)."""
    self.shortcut = layers_lib.make_shortcut(
        shortcut, in_channels, width * self.expansion, stride, layers=layers,
        rngs=rngs)

  def _skip(self, x: jax.Array) -> jax.Array:
    """``shortcut(x)``, added to the last BatchNorm's output before the ReLU."""
    return x if self.shortcut is None else self.shortcut(x)


class BasicBlock(ResidualBlock):
  """Two 3×3 convs: ``ReLU(BN(conv(ReLU(BN(conv_s(x))))) + shortcut(x))``.

  The block of ResNet-18/34 and of the CIFAR ResNets (ResNet-32), stride on
  the first conv; ``expansion = 1``.

  Args:
    in_channels: input channels.
    width: output channels.
    stride: stride of the first conv (and of the shortcut).
    shortcut: ``"A"`` (zero-pad) or ``"B"`` (projection) when shapes change.
    layers: the model's :class:`~remix_jax.models.layers.LayerFactory`.
    rngs: parameter RNGs.

  Reference:
    K. He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
  """

  expansion = 1

  def __init__(self, in_channels: int, width: int, stride: int, *,
               shortcut: str, layers: layers_lib.LayerFactory,
               rngs: nnx.Rngs):
    self.conv1 = layers.conv(in_channels, width, 3, stride, rngs=rngs)
    self.bn1 = layers.batch_norm(width, rngs=rngs)
    self.conv2 = layers.conv(width, width, 3, rngs=rngs)
    self.bn2 = layers.batch_norm(width, rngs=rngs)
    self._make_shortcut(shortcut, in_channels, width, stride, layers=layers,
                        rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    """``[B, H, W, in] → [B, ⌈H/s⌉, ⌈W/s⌉, width]``."""
    h = conv_bn(self.conv1, self.bn1, x, relu=True)
    return conv_bn(self.conv2, self.bn2, h, relu=True, skip=self._skip(x))


class Bottleneck(ResidualBlock):
  """1×1 → 3×3 (stride) → 1×1 convs with 4× expansion (torchvision v1.5).

  ``ReLU(BN(conv1×1↑(ReLU(BN(conv3×3_s(ReLU(BN(conv1×1↓(x)))))))) +
  shortcut(x))``, output channels ``4 · width``; the block of ResNet-50.

  Args:
    in_channels: input channels.
    width: bottleneck width (output channels ``4 · width``).
    stride: stride of the 3×3 conv (and of the shortcut).
    shortcut: ``"A"`` or ``"B"`` when shapes change (ResNet-50 uses ``"B"``).
    layers: the model's :class:`~remix_jax.models.layers.LayerFactory`.
    rngs: parameter RNGs.

  Reference:
    K. He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
  """

  expansion = 4

  def __init__(self, in_channels: int, width: int, stride: int, *,
               shortcut: str, layers: layers_lib.LayerFactory,
               rngs: nnx.Rngs):
    out_channels = width * self.expansion
    self.conv1 = layers.conv(in_channels, width, 1, rngs=rngs)
    self.bn1 = layers.batch_norm(width, rngs=rngs)
    self.conv2 = layers.conv(width, width, 3, stride, rngs=rngs)
    self.bn2 = layers.batch_norm(width, rngs=rngs)
    self.conv3 = layers.conv(width, out_channels, 1, rngs=rngs)
    self.bn3 = layers.batch_norm(out_channels, rngs=rngs)
    self._make_shortcut(shortcut, in_channels, width, stride, layers=layers,
                        rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    """``[B, H, W, in] → [B, ⌈H/s⌉, ⌈W/s⌉, 4·width]``."""
    h = conv_bn(self.conv1, self.bn1, x, relu=True)
    h = conv_bn(self.conv2, self.bn2, h, relu=True)
    return conv_bn(self.conv3, self.bn3, h, relu=True, skip=self._skip(x))


class Stage(nnx.Module):
  """A stack of ``num_blocks`` residual blocks; the first one strides.

  Args:
    block: the block class (:class:`BasicBlock` or :class:`Bottleneck`).
    in_channels: stage input channels.
    width: block width (stage output ``width · block.expansion``).
    num_blocks: number of blocks.
    stride: stride of the first block.
    shortcut: shortcut kind passed to the blocks.
    layers: the model's :class:`~remix_jax.models.layers.LayerFactory`.
    rngs: parameter RNGs.

  Attributes:
    out_channels: channels of the stage output.
  """

  def __init__(self, block: type[ResidualBlock], in_channels: int, width: int,
               num_blocks: int, stride: int, *, shortcut: str,
               layers: layers_lib.LayerFactory, rngs: nnx.Rngs):
    if num_blocks < 1:
      raise ValueError(f"a stage needs >= 1 block, got {num_blocks}")
    blocks = []
    for i in range(num_blocks):
      blocks.append(block(in_channels, width, stride if i == 0 else 1,
                          shortcut=shortcut, layers=layers, rngs=rngs))
      in_channels = width * block.expansion
    self.blocks = nnx.List(blocks)
    self.out_channels = in_channels

  def __call__(self, x: jax.Array) -> jax.Array:
    """Applies the blocks in order."""
    for block in self.blocks:
      x = block(x)
    return x
