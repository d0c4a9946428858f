"""oneDNN's training-mode BatchNorm (optionally + ReLU, + a shortcut) for XLA:CPU.

In training mode BatchNorm normalizes each channel ``c`` of an NHWC batch
with the batch's own statistics over ``M = N·H·W`` values:

    μ_c = (1/M) Σ_{n,h,w} x[n,h,w,c],   σ²_c = (1/M) Σ_{n,h,w} (x[n,h,w,c] − μ_c)²
    y = γ_c · (x − μ_c) / √(σ²_c + ε) + β_c          (then ReLU: max(y, 0))

and its backward pass differentiates through ``μ`` and ``σ²``:

    x̂ = (x − μ)/√(σ² + ε),   ∂L/∂β = Σ g,   ∂L/∂γ = Σ g·x̂,
    ∂L/∂x = γ/√(σ² + ε) · (g − ∂L/∂β / M − x̂ · ∂L/∂γ / M)

(``g = ∂L/∂y``, masked by ``y > 0`` when the ReLU is fused; sums over
``n, h, w``). Written with XLA's ops, the forward and backward passes are
several reductions and elementwise fusions over the whole activation.
oneDNN's ``batch_normalization`` primitive does each pass in one call on
the same OpenMP threads as the convolutions around it (:mod:`onednn`),
and fuses the ReLU through a bit mask that the backward pass reads. At
the end of a residual block, ``max(BN(x) + s, 0)`` with the shortcut
``s`` also runs in the native call (one more pass over ``y``), and its
backward gives ``∂L/∂s = ∂L/∂y · [y > 0]``.

:func:`batch_norm_train` is a ``jax.custom_vjp`` over a forward and a
backward FFI handler of the native library (one pair for ``BN`` and
``ReLU(BN)``, one for ``ReLU(BN + s)``). The statistics it returns (for the running
averages) carry no gradient, as the running averages never do.

Reference: S. Ioffe and C. Szegedy, "Batch Normalization: Accelerating
Deep Network Training by Reducing Internal Covariate Shift", ICML 2015,
arXiv:1502.03167; oneDNN's batch normalization primitive,
https://oneapi-src.github.io/oneDNN/dev_guide_batch_normalization.html.
"""

from __future__ import annotations

import ctypes
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from remix_jax.models import onednn


def supported(x: jax.Array, *params: jax.Array) -> bool:
  """Whether :func:`batch_norm_train` runs ``x`` (float32 NHWC, non-empty)."""
  return (x.ndim == 4 and x.dtype == jnp.float32 and 0 not in x.shape
          and all(p.dtype == jnp.float32 and p.shape == x.shape[-1:]
                  for p in params))


@functools.cache
def _workspace_bytes(shape: tuple[int, ...], epsilon: float,
                     relu: bool) -> int:
  """Bytes of oneDNN's ReLU mask for an NHWC ``shape`` (1 without ReLU)."""
  query = onednn.library().RemixOnednnBatchNormWorkspaceBytes
  query.restype = ctypes.c_int64
  query.argtypes = [ctypes.c_int64] * 4 + [ctypes.c_float, ctypes.c_int64]
  n, h, w, c = shape
  size = query(n, h, w, c, epsilon, int(relu))
  if size < 1:
    raise RuntimeError(f"oneDNN has no batch normalization for {shape}")
  return size


def _attrs(epsilon: float, relu: bool) -> dict[str, np.generic]:
  return {"epsilon": np.float32(epsilon), "relu": np.int64(relu)}


def _forward(x, scale, shift, epsilon, relu):
  channels = jax.ShapeDtypeStruct(x.shape[-1:], jnp.float32)
  workspace = jax.ShapeDtypeStruct(
      (_workspace_bytes(x.shape, epsilon, relu),), jnp.uint8)
  return onednn.ffi("bn_fwd", (jax.ShapeDtypeStruct(x.shape, jnp.float32),
                               channels, channels, workspace),
                    x, scale, shift, **_attrs(epsilon, relu))


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _batch_norm(x, scale, shift, epsilon, relu):
  y, mean, var, _ = _forward(x, scale, shift, epsilon, relu)
  return y, mean, var


def _batch_norm_fwd(x, scale, shift, epsilon, relu):
  y, mean, var, workspace = _forward(x, scale, shift, epsilon, relu)
  return (y, mean, var), (x, scale, shift, mean, var, workspace)


