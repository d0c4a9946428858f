"""The process set-up of the trainer: XLA:CPU flags and glibc's allocator.

:func:`configure_process` does two things, before JAX starts its backends:

1. **XLA:CPU flags.** By default XLA:CPU hands convolutions to YNNPACK; the
   trainer keeps YNNPACK for reductions and dots only, since XLA's own
   convolutions and elementwise fusions run faster beside the oneDNN
   kernels (:mod:`remix_jax.models.onednn`), which bring their own OpenMP
   threads. The flags only change which kernels XLA:CPU uses (the same math
   up to float reassociation) and have no effect on GPU/TPU. A flag already
   named in ``XLA_FLAGS`` is left as the user set it;
   ``REMIX_JAX_XLA_DEFAULTS=1`` keeps XLA's defaults.
2. **glibc keeps freed memory** (:func:`remix_jax.trainer.host_memory.
   keep_freed_memory`), which must happen before XLA starts its threads;
   ``REMIX_JAX_MALLOC_DEFAULTS=1`` keeps glibc's defaults.

Importing ``remix_jax`` (or any of its modules, this one included) leaves the
process alone. XLA reads ``XLA_FLAGS`` once, when JAX initializes its
backends at the first JAX computation of a process, so the programs that want
the set-up call :func:`configure_process` first: ``main.py``'s ``main()`` and
the benchmarks, and :func:`remix_jax.trainer.train.train_and_evaluate` again
(a no-op when the flags are already set; a warning when JAX has already
started). A program of your own calls it before its first JAX computation
(importing JAX first is fine)::

    from remix_jax.trainer import process_setup
    process_setup.configure_process()
"""

from __future__ import annotations

import logging
import os
import sys
from typing import MutableMapping, Optional

from remix_jax.trainer import host_memory

#: Fusion kinds XLA:CPU may still run through YNNPACK (convolutions are not
#: among them).
YNN_FUSION_TYPES = ("LIBRARY_FUSION_TYPE_REDUCE", "LIBRARY_FUSION_TYPE_DOT")

#: Environment variable that, set to ``1``, turns :func:`configure_process` off.
OPT_OUT = "REMIX_JAX_XLA_DEFAULTS"

#: The flags :func:`configure_process` adds, by name.
CPU_FLAGS = {
    "xla_cpu_experimental_ynn_fusion_type": ",".join(YNN_FUSION_TYPES),
}


def jax_backends_initialized() -> bool:
  """Whether JAX has initialized its backends in this process.

  XLA has then read ``XLA_FLAGS``, and changing them no longer changes this
  process. JAX has no public API for the question (jax-ml/jax#23320), so
  this asks ``jax._src.xla_bridge.backends_are_initialized``, which JAX
  itself uses; should a JAX release move it, the answer is ``False``.

  Returns:
    ``True`` when JAX's backends exist; ``False`` when they do not, when JAX
    is not imported, or when the check is unavailable.
  """
  if "jax" not in sys.modules:
    return False  # nothing can have started JAX
  try:
    from jax._src import xla_bridge  # pylint: disable=g-import-not-at-top
    return bool(xla_bridge.backends_are_initialized())
  except (ImportError, AttributeError):
    return False


def configure_process(
    environ: Optional[MutableMapping[str, str]] = None) -> list[str]:
  """Appends :data:`CPU_FLAGS` to ``XLA_FLAGS``, skipping any already named.

  Nothing is added when ``environ[OPT_OUT] == "1"``. When ``environ`` is
  this process's environment and JAX's backends are already initialized,
  the flags could no longer take effect: the environment is left as it is
  and one warning is logged instead.

  Args:
    environ: the environment to change (``os.environ`` by default).

  Returns:
    The ``--name=value`` flags that were added (empty when all were set,
    when opted out, or when it was too late).
  """
  own_process = environ is None or environ is os.environ
  environ = os.environ if environ is None else environ
  if own_process and not jax_backends_initialized():
    host_memory.keep_freed_memory()
  if environ.get(OPT_OUT) == "1":
    return []
  current = environ.get("XLA_FLAGS", "")
  added = [f"--{name}={value}" for name, value in CPU_FLAGS.items()
           if f"--{name}=" not in current]
  if added and own_process and jax_backends_initialized():
    logging.warning(
        "remix_jax XLA:CPU flags not set: JAX has already initialized its "
        "backends; call remix_jax.trainer.process_setup.configure_process() before the first "
        "JAX computation (or set %s=1 to silence this)", OPT_OUT)
    return []
  if added:
    environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
  return added
