"""oneDNN's training-mode BatchNorm through the XLA FFI (models.onednn_batch_norm)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from remix_jax import parallel
from remix_jax.models import batch_norm as batch_norm_lib
from remix_jax.models import onednn
from remix_jax.models import onednn_batch_norm as obn

needs_onednn = pytest.mark.skipif(
    not onednn.available(),
    reason=f"oneDNN kernels unavailable: {onednn.unavailable_reason()}")
EPS = 1e-5


def _reference(x, scale, shift, relu):
  """Training-mode BatchNorm written with jnp (what XLA runs)."""
  mean = x.mean((0, 1, 2))
  var = jnp.square(x - mean).mean((0, 1, 2))
  y = (x - mean) * jax.lax.rsqrt(var + EPS) * scale + shift
  return (jnp.maximum(y, 0) if relu else y), mean, var


def _value_and_grads(fn, x, scale, shift, g):
  y, mean, var = fn(x, scale, shift)
  _, pullback = jax.vjp(lambda *a: fn(*a)[0], x, scale, shift)
  return (y, mean, var, *pullback(g))


def _inputs(shape, seed=0):
  rng = np.random.RandomState(seed)
  c = shape[-1]
  x = jnp.asarray(rng.randn(*shape) * 2 + 0.5, jnp.float32)
  scale = jnp.asarray(rng.uniform(0.5, 1.5, c), jnp.float32)
  shift = jnp.asarray(rng.randn(c), jnp.float32)
  g = jnp.asarray(rng.randn(*shape), jnp.float32)
  return x, scale, shift, g


# ResNet-32's three stages, ResNet-18's last, batch 1, odd sizes, 1×1 maps.
SHAPES = [(8, 32, 32, 16), (4, 16, 16, 32), (4, 8, 8, 64), (2, 4, 4, 512),
          (1, 5, 7, 3), (3, 1, 1, 6)]


@needs_onednn
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_values_statistics_and_gradients_match_xla(shape, relu):
  x, scale, shift, g = _inputs(shape)
  ours = jax.jit(lambda *a: _value_and_grads(
      lambda x, s, b: obn.batch_norm_train(x, s, b, epsilon=EPS, relu=relu),
      *a))(x, scale, shift, g)
  want = _value_and_grads(lambda x, s, b: _reference(x, s, b, relu),
                          x, scale, shift, g)
  names = ("y", "mean", "var", "dx", "dscale", "dshift")
  for name, a, b in zip(names, ours, want):
    assert a.shape == b.shape, name
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(
        jnp.max(jnp.abs(b)) + 1e-6), err_msg=name)


@needs_onednn
@pytest.mark.parametrize("shape", SHAPES)
def test_add_relu_values_and_all_four_gradients_match_xla(shape):
  """``max(BN(x) + s, 0)``, the end of a residual block."""
  x, scale, shift, g = _inputs(shape)
  skip = jnp.asarray(np.random.RandomState(7).randn(*shape), jnp.float32)

  def both(fn):
    y, mean, var = fn(x, skip, scale, shift)
    _, pullback = jax.vjp(lambda *a: fn(*a)[0], x, skip, scale, shift)
    return (y, mean, var, *pullback(g))

  ours = jax.jit(lambda: both(lambda x, s, a, b: obn.batch_norm_train(
      x, a, b, epsilon=EPS, relu=True, skip=s)))()
  def ref(x, s, a, b):
    y, mean, var = _reference(x, a, b, False)
    return jnp.maximum(y + s, 0), mean, var
  want = both(ref)
  names = ("y", "mean", "var", "dx", "dskip", "dscale", "dshift")
  for name, a, b in zip(names, ours, want):
    assert a.shape == b.shape, name
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(
        jnp.max(jnp.abs(b)) + 1e-6), err_msg=name)


def test_a_skip_without_relu_is_refused():
  x = jnp.ones((2, 4, 4, 3), jnp.float32)
  with pytest.raises(ValueError, match="only before a ReLU"):
    obn.batch_norm_train(x, jnp.ones(3), jnp.zeros(3), epsilon=EPS, skip=x)


@needs_onednn
def test_fused_relu_keeps_a_mask_and_plain_norm_none():
  shape = (4, 8, 8, 16)
  relu_bytes = obn._workspace_bytes(shape, EPS, True)  # pylint: disable=protected-access
  assert relu_bytes >= np.prod(shape) // 8
  assert obn._workspace_bytes(shape, EPS, False) == 1  # pylint: disable=protected-access


@needs_onednn
def test_statistics_carry_no_gradient():
  x, scale, shift, _ = _inputs((2, 4, 4, 3))
  d = jax.grad(lambda x: jnp.sum(obn.batch_norm_train(
      x, scale, shift, epsilon=EPS)[1]))(x)
  np.testing.assert_array_equal(d, np.zeros_like(d))


@needs_onednn
def test_jitted_program_calls_onednn_for_both_passes():
  x, scale, shift, _ = _inputs((2, 4, 4, 3))
  loss = lambda x, s, b: jnp.sum(jnp.sin(obn.batch_norm_train(
      x, s, b, epsilon=EPS, relu=True)[0]))
  hlo = jax.jit(jax.grad(loss, (0, 1, 2))).lower(x, scale, shift).as_text()
  assert onednn.TARGETS["bn_fwd"] in hlo
  assert onednn.TARGETS["bn_bwd"] in hlo


def test_unsupported_input_is_refused_in_one_line():
  x = jnp.ones((2, 4, 4, 3), jnp.bfloat16)
  with pytest.raises(ValueError, match="float32 NHWC"):
    obn.batch_norm_train(x, jnp.ones(3), jnp.zeros(3), epsilon=EPS)


def _modules(impl_a, impl_b, channels):
  make = lambda impl: batch_norm_lib.BatchNorm(
      channels, use_running_average=False, momentum=0.9, epsilon=EPS,
      impl=impl, rngs=nnx.Rngs(0))
  return make(impl_a), make(impl_b)


@needs_onednn
@pytest.mark.parametrize("relu,with_skip", [(False, False), (True, False),
                                            (True, True)])
def test_module_matches_nnx_batch_norm_in_train_and_eval(relu, with_skip):
  x, _, _, _ = _inputs((4, 8, 8, 16), seed=3)
  skip = x[::-1] if with_skip else None
  ours, xla = _modules("onednn", "xla", 16)
  plain = nnx.BatchNorm(16, use_running_average=False, momentum=0.9,
                        epsilon=EPS, rngs=nnx.Rngs(0))
  def act(y):
    y = y if skip is None else y + skip
    return nnx.relu(y) if relu else y
  for _ in range(2):  # two steps of running averages
    want = act(plain(x))
    np.testing.assert_allclose(xla(x, relu=relu, skip=skip), want,
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours(x, relu=relu, skip=skip), want,
                               rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(ours.mean[...], plain.mean[...], rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(ours.var[...], plain.var[...], rtol=1e-5)
  ours.eval(), plain.eval()
  np.testing.assert_allclose(ours(x, relu=relu, skip=skip), act(plain(x)),
                             rtol=1e-5, atol=1e-5)


def _hlo(module, x, **kwargs):
  graphdef, state = nnx.split(module)
  return jax.jit(lambda state, x: nnx.merge(graphdef, state)(x, **kwargs)
                 ).lower(state, x).as_text()


@needs_onednn
def test_module_uses_xla_for_eval_and_masks():
  x, _, _, _ = _inputs((2, 4, 4, 3))
  module, _ = _modules("onednn", "xla", 3)
  assert onednn.TARGETS["bn_fwd"] in _hlo(module, x)
  assert onednn.TARGETS["bn_fwd"] not in _hlo(
      module, x, mask=jnp.ones(x.shape, bool))
  assert onednn.TARGETS["bn_add_relu_fwd"] in _hlo(module, x, relu=True,
                                                   skip=x)
  module.eval()
  assert onednn.TARGETS["bn_fwd"] not in _hlo(module, x)
  assert onednn.TARGETS["bn_add_relu_fwd"] not in _hlo(module, x, relu=True,
                                                       skip=x)


def test_unknown_impl_is_refused_with_the_choices():
  with pytest.raises(ValueError, match=r"one of \('xla', 'onednn'\)"):
    batch_norm_lib.BatchNorm(3, impl="mkl", rngs=nnx.Rngs(0))


@needs_onednn
def test_shard_map_normalizes_each_shard_and_sums_parameter_gradients():
  assert jax.device_count() >= 4
  x, scale, shift, _ = _inputs((8, 4, 4, 6), seed=4)
  mesh = parallel.make_mesh(4)

  def step(fn):
    def local(scale, shift, x):
      def loss(scale, shift, x):
        return jnp.sum(jnp.sin(fn(x, scale, shift)[0]))
      value, grads = jax.value_and_grad(loss, (0, 1, 2))(scale, shift, x)
      return jax.lax.psum(value, "data"), *grads
    return jax.jit(jax.shard_map(local, mesh=mesh,
                                 in_specs=(P(), P(), P("data")),
                                 out_specs=(P(), P(), P(), P("data"))))

  x4 = parallel.shard_batch(mesh, x)
  ours = step(lambda x, s, b: obn.batch_norm_train(
      x, s, b, epsilon=EPS, relu=True))(scale, shift, x4)
  want = step(lambda x, s, b: _reference(x, s, b, True))(scale, shift, x4)
  for a, b in zip(ours, want):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  # The residual block's end, the skip being x itself.
  ours = step(lambda x, s, b: obn.batch_norm_train(
      x, s, b, epsilon=EPS, relu=True, skip=x))(scale, shift, x4)
  want = step(lambda x, s, b: (jnp.maximum(
      _reference(x, s, b, False)[0] + x, 0),))(scale, shift, x4)
  for a, b in zip(ours, want):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
