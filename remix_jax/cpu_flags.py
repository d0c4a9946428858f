"""XLA:CPU flags that the project sets for its CPU runs.

By default XLA:CPU hands convolutions to YNNPACK. For ResNet-sized layers
XLA's own (Eigen) convolutions are faster on CPU — up to 1.8× on 8×8 and
16×16 images, the same on 32×32 — and compile much faster (the ResNet-32
train step compiles in 4 s instead of 14 s), so the project keeps YNNPACK
for reductions, dots and elementwise fusions only. Measured in
BENCHMARKS.md (attempt 13): +32 % eval and +5 % train images/s.

The flags only change which kernels XLA:CPU uses (the same math up to float
reassociation) and have no effect on GPU/TPU. XLA reads ``XLA_FLAGS`` once,
at the first compilation of a process, so ``import remix_jax`` calls
:func:`set_cpu_flags` (import the package before running JAX code). A flag
already named in ``XLA_FLAGS`` is left as the user set it;
``REMIX_JAX_XLA_DEFAULTS=1`` keeps XLA's defaults altogether.
"""

from __future__ import annotations

import os
from typing import MutableMapping, Optional

#: Fusion kinds XLA:CPU may still run through YNNPACK (convolutions are not
#: among them).
YNN_FUSION_TYPES = ("LIBRARY_FUSION_TYPE_REDUCE", "LIBRARY_FUSION_TYPE_DOT",
                    "LIBRARY_FUSION_TYPE_ELTWISE")

#: Environment variable that, set to ``1``, turns :func:`set_cpu_flags` off.
OPT_OUT = "REMIX_JAX_XLA_DEFAULTS"

#: The flags :func:`set_cpu_flags` adds, by name.
CPU_FLAGS = {
    "xla_cpu_experimental_ynn_fusion_type": ",".join(YNN_FUSION_TYPES),
}


def set_cpu_flags(
    environ: Optional[MutableMapping[str, str]] = None) -> list[str]:
  """Appends :data:`CPU_FLAGS` to ``XLA_FLAGS``, skipping any already named.

  Nothing is added when ``environ[OPT_OUT] == "1"``.

  Args:
    environ: the environment to change (``os.environ`` by default).

  Returns:
    The ``--name=value`` flags that were added (empty when all were set).
  """
  environ = os.environ if environ is None else environ
  if environ.get(OPT_OUT) == "1":
    return []
  current = environ.get("XLA_FLAGS", "")
  added = [f"--{name}={value}" for name, value in CPU_FLAGS.items()
           if f"--{name}=" not in current]
  if added:
    environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
  return added
