"""oneDNN convolutions through the XLA FFI (remix_jax.models.onednn)."""

from __future__ import annotations

import platform

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.sharding import PartitionSpec as P

from configs import cifar_lt
from remix_jax.trainer import config_lib
from remix_jax import parallel
from remix_jax.trainer import build
from remix_jax.models import conv as conv_lib
from remix_jax.models import onednn
from remix_jax.trainer import methods

NATIVE = platform.system() == "Linux" and platform.machine() == "x86_64"
needs_onednn = pytest.mark.skipif(
    not onednn.available(),
    reason=f"oneDNN convolutions unavailable: {onednn.unavailable_reason()}")
DN = ("NHWC", "HWIO", "NHWC")


@pytest.mark.skipif(not NATIVE, reason="oneDNN's CPU wheels are Linux x86_64")
def test_the_extension_is_built_and_loads_on_linux_x86_64():
  assert onednn.unavailable_reason() is None


def _conv_and_grads(conv, x, w, strides, padding, g):
  f = lambda x, w: conv(x, w, strides, padding, dimension_numbers=DN)
  y, vjp = jax.vjp(f, x, w)
  return (y, *vjp(g))


# (N, H, W, C, O, k, stride, padding): the ResNet shapes, strided, 1×1,
# batch 1, odd sizes, asymmetric and string padding.
SHAPES = [
    (8, 32, 32, 16, 16, 3, 1, ((1, 1), (1, 1))),
    (8, 32, 32, 16, 32, 3, 2, ((1, 1), (1, 1))),
    (4, 8, 8, 64, 64, 3, 1, ((1, 1), (1, 1))),
    (4, 16, 16, 16, 32, 1, 2, ((0, 0), (0, 0))),
    (1, 7, 5, 3, 6, 3, 2, ((2, 0), (1, 2))),
    (3, 9, 11, 5, 4, 5, 3, "SAME"),
    (2, 6, 6, 4, 8, 3, 1, "VALID"),
    (2, 32, 32, 3, 16, 7, 2, ((3, 3), (3, 3))),
]


@needs_onednn
@pytest.mark.parametrize("n,h,w,c,o,k,s,padding", SHAPES)
def test_forward_and_both_gradients_match_xla(n, h, w, c, o, k, s, padding):
  rng = np.random.RandomState(0)
  x = jnp.asarray(rng.randn(n, h, w, c), jnp.float32)
  kernel = jnp.asarray(rng.randn(k, k, c, o), jnp.float32)
  y_ref = lax.conv_general_dilated(x, kernel, (s, s), padding,
                                   dimension_numbers=DN)
  g = jnp.asarray(rng.randn(*y_ref.shape), jnp.float32)
  got = jax.jit(lambda x, kernel, g: _conv_and_grads(
      onednn.conv_general_dilated, x, kernel, (s, s), padding, g))(x, kernel, g)
  want = _conv_and_grads(lax.conv_general_dilated, x, kernel, (s, s),
                         padding, g)
  for a, b in zip(got, want):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-4 * float(
        jnp.max(jnp.abs(b))))


@needs_onednn
def test_jitted_program_calls_onednn_and_drops_unused_gradients():
  x = jnp.ones((2, 8, 8, 4), jnp.float32)
  w = jnp.ones((3, 3, 4, 8), jnp.float32)
  loss = lambda x, w: jnp.sum(onednn.conv_general_dilated(
      x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=DN) ** 2)
  both = jax.jit(jax.grad(loss, (0, 1))).lower(x, w).as_text()
  only_w = jax.jit(jax.grad(loss, 1)).lower(x, w).as_text()
  for name in ("fwd", "bwd_data", "bwd_weights"):
    assert onednn.TARGETS[name] in both
  assert onednn.TARGETS["bwd_data"] not in only_w
  assert "stablehlo.convolution" not in both


