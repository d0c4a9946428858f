"""A convolution followed by its BatchNorm, folded into one call in eval mode.

In eval mode a BatchNorm is an affine map per channel, so it folds into the
convolution before it (Ioffe & Szegedy 2015, §3.2; Jacob et al. 2018, §3.2):

    BN(x ⊛ w + c) = x ⊛ (w·a) + (β + (c − μ)·a),   a = γ / √(σ² + ε)

with ``a`` scaling the kernel's output channels, ``μ``, ``σ²`` the running
statistics, ``γ``, ``β`` BatchNorm's scale and bias and ``c`` the
convolution's bias (zero without one). :func:`conv_bn` computes
``ReLU(BN(conv(x)) + skip)`` that way on oneDNN
(:func:`remix_jax.models.onednn.conv_epilogue`: the bias, the shortcut and
the ReLU as post-ops of one inference kernel) when the BatchNorm is a
:class:`~remix_jax.models.batch_norm.BatchNorm` with ``impl="onednn"`` in
eval mode; otherwise it is ``bn(conv(x), relu=relu, skip=skip)``.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from flax import nnx

from remix_jax.models import batch_norm as batch_norm_lib
from remix_jax.models import onednn


def _folded_geometry(conv: nnx.Conv, bn: batch_norm_lib.BatchNorm,
                     x: jax.Array,
                     skip: Optional[jax.Array]) -> Optional[onednn.Geometry]:
  """The oneDNN geometry of ``conv`` on ``x`` when ``bn`` folds into it."""
  if not (isinstance(bn, batch_norm_lib.BatchNorm) and bn.impl == "onednn"
          and bn.use_running_average is True and bn.axis_name is None
          and bn.axis in (-1, x.ndim - 1) and bn.scale is not None
          and bn.bias is not None and bn.dtype in (None, jnp.float32)
          and conv.dtype in (None, jnp.float32)
          and conv.feature_group_count == 1 and conv.mask is None
          and x.dtype == jnp.float32
          and conv.kernel[...].dtype == jnp.float32
          and (conv.padding in ("SAME", "VALID")
               or not isinstance(conv.padding, (str, int)))
          and onednn.available()):
    return None
  pair = lambda v: (v,) * 2 if isinstance(v, int) else tuple(v)
  padding = conv.padding
  if not isinstance(padding, str):
    padding = tuple(tuple(p) for p in padding)
  geometry = onednn.geometry_of(x, conv.kernel[...], pair(conv.strides),
                                padding,
                                rhs_dilation=pair(conv.kernel_dilation))
  if geometry is None or (skip is not None and (
      skip.dtype != jnp.float32 or skip.shape != onednn.out_shape(
          x.shape, conv.kernel.shape, geometry))):
    return None
  return geometry


def conv_bn(conv: nnx.Conv, bn: nnx.BatchNorm, x: jax.Array, *,
            relu: bool = False, skip: Optional[jax.Array] = None) -> jax.Array:
  """``ReLU(BN(conv(x)) + skip)``, folded into one oneDNN call in eval mode.

  ``BN(x ⊛ w + c) = x ⊛ (w·a) + β + (c − μ)·a`` with ``a = γ / √(σ² + ε)``
  per output channel (running statistics; module docstring).

  Args:
    conv: an ``nnx.Conv`` over NHWC input.
    bn: its BatchNorm over the output channels
      (:class:`~remix_jax.models.batch_norm.BatchNorm` for ``relu``/``skip``).
    x: the convolution's input.
    relu: apply ``max(·, 0)`` last.
    skip: added before the ReLU (a residual block's shortcut), or ``None``.

  Returns:
    ``bn(conv(x), relu=relu, skip=skip)``, equal up to float rounding when
    folded.

  Reference:
    S. Ioffe and C. Szegedy, "Batch Normalization", ICML 2015;
    B. Jacob et al., "Quantization and Training of Neural Networks for
    Efficient Integer-Arithmetic-Only Inference", CVPR 2018 (folding).
  """
  geometry = _folded_geometry(conv, bn, x, skip)
  if geometry is None:
    return bn(conv(x), relu=relu, skip=skip)
  a = bn.scale[...] * jax.lax.rsqrt(bn.var[...] + bn.epsilon)
  shift = bn.bias[...] - bn.mean[...] * a
  if conv.bias is not None:
    shift = shift + conv.bias[...] * a
  return onednn.conv_epilogue(x, conv.kernel[...] * a, shift, skip, geometry,
                              relu)
