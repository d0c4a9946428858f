"""Convolution with a batch-chunked weight gradient (fast on XLA:CPU).

The gradient of a convolution ``y = x ⊛ w`` with respect to its kernel is a
contraction over the batch and every output position,

    ∂L/∂w[i, j, c, o] = Σ_{n, h, w} x_pad[n, h·s + i, w·s + j, c] · g[n, h, w, o],

which XLA expresses as one convolution whose "kernel" is the whole output
gradient ``g``, after transposing ``x`` and ``g`` to batch-minor layouts.
XLA:CPU runs that far below the speed of the forward convolution
(docs/dev/performance_log.md). Summing the same contraction over ``K`` batch chunks,

    ∂L/∂w = Σ_k ∂L/∂w |_{n ∈ chunk k},

computes the same gradient (up to float reassociation of the sum) with
``K`` small kernel-gradient convolutions whose transposes fit in cache,
which XLA:CPU runs faster in total. The forward pass and
the input gradient are XLA's own.

:func:`make_conv_fn` returns a drop-in replacement for
``jax.lax.conv_general_dilated`` (the ``conv_general_dilated`` argument of
``nnx.Conv``). ``num_chunks = 1`` returns ``lax.conv_general_dilated``
itself, the right choice on GPU/TPU. The chunked version is a
``jax.custom_vjp``: reverse-mode only, so code that needs ``jax.jvp``
through the model builds it with ``num_chunks = 1``.
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
from jax import lax

from remix_jax.models import onednn

ConvFn = Callable[..., jax.Array]


def chunk_bounds(size: int, num_chunks: int) -> list[tuple[int, int]]:
  """Static ``[start, stop)`` bounds of ``min(num_chunks, size)`` near-equal chunks.

  Args:
    size: length of the axis to split.
    num_chunks: requested number of chunks (``>= 1``).

  Returns:
    Consecutive non-empty ranges covering ``[0, size)``; the first
    ``size mod k`` chunks are one longer (as ``numpy.array_split``).
  """
  k = max(1, min(num_chunks, size))
  base, extra = divmod(size, k)
  bounds, start = [], 0
  for i in range(k):
    stop = start + base + (1 if i < extra else 0)
    bounds.append((start, stop))
    start = stop
  return bounds


def _chunked_conv(lhs: jax.Array, rhs: jax.Array, *, conv: ConvFn,
                  lhs_batch_axis: int, out_batch_axis: int,
                  num_chunks: int) -> jax.Array:
  """``conv(lhs, rhs)`` whose VJP sums the kernel gradient over batch chunks."""

  @jax.custom_vjp
  def apply(lhs, rhs):
    return conv(lhs, rhs)

  def forward(lhs, rhs):
    return conv(lhs, rhs), (lhs, rhs)

  def backward(residuals, g):
    lhs, rhs = residuals
    _, lhs_vjp = jax.vjp(lambda l: conv(l, rhs), lhs)
    (d_lhs,) = lhs_vjp(g)
    d_rhs = None
    for start, stop in chunk_bounds(lhs.shape[lhs_batch_axis], num_chunks):
      x = lax.slice_in_dim(lhs, start, stop, axis=lhs_batch_axis)
      g_k = lax.slice_in_dim(g, start, stop, axis=out_batch_axis)
      _, rhs_vjp = jax.vjp(lambda r, x=x: conv(x, r), rhs)
      (part,) = rhs_vjp(g_k)
      d_rhs = part if d_rhs is None else d_rhs + part
    return d_lhs, d_rhs

  apply.defvjp(forward, backward)
  return apply(lhs, rhs)


#: Convolution implementations :func:`make_conv_fn` can return.
CONV_IMPLS = ("xla", "onednn")


def make_conv_fn(num_chunks: int, impl: str = "xla") -> ConvFn:
  """A drop-in ``lax.conv_general_dilated`` for ``nnx.Conv``.

  ``impl="xla"``: XLA's convolution whose kernel gradient is the sum over
  ``num_chunks`` batch chunks of the per-chunk kernel gradients (see the
  module docstring); the forward value and the input gradient are
  unchanged, and batch-grouped convolutions (``batch_group_count > 1``)
  keep the plain gradient. ``impl="onednn"``: oneDNN's convolutions on
  XLA:CPU (:func:`remix_jax.models.onednn.conv_general_dilated`), which
  compute all three passes natively; ``num_chunks`` does not apply.

  Args:
    num_chunks: number of batch chunks for XLA's kernel gradient; ``1``
      with ``impl="xla"`` returns ``lax.conv_general_dilated`` unchanged.
    impl: one of :data:`CONV_IMPLS`.

  Returns:
    A function with ``lax.conv_general_dilated``'s signature.

  Raises:
    ValueError: ``num_chunks < 1`` or an unknown ``impl``.
  """
  if num_chunks < 1:
    raise ValueError(f"num_chunks must be >= 1, got {num_chunks}")
  if impl not in CONV_IMPLS:
    raise ValueError(f"unknown conv impl {impl!r}; choose one of "
                     f"{', '.join(CONV_IMPLS)}")
  if impl == "onednn":
    return onednn.conv_general_dilated
  if num_chunks == 1:
    return lax.conv_general_dilated

  def conv_general_dilated(lhs, rhs, window_strides, padding,
                           lhs_dilation=None, rhs_dilation=None,
                           dimension_numbers=None, feature_group_count=1,
                           batch_group_count=1, **kwargs):
    conv = functools.partial(
        lax.conv_general_dilated, window_strides=window_strides,
        padding=padding, lhs_dilation=lhs_dilation, rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count, **kwargs)
    if batch_group_count != 1:
      return conv(lhs, rhs)
    dims = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    return _chunked_conv(lhs, rhs, conv=conv, lhs_batch_axis=dims.lhs_spec[0],
                         out_batch_axis=dims.out_spec[0],
                         num_chunks=num_chunks)

  return conv_general_dilated