@pytest.mark.parametrize("kwargs", [
    {"rhs_dilation": (2, 2)},
    {"lhs_dilation": (2, 2)},
    {"feature_group_count": 2},
    {"dtype": jnp.bfloat16},
])
def test_unsupported_calls_are_xla_convolutions(kwargs):
  kwargs = dict(kwargs)
  dtype = kwargs.pop("dtype", jnp.float32)
  rng = np.random.RandomState(1)
  x = jnp.asarray(rng.randn(2, 9, 9, 4), dtype)
  groups = kwargs.get("feature_group_count", 1)
  w = jnp.asarray(rng.randn(3, 3, 4 // groups, 6), dtype)
  f = lambda conv: lambda x, w: conv(x, w, (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=DN, **kwargs)
  hlo = jax.jit(f(onednn.conv_general_dilated)).lower(x, w).as_text()
  assert "stablehlo.convolution" in hlo
  assert not any(t in hlo for t in onednn.TARGETS.values())
  np.testing.assert_array_equal(f(onednn.conv_general_dilated)(x, w),
                                f(lax.conv_general_dilated)(x, w))


def test_make_conv_fn_picks_the_implementation():
  assert conv_lib.make_conv_fn(1, "onednn") is onednn.conv_general_dilated
  assert conv_lib.make_conv_fn(1, "xla") is lax.conv_general_dilated
  with pytest.raises(ValueError, match="choose one of xla, onednn"):
    conv_lib.make_conv_fn(1, "cudnn")


@needs_onednn
def test_data_parallel_gradient_on_four_devices_matches_one_device():
  """Under shard_map the kernel gradient is summed over the devices."""
  assert jax.device_count() >= 4
  rng = np.random.RandomState(2)
  x = jnp.asarray(rng.randn(8, 8, 8, 4), jnp.float32)
  w = jnp.asarray(rng.randn(3, 3, 4, 6), jnp.float32)
  mesh = parallel.make_mesh(4)

  def local_loss(w, x):
    y = onednn.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                    dimension_numbers=DN)
    return jnp.sum(jnp.sin(y))

  def step(w, x):
    loss, (d_w, d_x) = jax.value_and_grad(local_loss, (0, 1))(w, x)
    return jax.lax.psum(loss, "data"), d_w, d_x

  sharded = jax.jit(jax.shard_map(step, mesh=mesh, in_specs=(P(), P("data")),
                                  out_specs=(P(), P(), P("data"))))
  loss4, d_w4, d_x4 = sharded(w, parallel.shard_batch(mesh, x))
  ref = lambda w, x: jnp.sum(jnp.sin(lax.conv_general_dilated(
      x, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=DN)))
  loss1, (d_w1, d_x1) = jax.value_and_grad(ref, (0, 1))(w, x)
  np.testing.assert_allclose(loss4, loss1, rtol=1e-5)
  np.testing.assert_allclose(d_w4, d_w1, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(d_x4, d_x1, rtol=1e-4, atol=1e-5)


def _resnet_step(conv_impl, model, num_devices, batch):
  config = methods.resolve(cifar_lt.get_config("method=remix"))
  config.model = model
  config.batch_size = batch
  config.conv_impl = conv_impl
  mesh = parallel.make_mesh(num_devices)
  state, step, _ = build.build(config, mesh, num_classes=10,
                               class_counts=np.arange(10, 0, -1) * 10,
                               steps_per_epoch=10)
  rng = np.random.RandomState(0)
  data = (rng.randn(batch, 32, 32, 3).astype(np.float32),
          rng.randint(0, 10, batch).astype(np.int32))
  before = jax.tree.map(np.asarray, state.params)
  after, metrics = step(state, *parallel.shard_batch(mesh, data))
  update = jax.tree.map(lambda a, b: np.asarray(a) - b, after.params, before)
  return float(metrics["loss"]), update, jax.tree.map(np.asarray,
                                                      after.batch_stats)


@needs_onednn
@pytest.mark.parametrize("model,num_devices,batch", [("resnet32", 1, 16),
                                                     ("resnet32", 2, 32),
                                                     ("resnet18", 1, 8)])
def test_train_step_matches_the_xla_step(model, num_devices, batch):
  """ResNet + Remix, one SGD step: same loss, updates (∝ grads) and BN stats."""
  loss_x, update_x, stats_x = _resnet_step("xla", model, num_devices, batch)
  loss_o, update_o, stats_o = _resnet_step("onednn", model, num_devices, batch)
  assert loss_o == pytest.approx(loss_x, rel=1e-5)
  assert max(np.abs(u).max() for u in jax.tree.leaves(update_x)) > 1e-4
  # Float reassociation, which small-batch BatchNorm amplifies in a few
  # channels: each leaf's update within 1 % (relative L2) of XLA's.
  for a, b in zip(jax.tree.leaves(update_o), jax.tree.leaves(update_x)):
    assert np.linalg.norm(a - b) <= 1e-2 * np.linalg.norm(b)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4,
                                                       atol=1e-6),
               stats_o, stats_x)


def test_auto_resolves_by_platform_and_availability(monkeypatch, caplog):
  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  assert build.resolve_conv_impl("xla") == "xla"
  monkeypatch.setattr(onednn, "unavailable_reason", lambda: None)
  assert build.resolve_conv_impl("auto") == "onednn"
  assert build.resolve_conv_impl("onednn") == "onednn"
  monkeypatch.setattr(onednn, "unavailable_reason", lambda: "not built")
  build._warn_once.cache_clear()  # pylint: disable=protected-access
  assert build.resolve_conv_impl("auto") == "xla"
  assert "oneDNN convolutions unavailable (not built); using XLA's" in caplog.text
  with pytest.raises(ValueError, match="conv_impl=onednn is unavailable: "
                     "not built; use auto or xla"):
    build.resolve_conv_impl("onednn")


@pytest.mark.parametrize("platform_name", ["gpu", "tpu"])
def test_accelerators_use_xla_convolutions(monkeypatch, platform_name):
  monkeypatch.setattr(jax, "default_backend", lambda: platform_name)
  monkeypatch.setattr(onednn, "unavailable_reason", lambda: None)
  assert build.resolve_conv_impl("auto") == "xla"
  with pytest.raises(ValueError, match=f"CPU only \\(backend is "
                     f"{platform_name}\\)"):
    build.resolve_conv_impl("onednn")


def test_bad_conv_impl_is_refused_with_the_choices():
  config = cifar_lt.get_config("method=erm")
  config.conv_impl = "mkl"
  with pytest.raises(ValueError, match="auto, xla, onednn"):
    config_lib.validate_config(config)
