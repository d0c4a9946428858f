"""PyTorch-equivalent weight initializers for Flax kernels.

Flax stores conv kernels as ``[kh, kw, in, out]`` and dense kernels as
``[in, out]``; ``jax.nn.initializers.variance_scaling`` reads the fans from
those layouts, so the formulas below match PyTorch's for the same layer.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

Initializer = jax.nn.initializers.Initializer


def kaiming_normal(mode: str = "fan_in") -> Initializer:
  """``torch.nn.init.kaiming_normal_`` with ``a=0`` (ReLU gain √2).

  ``w ~ N(0, 2 / fan)`` (not truncated), ``fan = kh·kw·in`` (``fan_in``) or
  ``kh·kw·out`` (``fan_out``).

  Args:
    mode: ``"fan_in"`` (PyTorch's default; LDAM-DRW's ResNet-32) or
      ``"fan_out"`` (torchvision's ResNets).

  Returns:
    A JAX initializer ``(key, shape, dtype) -> array``.

  Reference:
    K. He et al., "Delving Deep into Rectifiers", ICCV 2015. arXiv:1502.01852.
  """
  return jax.nn.initializers.variance_scaling(2.0, mode, "normal")


def torch_linear_kernel() -> Initializer:
  """``torch.nn.Linear``'s default weight init: ``U(−1/√fan_in, 1/√fan_in)``.

  (PyTorch's ``kaiming_uniform_(a=√5)``, i.e. variance ``1 / (3·fan_in)``.)

  Returns:
    A JAX initializer for an ``[in, out]`` kernel.
  """
  return jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_linear_bias(fan_in: int) -> Initializer:
  """``torch.nn.Linear``'s default bias init: ``U(−1/√fan_in, 1/√fan_in)``.

  Args:
    fan_in: input features of the layer (the bias shape does not carry it).

  Returns:
    A JAX initializer for a ``[out]`` bias.
  """
  bound = 1.0 / math.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init
