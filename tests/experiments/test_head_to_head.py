"""benchmarks/torch_reference.py: interleaved timing, and the PyTorch child."""

import importlib.util

import pytest

from benchmarks import torch_reference


def test_head_to_head_interleaves_every_contender_in_each_round():
  log = []

  def contender(name):
    def time_fn(kind, iters):
      log.append((name, kind, iters))
      return len(log)
    return time_fn

  out = torch_reference.head_to_head(
      {"torch": contender("torch"), "jax": contender("jax")}, rounds=2,
      iters=3)
  one_round = [("torch", "step", 3), ("jax", "step", 3),
               ("torch", "forward", 3), ("jax", "forward", 3)]
  assert log == one_round * 2
  assert out == {("torch", "step"): [1, 5], ("jax", "step"): [2, 6],
                 ("torch", "forward"): [3, 7], ("jax", "forward"): [4, 8]}


def test_median_seconds_warms_up_once_then_times_iters_calls():
  calls = []
  t = torch_reference.median_seconds(lambda: calls.append(1), 5)
  assert len(calls) == 6 and t >= 0


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch is not installed (the PyTorch reference "
                    "is optional: .[bench])")
def test_server_times_the_model_in_a_child_process():
  server = torch_reference.Server("resnet32", 2)
  try:
    assert server.threads >= 1 and server.version
    assert server.time("step", 1) > 0
    assert server.time("forward", 2) > 0
  finally:
    server.close()
  assert server._proc.returncode == 0  # pylint: disable=protected-access


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch is not installed (the PyTorch reference "
                    "is optional: .[bench])")
def test_server_passes_device_dtype_and_compile_to_the_child():
  server = torch_reference.Server("tiny_resnet", 2, device="cpu",
                                  dtype="bfloat16", compile_backend="eager")
  try:
    assert server.device == "cpu"
    assert server.time("step", 1) > 0 and server.time("forward", 1) > 0
  finally:
    server.close()
  assert server._proc.returncode == 0  # pylint: disable=protected-access


def test_server_that_cannot_start_says_so():
  with pytest.raises(RuntimeError, match="did not start"):
    torch_reference.Server("tiny_resnet", 2, device="no_such_device")
