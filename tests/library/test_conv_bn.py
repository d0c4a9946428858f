"""Eval-mode conv + BatchNorm folded into one oneDNN call (models.conv_bn)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import PartitionSpec as P

from remix_jax import models
from remix_jax import parallel
from remix_jax.models import initializers
from remix_jax.models import layers as layers_lib
from remix_jax.models import onednn
from remix_jax.models.conv_bn import conv_bn

needs_onednn = pytest.mark.skipif(
    not onednn.available(),
    reason=f"oneDNN kernels unavailable: {onednn.unavailable_reason()}")

# (input shape, kernel, stride): ResNet-32's layers, a strided 3×3, a 1×1
# projection shortcut, ResNet-18's last stage, odd sizes.
CASES = [((4, 16, 16, 16), 3, 1), ((4, 16, 16, 16), 3, 2),
         ((4, 16, 16, 16), 1, 2), ((2, 4, 4, 64), 3, 1), ((1, 5, 7, 3), 3, 1)]


def _reference(x, w, b, skip, stride, relu):
  """``act(x ⊛ w + b + skip)`` with XLA's convolution."""
  pad = w.shape[0] // 2
  y = jax.lax.conv_general_dilated(
      x, w, (stride, stride), ((pad, pad), (pad, pad)),
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=jax.lax.Precision.HIGHEST) + b
  y = y if skip is None else y + skip
  return jnp.maximum(y, 0) if relu else y


def _arrays(shape, kernel, stride, out_channels=8, seed=0):
  rng = np.random.RandomState(seed)
  x = jnp.asarray(rng.randn(*shape), jnp.float32)
  w = jnp.asarray(rng.randn(kernel, kernel, shape[-1], out_channels) * 0.3,
                  jnp.float32)
  b = jnp.asarray(rng.randn(out_channels), jnp.float32)
  pad = kernel // 2
  geometry = onednn.Geometry(stride, stride, pad, pad, pad, pad)
  out = onednn.out_shape(shape, w.shape, geometry)
  skip = jnp.asarray(rng.randn(*out), jnp.float32)
  g = jnp.asarray(rng.randn(*out), jnp.float32)
  return x, w, b, skip, g, geometry


@needs_onednn
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("with_skip", [False, True])
@pytest.mark.parametrize("shape,kernel,stride", CASES)
def test_epilogue_values_and_gradients_match_xla(shape, kernel, stride,
                                                 with_skip, relu):
  x, w, b, skip, g, geometry = _arrays(shape, kernel, stride)
  skip = skip if with_skip else None

  def value_and_grads(fn):
    y, pullback = jax.vjp(fn, x, w, b, skip)
    return (y, *[d for d in pullback(g) if d is not None])

  ours = jax.jit(lambda: value_and_grads(
      lambda *a: onednn.conv_epilogue(*a, geometry, relu)))()
  want = value_and_grads(lambda *a: _reference(*a, stride, relu))
  assert len(ours) == len(want) == (5 if with_skip else 4)
  for a, e in zip(ours, want):
    np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-4)


@needs_onednn
def test_bad_bias_is_refused_by_the_handler():
  x, w, _, _, _, geometry = _arrays((1, 5, 5, 3), 3, 1)
  with pytest.raises(Exception, match=r"bias \[O\]"):
    jax.block_until_ready(onednn.conv_epilogue(
        x, w, jnp.zeros(3, jnp.float32), None, geometry, True))


def _conv_and_bn(impl, cin, cout, kernel, stride, seed=1):
  factory = layers_lib.LayerFactory(
      dtype=jnp.float32, param_dtype=jnp.float32,
      conv_init=initializers.kaiming_normal("fan_out"), conv_impl=impl)
  rngs = nnx.Rngs(0)
  conv = factory.conv(cin, cout, kernel, stride, rngs=rngs)
  bn = factory.batch_norm(cout, rngs=rngs)
  rng = np.random.RandomState(seed)
  bn.mean[...] = jnp.asarray(rng.randn(cout) * 0.3, jnp.float32)
  bn.var[...] = jnp.asarray(rng.uniform(0.3, 2.0, cout), jnp.float32)
  bn.scale[...] = jnp.asarray(rng.uniform(0.5, 1.5, cout), jnp.float32)
  bn.bias[...] = jnp.asarray(rng.randn(cout) * 0.3, jnp.float32)
  return conv, bn


def _hlo(fn, *args):
  return jax.jit(fn).lower(*args).as_text()


def _conv_bn_hlo(conv, bn, x, skip, relu):
  """The jitted ``conv_bn`` of the modules' current state and mode."""
  graphdef, state = nnx.split((conv, bn))

  def fn(state, x, skip):
    conv, bn = nnx.merge(graphdef, state)
    return conv_bn(conv, bn, x, relu=relu, skip=skip)

  return _hlo(fn, state, x, skip)


def _calls(hlo, pass_name):
  """How many times ``hlo`` calls the handler of ``pass_name``."""
  return hlo.count(f"@{onednn.TARGETS[pass_name]}(")


@needs_onednn
@pytest.mark.parametrize("relu,with_skip", [(False, False), (True, False),
                                            (True, True)])
