"""Test setup: 4 simulated CPU devices and the project's XLA:CPU flags (set
before JAX starts), and paths.

Where ``JAX_PLATFORMS`` names another platform first (``cuda``: the device
check, ``benchmarks/device_check.sh``), the tests run on that platform's own
devices, and those that need 4 skip (``tests.helpers.need_devices``).
"""

import os

_flags = os.environ.get("XLA_FLAGS", "")
_platform = os.environ.get("JAX_PLATFORMS", "cpu").split(",")[0].strip()
if (_platform in ("", "cpu")
    and "xla_force_host_platform_device_count" not in _flags):
  os.environ["XLA_FLAGS"] = (
      _flags + " --xla_force_host_platform_device_count=4").strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The tests run the kernels the trainer runs; importing remix_jax sets no
# flags, so they are set here, before any test starts JAX.
from remix_jax.trainer import process_setup  # noqa: E402  pylint: disable=g-import-not-at-top

process_setup.configure_process()

import pytest  # noqa: E402  pylint: disable=g-import-not-at-top

from tests.helpers import SHARED_TFDS  # noqa: E402


@pytest.fixture(scope="session")
def shared_tfds_dir():
  """The prepared real CIFAR-10 (``cifar10_jpeg``); skips when absent."""
  if not (SHARED_TFDS / "cifar10_jpeg").is_dir():
    pytest.skip(f"real CIFAR-10 not found at {SHARED_TFDS}/cifar10_jpeg "
                "(see docs/datasets.md)")
  return str(SHARED_TFDS)
