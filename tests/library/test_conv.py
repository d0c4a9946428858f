"""The batch-chunked kernel gradient: same values and gradients as plain conv."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from configs import cifar_lt
from remix_jax import parallel
from remix_jax.trainer import build
from remix_jax.models import conv
from remix_jax.trainer import methods


def test_chunk_bounds_cover_the_axis_in_near_equal_parts():
  assert conv.chunk_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
  assert conv.chunk_bounds(8, 4) == [(0, 2), (2, 4), (4, 6), (6, 8)]
  assert conv.chunk_bounds(2, 16) == [(0, 1), (1, 2)]
  assert conv.chunk_bounds(5, 1) == [(0, 5)]


def test_one_chunk_is_the_plain_conv_and_zero_is_rejected():
  assert conv.make_conv_fn(1) is lax.conv_general_dilated
  with pytest.raises(ValueError, match="num_chunks must be >= 1, got 0"):
    conv.make_conv_fn(0)


CASES = {
    # name: (lhs shape, rhs shape, kwargs)
    "nhwc_same": ((5, 6, 6, 4), (3, 3, 4, 3), dict(
        window_strides=(1, 1), padding=((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    "nhwc_stride2": ((6, 7, 7, 4), (3, 3, 4, 5), dict(
        window_strides=(2, 2), padding=((1, 1), (1, 1)),
        dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    "nchw_groups_dilated": ((4, 4, 9, 9), (6, 2, 3, 3), dict(
        window_strides=(1, 2), padding="VALID", rhs_dilation=(2, 1),
        feature_group_count=2, dimension_numbers=("NCHW", "OIHW", "NCHW"))),
    "batch_last_output": ((5, 6, 6, 4), (1, 1, 4, 3), dict(
        window_strides=(1, 1), padding="SAME",
        dimension_numbers=("NHWC", "HWIO", "HWCN"))),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("num_chunks", [2, 3, 16])
def test_chunked_conv_matches_plain_value_and_gradients(case, num_chunks):
  lhs_shape, rhs_shape, kwargs = CASES[case]
  rng = np.random.RandomState(0)
  lhs = jnp.asarray(rng.randn(*lhs_shape), jnp.float32)
  rhs = jnp.asarray(rng.randn(*rhs_shape), jnp.float32)
  chunked = conv.make_conv_fn(num_chunks)

  def loss(fn):
    def f(lhs, rhs):
      y = fn(lhs, rhs, **kwargs)
      return jnp.sum(jnp.sin(y)), y
    return jax.jit(jax.value_and_grad(f, argnums=(0, 1), has_aux=True))

  (l0, y0), (dl0, dr0) = loss(lax.conv_general_dilated)(lhs, rhs)
  (l1, y1), (dl1, dr1) = loss(chunked)(lhs, rhs)
  np.testing.assert_allclose(y1, y0, rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(l1, l0, rtol=1e-6)
  np.testing.assert_allclose(dl1, dl0, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(dr1, dr0, rtol=1e-5, atol=1e-5)


def test_kernel_gradient_is_really_computed_per_chunk():
  fn = conv.make_conv_fn(4)
  lhs = jnp.ones((8, 4, 4, 2))
  rhs = jnp.ones((3, 3, 2, 2))
  grad = jax.grad(lambda r: jnp.sum(fn(
      lhs, r, (1, 1), ((1, 1), (1, 1)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"))))
  hlo = jax.jit(grad).lower(rhs).as_text()
  assert hlo.count("stablehlo.convolution") == 4


def _build_resnet32(weight_grad_chunks):
  config = methods.resolve(cifar_lt.get_config("method=remix"))
  config.model = "resnet32"
  config.batch_size = 16
  config.weight_grad_chunks = weight_grad_chunks
  config.conv_impl = "xla"  # the chunks apply to XLA's convolutions
  mesh = parallel.make_mesh(1)
  state, step, _ = build.build(config, mesh, num_classes=10,
                               class_counts=np.arange(10, 0, -1) * 10,
                               steps_per_epoch=10)
  return mesh, state, step


def test_fast_path_train_step_matches_the_plain_step():
  """ResNet-32 + Remix, one step: same loss and parameter updates (∝ grads)."""
  rng = np.random.RandomState(0)
  data = (rng.randn(16, 32, 32, 3).astype(np.float32),
          rng.randint(0, 10, 16).astype(np.int32))
  results = {}
  for chunks in (1, 4):
    mesh, state, step = _build_resnet32(chunks)
    before = jax.tree.map(np.asarray, state.params)
    after, metrics = step(state, *parallel.shard_batch(mesh, data))
    update = jax.tree.map(lambda a, b: np.asarray(a) - b, after.params, before)
    results[chunks] = (float(metrics["loss"]), update,
                       jax.tree.map(np.asarray, after.batch_stats))
  (loss1, update1, stats1), (loss4, update4, stats4) = results[1], results[4]
  assert loss4 == pytest.approx(loss1, rel=1e-6)
  assert max(np.abs(u).max() for u in jax.tree.leaves(update1)) > 1e-4
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3,
                                                       atol=1e-7),
               update4, update1)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6,
                                                       atol=1e-7),
               stats4, stats1)


def test_auto_picks_chunks_on_cpu_only_and_bad_values_fail():
  assert jax.default_backend() == "cpu"
  resolve = build.resolve_weight_grad_chunks
  assert [resolve(-1, b) for b in (4, 16, 32, 128, 512)] == [1, 1, 2, 8, 8]
  assert resolve(1, 128) == 1 and resolve(8, 128) == 8
  from remix_jax.trainer import config_lib
  config = cifar_lt.get_config("method=erm")
  config.weight_grad_chunks = 0
  with pytest.raises(ValueError, match=r"config.weight_grad_chunks=0 must be "
                     r"-1 \(auto\) or >= 1"):
    config_lib.validate_config(config)
