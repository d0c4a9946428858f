"""oneDNN convolutions for XLA:CPU, called through the XLA FFI.

XLA:CPU runs a 2-D convolution and its two gradients with its own (Eigen)
kernels. PyTorch's CPU convolutions are oneDNN's, which are faster at
ResNet sizes (docs/cpu_performance.md). This module calls oneDNN 3.2 (the
``onednn-cpu-gomp`` wheel) from inside a jitted JAX program: the native
library ``remix_jax/_onednn_conv`` (built by ``setup.py`` from
``remix_jax/csrc/onednn_conv.cc``) defines three XLA FFI handlers for
convolutions, which :func:`conv_general_dilated` calls with
``jax.ffi.ffi_call`` (and four for BatchNorm,
:mod:`remix_jax.models.onednn_batch_norm`, and one for inference with an
epilogue, :func:`conv_epilogue`):

    y  = x ⊛ w                          (forward)
    ∂L/∂x = ∂L/∂y ⊛ᵀ w                  (backward data)
    ∂L/∂w[i, j, c, o] = Σ_{n,h,w} x_pad[n, h·s_h + i, w·s_w + j, c] · ∂L/∂y[n, h, w, o]
                                          (backward weights)

joined by a ``jax.custom_vjp``. XLA still fuses what lies between the
oneDNN calls (residual additions, the mixer, the update), and an unused
gradient (e.g. the input gradient of the first layer) is never computed.
The native library runs one oneDNN call at a time in the process: each
call's OpenMP team already uses every core.

Supported: float32, NHWC inputs with HWIO kernels (``nnx.Conv``'s
layout), any strides and explicit or ``SAME``/``VALID`` padding, no
dilation, no feature/batch groups. Anything else goes to
``lax.conv_general_dilated`` unchanged, so the function is a drop-in
replacement. The custom VJP makes it reverse-mode only (no ``jax.jvp``).
The library is loaded and its handlers registered on first use, not at
import. Only the CPU backend has the handlers: on GPU/TPU use XLA's
convolutions (``config.conv_impl``).

Reference: oneDNN, https://github.com/oneapi-src/oneDNN (convolution
primitives); the XLA FFI, https://docs.jax.dev/en/latest/ffi.html.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import importlib.util
import os
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

#: FFI target names, by pass (the convolution's three, then BatchNorm's four,
#: :mod:`remix_jax.models.onednn_batch_norm`, then :func:`conv_epilogue`'s).
TARGETS = {
    "fwd": "remix_jax_onednn_conv_fwd",
    "bwd_data": "remix_jax_onednn_conv_bwd_data",
    "bwd_weights": "remix_jax_onednn_conv_bwd_weights",
    "bn_fwd": "remix_jax_onednn_batch_norm_fwd",
    "bn_bwd": "remix_jax_onednn_batch_norm_bwd",
    "bn_add_relu_fwd": "remix_jax_onednn_batch_norm_add_relu_fwd",
    "bn_add_relu_bwd": "remix_jax_onednn_batch_norm_add_relu_bwd",
    "fwd_epilogue": "remix_jax_onednn_conv_fwd_epilogue",
}
_SYMBOLS = {
    "fwd": "RemixOnednnConvFwd",
    "bwd_data": "RemixOnednnConvBwdData",
    "bwd_weights": "RemixOnednnConvBwdWeights",
    "bn_fwd": "RemixOnednnBatchNormFwd",
    "bn_bwd": "RemixOnednnBatchNormBwd",
    "bn_add_relu_fwd": "RemixOnednnBatchNormAddReluFwd",
    "bn_add_relu_bwd": "RemixOnednnBatchNormAddReluBwd",
    "fwd_epilogue": "RemixOnednnConvFwdEpilogue",
}
_EXTENSION = "remix_jax._onednn_conv"
_NHWC = ("NHWC", "HWIO", "NHWC")


def _libdnnl_path() -> Optional[str]:
  """Path of ``libdnnl.so.3`` from the ``onednn-cpu-gomp`` wheel, if installed."""
  try:
    dist = importlib.metadata.distribution("onednn-cpu-gomp")
  except importlib.metadata.PackageNotFoundError:
    return None
  for f in dist.files or ():
    if str(f).endswith("libdnnl.so.3"):
      return os.path.realpath(dist.locate_file(f))
  return None


@functools.cache
def _open() -> tuple[Optional[ctypes.CDLL], Optional[str]]:
  """Loads the native library and registers its handlers, once.

  Returns:
    ``(library, None)`` on success, else ``(None, why the oneDNN kernels
    are unavailable)``.
  """
  spec = importlib.util.find_spec(_EXTENSION)
  if spec is None or not spec.origin:
    return None, ("remix_jax was installed without its native oneDNN kernels "
                  "(reinstall with `pip install -e .` on Linux x86_64)")
  dnnl = _libdnnl_path()
  if dnnl is None:
    return None, ("onednn-cpu-gomp is not installed (pip install "
                  "\"remix_jax[onednn]\", or onednn-cpu-gomp==2023.2.0)")
  try:
    # The extension finds libdnnl.so.3 by soname once it is loaded globally.
    ctypes.CDLL(dnnl, mode=ctypes.RTLD_GLOBAL)
    library = ctypes.CDLL(spec.origin)
    symbols = {name: getattr(library, _SYMBOLS[name]) for name in TARGETS}
  except (OSError, AttributeError) as e:
    return None, f"could not load oneDNN ({e})"
  for name, target in TARGETS.items():
    jax.ffi.register_ffi_target(target, jax.ffi.pycapsule(symbols[name]),
                                platform="cpu")
  return library, None


def _load() -> Optional[str]:
  """``None`` once the handlers are registered, else why they cannot be."""
  return _open()[1]


def library() -> ctypes.CDLL:
  """The loaded native library (for its non-FFI entry points).

  Raises:
    RuntimeError: the library is unavailable (:func:`unavailable_reason`).
  """
  lib, reason = _open()
  if lib is None:
    raise RuntimeError(f"oneDNN kernels unavailable: {reason}")
  return lib


def unavailable_reason() -> Optional[str]:
  """Why :func:`conv_general_dilated` cannot use oneDNN here (``None``: it can).

  Loads the library on the first call.
  """
  return _load()


def available() -> bool:
  """Whether the oneDNN convolutions are built, loadable and registered."""
  return _load() is None


class Geometry(NamedTuple):
  """Static strides and zero padding of one NHWC/HWIO convolution."""
  stride_h: int
  stride_w: int
  pad_top: int
  pad_bottom: int
  pad_left: int
  pad_right: int

  def attrs(self) -> dict[str, np.int64]:
    return {k: np.int64(v) for k, v in self._asdict().items()}

  def out_hw(self, h: int, w: int, kh: int, kw: int) -> tuple[int, int]:
    """``(H_out, W_out) = (⌊(H + p_t + p_b − k_h) / s_h⌋ + 1, …)``."""
    return ((h + self.pad_top + self.pad_bottom - kh) // self.stride_h + 1,
            (w + self.pad_left + self.pad_right - kw) // self.stride_w + 1)


def _varying(x) -> frozenset:
  """The manual mesh axes ``x`` varies over inside ``jax.shard_map``."""
  aval = jax.typeof(x)
  mat = getattr(aval, "mat", None)
  return frozenset(mat.varying if mat is not None else getattr(aval, "vma", ()))


def _to_varying(x, axes: frozenset):
  missing = tuple(sorted(axes - _varying(x)))
  return lax.pcast(x, missing, to="varying") if missing else x


def ffi(pass_name: str, results, *operands, **attrs):
  """Calls handler ``pass_name`` of :data:`TARGETS` on ``operands``.

  Inside ``jax.shard_map`` each device runs the kernel on its own shard, so
  every result is typed as varying over every mesh axis any operand varies
  over (an FFI result carries no such type by itself).

  Args:
    pass_name: a key of :data:`TARGETS`.
    results: ``jax.ShapeDtypeStruct`` of the result, or a tuple of them.
    *operands: the handler's array arguments.
    **attrs: the handler's attributes (numpy scalars).

  Returns:
    The result array, or a tuple of them, as ``results``.
  """
  axes = frozenset().union(*(_varying(a) for a in operands))
  out = jax.ffi.ffi_call(TARGETS[pass_name], results,
                         vmap_method="sequential")(
                             *(_to_varying(a, axes) for a in operands),
                             **attrs)
  if isinstance(out, (tuple, list)):
    return tuple(_to_varying(o, axes) for o in out)
  return _to_varying(out, axes)


def _call(pass_name: str, geometry: Geometry, shape, a, b):
  """One convolution pass on ``(a, b)`` with a float32 result of ``shape``."""
  return ffi(pass_name, jax.ShapeDtypeStruct(shape, jnp.float32), a, b,
             **geometry.attrs())


def out_shape(x_shape, w_shape, geometry: Geometry) -> tuple[int, ...]:
  """``[N, H_out, W_out, O]`` of NHWC ``x_shape`` ⊛ HWIO ``w_shape``."""
  oh, ow = geometry.out_hw(x_shape[1], x_shape[2], w_shape[0], w_shape[1])
  return (x_shape[0], oh, ow, w_shape[3])


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_nhwc(x: jax.Array, w: jax.Array, geometry: Geometry) -> jax.Array:
  """oneDNN's float32 convolution of NHWC ``x`` with HWIO ``w``.

  Args:
    x: ``[N, H, W, C]`` float32 input.
    w: ``[KH, KW, C, O]`` float32 kernel.
    geometry: strides and explicit zero padding.

  Returns:
    ``[N, H_out, W_out, O]``, as ``lax.conv_general_dilated`` with
    ``("NHWC", "HWIO", "NHWC")``.
  """
  return _call("fwd", geometry, out_shape(x.shape, w.shape, geometry), x, w)


def _conv_fwd(x, w, geometry):
  return conv_nhwc(x, w, geometry), (x, w)


def reduce_to(cotangent, primal):
  """Sums ``cotangent`` over the mesh axes ``primal`` does not vary over.

  A replicated kernel used on per-device shards gets the sum of the
  per-device gradients, as autodiff of XLA's convolution gives.
  """
  extra = tuple(sorted(_varying(cotangent) - _varying(primal)))
  return lax.psum(cotangent, extra) if extra else cotangent


def _conv_bwd(geometry, residuals, g):
  x, w = residuals
  g = g.astype(jnp.float32)
  d_x = _call("bwd_data", geometry, x.shape, g, w)
  d_w = _call("bwd_weights", geometry, w.shape, x, g)
  return reduce_to(d_x, x), reduce_to(d_w, w)


conv_nhwc.defvjp(_conv_fwd, _conv_bwd)


def _epilogue_reference(x, w, b, skip, geometry, relu):
  y = conv_nhwc(x, w, geometry) + b
  y = y if skip is None else y + skip
  return jnp.maximum(y, 0) if relu else y


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def conv_epilogue(x: jax.Array, w: jax.Array, b: jax.Array,
                  skip: Optional[jax.Array], geometry: Geometry,
                  relu: bool) -> jax.Array:
  """``act(x ⊛ w + b + skip)`` in one oneDNN forward (inference kernels).

  ``b`` is added per output channel, ``skip`` (optional, the output's
  shape) elementwise, and ``act`` is ``max(·, 0)`` when ``relu``, else the
  identity; oneDNN applies them as post-ops while the output is in cache.
  With a BatchNorm folded into ``w`` and ``b`` this is a ResNet layer's
  eval-mode ``ReLU(BN(conv(x)) + shortcut)``
  (:func:`remix_jax.models.conv_bn.conv_bn`). Its gradient is that of the
  same function built from :func:`conv_nhwc` and XLA's ops.

  Args:
    x: ``[N, H, W, C]`` float32 input.
    w: ``[KH, KW, C, O]`` float32 kernel.
    b: ``[O]`` float32 bias.
    skip: ``[N, H_out, W_out, O]`` float32, or ``None``.
    geometry: strides and explicit zero padding.
    relu: apply the ReLU.

  Returns:
    ``[N, H_out, W_out, O]`` float32.
  """
  operands = (x, w, b) if skip is None else (x, w, b, skip)
  return ffi("fwd_epilogue",
             jax.ShapeDtypeStruct(out_shape(x.shape, w.shape, geometry),
                                  jnp.float32),
             *operands, relu=np.bool_(relu), **geometry.attrs())


def _epilogue_fwd(x, w, b, skip, geometry, relu):
  return conv_epilogue(x, w, b, skip, geometry, relu), (x, w, b, skip)


def _epilogue_bwd(geometry, relu, residuals, g):
  _, vjp = jax.vjp(
      functools.partial(_epilogue_reference, geometry=geometry, relu=relu),
      *residuals)
  return vjp(g)


conv_epilogue.defvjp(_epilogue_fwd, _epilogue_bwd)


def geometry_of(lhs, rhs, window_strides, padding, lhs_dilation=None,
                rhs_dilation=None, dimension_numbers=_NHWC,
                feature_group_count=1, batch_group_count=1,
                preferred_element_type=None) -> Optional[Geometry]:
  """The :class:`Geometry` of a ``lax.conv_general_dilated`` call (same
  arguments) that oneDNN can run, else ``None``."""
  if (lhs.ndim != 4 or rhs.ndim != 4 or lhs.dtype != jnp.float32
      or rhs.dtype != jnp.float32
      or preferred_element_type not in (None, jnp.float32)
      or feature_group_count != 1 or batch_group_count != 1
      or any(d != 1 for d in (lhs_dilation or ()))
      or any(d != 1 for d in (rhs_dilation or ()))
      or 0 in lhs.shape or 0 in rhs.shape):
    return None
  dims = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
  if dims != lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC):
    return None
  strides = tuple(window_strides)
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides,
                                  padding)
  (pt, pb), (pl, pr) = padding
  if min(pt, pb, pl, pr) < 0:
    return None
  geometry = Geometry(*strides, pt, pb, pl, pr)
  if min(geometry.out_hw(*lhs.shape[1:3], *rhs.shape[:2])) < 1:
    return None
  return geometry


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, dimension_numbers=None,
                         feature_group_count=1, batch_group_count=1,
                         precision=None, preferred_element_type=None,
                         **kwargs):
  """``lax.conv_general_dilated`` that runs supported convolutions on oneDNN.

  Float32 NHWC/HWIO convolutions without dilation or groups call
  :func:`conv_nhwc`; every other call is ``lax.conv_general_dilated``
  itself. ``precision`` is ignored on the oneDNN path (its float32
  convolutions are full precision, as XLA:CPU's).

  Args:
    lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
    dimension_numbers, feature_group_count, batch_group_count, precision,
    preferred_element_type, **kwargs: as ``lax.conv_general_dilated``
      (a call with any of ``kwargs`` set, e.g. ``out_sharding``, goes to
      XLA).

  Returns:
    The convolution, as ``lax.conv_general_dilated`` computes it (up to
    float reassociation).

  Raises:
    RuntimeError: the oneDNN library is unavailable
      (:func:`unavailable_reason`).
  """
  geometry = geometry_of(lhs, rhs, window_strides, padding, lhs_dilation,
                         rhs_dilation, dimension_numbers, feature_group_count,
                         batch_group_count, preferred_element_type)
  if geometry is None or any(v is not None for v in kwargs.values()):
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count, precision=precision,
        preferred_element_type=preferred_element_type, **kwargs)
  reason = _load()
  if reason is not None:
    raise RuntimeError(f"oneDNN convolutions unavailable: {reason}")
  return conv_nhwc(lhs, rhs, geometry)