@pytest.mark.parametrize("shape,kernel,stride", CASES[:3])
def test_eval_conv_bn_is_one_call_equal_to_bn_of_conv(shape, kernel, stride,
                                                      relu, with_skip):
  x, _, _, skip, _, _ = _arrays(shape, kernel, stride)
  skip = skip if with_skip else None
  conv, bn = _conv_and_bn("onednn", shape[-1], 8, kernel, stride)
  xla_conv, xla_bn = _conv_and_bn("xla", shape[-1], 8, kernel, stride)
  for module in (bn, xla_bn):
    module.eval()
  ours = lambda x, s: conv_bn(conv, bn, x, relu=relu, skip=s)
  want = xla_bn(xla_conv(x), relu=relu, skip=skip)
  np.testing.assert_allclose(jax.jit(ours)(x, skip), want, rtol=1e-4,
                             atol=1e-4)
  hlo = _conv_bn_hlo(conv, bn, x, skip, relu)
  assert _calls(hlo, "fwd_epilogue") == 1
  assert _calls(hlo, "fwd") == 0
  # Training mode normalizes with the batch's statistics: not folded.
  bn.train()
  hlo = _conv_bn_hlo(conv, bn, x, skip, relu)
  assert _calls(hlo, "fwd_epilogue") == 0
  assert _calls(hlo, "fwd") == 1


def test_xla_impl_never_folds():
  conv, bn = _conv_and_bn("xla", 3, 8, 3, 1)
  bn.eval()
  x = jnp.ones((1, 5, 5, 3), jnp.float32)
  assert "onednn" not in _conv_bn_hlo(conv, bn, x, None, True)


@needs_onednn
@pytest.mark.parametrize("name", ["resnet32", "resnet18"])
def test_model_eval_matches_xla_and_folds_every_layer(name):
  x = jnp.asarray(np.random.RandomState(2).randn(4, 32, 32, 3), jnp.float32)
  outputs, hlo = {}, ""
  for impl in ("xla", "onednn"):
    model = models.create_model(name, num_classes=10, rngs=nnx.Rngs(0),
                                conv_impl=impl)
    rng = np.random.RandomState(3)
    for _, module in nnx.iter_modules(model):
      if isinstance(module, nnx.BatchNorm):
        c = module.mean.shape[0]
        module.mean[...] = jnp.asarray(rng.randn(c) * 0.1, jnp.float32)
        module.var[...] = jnp.asarray(rng.uniform(0.5, 2.0, c), jnp.float32)
    model.eval()
    forward = lambda x, model=model: model(x).logits
    outputs[impl] = jax.jit(forward)(x)
    hlo = _hlo(forward, x)
  np.testing.assert_allclose(outputs["onednn"], outputs["xla"], rtol=1e-4,
                             atol=1e-4)
  convs = {"resnet32": 31, "resnet18": 20}[name]
  assert _calls(hlo, "fwd_epilogue") == convs
  assert _calls(hlo, "fwd") == 0


@needs_onednn
def test_shard_map_runs_each_shard_and_sums_kernel_gradients():
  assert jax.device_count() >= 4
  x, w, b, skip, _, geometry = _arrays((8, 6, 6, 4), 3, 1, seed=5)
  mesh = parallel.make_mesh(4)

  def step(fn):
    def local(w, b, x, skip):
      loss = lambda w, b, x, s: jnp.sum(jnp.sin(fn(x, w, b, s)))
      value, grads = jax.value_and_grad(loss, (0, 1, 2, 3))(w, b, x, skip)
      return jax.lax.psum(value, "data"), *grads
    return jax.jit(jax.shard_map(
        local, mesh=mesh, in_specs=(P(), P(), P("data"), P("data")),
        out_specs=(P(), P(), P(), P("data"), P("data"))))

  args = (w, b, parallel.shard_batch(mesh, x), parallel.shard_batch(mesh, skip))
  ours = step(lambda x, w, b, s: onednn.conv_epilogue(
      x, w, b, s, geometry, True))(*args)
  want = step(lambda x, w, b, s: _reference(x, w, b, s, 1, True))(*args)
  for a, e in zip(ours, want):
    np.testing.assert_allclose(a, e, rtol=2e-4, atol=2e-4)


@needs_onednn
@pytest.mark.parametrize("kwargs", [{"padding": "CIRCULAR"},
                                    {"feature_group_count": 2},
                                    {"kernel_dilation": (2, 2)}])
def test_convs_onednn_cannot_run_fall_back_to_bn_of_conv(kwargs):
  conv = nnx.Conv(4, 8, (3, 3), use_bias=False, rngs=nnx.Rngs(0),
                  **{"padding": ((1, 1), (1, 1)), **kwargs})
  _, bn = _conv_and_bn("onednn", 4, 8, 3, 1)
  bn.eval()
  x = jnp.asarray(np.random.RandomState(6).randn(2, 6, 6, 4), jnp.float32)
  np.testing.assert_allclose(conv_bn(conv, bn, x, relu=True),
                             bn(conv(x), relu=True), rtol=1e-6, atol=1e-6)
  assert _calls(_conv_bn_hlo(conv, bn, x, None, True), "fwd_epilogue") == 0
