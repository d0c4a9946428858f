"""``nnx.BatchNorm`` with an optional fused ReLU and oneDNN's kernels on CPU.

:class:`BatchNorm` is ``nnx.BatchNorm`` (same parameters, statistics and
checkpoints) whose call takes ``relu=True`` for the ``ReLU(BN(x))`` of the
ResNets, and ``skip=s`` for the ``ReLU(BN(x) + s)`` that ends a residual
block. With ``impl="onednn"`` its training-mode pass on float32 NHWC
input runs :func:`remix_jax.models.onednn_batch_norm.batch_norm_train`;
eval mode and everything else are ``nnx.BatchNorm``'s own code.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from flax import nnx

from remix_jax.models import onednn_batch_norm

#: Implementations of the training-mode pass.
IMPLS = ("xla", "onednn")


class BatchNorm(nnx.BatchNorm):
  """``nnx.BatchNorm`` over the last axis, optionally followed by a ReLU.

  ``y = γ·(x − μ)/√(σ² + ε) + β`` with the batch's statistics in training
  mode (the running ones updated as ``r ← m·r + (1 − m)·batch``) and the
  running ones in eval mode; ``max(y, 0)`` when called with ``relu=True``
  and ``max(y + skip, 0)`` with a ``skip`` as well.

  Args:
    *args, **kwargs: as ``nnx.BatchNorm``.
    impl: ``"xla"`` (``nnx.BatchNorm``'s ops) or ``"onednn"`` (oneDNN's
      batch normalization for the training-mode pass of float32 NHWC input
      without ``mask`` or ``axis_name``; the same function up to float
      rounding).

  Reference:
    S. Ioffe and C. Szegedy, "Batch Normalization", ICML 2015.
  """

  def __init__(self, *args, impl: str = "xla", **kwargs):
    if impl not in IMPLS:
      raise ValueError(f"BatchNorm impl must be one of {IMPLS}, got {impl!r}")
    super().__init__(*args, **kwargs)
    self.impl = impl

  def _runs_on_onednn(self, x: jax.Array, use_running_average: bool,
                      mask: Optional[jax.Array]) -> bool:
    return (self.impl == "onednn" and not use_running_average
            and mask is None and self.axis_name is None
            and self.axis in (-1, x.ndim - 1)
            and self.scale is not None and self.bias is not None
            and self.dtype in (None, jnp.float32)
            and onednn_batch_norm.supported(x, self.scale[...],
                                            self.bias[...]))

  def __call__(self, x: jax.Array, use_running_average: Optional[bool] = None,
               *, mask: Optional[jax.Array] = None, relu: bool = False,
               skip: Optional[jax.Array] = None) -> jax.Array:
    """Normalizes ``x``, adds ``skip`` if given, then applies a ReLU if ``relu``.

    Args:
      x: activations, features on the last axis.
      use_running_average: as ``nnx.BatchNorm`` (``None``: the module's).
      mask: as ``nnx.BatchNorm``.
      relu: apply ``max(·, 0)`` to the output.
      skip: an array of the output's shape added before the ReLU (a
        residual block's shortcut), or ``None``.

    Returns:
      ``BN(x)``, ``max(BN(x), 0)`` or ``max(BN(x) + skip, 0)``, the shape
      of ``x``.
    """
    running = (self.use_running_average if use_running_average is None
               else use_running_average)
    if (running is None or not self._runs_on_onednn(x, running, mask)
        or (skip is not None and (not relu or skip.shape != x.shape
                                  or skip.dtype != x.dtype))):
      y = super().__call__(x, use_running_average, mask=mask)
      y = y if skip is None else y + skip
      return nnx.relu(y) if relu else y
    y, mean, var = onednn_batch_norm.batch_norm_train(
        x, self.scale[...], self.bias[...], epsilon=self.epsilon, relu=relu,
        skip=skip)
    self.mean[...] = self.momentum * self.mean[...] + (1 - self.momentum) * mean
    self.var[...] = self.momentum * self.var[...] + (1 - self.momentum) * var
    return y