def _batch_norm_bwd(epsilon, relu, residuals, cotangents):
  # The statistics' cotangents are dropped: batch_norm_train returns them
  # under stop_gradient, so they are always zero.
  x, scale, shift, mean, var, workspace = residuals
  g = cotangents[0].astype(jnp.float32)
  channels = jax.ShapeDtypeStruct(x.shape[-1:], jnp.float32)
  dx, dscale, dshift = onednn.ffi(
      "bn_bwd", (jax.ShapeDtypeStruct(x.shape, jnp.float32), channels,
                 channels),
      x, g, scale, mean, var, workspace, **_attrs(epsilon, relu))
  return (onednn.reduce_to(dx, x), onednn.reduce_to(dscale, scale),
          onednn.reduce_to(dshift, shift))


_batch_norm.defvjp(_batch_norm_fwd, _batch_norm_bwd)


def _data_and_channels(x):
  return (jax.ShapeDtypeStruct(x.shape, jnp.float32),
          jax.ShapeDtypeStruct(x.shape[-1:], jnp.float32))


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _batch_norm_add_relu(x, skip, scale, shift, epsilon):
  data, channels = _data_and_channels(x)
  return onednn.ffi("bn_add_relu_fwd", (data, channels, channels), x, skip,
                    scale, shift, epsilon=np.float32(epsilon))


def _batch_norm_add_relu_fwd(x, skip, scale, shift, epsilon):
  y, mean, var = _batch_norm_add_relu(x, skip, scale, shift, epsilon)
  return (y, mean, var), (x, skip, scale, shift, mean, var, y)


def _batch_norm_add_relu_bwd(epsilon, residuals, cotangents):
  # As _batch_norm_bwd, the statistics' cotangents are always zero.
  x, skip, scale, shift, mean, var, y = residuals
  data, channels = _data_and_channels(x)
  dx, dskip, dscale, dshift = onednn.ffi(
      "bn_add_relu_bwd", (data, data, channels, channels), x,
      cotangents[0].astype(jnp.float32), y, scale, mean, var,
      epsilon=np.float32(epsilon))
  return (onednn.reduce_to(dx, x), onednn.reduce_to(dskip, skip),
          onednn.reduce_to(dscale, scale), onednn.reduce_to(dshift, shift))


_batch_norm_add_relu.defvjp(_batch_norm_add_relu_fwd, _batch_norm_add_relu_bwd)


def batch_norm_train(x: jax.Array, scale: jax.Array, shift: jax.Array, *,
                     epsilon: float, relu: bool = False,
                     skip: jax.Array | None = None
                     ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Training-mode BatchNorm of NHWC ``x`` with batch statistics, on oneDNN.

  ``y = γ·(x − μ)/√(σ² + ε) + β`` per channel (then ``max(y, 0)`` if
  ``relu``; ``max(y + skip, 0)`` with a ``skip``, the end of a residual
  block), μ and σ² (biased) over the batch and spatial axes. Reverse-mode
  differentiable in ``x``, ``skip``, ``scale`` and ``shift``; inside
  ``jax.shard_map`` each device normalizes its own shard (as
  ``nnx.BatchNorm`` without ``axis_name``).

  Args:
    x: ``[N, H, W, C]`` float32 activations.
    scale: ``[C]`` float32 γ.
    shift: ``[C]`` float32 β.
    epsilon: ε.
    relu: fuse the ReLU that follows the normalization.
    skip: ``None``, or a float32 array of ``x``'s shape added before the
      ReLU (needs ``relu``).

  Returns:
    ``(y, mean, var)``: the output and the batch's ``[C]`` mean and biased
    variance (without gradient).

  Raises:
    ValueError: ``x`` or the parameters are not as above (:func:`supported`).
    RuntimeError: the native library is unavailable.
  """
  if not supported(x, scale, shift):
    raise ValueError(f"oneDNN BatchNorm needs float32 NHWC x and [C] "
                     f"parameters, got {x.shape} {x.dtype}, {scale.shape}, "
                     f"{shift.shape}")
  epsilon = float(np.float32(epsilon))
  if skip is None:
    y, mean, var = _batch_norm(x, scale, shift, epsilon, bool(relu))
  elif not relu or skip.shape != x.shape or skip.dtype != jnp.float32:
    raise ValueError(f"oneDNN BatchNorm adds a skip only before a ReLU and "
                     f"of x's float32 shape {x.shape}, got relu={relu}, "
                     f"{skip.shape} {skip.dtype}")
  else:
    y, mean, var = _batch_norm_add_relu(x, skip, scale, shift, epsilon)
  return y, lax.stop_gradient(mean), lax.stop_gradient(var)
