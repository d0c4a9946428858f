"""Paths shared by the tests."""

import pathlib

#: The repository root.
REPO = pathlib.Path(__file__).resolve().parents[1]
#: The offline tfds data beside the checkout (``cifar10_jpeg``).
SHARED_TFDS = REPO.parent / "shared" / "tfds"
