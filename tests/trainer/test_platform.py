"""The accelerator branches, covered on CPU by faking the platform name."""

from __future__ import annotations

import jax
import pytest

from remix_jax.trainer import build
from remix_jax.trainer import train


@pytest.mark.parametrize("platform", ["gpu", "tpu"])
def test_auto_weight_grad_chunks_are_plain_on_an_accelerator(monkeypatch,
                                                             platform):
  monkeypatch.setattr(jax, "default_backend", lambda: platform)
  resolve = build.resolve_weight_grad_chunks
  assert [resolve(-1, b) for b in (4, 32, 128, 512)] == [1, 1, 1, 1]
  assert resolve(4, 128) == 4  # an explicit value is kept on any platform


def test_auto_weight_grad_chunks_on_cpu(monkeypatch):
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  assert build.resolve_weight_grad_chunks(-1, 128) == 8


def test_main_hides_the_gpu_from_tensorflow_before_training(monkeypatch,
                                                            tmp_path):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from absl import logging  # pylint: disable=g-import-not-at-top
  import main  # pylint: disable=g-import-not-at-top
  calls = []
  monkeypatch.setattr(tf.config, "set_visible_devices",
                      lambda devices, kind: calls.append(("tf", devices, kind)))
  monkeypatch.setattr(train, "train_and_evaluate",
                      lambda config, workdir, **kwargs: calls.append(
                          ("train", workdir))
                      or {})
  verbosity = logging.get_verbosity()
  try:
    main.main(["main.py", "--workdir", str(tmp_path)])
  finally:
    logging.set_verbosity(verbosity)
  assert calls == [("tf", [], "GPU"), ("train", str(tmp_path))]
