"""Tests of remix_jax.models: shapes, parameter counts, the Manifold Mixup hook,
train/eval BatchNorm behaviour, the normalized classifier and the registry.

Heavy models (ResNet-18/50) are only shape-evaluated (``jax.eval_shape``);
real compute runs on the tiny model.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from remix_jax import models
from remix_jax.mixers import ManifoldInfo
from remix_jax.models import initializers
from remix_jax.models import layers

# name -> (input shape, num_mix_layers, feature_dim)
SHAPES = {
    "tiny_resnet": ((2, 8, 8, 1), 3, 32),
    "resnet32": ((2, 32, 32, 3), 3, 64),
    "resnet18": ((2, 32, 32, 3), 4, 512),
    "resnet50": ((2, 64, 64, 3), 4, 2048),
}


def abstract_model(name, num_classes, **kw):
  """The model with shapes only (no parameter values computed)."""
  return nnx.eval_shape(lambda: models.create_model(
      name, num_classes=num_classes, rngs=nnx.Rngs(0), **kw))


def count_params(model):
  """Number of scalars in the model's ``nnx.Param`` leaves."""
  return sum(math.prod(x.shape)
             for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def tiny(num_classes=5, **kw):
  """The tiny model (train mode)."""
  return models.create_model("tiny_resnet", num_classes=num_classes,
                             rngs=nnx.Rngs(0), **kw)


def images(shape=(4, 8, 8, 3), seed=0):
  """Standard-normal float32 images."""
  return jnp.asarray(np.random.RandomState(seed).randn(*shape), jnp.float32)


def info(layer, lam=(0.3, 0.7, 0.5, 0.9), partner=(1, 2, 3, 0)):
  """A ManifoldInfo mixing at ``layer`` with per-sample λ."""
  return ManifoldInfo(partner=jnp.array(partner, jnp.int32),
                      lam=jnp.array(lam, jnp.float32),
                      layer=jnp.array(layer, jnp.int32))


def functional_forward(model):
  """A jitted ``(state, x, mix) -> ModelOutput`` over nnx.split/merge, and a
  counter of its traces."""
  graphdef, state = nnx.split(model)
  traces = [0]

  @jax.jit
  def forward(state, x, mix):
    traces[0] += 1
    return nnx.merge(graphdef, state)(x, mix=mix)

  return (lambda x, mix=None: forward(state, x, mix)), traces


# --------------------------------------------------------------------------
# Shapes and parameter counts.


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_output_shapes_and_attributes(name):
  shape, num_mix_layers, feature_dim = SHAPES[name]
  model = abstract_model(name, 7)
  assert model.num_mix_layers == num_mix_layers
  assert model.feature_dim == feature_dim
  out = jax.eval_shape(
      lambda x: models.create_model(name, num_classes=7,
                                    rngs=nnx.Rngs(0))(
          x, mix=info(1, lam=(0.3, 0.7), partner=(1, 0))),
      jax.ShapeDtypeStruct(shape, jnp.float32))
  assert isinstance(out, models.ModelOutput)
  assert out.logits.shape == (2, 7) and out.logits.dtype == jnp.float32
  assert out.features.shape == (2, feature_dim)


@pytest.mark.parametrize("shape", [(2, 8, 8, 1), (2, 32, 32, 3),
                                   (2, 4, 4, 2), (2, 5, 7, 4)])
def test_tiny_accepts_any_size_and_channels(shape):
  forward, _ = functional_forward(tiny())
  out = forward(images(shape))
  assert out.logits.shape == (2, 5) and out.features.shape == (2, 32)
  assert np.all(np.isfinite(out.logits))


def conv(k, cin, cout):
  """Parameters of a bias-free ``k × k`` conv."""
  return k * k * cin * cout


def bn(c):
  return 2 * c  # scale and bias (running stats are not parameters)


def basic_block(cin, width, stride, projection):
  """``(parameters, out channels)`` of a BasicBlock."""
  n = conv(3, cin, width) + bn(width) + conv(3, width, width) + bn(width)
  if projection and (stride != 1 or cin != width):
    n += conv(1, cin, width) + bn(width)
  return n, width


def bottleneck(cin, width, stride, projection):
  """``(parameters, out channels)`` of a Bottleneck (expansion 4)."""
  out = 4 * width
  n = (conv(1, cin, width) + bn(width) + conv(3, width, width) + bn(width) +
       conv(1, width, out) + bn(out))
  if projection and (stride != 1 or cin != out):
    n += conv(1, cin, out) + bn(out)
  return n, out


def expected_count(block, sizes, widths, *, stem_kernel, stem_width, in_ch,
                   num_classes, projection, bias=True):
  """The parameter count of a ResNet, from its layer shapes."""
  n = conv(stem_kernel, in_ch, stem_width) + bn(stem_width)
  ch = stem_width
  for i, (size, width) in enumerate(zip(sizes, widths)):
    for j in range(size):
      stride = 2 if (i > 0 and j == 0) else 1
      added, ch = block(ch, width, stride, projection)
      n += added
  return n + ch * num_classes + (num_classes if bias else 0)


@pytest.mark.parametrize("num_classes", [10, 100])
def test_parameter_counts_match_the_architectures(num_classes):
  c = num_classes
  # ResNet-32 of LDAM-DRW: option-A shortcuts have no parameters.
  r32 = expected_count(basic_block, (5, 5, 5), (16, 32, 64), stem_kernel=3,
                       stem_width=16, in_ch=3, num_classes=c,
                       projection=False)
  r18 = expected_count(basic_block, (2, 2, 2, 2), (64, 128, 256, 512),
                       stem_kernel=3, stem_width=64, in_ch=3, num_classes=c,
                       projection=True)
  r50 = expected_count(bottleneck, (3, 4, 6, 3), (64, 128, 256, 512),
                       stem_kernel=7, stem_width=64, in_ch=3, num_classes=c,
                       projection=True)
  tiny_n = expected_count(basic_block, (1, 1, 1), (8, 16, 32), stem_kernel=3,
                          stem_width=8, in_ch=1, num_classes=c,
                          projection=False)
  for name, n in [("resnet32", r32), ("resnet18", r18), ("resnet50", r50),
                  ("tiny_resnet", tiny_n)]:
    assert count_params(abstract_model(name, c)) == n, name
  # The cosine classifier has no bias.
  assert count_params(abstract_model(
      "resnet32", c, normalized_classifier=True)) == r32 - c


def test_models_hold_only_params_and_batch_stats():
  _, params, stats, rest = nnx.split(tiny(), nnx.Param, nnx.BatchStat, ...)
  assert not jax.tree.leaves(rest)
  assert jax.tree.leaves(params) and jax.tree.leaves(stats)


def test_option_a_shortcut_subsamples_and_zero_pads_like_ldam():
  x = images((1, 4, 4, 16))
  y = layers.PadShortcut(16, 32, 2)(x)
  assert y.shape == (1, 2, 2, 32)
  np.testing.assert_array_equal(y[..., 8:24], x[:, ::2, ::2])
  assert not np.any(y[..., :8]) and not np.any(y[..., 24:])
  assert not jax.tree.leaves(nnx.state(layers.PadShortcut(16, 32, 2)))


def test_initializers_match_pytorch_formulas():
  key = jax.random.key(0)
  for mode, fan in [("fan_in", 9 * 64), ("fan_out", 9 * 128)]:
    w = initializers.kaiming_normal(mode)(key, (3, 3, 64, 128))
    assert float(jnp.std(w)) == pytest.approx(math.sqrt(2 / fan), rel=0.03)
  bound = 1 / math.sqrt(64)
  b = initializers.torch_linear_bias(64)(key, (1000,))
  k = initializers.torch_linear_kernel()(key, (64, 1000))
  for v in (b, k):
    assert float(jnp.max(jnp.abs(v))) <= bound
    assert float(jnp.max(jnp.abs(v))) > 0.9 * bound


# --------------------------------------------------------------------------
# The Manifold Mixup hook.


@pytest.mark.parametrize("train", [True, False])
def test_lambda_one_is_no_mix(train):
  model = tiny()
  model.train() if train else model.eval()
  forward, _ = functional_forward(model)
  x = images()
  ref = forward(x)
  for layer in range(model.num_mix_layers):
    out = forward(x, info(layer, lam=(1.0,) * 4))
    np.testing.assert_array_equal(out.logits, ref.logits)
    np.testing.assert_array_equal(out.features, ref.features)


@pytest.mark.parametrize("train", [True, False])
def test_layer_zero_mixes_the_input(train):
  model = tiny()
  model.train() if train else model.eval()
  forward, _ = functional_forward(model)
  x, mix = images(), info(0)
  lam = mix.lam[:, None, None, None]
  manual = forward(lam * x + (1 - lam) * x[mix.partner])
  out = forward(x, mix)
  np.testing.assert_allclose(out.logits, manual.logits, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(out.features, manual.features, rtol=1e-5,
                             atol=1e-5)


def manual_hidden_mix(model, x, mix):
  """Eval-mode forward mixing the output of stage ``mix.layer`` by hand."""
  h = model.stem(x)
  for i, stage in enumerate(model.stages):
    h = stage(h)
    if i + 1 == int(mix.layer):
      lam = mix.lam[:, None, None, None]
      h = lam * h + (1 - lam) * h[mix.partner]
  return model.classifier(jnp.mean(h, axis=(1, 2)))


def test_hidden_layers_mix_their_stage_output():
  model = tiny()
  model.eval()
  forward, _ = functional_forward(model)
  x = images()
  plain, at_input = forward(x).logits, forward(x, info(0)).logits
  for layer in range(1, model.num_mix_layers):
    mix = info(layer)
    out = forward(x, mix).logits
    assert not np.allclose(out, plain, atol=1e-4)
    assert not np.allclose(out, at_input, atol=1e-4)
    np.testing.assert_allclose(out, manual_hidden_mix(model, x, mix),
                               rtol=1e-5, atol=1e-5)


def test_one_compiled_function_serves_every_layer():
  model = tiny()
  forward, traces = functional_forward(model)
  x = images()
  outs = [forward(x, info(k)).logits for k in range(model.num_mix_layers)]
  assert traces[0] == 1
  for a in range(len(outs)):
    for b in range(a + 1, len(outs)):
      assert not np.allclose(outs[a], outs[b], atol=1e-4)


# --------------------------------------------------------------------------
# Train / eval, the classifier, dtypes and the registry.


def batch_stats(model):
  """A host copy of the model's BatchNorm running statistics."""
  return jax.tree.map(np.asarray, nnx.state(model, nnx.BatchStat))


def test_batch_stats_update_in_train_mode_only():
  model = tiny()
  x = images()
  before = batch_stats(model)
  model.train()
  model(x)
  after_train = batch_stats(model)
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b), before,
                         after_train)
  assert all(jax.tree.leaves(changed))
  model.eval()
  out = model(x)
  jax.tree.map(np.testing.assert_array_equal, after_train, batch_stats(model))
  # Eval mode normalizes each sample alone: batch composition is irrelevant.
  np.testing.assert_allclose(model(x[:1]).logits, out.logits[:1], rtol=1e-5,
                             atol=1e-6)


