"""The model registry and :func:`create_model`."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx

from remix_jax.models import resnet

#: Model architectures by name.
MODELS: dict[str, resnet.ResNetSpec] = {
    "resnet32": resnet.RESNET32,
    "resnet18": resnet.RESNET18,
    "resnet18_imagenet": resnet.RESNET18_IMAGENET,
    "resnet50": resnet.RESNET50,
    "tiny_resnet": resnet.TINY_RESNET,
}

#: Compute dtypes by name (``config.dtype``); parameters stay float32.
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def create_model(name: str, *, num_classes: int, rngs: nnx.Rngs,
                 normalized_classifier: bool = False, dtype: Any = jnp.float32,
                 param_dtype: Any = jnp.float32,
                 weight_grad_chunks: int = 1,
                 conv_impl: str = "xla") -> resnet.ResNet:
  """Builds the model called ``name`` (a key of :data:`MODELS`).

  Args:
    name: ``resnet32`` (CIFAR-LT, Cao et al. 2019), ``resnet18`` (CINIC-10,
      CIFAR-100, Tiny-ImageNet; 3×3 stem), ``resnet18_imagenet`` (7×7 stem +
      max-pool, ImageNet), ``resnet50`` (iNaturalist, 224×224) or
      ``tiny_resnet``.
    num_classes: number of classes ``C``.
    rngs: parameter RNGs.
    normalized_classifier: cosine classifier for LDAM (Cao et al. 2019).
    dtype: compute dtype (e.g. ``jnp.bfloat16`` on GPU).
    param_dtype: parameter dtype (float32).
    weight_grad_chunks: batch chunks of every conv's kernel gradient
      (:func:`remix_jax.models.conv.make_conv_fn`: the same gradient, 2–4×
      faster on XLA:CPU); ``1`` for the plain convolution (GPU/TPU).
    conv_impl: ``"xla"`` or ``"onednn"`` (oneDNN's convolutions on XLA:CPU,
      :mod:`remix_jax.models.onednn`).

  Returns:
    The model, in train mode (call ``.eval()`` for inference).

  Raises:
    ValueError: ``name`` is unknown (the message lists the valid names).
  """
  try:
    spec = MODELS[name]
  except KeyError:
    raise ValueError(f"unknown model {name!r}; choose one of "
                     f"{', '.join(sorted(MODELS))}") from None
  return resnet.ResNet(spec, num_classes=num_classes, rngs=rngs,
                       normalized_classifier=normalized_classifier,
                       dtype=dtype, param_dtype=param_dtype,
                       weight_grad_chunks=weight_grad_chunks,
                       conv_impl=conv_impl)
