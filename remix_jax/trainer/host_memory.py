"""Keeps freed host memory in the process, so XLA:CPU's buffers stay mapped.

XLA:CPU allocates the temporary buffer of a jitted program (all of a train
step's activations and gradients, hundreds of MiB for a ResNet at batch
128) when the program starts and frees it when it ends. glibc's ``malloc``
serves such a block with its own ``mmap`` and returns it with ``munmap``,
so every step maps the buffer afresh and the kernel zero-fills each of its
4 KiB pages on first touch: one page fault per page, every step
(``ru_minflt`` grows by the buffer's size per step). PyTorch's separate
activations stay below glibc's mmap threshold and are reused.

:func:`keep_freed_memory` sets three ``mallopt`` parameters so that large
blocks come from the main heap and stay there once freed:

- ``M_ARENA_MAX = 1``: every thread allocates from the main arena (a
  thread arena cannot grow past 64 MiB and falls back to ``mmap``);
- ``M_MMAP_MAX = 0``: no block is served by ``mmap``;
- ``M_TRIM_THRESHOLD = −1``: freed memory at the top of the heap is never
  returned to the system (a positive threshold fits in an ``int``, below
  the temporary buffers of larger models).

The next step then reuses the same, already mapped pages. The cost is that
the process keeps its peak heap size until it exits. The parameters only
change where memory comes from, never what is computed. ``M_ARENA_MAX``
binds only threads that have not allocated yet, so this runs before JAX
starts its thread pools (:func:`remix_jax.trainer.process_setup.configure_process` calls
it). ``REMIX_JAX_MALLOC_DEFAULTS=1`` keeps glibc's defaults; other C
libraries are left alone.

Reference: ``mallopt(3)``, the GNU C Library manual,
https://man7.org/linux/man-pages/man3/mallopt.3.html.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform

#: Environment variable that, set to ``1``, turns :func:`keep_freed_memory` off.
OPT_OUT = "REMIX_JAX_MALLOC_DEFAULTS"

# mallopt parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

#: ``mallopt`` settings, by parameter number.
SETTINGS = {_M_ARENA_MAX: 1, _M_MMAP_MAX: 0, _M_TRIM_THRESHOLD: -1}


@functools.cache
def keep_freed_memory() -> bool:
  """Sets :data:`SETTINGS` with glibc's ``mallopt``, once per process.

  Returns:
    Whether glibc accepted every setting (``False`` when opted out with
    ``REMIX_JAX_MALLOC_DEFAULTS=1`` or when the C library is not glibc).
  """
  if os.environ.get(OPT_OUT) == "1" or platform.libc_ver()[0] != "glibc":
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):
    return False
  mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
  mallopt.restype = ctypes.c_int
  return all(mallopt(param, value) == 1 for param, value in SETTINGS.items())
