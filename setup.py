"""Builds remix_jax's optional native extension: oneDNN kernels for XLA:CPU.

``remix_jax/_onednn_conv`` holds XLA FFI handlers (``remix_jax/csrc``) that
JAX calls through ``jax.ffi``; it is not a Python module and is loaded with
``ctypes`` by :mod:`remix_jax.models.onednn`. It compiles against the FFI
headers shipped in jaxlib and the oneDNN headers of ``onednn-devel-cpu-gomp``
(both build requirements, Linux x86_64 only). Where they are missing, or
the compiler fails, the package installs without it and the models use
XLA's convolutions.
"""

import importlib.metadata
import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _locate(distribution: str, name: str):
  """Directory of file ``name`` installed by ``distribution`` (or None)."""
  try:
    dist = importlib.metadata.distribution(distribution)
  except importlib.metadata.PackageNotFoundError:
    return None
  for f in dist.files or ():
    if str(f).endswith(name):
      return os.path.dirname(os.path.realpath(dist.locate_file(f)))
  return None


def _jaxlib_include():
  try:
    import jaxlib  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  path = os.path.join(os.path.dirname(jaxlib.__file__), "include")
  return path if os.path.exists(os.path.join(path, "xla/ffi/api/ffi.h")) else None


class OptionalBuildExt(build_ext):
  """build_ext that skips the extension (with a message) when it cannot build."""

  def run(self):
    try:
      super().run()
    except Exception as e:  # pylint: disable=broad-except
      print(f"remix_jax: oneDNN convolutions not built ({e}); using XLA's")

  def build_extension(self, ext):
    ffi_include = _jaxlib_include()
    dnnl_include = _locate("onednn-devel-cpu-gomp", "oneapi/dnnl/dnnl.hpp")
    dnnl_lib = _locate("onednn-cpu-gomp", "libdnnl.so.3")
    if not (ffi_include and dnnl_include and dnnl_lib):
      print("remix_jax: oneDNN convolutions not built (needs jaxlib, "
            "onednn-devel-cpu-gomp and onednn-cpu-gomp); using XLA's")
      return
    ext.include_dirs += [ffi_include, os.path.dirname(os.path.dirname(dnnl_include))]
    ext.library_dirs += [dnnl_lib]
    try:
      super().build_extension(ext)
    except Exception as e:  # pylint: disable=broad-except
      print(f"remix_jax: oneDNN convolutions not built ({e}); using XLA's")


setup(
    ext_modules=[
        Extension(
            "remix_jax._onednn_conv",
            sources=["remix_jax/csrc/onednn_conv.cc",
                     "remix_jax/csrc/onednn_batch_norm.cc"],
            depends=["remix_jax/csrc/onednn_common.h"],
            language="c++",
            extra_compile_args=["-std=c++17", "-O2", "-w", "-fopenmp"],
            # libdnnl.so.3 is loaded by remix_jax.models.onednn before this
            # library (it lives in the environment's lib/, not beside it).
            extra_link_args=["-l:libdnnl.so.3", "-fopenmp"],
        ),
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