def test_normalized_classifier_outputs_cosines():
  model = tiny(normalized_classifier=True)
  assert isinstance(model.classifier, layers.NormedLinear)
  w = np.asarray(model.classifier.kernel[...])
  np.testing.assert_allclose(np.linalg.norm(w, axis=0), 1.0, rtol=1e-5)
  out = model(images() * 10.0)
  assert np.all(np.abs(np.asarray(out.logits)) <= 1.0 + 1e-6)
  f = np.asarray(out.features)
  cos = (f / np.linalg.norm(f, axis=1, keepdims=True)) @ w
  np.testing.assert_allclose(out.logits, cos, rtol=1e-5, atol=1e-6)


def test_bfloat16_compute_keeps_float32_params_and_outputs():
  x = images()
  ref = tiny()(x)
  model = tiny(dtype=jnp.bfloat16)
  assert {v.dtype for v in jax.tree.leaves(nnx.state(model))} == {
      jnp.dtype(jnp.float32)}
  out = model(x)
  assert out.logits.dtype == jnp.float32 and out.features.dtype == jnp.float32
  np.testing.assert_allclose(out.logits, ref.logits, rtol=0.1, atol=0.1)


def test_unknown_model_names_the_valid_ones():
  with pytest.raises(ValueError, match="unknown model 'resnet99'") as e:
    models.create_model("resnet99", num_classes=10, rngs=nnx.Rngs(0))
  for name in models.MODELS:
    assert name in str(e.value)
  assert "\n" not in str(e.value)
