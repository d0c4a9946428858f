"""Paths shared by the tests."""

import pathlib

#: The repository root.
REPO = pathlib.Path(__file__).resolve().parents[1]
#: The offline tfds data beside the checkout (``cifar10_jpeg``).
SHARED_TFDS = REPO.parent / "shared" / "tfds"


def need_devices(n: int) -> None:
  """Skips the calling test unless JAX has ``n`` devices (the conftest
  simulates 4 CPU devices; a GPU machine has its own count)."""
  import jax  # pylint: disable=g-import-not-at-top
  import pytest  # pylint: disable=g-import-not-at-top
  if len(jax.devices()) < n:
    pytest.skip(f"needs {n} devices, {jax.default_backend()} has "
                f"{len(jax.devices())}")
