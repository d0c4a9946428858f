"""ResNets with the Manifold Mixup hook, built from one spec-driven class.

Every model is ``stem → stage₁ → … → stage_S → global average pool →
classifier``. Manifold Mixup candidate layers (Verma et al. 2019): layer 0 is
the input, layer ``i`` the output of stage ``i`` for ``i < S``; so
``num_mix_layers = S`` (3 for ResNet-32, 4 for ResNet-18/50).

References:
  K. He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
  arXiv:1512.03385.
  K. Cao et al., "Learning Imbalanced Datasets with Label-Distribution-Aware
  Margin Loss", NeurIPS 2019 (ResNet-32 recipe, ``models/resnet_cifar.py``).
  V. Verma et al., "Manifold Mixup", ICML 2019. arXiv:1806.05236.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from remix_jax.mixers.manifold import ManifoldInfo
from remix_jax.mixers.manifold import apply_manifold_mix
from remix_jax.models import blocks
from remix_jax.models import initializers
from remix_jax.models import layers as layers_lib
from remix_jax.models.base import ModelOutput

#: Stem kinds: ``(kernel, stride, max-pool)``.
STEMS = {"cifar": (3, 1, False), "imagenet": (7, 2, True)}

#: Classifier kernel inits: LDAM's kaiming-normal, or PyTorch's Linear default.
LINEAR_INITS = {
    "kaiming": initializers.kaiming_normal("fan_in"),
    "torch": initializers.torch_linear_kernel(),
}


@dataclasses.dataclass(frozen=True)
class ResNetSpec:
  """The architecture of a ResNet.

  Attributes:
    block: :class:`~remix_jax.models.blocks.BasicBlock` or
      :class:`~remix_jax.models.blocks.Bottleneck`.
    stage_sizes: blocks per stage; stage 1 has stride 1, the others 2.
    widths: block width of each stage.
    stem_width: output channels of the stem.
    stem: a key of :data:`STEMS`.
    shortcut: ``"A"`` (zero-pad, parameter-free) or ``"B"`` (projection).
    conv_init_mode: kaiming-normal fan of the convs (``"fan_in"``,
      ``"fan_out"``).
    linear_init: a key of :data:`LINEAR_INITS`.
    in_channels: input channels, ``None`` for any (averaged into one).
  """

  block: type[blocks.ResidualBlock]
  stage_sizes: tuple[int, ...]
  widths: tuple[int, ...]
  stem_width: int
  stem: str
  shortcut: str
  conv_init_mode: str
  linear_init: str
  in_channels: int | None = 3


class ResNet(nnx.Module):
  """A ResNet of :class:`ResNetSpec` with the Manifold Mixup hook.

  ``__call__(x, *, mix)`` computes, for ``x [B, H, W, C]``::

      h₀ = mix₀(x);  h = stem(h₀)
      hᵢ = mixᵢ(stageᵢ(h))  (i < S),  h_S = stage_S(h)
      features = mean_{H,W} h_S;  logits = classifier(features)

  where ``mixᵢ`` is :func:`~remix_jax.mixers.manifold.apply_manifold_mix` at
  candidate layer ``i`` (identity unless ``mix.layer == i``). Train/eval via
  ``model.train()`` / ``model.eval()`` (BatchNorm batch vs running stats).

  Args:
    spec: the architecture.
    num_classes: number of classes ``C``.
    rngs: parameter RNGs (``rngs.params``).
    normalized_classifier: cosine classifier
      (:class:`~remix_jax.models.layers.NormedLinear`, Cao et al. 2019)
      instead of a Linear with bias.
    dtype: compute dtype of the convs and BatchNorms (e.g. bfloat16); the
      pooled features and the classifier are float32.
    param_dtype: parameter dtype.
    weight_grad_chunks: batch chunks of every conv's kernel gradient
      (:func:`~remix_jax.models.conv.make_conv_fn`; the same gradient, faster
      on XLA:CPU); ``1`` for the plain convolution.
    conv_impl: ``"xla"`` or ``"onednn"`` (oneDNN's convolutions on XLA:CPU,
      :mod:`remix_jax.models.onednn`).

  Attributes:
    num_mix_layers: Manifold Mixup candidate layers, input included.
    feature_dim: ``D``, the channels of the last stage.
    num_classes: ``C``.

  Reference:
    K. He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
  """

  def __init__(self, spec: ResNetSpec, *, num_classes: int, rngs: nnx.Rngs,
               normalized_classifier: bool = False, dtype: Any = jnp.float32,
               param_dtype: Any = jnp.float32, weight_grad_chunks: int = 1,
               conv_impl: str = "xla"):
    if len(spec.stage_sizes) != len(spec.widths):
      raise ValueError(f"{len(spec.stage_sizes)} stage sizes but "
                       f"{len(spec.widths)} widths")
    layers = layers_lib.LayerFactory(
        dtype=dtype, param_dtype=param_dtype,
        conv_init=initializers.kaiming_normal(spec.conv_init_mode),
        weight_grad_chunks=weight_grad_chunks, conv_impl=conv_impl)
    kernel, stride, pool = STEMS[spec.stem]
    self.stem = layers_lib.Stem(spec.in_channels, spec.stem_width,
                                kernel=kernel, stride=stride, pool=pool,
                                layers=layers, rngs=rngs)
    stages, channels = [], spec.stem_width
    for i, (size, width) in enumerate(zip(spec.stage_sizes, spec.widths)):
      stages.append(blocks.Stage(spec.block, channels, width, size,
                                 1 if i == 0 else 2, shortcut=spec.shortcut,
                                 layers=layers, rngs=rngs))
      channels = stages[-1].out_channels
    self.stages = nnx.List(stages)
    self.classifier = layers_lib.make_classifier(
        channels, num_classes, normalized=normalized_classifier,
        kernel_init=LINEAR_INITS[spec.linear_init], param_dtype=param_dtype,
        rngs=rngs)
    self.num_mix_layers = len(stages)
    self.feature_dim = channels
    self.num_classes = num_classes

  def __call__(self, x: jax.Array, *,
               mix: ManifoldInfo | None = None) -> ModelOutput:
    """Logits and pooled features of ``x``, mixing at ``mix.layer`` if given.

    Args:
      x: ``[B, H, W, C]`` images.
      mix: the step's :class:`~remix_jax.mixers.manifold.ManifoldInfo`, or
        ``None`` for no Manifold Mixup.

    Returns:
      :class:`~remix_jax.models.base.ModelOutput` ``(logits [B, C],
      features [B, D])``, both float32.
    """
    h = self.stem(apply_manifold_mix(x, mix, 0))
    for i, stage in enumerate(self.stages):
      h = stage(h)
      if i + 1 < self.num_mix_layers:
        h = apply_manifold_mix(h, mix, i + 1)
    features = jnp.mean(h.astype(jnp.float32), axis=(1, 2))
    return ModelOutput(self.classifier(features), features)


#: ResNet-32 of LDAM-DRW (Cao et al. 2019): 3×5 BasicBlocks, 16/32/64,
#: option-A shortcuts, kaiming-normal (fan_in) convs and Linear; ≈0.46 M
#: parameters for 10 classes.
RESNET32 = ResNetSpec(
    block=blocks.BasicBlock, stage_sizes=(5, 5, 5), widths=(16, 32, 64),
    stem_width=16, stem="cifar", shortcut="A", conv_init_mode="fan_in",
    linear_init="kaiming")

#: CIFAR-style ResNet-18: 3×3 stride-1 stem, no max-pool, 4×2 BasicBlocks
#: 64…512, projection shortcuts; torchvision init (kaiming fan_out convs).
RESNET18 = ResNetSpec(
    block=blocks.BasicBlock, stage_sizes=(2, 2, 2, 2),
    widths=(64, 128, 256, 512), stem_width=64, stem="cifar", shortcut="B",
    conv_init_mode="fan_out", linear_init="torch")

#: ImageNet ResNet-18 (torchvision): 7×7/2 stem + max-pool, 4×2 BasicBlocks
#: 64…512 (SUMix's ImageNet-1K runs).
RESNET18_IMAGENET = dataclasses.replace(RESNET18, stem="imagenet")

#: ImageNet ResNet-50 (torchvision v1.5): 7×7/2 stem + max-pool, Bottleneck
#: blocks 3/4/6/3, output 2048 channels.
RESNET50 = ResNetSpec(
    block=blocks.Bottleneck, stage_sizes=(3, 4, 6, 3),
    widths=(64, 128, 256, 512), stem_width=64, stem="imagenet", shortcut="B",
    conv_init_mode="fan_out", linear_init="torch")

#: A tiny CIFAR-style ResNet for tests and the CPU quickstart: stem 8, 3×1
#: BasicBlocks 8/16/32, option A; any input size ≥ 4 and any channel count.
TINY_RESNET = ResNetSpec(
    block=blocks.BasicBlock, stage_sizes=(1, 1, 1), widths=(8, 16, 32),
    stem_width=8, stem="cifar", shortcut="A", conv_init_mode="fan_in",
    linear_init="kaiming", in_channels=None)
